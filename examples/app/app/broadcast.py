"""Fan-out of /ws/broadcast messages through Redis pub/sub.

Each worker process runs one subscriber task and delivers what it receives to
its own local sockets; publishing through Redis is what makes a message reach
clients connected to other gunicorn workers (or other containers)."""

import asyncio
import contextlib
import logging

from fastapi import WebSocket
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("app.broadcast")


class BroadcastHub:
    def __init__(self, redis: Redis, channel: str) -> None:
        self._redis = redis
        self._channel = channel
        self._clients: set[WebSocket] = set()
        self._subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="broadcast-subscriber")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for ws in list(self._clients):
            with contextlib.suppress(Exception):
                await ws.close(code=1001)  # going away
        self._clients.clear()

    async def wait_subscribed(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), timeout)
        return self._subscribed.is_set()

    def add(self, ws: WebSocket) -> None:
        self._clients.add(ws)

    def discard(self, ws: WebSocket) -> None:
        self._clients.discard(ws)

    async def publish(self, text: str) -> None:
        await self._redis.publish(self._channel, text)

    async def _run(self) -> None:
        # Reconnect forever with capped backoff: Redis may be late at boot or
        # restart later, and neither should take the worker down.
        backoff = 0.5
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                self._subscribed.set()
                backoff = 0.5
                log.info("subscribed", extra={"channel": self._channel})
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        await self._fan_out(message["data"])
            except (RedisError, OSError) as exc:
                self._subscribed.clear()
                log.warning(
                    "subscriber lost redis, retrying", extra={"error": repr(exc)}
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _fan_out(self, text: str) -> None:
        clients = list(self._clients)
        results = await asyncio.gather(
            *(asyncio.wait_for(ws.send_text(text), 5) for ws in clients),
            return_exceptions=True,
        )
        for ws, result in zip(clients, results, strict=True):
            if isinstance(result, BaseException):
                self._clients.discard(ws)  # dead or too slow; its handler cleans up
