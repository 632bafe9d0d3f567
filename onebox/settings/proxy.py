"""Settings of the proxy role (deploys/proxy.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, field_validator

from onebox.settings.types import HOSTNAME_RE, PositiveInt, Size, UrlPath

# Connections each nginx worker holds (nginx.conf.j2); a proxied request takes two, the
# client's and the upstream's.
NGINX_WORKER_CONNECTIONS = 8192
# The most requests one client may hold open, summed over the server's apps: its requests then
# take at most a quarter of one worker's connections, so however long it keeps them (a WebSocket
# lives for websocket_read_timeout), the other clients keep the rest even on a one-core server.
CLIENT_CONNECTIONS_CEILING = NGINX_WORKER_CONNECTIONS // 8


class ProxySettings(BaseModel):
    domains: Annotated[list[str], Field(min_length=1)]
    proxy_client_max_body_size: Size
    proxy_connect_timeout: PositiveInt
    # An API on swarm workers: up to 5 s, as proxy_connect_timeout was, and what made a dead node
    # cost up to 5 s a request (issue 32); at least 10 ms, above a private network's connect time.
    cluster_connect_timeout_ms: Annotated[int, Field(ge=10, le=5000)]
    cluster_fail_timeout: Annotated[int, Field(ge=1, le=300)]
    proxy_read_timeout: PositiveInt
    proxy_send_timeout: PositiveInt
    proxy_upstream_keepalive_timeout: PositiveInt
    proxy_upstream_keepalive_time: Annotated[int, Field(ge=1, le=3600)]
    rate_limit_rps: PositiveInt
    rate_limit_burst: PositiveInt
    strict_rate_limit_rps: PositiveInt
    strict_rate_limit_burst: PositiveInt
    strict_rate_limit_paths: list[UrlPath]
    rate_limit_exempt_paths: list[UrlPath]
    websocket_paths: list[UrlPath]
    websocket_read_timeout: PositiveInt
    max_connections_per_client: Annotated[int, Field(gt=0, le=CLIENT_CONNECTIONS_CEILING)]
    hsts_max_age: Annotated[int, Field(ge=0)]

    @field_validator("proxy_client_max_body_size")
    @classmethod
    def _body_size_limited(cls, value: str) -> str:
        if int(value.rstrip("kKmMgG")) == 0:
            raise ValueError("0 lets nginx accept request bodies of any size, which any client could use "
                             "to fill the server's disk; set a limit such as '10m'")
        return value

    @field_validator("domains")
    @classmethod
    def _domain_names(cls, domains: list[str]) -> list[str]:
        for domain in domains:
            if not HOSTNAME_RE.match(domain) or "." not in domain:
                raise ValueError(f"{domain!r} is not a fully qualified domain name such as 'api.example.com'")
        return domains
