"""Point-in-time recovery with pgBackRest, inside the app's PostgreSQL container (onebox/pitr.py
says how it gets there): the stanza, base backups, the recovery window, and a restore to a time.

repo1 is the server's repository, repo2 the off-site bucket. PostgreSQL archives each WAL segment
to both as it is written. A restore replaces the data directory in a one-off container of the
deps project (`compose run`, the service's own volumes, environment and network), then starts
PostgreSQL, which replays WAL up to the target and promotes.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from pathlib import Path
from typing import Any

from onebox import contract
from onebox.server import docker, exporters
from onebox.server.backup.config import BackupError, Config
from onebox.server.backup.docker import require_container, run_exec
from onebox.server.backup.postgres import quote_ident
from onebox.server.backup.restic import Restic
from onebox.server.basics import OneboxError, log, run, write_atomic

# stanza-create: the repository's history belongs to another database (system-id). pgBackRest exits
# with its error's code.
MISMATCH, MISMATCH_EXIT = "[028]", 28
TARGET_PAST_ARCHIVE = "recovery ended before configured recovery target was reached"


class TargetPastArchive(BackupError):
    """The archive ends before the target time: nothing was written after its end."""


def repos(config: Config) -> list[int]:
    return [1, 2] if config.pitr_offsite else [1]


def repo_of(source: str) -> int:
    return 1 if source == "local" else 2


def pgbackrest(config: Config, pg: str, *args: str) -> list[str]:
    return docker.exec_in(pg, "pgbackrest", f"--stanza={config.app_name}", *args, user="postgres")


def errors_of(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if "ERROR" in line or "HINT" in line]
    return " ".join(lines) or output.strip()[-500:]


def checked(config: Config, pg: str, *args: str) -> str:
    """A pgBackRest command's output; its failure raises with pgBackRest's error (run_exec)."""
    return run_exec(pgbackrest(config, pg, *args), what=f"pgbackrest {' '.join(args)}").stdout


def info(config: Config, pg: str, repo: int) -> dict[str, Any]:
    """The stanza's `pgbackrest info` in one repository."""
    stanzas = json.loads(checked(config, pg, f"--repo={repo}", "--output=json", "info") or "[]")
    return stanzas[0] if stanzas else {}


def current_db(stanza: dict[str, Any]) -> dict[str, Any] | None:
    """The database a repository archives now (the newest of its history), None: no stanza there."""
    return max(stanza["db"], key=lambda db: db["id"]) if stanza.get("db") else None


def backups(stanza: dict[str, Any]) -> list[dict[str, Any]]:
    """The stanza's backups of the database it archives now (a stanza-upgrade keeps the earlier
    database's backups, restorable but outside the window)."""
    current = current_db(stanza)
    found = [b for b in stanza.get("backup") or [] if not b.get("error")]
    return [b for b in found if b["database"]["id"] == current["id"]] if current else found


def system_id(stanza: dict[str, Any]) -> int | None:
    """The system identifier of the database a repository archives now (None: no stanza there)."""
    current = current_db(stanza)
    return current["system-id"] if current else None


def query_argv(config: Config, pg: str, sql: str) -> list[str]:
    """psql in the PostgreSQL container over its local socket: unaligned rows, columns split by |."""
    return docker.exec_in(pg, "psql", "-X", "-At", "-F", "|", "-U", config.postgres_user, "-d", "postgres", "-c", sql,
                     user="postgres")


def running_system_id(config: Config, pg: str) -> int:
    return int(run(query_argv(config, pg, "SELECT system_identifier FROM pg_control_system()"),
                   what="reading the database's system identifier").stdout.strip())


def may_upgrade(running: int, local: int | None, offsite: int | None, offsite_configured: bool) -> bool:
    """Whether the stanza may take the running database as its new one (stanza-upgrade). Not when the
    off-site repository holds another database than both this one and the local history: that is a
    lost server's history on a fresh server (same server name), which a disaster recovery restores;
    archiving a new database over it would bury it."""
    if not offsite_configured or offsite is None or offsite == running:
        return True
    return local == offsite


def setup(config: Config, first_backup: bool = True) -> None:
    """The stanza in every repository, and a full base backup in each that has none (the window
    starts there). A database that is not the one the history belongs to (restored from a dump, a new
    data volume) is recorded as the stanza's new database (stanza-upgrade): the history stays."""
    pg = require_container(config, "postgres")
    if config.pitr_offsite:
        Restic(config).ensure_repository()  # restic creates the bucket; pgBackRest only uses one that exists
    # Its failure is read, not raised (run_exec raises): a mismatch is a case of its own.
    created = run(pgbackrest(config, pg, "stanza-create"), check=False)
    if not created.ok:
        output = created.stdout + created.stderr
        if created.returncode != MISMATCH_EXIT and MISMATCH not in output:
            raise BackupError(f"pgbackrest stanza-create failed: {errors_of(output)}")
        offsite = system_id(info(config, pg, 2)) if config.pitr_offsite else None
        if not may_upgrade(running_system_id(config, pg), system_id(info(config, pg, 1)), offsite,
                           config.pitr_offsite):
            log(f"WARNING: the off-site repository holds the point-in-time history of another database of server "
                f"{config.server_name}, app {config.app_name} (this server replaces it?). Nothing was written to it. "
                f"Restore it (`onebox restore INVENTORY --from offsite --to latest --yes`), or give this server "
                f"another backup_server_name; until then WAL archiving fails and alerts.")
            return
        log("this database is not the one the repositories' history belongs to (a restored dump or a new data "
            "volume): pgbackrest stanza-upgrade records it; the earlier history stays restorable")
        checked(config, pg, "stanza-upgrade")
    if first_backup:
        for repo in repos(config):
            if not backups(info(config, pg, repo)):
                backup(config, pg, repo, "full")
    write_atomic(config.state_path / contract.PITR_READY, f"{config.pitr_fingerprint}\n", 0o644)


def backup(config: Config, pg: str, repo: int, kind: str) -> None:
    log(f"pgBackRest {kind} backup to repo{repo} ({'off-site' if repo == 2 else 'this server'})")
    checked(config, pg, f"--repo={repo}", f"--type={kind}", "backup")


def scheduled_backup(config: Config) -> None:
    """The timer's part: a full backup when the last is older than pitr_full_every_days, else a
    differential one; pgBackRest then expires what retention no longer keeps."""
    setup(config, first_backup=False)
    pg = require_container(config, "postgres")
    for repo in repos(config):
        fulls = [b["timestamp"]["stop"] for b in backups(info(config, pg, repo)) if b["type"] == "full"]
        stale = not fulls or time.time() - max(fulls) > float(config.pitr_full_every_days) * 86400
        backup(config, pg, repo, "full" if stale else "diff")


def window_start(config: Config, pg: str, repo: int) -> dt.datetime | None:
    """The first moment a restore can reach: the end of the oldest base backup of this database."""
    stops = [b["timestamp"]["stop"] for b in backups(info(config, pg, repo))]
    return dt.datetime.fromtimestamp(min(stops), dt.UTC) if stops else None


def archiver(config: Config, pg: str) -> dict[str, Any]:
    """pg_stat_archiver and where WAL is written now, for the window's end and the metrics."""
    query = ("SELECT coalesce(extract(epoch FROM last_archived_time)::bigint, 0), coalesce(last_archived_wal, ''), "
             "coalesce(extract(epoch FROM last_failed_time)::bigint, 0), "
             "(pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint, "
             "(SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size') FROM pg_stat_archiver")
    out = run(query_argv(config, pg, query), what="reading pg_stat_archiver").stdout.strip().split("|")
    archived, wal, failed, insert, segment = int(out[0]), out[1], int(out[2]), int(out[3]), int(out[4])
    # Writes past the last archived segment (more than a page: not just its header) wait for archiving.
    return {"last_archived": archived, "last_failed": failed, "pending": insert - archived_end(wal, segment) > 8192}


def archive_lag(state: dict[str, Any], now: float) -> float:
    """How long the oldest write not yet archived has waited (archiver()'s state): what losing the
    server now would lose. 0 when everything written is archived."""
    last = state["last_archived"]
    return max(0.0, now - last) if state["pending"] and last else 0.0


def archived_end(wal: str, segment_size: int) -> int:
    """The byte position where a WAL segment named like 000000010000000A000000FF ends (0: none yet)."""
    if len(wal) != 24 or not all(c in "0123456789ABCDEF" for c in wal):
        return 0
    return int(wal[8:16], 16) * 2**32 + (int(wal[16:24], 16) + 1) * segment_size


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def pg_time(moment: dt.datetime) -> str:
    """pgBackRest's --target format: "YYYY-MM-DD HH:MM:SS+00"."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S+00")


def check_target(config: Config, pg: str, source: str, target: dt.datetime | None) -> None:
    """Refuse, before anything stops, a time outside the recovery window (named) or no backup at all."""
    start = window_start(config, pg, repo_of(source))
    where = "this server's repository" if source == "local" else \
        f"the off-site repository (server {config.server_name}, app {config.app_name})"
    if start is None:
        raise BackupError(f"no point-in-time base backup of app {config.app_name} in {where}: nothing to recover "
                          "from; nothing was changed")
    now = dt.datetime.now(dt.UTC)
    if target is not None and not start <= target <= now:
        raise BackupError(f"{iso(target)} is outside the recovery window of {where}: from {iso(start)} to now "
                          f"({iso(now)}); nothing was changed")


def flush_wal(config: Config, pg: str) -> None:
    """A commit stamped now, then every WAL segment archived (pgbackrest check switches and waits):
    any time up to now is then reachable, and the data as it is can be come back to."""
    run_exec(query_argv(config, pg, "SELECT txid_current()"), what="a commit marking the restore")
    try:
        checked(config, pg, "check")
    except OneboxError as error:
        log(f"WARNING: the newest WAL could not be archived before the restore ({error}); the restore goes on "
            "with the archive as it is")


def recover(config: Config, pg: str, repo: int, target: dt.datetime | None) -> None:
    """The data directory from repo `repo` to `target` (None: the end of the archive), then PostgreSQL
    started and promoted. Runs with the PostgreSQL container stopped."""
    aim = ["--type=time", f"--target={pg_time(target)}", "--target-action=promote"] if target else ["--type=default"]
    log(f"pgBackRest restore from repo{repo} to {iso(target) if target else 'the end of the archive'}")
    deps = docker.compose(config.app_name, config.project_path, [Path(contract.AppDir(str(config.project_path)).deps_compose)],
                           "run", "--rm", "--no-deps", "-T", "--user", "postgres", "--entrypoint", "pgbackrest",
                           "postgres", f"--stanza={config.app_name}", "--delta", f"--repo={repo}", *aim, "restore")
    run(deps, what="pgbackrest restore")
    run(docker.start(pg), what="starting PostgreSQL")
    deadline = time.monotonic() + float(config.start_timeout)
    while time.monotonic() < deadline:
        time.sleep(1)
        state = run(docker.container_running(pg), what="docker inspect").stdout.strip()
        if state != "true":
            logs = run(docker.logs(pg, 30), check=False)
            if TARGET_PAST_ARCHIVE in logs.stdout + logs.stderr:
                raise TargetPastArchive("the archive ends before the target time")
            raise BackupError(f"PostgreSQL stopped during recovery; see `docker logs {pg[:12]}`")
        promoted = run(query_argv(config, pg, "SELECT pg_is_in_recovery()"), check=False)
        if promoted.ok and promoted.stdout.strip() == "f":
            adopt_roles(config, pg)
            return
    raise BackupError(f"PostgreSQL did not finish its recovery in {config.start_timeout} s; see `docker logs {pg[:12]}`")


def roles_sql(config: Config, app_password: str | None, monitor_password: str | None) -> str:
    """This server's passwords for the app's role and the monitoring role, as SCRAM verifiers (never the
    password itself in SQL, a log or a statistics view)."""
    sql = "SET lock_timeout = '5s';\n"
    if app_password is not None:
        verifier = exporters.scram_verifier(app_password, secrets.token_bytes(16))
        sql += f"ALTER ROLE {quote_ident(config.postgres_user)} PASSWORD '{verifier}';\n"
    if monitor_password is not None:
        sql += exporters.role_sql(exporters.scram_verifier(monitor_password, secrets.token_bytes(16)))
    return sql


def adopt_roles(config: Config, pg: str) -> None:
    """A physical restore brings the roles of the server the backup was taken on, their passwords
    included: on a new server (its own postgres_password, its own monitoring password) the app and
    the exporter could not log in. This server's passwords are set again."""
    app_file = Path(contract.AppDir(str(config.project_path)).postgres_password)
    app_password = app_file.read_text() if app_file.is_file() else None
    monitor = exporters.PASSWORD_FILE.read_text().strip() if exporters.PASSWORD_FILE.is_file() else None
    result = exporters.psql(pg, roles_sql(config, app_password, monitor))
    if not result.ok:
        raise BackupError(f"setting this server's passwords on the restored roles failed: {result.stderr.strip()[-300:]}")


def restore_to(config: Config, source: str, target: dt.datetime | None) -> None:
    """With the writers stopped (restore.Writers): the archive flushed, PostgreSQL stopped, its data
    recovered to `target`. A failure brings the data back to the moment before (the local archive's end)."""
    pg = require_container(config, "postgres")
    flush_wal(config, pg)
    run(docker.stop(pg), what="stopping PostgreSQL")
    try:
        try:
            recover(config, pg, repo_of(source), target)
        except TargetPastArchive:
            log(f"the archive ends before {iso(target) if target else 'the target'}: nothing was written after its "
                "end, so its end is that moment; restoring to it")
            run(docker.stop(pg), check=False)
            recover(config, pg, repo_of(source), None)
    except BaseException as error:
        log(f"the restore failed ({error}); bringing the data back to the moment before it (the end of this "
            "server's archive)")
        run(docker.stop(pg), check=False)
        recover(config, pg, 1, None)
        raise
