"""Benchmark: onebox-backup on about a million rows, on this machine.

    .venv/bin/python bench/backup.py [ROWS]

A throwaway deps project ("obbench": the stand-in PostgreSQL and Redis, as in
tests/backup) and a real S3 API (moto) on loopback. Prints the dump time and size, the
off-site upload time (restic), and the restore times from the local and the off-site
copy; checks that the data came back with the same checksum. Needs Docker with the
stand-in images, restic and moto[server].
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "backup"))

from stack import backup, moto_server, throwaway, write_config  # noqa: E402

from onebox.server.backup.config import Config  # noqa: E402
from onebox.server.backup.restic import Restic  # noqa: E402
from onebox.server.backup.sets import local_sets  # noqa: E402

SECRETS = {"RESTIC_PASSWORD": "bench-restic-password-0123456789", "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench-secret-0123456789"}


def timed(label: str, *args: str, config: Path) -> float:
    started = time.monotonic()
    result = backup(config, *args, timeout=3600)
    seconds = time.monotonic() - started
    if result.returncode:
        sys.exit(f"{label} failed:\n{result.stdout}\n{result.stderr}")
    return seconds


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    work = Path(tempfile.mkdtemp(prefix="onebox-bench-backup-"))
    try:
        with moto_server() as s3, throwaway("obbench") as stack:
            stack.psql("CREATE TABLE t (id integer PRIMARY KEY, name text NOT NULL, at timestamptz NOT NULL)")
            started = time.monotonic()
            stack.psql(f"INSERT INTO t SELECT g, md5(g::text), now() - g * interval '1 second' "
                       f"FROM generate_series(1, {rows}) g")
            insert = time.monotonic() - started
            for i in range(10):
                stack.redis("set", f"key:{i}", str(i))
            before = stack.checksum()
            table_size = stack.psql("SELECT pg_size_pretty(pg_total_relation_size('t'))")
            config = write_config(work, stack.project, f"s3:{s3}/obbench", SECRETS)

            dump = timed("dump", "dump", "--label", "bench", config=config)
            [backup_set] = local_sets(Config(str(config)))
            size = (backup_set.path / "postgres.dump").stat().st_size

            restic = Restic(Config(str(config)))
            restic.ensure_repository()
            started = time.monotonic()
            restic.upload(backup_set)
            upload = time.monotonic() - started

            stack.psql("TRUNCATE t")
            restore_local = timed("local restore", "restore", "--from", "local", "--no-safety-dump", config=config)
            assert stack.checksum() == before, "the local restore lost data"

            stack.psql("TRUNCATE t")
            shutil.rmtree(work / "backups")
            restore_offsite = timed("off-site restore", "restore", "--from", "offsite", "--no-safety-dump", config=config)
            assert stack.checksum() == before, "the off-site restore lost data"
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"rows:                              {rows:,} (table {table_size}, inserted in {insert:.1f} s)")
    print(f"dump (pg_dump -Fc + Redis BGSAVE): {dump:.1f} s")
    print(f"dump size (postgres.dump):         {size / 1e6:.1f} MB")
    print(f"upload to S3 (restic backup):      {upload:.1f} s")
    print(f"restore from the local copy:       {restore_local:.1f} s")
    print(f"restore from off-site (download + restore): {restore_offsite:.1f} s")
    print("checksum after each restore:       identical")


if __name__ == "__main__":
    main()
