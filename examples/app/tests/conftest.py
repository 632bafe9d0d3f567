"""Throwaway PostgreSQL and Redis for the whole test session (real servers, no
mocks), migrated with the real `alembic upgrade head`."""

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
from fastapi.testclient import TestClient

APP_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(APP_DIR))

# Awkward on purpose: proves the DB URL quotes the password.
PG_USER = "onebox"
PG_PASSWORD = "p@ss:w/rd%#?&"
PG_DB = "onebox_test"

INSTALL_HINT = (
    "PostgreSQL and Redis server binaries are needed for these tests: "
    "apt-get install postgresql redis-server"
)


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


def _pg_bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return Path(candidates[-1]).parent  # newest major version


class RedisServer:
    def __init__(self, workdir: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(INSTALL_HINT, pytrace=False)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--daemonize", "no"]
            + ["--dir", str(workdir)],
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory) -> Iterator[int]:
    bindir = _pg_bindir()
    # initdb refuses to run as root; use the postgres account Debian creates.
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    # Outside pytest's tmp dir: the postgres user must be able to reach it.
    base = Path(tempfile.mkdtemp(prefix="onebox-pg-"))
    data, sockets, pwfile = base / "data", base / "sock", base / "pw"
    sockets.mkdir()
    pwfile.write_text(PG_PASSWORD + "\n")
    if as_root:
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
        shutil.chown(pwfile, "postgres")
    port = free_port()

    def run(*args: str) -> None:
        subprocess.run(prefix + list(args), check=True, capture_output=True)

    run(
        str(bindir / "initdb"),
        "-D", str(data), "-U", PG_USER, "--pwfile", str(pwfile),
        "--auth", "scram-sha-256", "-E", "UTF8", "--no-sync",
    )  # fmt: skip
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(
        str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"),
        "-o", options, "-w", "start",
    )  # fmt: skip
    try:
        subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port)]
            + ["-U", PG_USER, PG_DB],
            check=True,
            capture_output=True,
            env={**os.environ, "PGPASSWORD": PG_PASSWORD},
        )
        yield port
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def app_env(postgres, redis_server) -> Iterator[dict[str, str]]:
    """The app's environment contract, applied to os.environ and migrated."""
    env = {
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": str(postgres),
        "POSTGRES_USER": PG_USER,
        "POSTGRES_PASSWORD": PG_PASSWORD,
        "POSTGRES_DB": PG_DB,
        "REDIS_URL": redis_server.url,
        "APP_SECRET_KEY": "test-secret-key",
        "LOG_LEVEL": "info",
    }
    saved = dict(os.environ)
    os.environ.update(env)
    # Each gunicorn under test must make its own metrics dir.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # Exactly what the deploy runs, from the image's WORKDIR.
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"], cwd=APP_DIR, check=True
    )
    yield env
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def client(app_env) -> Iterator[TestClient]:
    from app.main import create_app

    with TestClient(create_app()) as c:
        yield c
