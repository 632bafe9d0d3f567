"""The schema: `python -m jobs.migrate` (run by scripts/release.sh). Idempotent.

Only DATABASE_URL (or DATABASE_URL_FILE) is needed.
"""

from __future__ import annotations

import logging
import sys
import time

import psycopg

from jobs import config
from jobs.logs import setup_logging

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id uuid PRIMARY KEY,
    n bigint NOT NULL,
    status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'done')),
    result bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
)
"""
# Two releases at once must not race on CREATE TABLE: one waits for the other.
LOCK_KEY = 0x6A6F6273  # "jobs"
# Seconds to wait for PostgreSQL to accept connections.
CONNECT_WAIT = 20

log = logging.getLogger("jobs.migrate")


def migrate(database_url: str) -> None:
    with psycopg.connect(database_url, connect_timeout=5) as conn:  # one transaction, committed on exit
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute(SCHEMA)


def main() -> int:
    setup_logging()
    try:
        database_url = config.database_url()
    except config.ConfigError as error:
        log.error("bad configuration", extra={"error": str(error)})
        return 2
    deadline = time.monotonic() + CONNECT_WAIT
    while True:
        try:
            migrate(database_url)
            break
        except psycopg.OperationalError as error:
            if time.monotonic() > deadline:
                log.error("database unreachable; schema not migrated", extra={"error": str(error)})
                return 1
            log.warning("database not reachable yet, retrying", extra={"error": str(error)})
            time.sleep(1)
    log.info("schema up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
