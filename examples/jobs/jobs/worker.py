"""The worker: `python -m jobs.worker`.

Takes jobs from the Redis list jobs:queue (BRPOP, the API LPUSHes: first in,
first out), computes n*n and marks the row 'done'. BRPOP waits at most one
second, so SIGTERM (docker stop) is noticed within a second; a job already taken
is finished first, then the worker exits 0.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from types import FrameType

import psycopg
import redis
from redis.exceptions import RedisError

from jobs import config
from jobs.logs import setup_logging

QUEUE = config.QUEUE
# Seconds BRPOP blocks: the longest a stop request waits.
POLL_TIMEOUT = 1

log = logging.getLogger("jobs.worker")


@dataclass(frozen=True)
class Job:
    id: uuid.UUID
    n: int

    @classmethod
    def parse(cls, raw: str) -> Job:
        data = json.loads(raw)
        if not isinstance(data, dict) or type(data.get("n")) is not int:
            raise ValueError('expected {"id": uuid, "n": int}')
        return cls(id=uuid.UUID(str(data["id"])), n=data["n"])


def compute(n: int) -> int:
    return n * n


class Worker:
    def __init__(self, database_url: str, redis_client: redis.Redis) -> None:
        self.database_url = database_url
        self.redis = redis_client
        self.stopping = False
        self._conn: psycopg.Connection | None = None

    def db(self) -> psycopg.Connection:
        """One connection for the worker's life, reopened after a failure."""
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.database_url, autocommit=True, connect_timeout=5)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def run_once(self, timeout: int = POLL_TIMEOUT) -> bool:
        """Take one job (waiting at most `timeout` s) and finish it; False if the queue stayed empty."""
        item = self.redis.brpop([QUEUE], timeout=timeout)
        if item is None:
            return False
        raw = item[1]
        try:
            job = Job.parse(raw)
        except ValueError as error:  # json.JSONDecodeError is a ValueError
            log.error("dropping a malformed job", extra={"raw": raw[:200], "error": str(error)})
            return True
        try:
            self.finish(job)
        except psycopg.Error:
            # Back onto the end BRPOP takes from: it is the next job once the database is back.
            self.redis.rpush(QUEUE, raw)
            self.close()
            raise
        return True

    def finish(self, job: Job) -> None:
        result = compute(job.n)
        cursor = self.db().execute(
            "UPDATE jobs SET status = 'done', result = %s, finished_at = now() WHERE id = %s",
            (result, job.id),
        )
        if cursor.rowcount == 0:
            log.warning("job has no row; result dropped", extra={"job_id": str(job.id)})
        else:
            log.info("job done", extra={"job_id": str(job.id), "result": result})

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info("stopping after the current job", extra={"signal": signal.Signals(signum).name})
        self.stopping = True

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        log.info("worker started", extra={"queue": QUEUE})
        while not self.stopping:
            try:
                self.run_once()
            except (RedisError, psycopg.Error) as error:
                log.warning("dependency unavailable, retrying", extra={"error": repr(error)})
                self.pause(1.0)
        self.close()
        log.info("worker stopped")

    def pause(self, seconds: float) -> None:
        """Sleep, but wake up for a stop request."""
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(0.1)


def main() -> int:
    setup_logging()
    try:
        settings = config.load(secret_key=False)
    except config.ConfigError as error:
        log.error("bad configuration", extra={"error": str(error)})
        return 2
    client = redis.Redis.from_url(
        settings.redis_url, decode_responses=True, socket_timeout=POLL_TIMEOUT + 4, socket_connect_timeout=3
    )
    Worker(settings.database_url, client).run()
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
