from redis.asyncio import Redis


def make_redis(url: str) -> Redis:
    # Lazy: no connection is made until the first command, so a late Redis
    # doesn't stop the app from booting. Short timeouts keep /ready snappy.
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=1,
        socket_timeout=2,
        health_check_interval=30,
    )
