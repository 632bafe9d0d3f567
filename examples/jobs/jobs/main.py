"""The HTTP API: `uvicorn jobs.main:app --port 8080`.

POST /jobs stores a job in PostgreSQL (status 'queued') and pushes it onto the
Redis list jobs:queue; the worker (`python -m jobs.worker`) computes it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import psycopg
import redis.asyncio as aioredis
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from jobs import config
from jobs.logs import setup_logging
from jobs.version import VERSION

QUEUE = config.QUEUE
# |n| <= 3e9 keeps n*n inside PostgreSQL's bigint.
MAX_N = 3_000_000_000
# Seconds for one dependency to connect or answer.
DEPENDENCY_TIMEOUT = 2

log = logging.getLogger("jobs.api")


class JobIn(BaseModel):
    n: Annotated[int, Field(strict=True, ge=-MAX_N, le=MAX_N)]


@asynccontextmanager
async def connect(request: Request) -> AsyncIterator[psycopg.AsyncConnection]:
    """A connection for one request (autocommit), closed afterwards."""
    settings: config.Settings = request.app.state.settings
    conn = await psycopg.AsyncConnection.connect(settings.database_url, autocommit=True, connect_timeout=DEPENDENCY_TIMEOUT)
    async with conn:
        yield conn


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Any missing setting stops the server here, before it answers a health check.
    settings = config.load()
    app.state.settings = settings
    app.state.redis = aioredis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_timeout=DEPENDENCY_TIMEOUT,
        socket_connect_timeout=DEPENDENCY_TIMEOUT,
    )
    log.info("api started", extra={"version": VERSION})
    try:
        yield
    finally:
        await app.state.redis.aclose()


async def unavailable(request: Request, error: Exception) -> JSONResponse:
    log.warning("dependency unavailable", extra={"path": request.url.path, "error": repr(error)})
    return JSONResponse({"detail": "service unavailable, try again"}, status_code=503)


async def not_migrated(request: Request, error: Exception) -> JSONResponse:
    log.error("table jobs is missing: the release step (scripts/release.sh) has not run")
    return JSONResponse({"detail": "database not migrated"}, status_code=503)


def create_app() -> FastAPI:
    setup_logging()
    app = FastAPI(title="jobs", version=VERSION, lifespan=lifespan)
    app.add_exception_handler(psycopg.OperationalError, unavailable)
    app.add_exception_handler(RedisError, unavailable)
    app.add_exception_handler(psycopg.errors.UndefinedTable, not_migrated)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers. No database, no Redis."""
        return {"status": "ok"}

    @app.get("/version")
    async def version() -> dict[str, str | None]:
        return {"version": VERSION, "release": config.release()}

    @app.get("/ready")
    async def ready(request: Request) -> JSONResponse:
        """Readiness: PostgreSQL answers `SELECT 1` and Redis answers PING."""

        async def postgres() -> None:
            async with connect(request) as conn:
                await conn.execute("SELECT 1")

        async def redis_ping() -> None:
            await request.app.state.redis.ping()

        body: dict[str, str] = {}
        for name, check in (("postgres", postgres), ("redis", redis_ping)):
            try:
                await asyncio.wait_for(check(), DEPENDENCY_TIMEOUT + 1)
                body[name] = "ok"
            except Exception as error:  # noqa: BLE001 - any failure means not ready
                body[name] = "error"
                body.setdefault("error", f"{name}: {type(error).__name__}")
        return JSONResponse(body, status_code=200 if "error" not in body else 503)

    @app.post("/jobs", status_code=202)
    async def create_job(job: JobIn, request: Request, response: Response) -> dict[str, str]:
        job_id = uuid.uuid4()
        async with connect(request) as conn:
            # The row first: the worker never takes a job it cannot find.
            await conn.execute("INSERT INTO jobs (id, n, status) VALUES (%s, %s, 'queued')", (job_id, job.n))
            try:
                await request.app.state.redis.lpush(QUEUE, json.dumps({"id": str(job_id), "n": job.n}))
            except RedisError:
                await conn.execute("DELETE FROM jobs WHERE id = %s", (job_id,))
                raise
        log.info("job queued", extra={"job_id": str(job_id)})
        response.headers["Location"] = f"/jobs/{job_id}"
        return {"id": str(job_id)}

    @app.get("/jobs/{job_id}")
    async def get_job(job_id: uuid.UUID, request: Request) -> dict[str, object]:
        async with connect(request) as conn:
            cursor = await conn.execute("SELECT n, status, result FROM jobs WHERE id = %s", (job_id,))
            row = await cursor.fetchone()
        if row is None:
            raise HTTPException(status_code=404, detail="no such job")
        n, status, result = row
        return {"id": str(job_id), "n": n, "status": status, "result": result}

    return app


app = create_app()
