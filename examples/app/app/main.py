"""Application factory. gunicorn loads `app.main:create_app()`; uvicorn can use
`uvicorn --factory app.main:create_app`."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import InterfaceError, OperationalError

from app.broadcast import BroadcastHub
from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.going_away import GoingAwayMiddleware, OpenWebSockets
from app.logs import setup_logging
from app.middleware import RequestContextMiddleware
from app.redis_conn import make_redis
from app.routes import health, hits, items, ws
from app.version import VERSION

log = logging.getLogger("app")

BROADCAST_CHANNEL = "onebox:broadcast"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    # Nothing here connects: engine, pool and Redis client are lazy, and the
    # subscriber retries in the background. So the app boots (and /health is
    # green) even when PostgreSQL or Redis come up later, e.g. after a reboot.
    app.state.engine = make_engine(settings.database_url)
    app.state.sessionmaker = make_sessionmaker(app.state.engine)
    app.state.redis = make_redis(settings.redis_url)
    app.state.hub = BroadcastHub(app.state.redis, BROADCAST_CHANNEL)
    app.state.hub.start()
    # Here, not in create_app(): the server installs its own signal handlers
    # after loading the app and before running the lifespan (see going_away).
    app.state.websockets.install_signal_handlers()
    log.info("started", extra={"version": VERSION})
    try:
        yield
    finally:
        app.state.websockets.restore_signal_handlers()
        # Reverse order: stop using Redis/DB before closing them.
        await app.state.hub.stop()
        await app.state.redis.aclose()
        await app.state.engine.dispose()
        log.info("stopped")


async def _dependency_down(request: Request, exc: Exception) -> JSONResponse:
    # A missing dependency is a temporary condition, not a bug: answer 503 so
    # clients and the proxy can retry, and keep the traceback in the log.
    log.error("dependency unavailable", exc_info=exc)
    return JSONResponse({"detail": "service temporarily unavailable"}, status_code=503)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    # FastAPI's default 422 echoes the request body back ("input"): a 9 MB body came back
    # whole. Say where and what, never the submitted value.
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": error["loc"], "msg": error["msg"], "type": error["type"]} for error in exc.errors()]
    return JSONResponse({"detail": errors}, status_code=422)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    setup_logging(settings.log_level)
    docs = settings.api_docs
    app = FastAPI(title="onebox example", version=VERSION, lifespan=lifespan,
                  docs_url="/docs" if docs else None, redoc_url="/redoc" if docs else None,
                  openapi_url="/openapi.json" if docs else None)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.state.settings = settings
    app.add_middleware(RequestContextMiddleware)
    # Added last = outermost: its 1001 close on shutdown goes straight to the server.
    app.state.websockets = OpenWebSockets()
    app.add_middleware(GoingAwayMiddleware, websockets=app.state.websockets)
    for exc_type in (
        OperationalError,
        InterfaceError,
        OSError,
        TimeoutError,
        RedisConnectionError,
        RedisTimeoutError,
    ):
        app.add_exception_handler(exc_type, _dependency_down)
    for module in (health, items, hits, ws):
        app.include_router(module.router)
    return app
