"""Throwaway PostgreSQL and Redis for the whole test session: real servers from
Debian packages (apt-get install postgresql redis-server), no mocks. Same
approach as examples/app/tests/conftest.py, cut down to what this app needs."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

JOBS_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(JOBS_DIR))

PG_USER = "jobs"
PG_PASSWORD = "jobs-test-password"
PG_DB = "jobs_test"
INSTALL_HINT = "PostgreSQL and Redis server binaries are needed: apt-get install postgresql redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        + ["--dir", str(tmp_path_factory.mktemp("redis"))],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        pytest.fail(INSTALL_HINT, pytrace=False)
    bindir = Path(candidates[-1]).parent
    # initdb refuses to run as root: use the postgres account Debian creates.
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    # Outside pytest's tmp dir: the postgres user must be able to reach it.
    base = Path(tempfile.mkdtemp(prefix="onebox-jobs-pg-"))
    data, sockets, pwfile = base / "data", base / "sock", base / "pw"
    sockets.mkdir()
    pwfile.write_text(PG_PASSWORD + "\n")
    if as_root:
        for path in (base, sockets, pwfile):
            shutil.chown(path, "postgres")
    port = free_port()

    def run(*args: str) -> None:
        subprocess.run(prefix + list(args), check=True, capture_output=True)

    run(str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, "--pwfile", str(pwfile),
        "--auth", "scram-sha-256", "-E", "UTF8", "--no-sync")  # fmt: skip
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-o", options, "-w", "start")
    try:
        subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", PG_USER, PG_DB],
            check=True, capture_output=True, env={**os.environ, "PGPASSWORD": PG_PASSWORD},
        )  # fmt: skip
        yield f"postgresql://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{port}/{PG_DB}"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def app_env(database_url, redis_url) -> Iterator[dict[str, str]]:
    """The app's environment contract, applied to os.environ for the session."""
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "test-secret-key",
        "ONEBOX_RELEASE": "test-release",
    }
    saved = dict(os.environ)
    for name in ("DATABASE_URL_FILE", "REDIS_URL_FILE", "SECRET_KEY_FILE", "FAIL_RELEASE"):
        os.environ.pop(name, None)
    os.environ.update(env)
    yield env
    os.environ.clear()
    os.environ.update(saved)


def run_release(env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """scripts/release.sh exactly as the deploy runs it, with this interpreter as `python`."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        ["sh", str(JOBS_DIR / "scripts" / "release.sh")],
        env={**os.environ, "PATH": path, **(env or {})}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.fixture(scope="session")
def migrated(app_env) -> dict[str, str]:
    result = run_release()
    assert result.returncode == 0, result.stderr
    return app_env


@pytest.fixture
def release(migrated):
    """Runs scripts/release.sh (extra environment as argument); returns the CompletedProcess."""
    return run_release


@pytest.fixture
def redis_client(migrated):
    import redis

    client = redis.Redis.from_url(migrated["REDIS_URL"], decode_responses=True)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def client(migrated, redis_client):
    from fastapi.testclient import TestClient
    from jobs.main import create_app

    with TestClient(create_app()) as c:
        yield c
