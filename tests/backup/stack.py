"""A throwaway deps project on this machine for the backup script's tests and benchmark.

This machine's Docker has no Compose v2 (the server has it), so the project is built
with plain `docker run` and the labels and names Compose gives it, which is all
onebox-backup looks at: containers labelled com.docker.compose.project=<project> and
com.docker.compose.service=postgres|redis, volumes <project>_postgres-data and
<project>_redis-data, and a release project <project>-r1 with an "api" container (the
writer a restore stops). Uses the stand-in images; never pulls.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from onebox.contract import BackupConfig, backup_config_text
from onebox.server.bundle import write_zipapp

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_IMAGE = "onebox-test/postgres:17"
REDIS_IMAGE = "onebox-test/redis:8"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
CHECKSUM_SQL = "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY id)), '') FROM t"


def docker(*args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, check=False, **kwargs)
    if check and proc.returncode:
        raise RuntimeError(f"docker {' '.join(args[:3])} failed: {proc.stderr.strip()}")
    return proc


def docker_works() -> bool:
    try:
        return docker("info", check=False).returncode == 0 and bool(docker("images", "-q", POSTGRES_IMAGE).stdout.strip())
    except FileNotFoundError:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Stack:
    project: str = "obtest"
    user: str = "app"
    db: str = "app"
    containers: dict[str, str] = field(default_factory=dict)

    def labels(self, project: str, service: str) -> list[str]:
        return ["--label", f"{PROJECT_LABEL}={project}", "--label", f"{SERVICE_LABEL}={service}"]

    def up(self) -> None:
        """Start PostgreSQL, Redis (append-only) and a stand-in API; wait until healthy."""
        p = self.project
        if docker("network", "inspect", f"{p}_default", check=False).returncode:
            docker("network", "create", "--label", f"{PROJECT_LABEL}={p}", f"{p}_default")
        for volume in ("postgres-data", "redis-data"):
            docker("volume", "create", "--label", f"{PROJECT_LABEL}={p}", f"{p}_{volume}")
        common = ["run", "-d", "--network", f"{p}_default", "--health-interval", "1s", "--restart", "unless-stopped"]
        self.containers["postgres"] = docker(
            *common, "--name", f"{p}-postgres-1", *self.labels(p, "postgres"), "--network-alias", "postgres",
            "-e", f"POSTGRES_USER={self.user}", "-e", "POSTGRES_PASSWORD=obtest-password-0123456789",
            "-e", f"POSTGRES_DB={self.db}", "-v", f"{p}_postgres-data:/var/lib/postgresql/data",
            "--health-cmd", f"pg_isready -h 127.0.0.1 -U {self.user} -d {self.db}", POSTGRES_IMAGE,
        ).stdout.strip()
        self.containers["redis"] = docker(
            *common, "--name", f"{p}-redis-1", *self.labels(p, "redis"), "--network-alias", "redis",
            "-v", f"{p}_redis-data:/data", "--health-cmd", "redis-cli ping", REDIS_IMAGE,
            "redis-server", "--appendonly", "yes",
        ).stdout.strip()
        # The live release's API: a writer that a restore must stop and start again.
        self.containers["api"] = docker(
            *common, "--name", f"{p}-r1-api-1", *self.labels(f"{p}-r1", "api"), "--health-cmd", "true", "--init",
            REDIS_IMAGE, "sleep", "infinity",
        ).stdout.strip()
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for name, cid in self.containers.items():
            while docker("inspect", "-f", "{{.State.Health.Status}}", cid).stdout.strip() != "healthy":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} not healthy: {docker('logs', cid, check=False).stderr[-2000:]}")
                time.sleep(0.3)

    def down(self) -> None:
        """Remove every container, volume and network of the project (like `compose down -v`)."""
        for project in (self.project, f"{self.project}-r1"):
            ids = docker("ps", "-aq", "--filter", f"label={PROJECT_LABEL}={project}").stdout.split()
            if ids:
                docker("rm", "-f", "-v", *ids)
        docker("rm", "-f", f"{self.project}-redis-restore", check=False)
        for volume in ("postgres-data", "redis-data"):
            docker("volume", "rm", "-f", f"{self.project}_{volume}", check=False)
        docker("network", "rm", f"{self.project}_default", check=False)
        self.containers.clear()

    def psql(self, sql: str, stdin: str | None = None) -> str:
        argv = ["exec", "-i", "-u", "postgres", self.containers["postgres"], "psql", "-X", "-At", "-v",
                "ON_ERROR_STOP=1", "-U", self.user, "-d", self.db, "-c", sql]
        return docker(*argv, input=stdin).stdout.strip()

    def redis(self, *args: str) -> str:
        return docker("exec", self.containers["redis"], "redis-cli", *args).stdout.strip()

    def checksum(self) -> str:
        return self.psql(CHECKSUM_SQL)

    def started_at(self, service: str) -> str:
        return docker("inspect", "-f", "{{.State.StartedAt}}", self.containers[service]).stdout.strip()


@contextmanager
def throwaway(project: str = "obtest") -> Iterator[Stack]:
    stack = Stack(project)
    stack.down()  # leftovers of an interrupted run
    try:
        stack.up()
        yield stack
    finally:
        stack.down()


def write_config(directory: Path, project: str, repository: str | None = None,
                 secrets: dict[str, str] | None = None) -> Path:
    """The script's configuration, written by the contract's one writer as deploys/backup.py does,
    with its state under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    secrets_file = directory / "backup.env"
    secrets_file.write_text("".join(f"{key}={value}\n" for key, value in (secrets or {}).items()))
    secrets_file.chmod(0o600)
    config = BackupConfig(
        app_name=project, enabled=True, app_dir=None, postgres_enabled=True, redis_enabled=True,
        postgres_user="app", postgres_db="app", backup_dir=str(directory / "backups"),
        state_dir=str(directory / "state"), secrets_file=str(secrets_file), keep_last=3, keep_daily=7, keep_weekly=4,
        restic_repository=repository, server_name="backup-test", s3_region="us-east-1", restic_check_interval_days=7,
        release_tool=str(directory / "no-release-tool"), start_timeout=300,
        restic_cache_dir=str(directory / "restic-cache"),
    )
    path = directory / "backup.json"
    path.write_text(backup_config_text(config))
    path.chmod(0o600)
    return path


@functools.cache
def zipapp() -> Path:
    """The server's zipapp as it ships (onebox/server/bundle.py), built once per session."""
    directory = Path(tempfile.mkdtemp(prefix="onebox-server-zipapp-"))
    atexit.register(shutil.rmtree, directory, True)
    return write_zipapp(directory / "onebox-server.pyz")


def backup(config: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run onebox-backup from the shipped zipapp, as the timer and the release tool do."""
    python = shutil.which("python3") or sys.executable
    return subprocess.run([python, str(zipapp()), "backup", "--config", str(config), *args], capture_output=True,
                          text=True, check=False, timeout=timeout, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


@contextmanager
def moto_server() -> Iterator[str]:
    """A real S3 API (moto) on loopback: yields its endpoint URL."""
    port = free_port()
    binary = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, proc, "moto_server")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def wait_for_port(address: str, port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection((address, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.2)


def s3_certificates(directory: Path, address: str) -> dict[str, Path]:
    """A private CA (ca.pem) and a certificate for `address` signed by it (cert.pem, key.pem):
    pgBackRest 2.55 reaches S3 over HTTPS only, and onebox trusts a private S3 server's CA
    through backup_s3_ca_bundle."""
    paths = {name: directory / name for name in ("ca.pem", "ca.key", "cert.pem", "key.pem", "csr", "ext")}
    paths["ext"].write_text(f"subjectAltName=IP:{address}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    for argv in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", paths["ca.key"], "-out", paths["ca.pem"],
         "-days", "2", "-subj", "/CN=onebox test S3 CA"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", paths["key.pem"], "-out", paths["csr"],
         "-subj", f"/CN={address}"],
        ["x509", "-req", "-in", paths["csr"], "-CA", paths["ca.pem"], "-CAkey", paths["ca.key"], "-CAcreateserial",
         "-out", paths["cert.pem"], "-days", "2", "-extfile", paths["ext"]],
    ):
        subprocess.run(["openssl", *map(str, argv)], check=True, capture_output=True)
    return paths


@contextmanager
def moto_https(address: str, directory: Path) -> Iterator[tuple[str, Path]]:
    """A real S3 API over HTTPS on `address`: moto on loopback behind nginx, which terminates TLS
    with a certificate of a private CA. Yields (endpoint URL, the CA's PEM file). nginx, not moto's
    own TLS: pgBackRest fails on werkzeug's TLS ("unexpected eof while reading": no close_notify)."""
    directory.mkdir(parents=True, exist_ok=True)
    tls = s3_certificates(directory, address)
    with moto_server() as plain:
        port = free_port()
        conf = directory / "nginx.conf"
        conf.write_text(f"""
user root;
worker_processes 1;
error_log {directory}/nginx-error.log;
pid {directory}/nginx.pid;
events {{}}
http {{
    access_log off;
    client_body_temp_path {directory}/nginx-body;
    proxy_temp_path {directory}/nginx-proxy;
    client_max_body_size 0;
    server {{
        listen {address}:{port} ssl;
        ssl_certificate {tls['cert.pem']};
        ssl_certificate_key {tls['key.pem']};
        location / {{
            proxy_pass {plain};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_request_buffering off;
            proxy_buffering off;
        }}
    }}
}}
""")
        proc = subprocess.Popen(["nginx", "-p", str(directory), "-c", str(conf), "-g", "daemon off;"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(address, port, proc, "nginx (TLS in front of moto)")
            yield f"https://{address}:{port}", tls["ca.pem"]
        finally:
            proc.terminate()
            proc.wait(timeout=10)
