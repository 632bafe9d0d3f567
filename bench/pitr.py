"""Benchmark: point-in-time recovery (pgBackRest) on this machine.

    .venv/bin/python bench/pitr.py [--seconds 300] [--rate 20] [--gigabytes 1]

A throwaway PostgreSQL from the stand-in image with pgBackRest added exactly as onebox derives it
on a server (templates/app/postgres-pitr.Dockerfile.j2), archiving to a local repository and to a
real S3 API (moto, behind nginx for HTTPS with a private CA), with onebox's pgbackrest.conf. Prints:
- the recovery point under a steady write load (`--rate` inserts a second for `--seconds`): how
  long the oldest write not yet archived had waited, sampled every second (median and maximum);
- the off-site bytes a day at that load (the bucket's growth, scaled to a day);
- the restore time of a database of `--gigabytes` from the local and from the off-site repository.
Needs Docker with the stand-in images (python -m testbed.images), openssl, nginx and moto[server].
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "backup"))

from stack import moto_https  # noqa: E402

from onebox.pitr import Offsite  # noqa: E402
from onebox.render import render  # noqa: E402
from onebox.server.backup.pitr import archive_lag, archiver  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IMAGE, TAG, NAME, BUCKET = "onebox-test/postgres:17", "onebox-bench/postgres-pitr", "obbench-pitr", "obbench"
KEYS = {"PGBACKREST_REPO2_S3_KEY": "bench", "PGBACKREST_REPO2_S3_KEY_SECRET": "bench-secret-0123456789",
        "PGBACKREST_REPO2_CIPHER_PASS": "bench-cipher-pass-0123456789"}


def sh(*argv: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if check and result.returncode:
        sys.exit(f"{' '.join(argv)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result


def psql(sql: str) -> str:
    return sh("docker", "exec", "-u", "postgres", NAME, "psql", "-X", "-At", "-U", "app", "-d", "app", "-c", sql).stdout.strip()


def pgbackrest(*args: str) -> str:
    return sh("docker", "exec", "-u", "postgres", NAME, "pgbackrest", "--stanza=app", *args).stdout


def start_postgres(directory: Path, settings: SimpleNamespace, gateway: str, port: int) -> None:
    sh("docker", "rm", "-f", NAME, check=False)
    for volume in ("data", "repo"):
        sh("docker", "volume", "rm", "-f", f"{NAME}-{volume}", check=False)
    (directory / "Dockerfile").write_text(render("app/postgres-pitr.Dockerfile.j2", s=settings))
    conf = render("app/pgbackrest.conf.j2", s=settings, offsite=Offsite(gateway, port, BUCKET, "/pgbackrest"),
                  server_name="bench", ca_bundle=True)
    (directory / "pgbackrest.conf").write_text(conf)
    for path in directory.iterdir():
        path.chmod(0o644)
    sh("docker", "build", "-q", "-t", TAG, str(directory))
    env = [arg for key, value in KEYS.items() for arg in ("-e", f"{key}={value}")]
    sh("docker", "run", "-d", "--name", NAME, "-e", "POSTGRES_USER=app", "-e", "POSTGRES_DB=app",
       "-e", "POSTGRES_PASSWORD=bench-password", *env, "-v", f"{NAME}-data:/var/lib/postgresql/data",
       "-v", f"{NAME}-repo:/var/lib/pgbackrest", "-v", f"{directory}:/etc/pgbackrest:ro", TAG,
       "postgres", "-c", "wal_level=replica", "-c", "archive_mode=on", "-c",
       "archive_command=pgbackrest --stanza=app archive-push %p", "-c", "archive_timeout=60")
    for _ in range(60):
        if sh("docker", "exec", NAME, "pg_isready", "-U", "app", check=False).returncode == 0:
            break
        time.sleep(1)
    time.sleep(2)
    pgbackrest("stanza-create")
    for repo in ("1", "2"):
        pgbackrest(f"--repo={repo}", "--type=full", "backup")


def lag_now() -> float:
    """The archive lag as onebox's metric reads it (onebox.server.backup.pitr)."""
    return archive_lag(archiver(SimpleNamespace(postgres_user="app"), NAME), time.time())  # type: ignore[arg-type]


def bucket_bytes(s3) -> int:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="pgbackrest/bench/app/archive/")
    return sum(item["Size"] for page in pages for item in page.get("Contents", []))


def steady_load(seconds: int, rate: float, s3) -> None:
    psql("CREATE TABLE IF NOT EXISTS writes (id bigserial PRIMARY KEY, at timestamptz DEFAULT now(), body text)")
    before, lags, stop = bucket_bytes(s3), [], threading.Event()

    def write() -> None:
        while not stop.wait(1 / rate):
            psql("INSERT INTO writes (body) VALUES (repeat('x', 200))")

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        lags.append(lag_now())
        time.sleep(1)
    stop.set()
    writer.join()
    grown = bucket_bytes(s3) - before
    print(f"recovery point at {rate:g} writes/s over {seconds} s (archive_timeout 60): median "
          f"{statistics.median(lags):.1f} s, max {max(lags):.1f} s")
    print(f"off-site archive: {grown / 1e6:.2f} MB in {seconds} s, {grown * 86400 / seconds / 1e9:.2f} GB a day")


def restore_time(repo: str) -> float:
    sh("docker", "stop", NAME)
    # An empty data directory, as on a new server: a --delta restore over the same files copies nothing.
    sh("docker", "run", "--rm", "--volumes-from", NAME, "--entrypoint", "sh", TAG, "-c",
       "rm -rf /var/lib/postgresql/data/*")
    started = time.monotonic()
    keys = [arg for key, value in KEYS.items() for arg in ("-e", f"{key}={value}")]
    sh("docker", "run", "--rm", "--volumes-from", NAME, "-u", "postgres", *keys,
       "--entrypoint", "pgbackrest", TAG, "--stanza=app", "--delta", f"--repo={repo}", "--type=default", "restore")
    sh("docker", "start", NAME)
    while psql_ok("SELECT pg_is_in_recovery()") != "f":
        time.sleep(0.5)
    return time.monotonic() - started


def psql_ok(sql: str) -> str:
    result = sh("docker", "exec", "-u", "postgres", NAME, "psql", "-X", "-At", "-U", "app", "-d", "app", "-c", sql,
                check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


def big_database(gigabytes: float) -> None:
    rows = int(gigabytes * 1e9 / 1100)
    # 32 different hashes a row: text that compresses about as much as real data, not 32 copies of one.
    psql(f"CREATE TABLE big AS SELECT g AS id, (SELECT string_agg(md5(g::text || i::text), '') "
         f"FROM generate_series(1, 32) i) AS body FROM generate_series(1, {rows}) g")
    size = psql("SELECT pg_database_size('app')")
    print(f"database: {int(size) / 1e9:.2f} GB")
    for repo in ("1", "2"):
        started = time.monotonic()
        pgbackrest(f"--repo={repo}", "--type=full", "backup")
        print(f"full backup to repo{repo}: {time.monotonic() - started:.1f} s")
    for repo, where in (("1", "this server"), ("2", "off-site (moto, HTTPS)")):
        print(f"restore from {where}: {restore_time(repo):.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--gigabytes", type=float, default=1)
    args = parser.parse_args()
    # The container reaches the host through Docker's bridge gateway.
    gateway = json.loads(sh("docker", "network", "inspect", "bridge").stdout)[0]["IPAM"]["Config"][0]["Gateway"]
    settings = SimpleNamespace(postgres_image=IMAGE, backup_pitr_keep_full=2, app_name="app", postgres_user="app",
                               backup_s3_region="us-east-1")
    with tempfile.TemporaryDirectory(prefix="onebox-bench-pitr-") as scratch:
        directory = Path(scratch)
        directory.chmod(0o755)  # read by the postgres user in the container
        with moto_https(gateway, directory / "s3") as (endpoint, ca):
            (directory / "pitr").mkdir()
            shutil.copy(ca, directory / "pitr" / "s3-ca.pem")
            s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEYS["PGBACKREST_REPO2_S3_KEY"],
                              aws_secret_access_key=KEYS["PGBACKREST_REPO2_S3_KEY_SECRET"], region_name="us-east-1",
                              verify=str(ca))
            s3.create_bucket(Bucket=BUCKET)
            try:
                start_postgres(directory / "pitr", settings, gateway, int(endpoint.rsplit(":", 1)[1]))
                steady_load(args.seconds, args.rate, s3)
                big_database(args.gigabytes)
            finally:
                sh("docker", "rm", "-f", NAME, check=False)
                for volume in ("data", "repo"):
                    sh("docker", "volume", "rm", "-f", f"{NAME}-{volume}", check=False)


if __name__ == "__main__":
    main()
