"""The test-only stand-in images honour the official images' contract.

Needs a Docker engine (skipped without one); builds the images on first use
(about 2 minutes), then reuses them.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from testbed.images import STANDIN_IMAGES, ensure_standin_images


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=check, timeout=300
    )


def _docker_works() -> bool:
    if shutil.which("docker") is None:
        return False
    return _docker("info", check=False).returncode == 0


pytestmark = pytest.mark.skipif(not _docker_works(), reason="needs a Docker engine")


@pytest.fixture(scope="module")
def network() -> Iterator[str]:
    ensure_standin_images()
    name = f"onebox-test-{uuid.uuid4().hex[:8]}"
    _docker("network", "create", name)
    yield name
    _docker("network", "rm", name, check=False)


def _wait(container: str, *probe: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while _docker("exec", container, *probe, check=False).returncode != 0:
        assert time.monotonic() < deadline, _docker("logs", container).stderr
        time.sleep(1)


def test_python_venv_pip_install() -> None:
    ensure_standin_images()
    script = (
        "python -m venv /tmp/v && /tmp/v/bin/pip install -q six"
        " && /tmp/v/bin/python -c 'import six'"
    )
    _docker("run", "--rm", STANDIN_IMAGES["python"], "bash", "-c", script)


def test_postgres_password_over_tcp_and_persistence(network: str) -> None:
    name, volume = f"{network}-pg", f"{network}-pgdata"
    env = ["-e", "POSTGRES_USER=app", "-e", "POSTGRES_PASSWORD=pw",
           "-e", "POSTGRES_DB=appdb"]
    run = ["run", "-d", "--network", network, "--network-alias", "pg",
           "-v", f"{volume}:/var/lib/postgresql/data", *env]
    psql = ["run", "--rm", "--network", network, STANDIN_IMAGES["postgres"],
            "psql", "-At"]
    url = "postgresql://app:pw@pg/appdb"
    try:
        _docker(*run, "--name", name, STANDIN_IMAGES["postgres"])
        # Over TCP: the entrypoint's init server listens on the Unix socket only.
        _wait(name, "pg_isready", "-h", "127.0.0.1", "-U", "app", "-d", "appdb")
        _docker(*psql, url, "-c", "create table t (x int)",
                "-c", "insert into t values (42)")
        wrong = _docker(*psql, url.replace(":pw@", ":nope@"), "-c", "select 1",
                        check=False)
        assert "password authentication failed" in wrong.stderr
        _docker("restart", name)
        _wait(name, "pg_isready", "-U", "app", "-d", "appdb")
        out = _docker(*psql, url, "-c", "select x from t").stdout
        assert out.strip() == "42"
        assert _docker("logs", name).stdout.count("initialising") == 1
    finally:
        _docker("rm", "-fv", name, check=False)
        _docker("volume", "rm", volume, check=False)


def test_postgres_requires_password() -> None:
    ensure_standin_images()
    result = _docker("run", "--rm", STANDIN_IMAGES["postgres"], check=False)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD is required" in result.stderr


def test_redis_reachable_with_compose_command(network: str) -> None:
    name = f"{network}-redis"
    cli = ["run", "--rm", "--network", network, STANDIN_IMAGES["redis"],
           "redis-cli", "-h", "redis"]
    try:
        _docker("run", "-d", "--name", name, "--network", network,
                "--network-alias", "redis",
                STANDIN_IMAGES["redis"], "redis-server", "--appendonly", "yes")
        _wait(name, "redis-cli", "ping")
        assert _docker(*cli, "ping").stdout.strip() == "PONG"
        appendonly = _docker(*cli, "config", "get", "appendonly").stdout.split()
        assert appendonly == ["appendonly", "yes"]
        protected = _docker(*cli, "config", "get", "protected-mode").stdout.split()
        assert protected == ["protected-mode", "no"]
    finally:
        _docker("rm", "-fv", name, check=False)
