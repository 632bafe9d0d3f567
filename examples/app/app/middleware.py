"""Request id, access log and metrics as a pure ASGI middleware (no
BaseHTTPMiddleware: it would buffer responses and break streaming)."""

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.logs import request_id_var
from app.metrics import LATENCY, REQUESTS

log = logging.getLogger("app.access")

# Accept the caller's id only if it is short and boring, so it can't be used to
# inject junk into logs or headers.
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Docker's healthcheck and Prometheus poll these; keep them out of info logs.
_QUIET_PATHS = {"/health", "/metrics"}


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _VALID_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


def _route(scope: Scope) -> str:
    # The route template (/items/{item_id}) keeps metric cardinality bounded;
    # the router stores the matched route in the shared scope dict.
    route = scope.get("route")
    return getattr(route, "path", "unmatched")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        request_id = _request_id(scope)
        token = request_id_var.set(request_id)
        start = time.perf_counter()
        status = 500  # what the client sees if the app raises before responding

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "websocket.accept":
                status = 101
            elif message["type"] == "websocket.close" and status != 101:
                status = 403  # closed before accept: handshake rejected
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            duration = time.perf_counter() - start
            if scope["type"] == "http":
                REQUESTS.labels(scope["method"], _route(scope), str(status)).inc()
                LATENCY.labels(scope["method"], _route(scope)).observe(duration)
            path = scope["path"]
            client = scope.get("client")
            log.log(
                logging.DEBUG if path in _QUIET_PATHS else logging.INFO,
                "request" if scope["type"] == "http" else "websocket",
                extra={
                    "method": scope.get("method", "WS"),
                    "path": path,
                    "status": status,
                    "duration_ms": round(duration * 1000, 2),
                    # With proxy headers trusted, uvicorn has already replaced
                    # this with the X-Forwarded-For address.
                    "client": client[0] if client else None,
                    "scheme": scope.get("scheme"),
                },
            )
            request_id_var.reset(token)
