"""The jobs app against real PostgreSQL and Redis: API, worker, release step, configuration."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from jobs import config
from jobs.main import create_app
from jobs.version import VERSION
from jobs.worker import Worker

JOBS_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A port nothing listens on: a dependency that is down."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_for(env: dict[str, str], redis_client) -> Worker:
    return Worker(config.libpq_url(env["DATABASE_URL"]), redis_client)


def test_healthz_and_version(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/version").json() == {"version": VERSION, "release": "test-release"}


def test_ready(client) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"postgres": "ok", "redis": "ok"}


def test_liveness_needs_no_dependencies(migrated, monkeypatch) -> None:
    dead = free_port()
    monkeypatch.setenv("DATABASE_URL", f"postgresql://jobs:x@127.0.0.1:{dead}/jobs_test")
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{dead}/0")
    with TestClient(create_app()) as c:
        assert c.get("/healthz").status_code == 200
        ready = c.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["postgres"] == ready.json()["redis"] == "error"
        assert c.post("/jobs", json={"n": 2}).status_code == 503


def test_job_round_trip(client, redis_client, migrated) -> None:
    created = client.post("/jobs", json={"n": 7})
    assert created.status_code == 202
    job_id = created.json()["id"]
    assert created.headers["location"] == f"/jobs/{job_id}"
    message = json.loads(redis_client.lindex(config.QUEUE, 0))
    assert message == {"id": job_id, "n": 7}
    assert client.get(f"/jobs/{job_id}").json() == {"id": job_id, "n": 7, "status": "queued", "result": None}

    assert worker_for(migrated, redis_client).run_once() is True

    assert client.get(f"/jobs/{job_id}").json() == {"id": job_id, "n": 7, "status": "done", "result": 49}
    assert redis_client.llen(config.QUEUE) == 0
    assert worker_for(migrated, redis_client).run_once() is False  # empty queue: back after 1 s


def test_jobs_are_taken_in_order(client, redis_client, migrated) -> None:
    ids = [client.post("/jobs", json={"n": n}).json()["id"] for n in (1, 2, 3)]
    worker = worker_for(migrated, redis_client)
    assert worker.run_once() is True
    assert [client.get(f"/jobs/{i}").json()["status"] for i in ids] == ["done", "queued", "queued"]
    worker.close()


def test_validation(client) -> None:
    for body in ({"n": "3"}, {"n": 1.5}, {"n": True}, {}, {"n": 3_000_000_001}):
        assert client.post("/jobs", json=body).status_code == 422, body
    assert client.get("/jobs/not-a-uuid").status_code == 422
    assert client.get(f"/jobs/{uuid.uuid4()}").status_code == 404


def test_settings_from_files(migrated, redis_client, tmp_path, monkeypatch) -> None:
    files = {
        # SQLAlchemy's form is accepted; secrets files end with a newline.
        "DATABASE_URL": migrated["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"),
        "REDIS_URL": migrated["REDIS_URL"],
        "SECRET_KEY": "from-a-file",
    }
    for name, value in files.items():
        (tmp_path / name).write_text(value + "\n")
        monkeypatch.delenv(name)
        monkeypatch.setenv(f"{name}_FILE", str(tmp_path / name))
    settings = config.load()
    assert settings.secret_key == "from-a-file"
    assert settings.database_url == migrated["DATABASE_URL"]
    with TestClient(create_app()) as c:
        job_id = c.post("/jobs", json={"n": -4}).json()["id"]
        assert Worker(settings.database_url, redis_client).run_once() is True
        assert c.get(f"/jobs/{job_id}").json()["result"] == 16


def test_plain_variable_wins_and_missing_fails(tmp_path, monkeypatch) -> None:
    (tmp_path / "key").write_text("file\n")
    monkeypatch.setenv("SECRET_KEY", "plain")
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "key"))
    assert config.read_setting("SECRET_KEY") == "plain"
    monkeypatch.delenv("SECRET_KEY")
    assert config.read_setting("SECRET_KEY") == "file"
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(config.ConfigError, match="SECRET_KEY_FILE=.*cannot read"):
        config.read_setting("SECRET_KEY")
    monkeypatch.delenv("SECRET_KEY_FILE")
    with pytest.raises(config.ConfigError, match="SECRET_KEY is not set"), TestClient(create_app()):
        pass  # the server does not start without it
    with pytest.raises(config.ConfigError, match="postgresql://"):
        config.libpq_url("mysql://x@y/z")


def test_release_step_is_idempotent(release, migrated) -> None:
    for _ in range(2):
        result = release()
        assert result.returncode == 0, result.stderr
    with psycopg.connect(migrated["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT to_regclass('jobs') IS NOT NULL").fetchone() == (True,)


def test_failing_release_step(release) -> None:
    # The script stops before touching the database: an unreachable one changes nothing.
    result = release({"FAIL_RELEASE": "1", "DATABASE_URL": f"postgresql://x@127.0.0.1:{free_port()}/x"})
    assert result.returncode == 1
    assert "FAIL_RELEASE=1" in result.stderr


def test_worker_requeues_when_database_is_down(migrated, redis_client) -> None:
    redis_client.lpush(config.QUEUE, json.dumps({"id": str(uuid.uuid4()), "n": 5}))
    worker = Worker(f"postgresql://jobs:x@127.0.0.1:{free_port()}/jobs_test", redis_client)
    with pytest.raises(psycopg.OperationalError):
        worker.run_once()
    assert redis_client.llen(config.QUEUE) == 1  # kept for when the database is back


def test_malformed_job_is_dropped(migrated, redis_client) -> None:
    redis_client.lpush(config.QUEUE, "not json", json.dumps({"id": "nope", "n": 1}))
    worker = worker_for(migrated, redis_client)
    assert worker.run_once() is True and worker.run_once() is True
    assert redis_client.llen(config.QUEUE) == 0


def test_worker_process_stops_on_sigterm(client, migrated) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobs.worker"], cwd=JOBS_DIR, env={**os.environ, "ONEBOX_SERVICE": "worker"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        job_id = client.post("/jobs", json={"n": 12}).json()["id"]
        deadline = time.monotonic() + 10
        while client.get(f"/jobs/{job_id}").json()["status"] != "done":
            assert time.monotonic() < deadline, "the worker did not finish the job"
            time.sleep(0.05)
        assert client.get(f"/jobs/{job_id}").json()["result"] == 144
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
        assert time.monotonic() - started < 3  # BRPOP's 1 s timeout, not a kill
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [json.loads(line) for line in proc.stdout.read().splitlines()]
    assert {"job done", "worker stopped"} <= {line["msg"] for line in lines}
    assert all(line["release"] == "test-release" and line["service"] == "worker" for line in lines)


def image_command() -> list[str]:
    """The CMD of docker/Dockerfile (exec form)."""
    text = (JOBS_DIR / "docker" / "Dockerfile").read_text().replace("\\\n", " ")
    [line] = [line for line in text.splitlines() if line.startswith("CMD ")]
    return json.loads(line.removeprefix("CMD "))


def test_image_command_serves_and_stops(migrated) -> None:
    command = image_command()
    assert command[:2] == ["uvicorn", "jobs.main:app"]
    assert command[command.index("--timeout-graceful-shutdown") + 1] == "20"
    port = free_port()
    command[command.index("--port") + 1] = str(port)
    command[0:1] = [sys.executable, "-m", "uvicorn"]
    proc = subprocess.Popen(
        command, cwd=JOBS_DIR, env={**os.environ, "FORWARDED_ALLOW_IPS": "127.0.0.1"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.1)
        # X-Forwarded-For is honoured from a trusted proxy: the access log shows the real client.
        assert httpx.get(f"{url}/version", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 200
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught (exit status 143 in Docker).
        assert proc.wait(10) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [json.loads(line) for line in proc.stdout.read().splitlines()]
    assert "Finished server process" in lines[-1]["msg"]
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert [(line["path"], line["client"].split(":")[0]) for line in access] == [("/version", "203.0.113.9")]
    assert all(line["release"] == "test-release" for line in lines)
