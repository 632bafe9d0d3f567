"""A minimal FastAPI app: `uvicorn main:app --port 8000`, PostgreSQL only.

DATABASE_URL (or a file named by DATABASE_URL_FILE) says where the database is;
the table is created at startup, so there is no release step.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import cache
from pathlib import Path

import psycopg
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

# Bumped by hand to prove that a new build was deployed.
VERSION = "0.1.0"
SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    text text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""
# Seconds the startup waits for PostgreSQL.
STARTUP_WAIT = 30

log = logging.getLogger("minimal")


@cache
def database_url() -> str:
    """$DATABASE_URL, else the file $DATABASE_URL_FILE names; `postgresql+psycopg://` is accepted."""
    url = os.environ.get("DATABASE_URL")
    if not url and os.environ.get("DATABASE_URL_FILE"):
        url = Path(os.environ["DATABASE_URL_FILE"]).read_text().strip()
    if not url:
        raise RuntimeError("DATABASE_URL is not set (neither DATABASE_URL nor DATABASE_URL_FILE)")
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextmanager
def connect() -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url(), autocommit=True, connect_timeout=3) as conn:
        yield conn


def create_schema() -> None:
    """CREATE TABLE IF NOT EXISTS, serialised: versions starting side by side must not race."""
    deadline = time.monotonic() + STARTUP_WAIT
    while True:
        try:
            with connect() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('minimal.notes'))")
                conn.execute(SCHEMA)
            return
        except psycopg.OperationalError as error:
            if time.monotonic() > deadline:
                raise
            log.warning("waiting for the database: %s", error)
            time.sleep(1)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    create_schema()  # before the first request; uvicorn exits if it fails
    yield


app = FastAPI(title="minimal", version=VERSION, lifespan=lifespan)


@app.exception_handler(psycopg.OperationalError)
async def database_down(request: Request, error: psycopg.OperationalError) -> JSONResponse:
    log.warning("database unavailable: %s", error)
    return JSONResponse({"detail": "database unavailable"}, status_code=503)


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=10_000)


@app.get("/health")
async def health() -> dict[str, str]:
    """Liveness only: no database."""
    return {"status": "ok"}


@app.get("/version")
async def version() -> dict[str, str | None]:
    return {"version": VERSION, "release": os.environ.get("ONEBOX_RELEASE")}


# Plain `def`: FastAPI runs these in its thread pool, so psycopg's blocking calls are fine.
@app.post("/notes", status_code=201)
def create_note(note: NoteIn) -> dict[str, object]:
    with connect() as conn:
        row = conn.execute("INSERT INTO notes (text) VALUES (%s) RETURNING id", (note.text,)).fetchone()
    assert row is not None
    return {"id": row[0], "text": note.text}


@app.get("/notes/{note_id}")
def get_note(note_id: int) -> dict[str, object]:
    with connect() as conn:
        row = conn.execute("SELECT id, text FROM notes WHERE id = %s", (note_id,)).fetchone()
    if row is None:
        raise HTTPException(status_code=404, detail="no such note")
    return {"id": row[0], "text": row[1]}
