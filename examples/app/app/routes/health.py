import asyncio
import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app import metrics
from app.db import ping
from app.version import VERSION

router = APIRouter()
log = logging.getLogger("app.ready")

CHECK_TIMEOUT = 1.0  # seconds per dependency; /ready must answer fast


@router.get("/health")
async def health() -> dict[str, str]:
    # Liveness only: touching the DB here would make the orchestrator restart a
    # healthy app whenever PostgreSQL is down.
    return {"status": "ok"}


async def _check(name: str, probe) -> str:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        log.warning("dependency down", extra={"dependency": name, "error": repr(exc)})
        return "error"
    return "ok"


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    state = request.app.state
    postgres, redis = await asyncio.gather(
        _check("postgres", ping(state.engine)),
        _check("redis", state.redis.ping()),
    )
    body = {"postgres": postgres, "redis": redis}
    ok = postgres == "ok" and redis == "ok"
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/slow/{seconds}", include_in_schema=False)
async def slow(seconds: float) -> dict[str, float]:
    # A request that takes a while, capped: lets a drain (graceful shutdown) be observed.
    await asyncio.sleep(min(seconds, 10.0))
    return {"slept": min(seconds, 10.0)}


@router.get("/version")
async def version() -> dict[str, str]:
    return {"version": VERSION}


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics() -> Response:
    return metrics.render()
