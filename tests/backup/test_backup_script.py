"""onebox-backup (onebox/server/backup/), run from the server's zipapp as it ships,
against a throwaway deps project on this machine: real PostgreSQL and Redis (the
stand-in images), a real S3 API (moto) for restic. Data goes in, comes back from a local
and an off-site backup with the same checksum; failures exit non-zero with the reason
and change nothing.

Needs Docker with the stand-in images, restic and moto_server; skipped otherwise.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import Stack, backup, docker_works, free_port, moto_server, throwaway, write_config  # noqa: E402

RESTIC_PASSWORD = "obtest-restic-password-0123456789"
S3_SECRET = "obtest-s3-secret-key-0123456789"
SECRETS = {"RESTIC_PASSWORD": RESTIC_PASSWORD, "AWS_ACCESS_KEY_ID": "obtest-key-id", "AWS_SECRET_ACCESS_KEY": S3_SECRET}

pytestmark = [
    pytest.mark.skipif(not docker_works(), reason="needs Docker and the stand-in images (make images)"),
    pytest.mark.skipif(shutil.which("restic") is None, reason="needs restic (apt-get install restic)"),
    pytest.mark.skipif(not Path(sys.executable).with_name("moto_server").exists(), reason="needs moto[server]"),
]


def load_script():
    """The module of the pure pieces the tests call (sha256, keep_policy)."""
    from onebox.server.backup import sets

    return sets


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with throwaway("obtest") as running:
        running.psql("CREATE TABLE t (id integer PRIMARY KEY, name text NOT NULL, at timestamptz DEFAULT now())")
        running.psql("INSERT INTO t (id, name) SELECT g, md5(g::text) FROM generate_series(1, 5000) g")
        running.redis("set", "greeting", "hello")
        running.redis("incrby", "hits", "41")
        yield running


def ok(result) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


def test_dump_and_local_restore_bring_the_data_back(stack: Stack, tmp_path: Path) -> None:
    config = write_config(tmp_path, stack.project)
    before = stack.checksum()
    out = ok(backup(config, "dump", "--label", "release-7"))
    backups = tmp_path / "backups"
    assert (backups.stat().st_mode & 0o777) == 0o700
    [name] = names(backups)
    assert name.endswith("-release-7") and name in out
    manifest = json.loads((backups / name / "manifest.json").read_text())
    assert set(manifest["files"]) == {"postgres.dump", "redis.rdb"}
    assert (backups / name / "postgres.dump").read_bytes()[:5] == b"PGDMP"  # pg_dump -Fc

    # The data moves on; the API keeps running until the restore stops it.
    stack.psql("DELETE FROM t WHERE id % 3 = 0")
    stack.psql("UPDATE t SET name = 'changed' WHERE id < 100")
    stack.redis("set", "greeting", "changed")
    stack.redis("del", "hits")
    assert stack.checksum() != before
    api_started = stack.started_at("api")

    out = ok(backup(config, "restore", "--from", "local"))
    assert f"restored {name}" in out
    assert stack.checksum() == before
    assert stack.redis("get", "greeting") == "hello"
    assert stack.redis("get", "hits") == "41"
    assert stack.started_at("api") != api_started, "the API was not stopped during the restore"
    stack.wait_healthy()
    # The data replaced by the restore is kept in a safety dump, which `latest` never picks.
    safety = [n for n in names(backups) if n.endswith("-pre-restore")]
    assert len(safety) == 1
    ok(backup(config, "restore", "--from", "local", "--name", safety[0], "--no-safety-dump"))
    assert stack.redis("get", "greeting") == "changed"
    assert stack.checksum() != before
    stack.psql("DELETE FROM t")  # the next tests start from the original rows
    stack.psql("INSERT INTO t (id, name) SELECT g, md5(g::text) FROM generate_series(1, 5000) g")
    stack.redis("set", "greeting", "hello")
    stack.redis("set", "hits", "41")


def test_a_damaged_or_unrestorable_backup_changes_nothing(stack: Stack, tmp_path: Path) -> None:
    config = write_config(tmp_path, stack.project)
    ok(backup(config, "dump", "--label", "good"))
    before = stack.checksum()
    [name] = names(tmp_path / "backups")
    dump = tmp_path / "backups" / name / "postgres.dump"
    dump.write_bytes(dump.read_bytes()[:-100])
    result = backup(config, "restore", "--from", "local")
    assert result.returncode == 1
    assert "does not match its checksum" in result.stderr
    # A dump that pg_restore rejects halfway: the scratch database goes, the live one stays.
    script = load_script()
    manifest_path = tmp_path / "backups" / name / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    dump.write_bytes(b"PGDMP" + b"\0" * 4096)
    manifest["files"]["postgres.dump"] = {"size": dump.stat().st_size, "sha256": script.sha256(dump)}
    manifest_path.write_text(json.dumps(manifest))
    result = backup(config, "restore", "--from", "local", "--no-safety-dump")
    assert result.returncode == 1 and "pg_restore failed" in result.stderr, result.stderr
    assert stack.checksum() == before
    assert stack.psql("SELECT count(*) FROM pg_database WHERE datname LIKE '%onebox_restore'") == "0"
    stack.wait_healthy()  # the API was started again


def test_offsite_backup_survives_losing_the_server(stack: Stack, tmp_path: Path, s3: str) -> None:
    config = write_config(tmp_path, stack.project, f"s3:{s3}/obtest-backups", SECRETS)
    before = stack.checksum()
    first = backup(config, "run")
    out = ok(first)
    assert "uploaded" in out and "restic check" in out
    # Secrets never reach the output.
    for result in (first, backup(config, "list")):
        assert RESTIC_PASSWORD not in result.stdout + result.stderr
        assert S3_SECRET not in result.stdout + result.stderr
    state = json.loads((tmp_path / "state" / "last-run.json").read_text())
    assert state["result"] == "ok" and state["offsite"] is True
    assert (tmp_path / "state" / "last-success").is_file()

    # The server is lost: data volumes and local backups gone; a fresh, empty stack.
    stack.down()
    shutil.rmtree(tmp_path / "backups")
    stack.up()
    assert stack.psql("SELECT count(*) FROM pg_tables WHERE tablename = 't'") == "0"
    listing = ok(backup(config, "list"))
    assert "-scheduled" in listing.split("off-site", 1)[1]

    ok(backup(config, "restore", "--from", "offsite"))
    assert stack.checksum() == before
    assert stack.redis("get", "hits") == "41"
    # The downloaded backup is kept locally too.
    assert any(n.endswith("-scheduled") for n in names(tmp_path / "backups"))


def test_a_failing_run_exits_non_zero_with_the_reason(stack: Stack, tmp_path: Path) -> None:
    unreachable = f"s3:http://127.0.0.1:{free_port()}/nowhere"
    config = write_config(tmp_path, stack.project, unreachable, SECRETS)
    result = backup(config, "run")
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("onebox-backup: run failed:"), result.stderr
    assert "unreachable" in last_line and "connection refused" in last_line.lower(), result.stderr
    assert RESTIC_PASSWORD not in result.stdout + result.stderr
    state = json.loads((tmp_path / "state" / "last-run.json").read_text())
    assert state["result"] == "failed" and "connection refused" in state["error"].lower()
    assert not (tmp_path / "state" / "last-success").exists()

    # A fresh server before its first release: nothing to dump yet, and the release goes on;
    # the timer's run, though, fails: backups are expected there.
    empty = write_config(tmp_path / "empty", "obtest-nothing")
    result = backup(empty, "dump", "--label", "release-1")
    assert result.returncode == 0 and "nothing to back up yet" in result.stdout, result.stderr
    assert backup(empty, "run").returncode == 1

    # No running PostgreSQL: a release step's dump fails, so the release stops.
    stack_missing = write_config(tmp_path / "other", stack.project)
    subprocess.run(["docker", "stop", stack.containers["postgres"]], check=True, capture_output=True)
    try:
        result = backup(stack_missing, "dump", "--label", "release-8")
        assert result.returncode == 1 and "no running postgres container" in result.stderr
    finally:
        subprocess.run(["docker", "start", stack.containers["postgres"]], check=True, capture_output=True)
        stack.wait_healthy()


def test_retention_keeps_what_restic_would() -> None:
    script = load_script()
    base = dt.datetime(2026, 11, 23, 3, 15, tzinfo=dt.UTC).astimezone()
    times = [base - dt.timedelta(days=d) for d in range(40)] + [base - dt.timedelta(hours=1)]
    keep = script.keep_policy(times, keep_last=3, keep_daily=7, keep_weekly=4)
    kept = sorted((times[i] for i in keep), reverse=True)
    # The newest 3, one per day for the last 7 days, one per ISO week for the last 4 weeks.
    assert kept[:3] == sorted(times, reverse=True)[:3]
    days = {t.date() for t in kept}
    assert all((base - dt.timedelta(days=d)).date() in days for d in range(7))
    assert len(kept) == len(set(kept)) <= 3 + 7 + 4
    assert min(kept) >= base - dt.timedelta(days=28)
