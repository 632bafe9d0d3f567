#!/usr/bin/env python3
"""onebox-backup: dumps of the app's PostgreSQL and Redis, kept on the server and
optionally off-site with restic, and restored in one command.

Installed by deploys/backup.py as /usr/local/sbin/onebox-backup; runs as root on the
server with nothing but Python 3's standard library and the docker CLI (restic when an
off-site repository is configured).

    onebox-backup dump --label NAME        one backup now (before a release step)
    onebox-backup run                      the timer's job: backup, retention, off-site upload, check
    onebox-backup list                     local and off-site backups
    onebox-backup restore --from local|offsite [--name NAME]
    onebox-backup check                    `restic check` of the off-site repository
    onebox-backup status                   the last run, as the host check reads it

A backup is one directory in backup_dir, named <UTC time>-<label>: postgres.dump
(`pg_dump -Fc`, taken inside the PostgreSQL container over its local socket),
redis.rdb (a BGSAVE snapshot) and manifest.json (sizes and SHA-256 of both). It
appears only when complete. Configuration: /etc/onebox/backup.json (root only);
secrets (restic password, S3 keys): /etc/onebox/backup.env (root only), handed to
restic through its environment, never on a command line or in the output.
Exit status: 0 done, 1 failed (the reason is the last line on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CONFIG_ENV = "ONEBOX_BACKUP_CONFIG"
DEFAULT_CONFIG = "/etc/onebox/backup.json"
LABEL_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
SAFETY_LABEL = "pre-restore"
SCHEDULED_LABEL = "scheduled"
RESTIC_TAG = "onebox"
NAME_TAG = "set="
MANIFEST = "manifest.json"
PG_FILE = "postgres.dump"
REDIS_FILE = "redis.rdb"
DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "postgres_enabled": True,
    "redis_enabled": True,
    "postgres_user": "postgres",
    "postgres_db": "postgres",
    "backup_dir": "/var/backups/onebox",
    "state_dir": "/var/lib/onebox/backup",
    "secrets_file": "/etc/onebox/backup.env",
    "keep_last": 3,
    "keep_daily": 7,
    "keep_weekly": 4,
    "restic_repository": None,
    "s3_region": "us-east-1",
    "restic_cache_dir": "/var/cache/onebox-backup",
    "restic_check_interval_days": 7,
    "release_tool": "/usr/local/sbin/onebox-release",
    "start_timeout": 300,
    "lock_timeout": 3600,
}


class BackupError(Exception):
    """A failure with a message for the operator; the command exits 1 with it."""


def log(message: str) -> None:
    print(f"onebox-backup: {message}", flush=True)


# --- configuration -----------------------------------------------------------------------------

class Config:
    def __init__(self, path: str) -> None:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise BackupError(f"no configuration at {path}: run the onebox deploy (deploys/backup.py) first") from None
        except (OSError, ValueError) as error:
            raise BackupError(f"cannot read the configuration {path}: {error}") from None
        unknown = set(data) - set(DEFAULTS) - {"app_name"}
        if unknown:
            raise BackupError(f"unknown key(s) in {path}: {', '.join(sorted(unknown))}")
        if not data.get("app_name"):
            raise BackupError(f"{path} lacks app_name")
        self.values = {**DEFAULTS, **data}
        self.path = path

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def backup_path(self) -> Path:
        return Path(self.backup_dir)

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir)

    def secrets(self) -> dict[str, str]:
        """KEY=VALUE lines of the root-only secrets file (values taken verbatim)."""
        path = Path(self.secrets_file)
        if not path.exists():
            return {}
        if path.stat().st_mode & 0o077:
            raise BackupError(f"{path} is readable by others than root; `chmod 600 {path}` (and change the secrets)")
        values = {}
        for line in path.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                values[key.strip()] = value
        return values


# --- small helpers -------------------------------------------------------------------------------

def run(argv: list[str], *, stdin: Any = None, stdout: Any = subprocess.PIPE, env: dict[str, str] | None = None,
        what: str | None = None, timeout: float | None = None) -> str:
    """Run a command; on failure raise BackupError with its stderr (the reason)."""
    try:
        proc = subprocess.run(argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=env, timeout=timeout,
                              check=False)
    except FileNotFoundError:
        raise BackupError(f"{argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise BackupError(f"{what or argv[0]} did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        reason = (proc.stderr or b"").decode(errors="replace").strip().splitlines()
        detail = " | ".join(reason[-6:]) or f"exit status {proc.returncode}"
        raise BackupError(f"{what or ' '.join(argv[:3])} failed: {detail}")
    return proc.stdout.decode(errors="replace") if stdout is subprocess.PIPE else ""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def write_state(path: Path, content: str) -> None:
    """Replace a state file atomically (monitoring must never read half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(content)
    partial.chmod(0o644)
    partial.replace(path)


@contextlib.contextmanager
def locked(config: Config, name: str = "lock") -> Iterator[None]:
    """One dump, retention or restore at a time (a release's dump waits for the nightly one).
    The off-site upload has a lock of its own: a release never waits for an upload."""
    config.state_path.mkdir(parents=True, exist_ok=True)
    with open(config.state_path / name, "a+") as handle:
        deadline = time.monotonic() + float(config.lock_timeout)
        waited = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BackupError(f"another onebox-backup held the lock for {config.lock_timeout} s; gave up") from None
                if not waited:
                    log("waiting for another onebox-backup to finish")
                    waited = True
                time.sleep(1)
        yield


# --- docker ---------------------------------------------------------------------------------------

def container(config: Config, service: str, running: bool = True) -> str | None:
    """The ID of a service's container in the deps project (found by compose labels)."""
    argv = ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={config.app_name}",
            "--filter", f"label=com.docker.compose.service={service}"]
    if not running:
        argv.insert(2, "-a")
    ids = run(argv, what="docker ps").split()
    if len(ids) > 1:
        raise BackupError(f"{len(ids)} containers of service {service} in project {config.app_name}; expected one")
    return ids[0] if ids else None


def require_container(config: Config, service: str) -> str:
    found = container(config, service)
    if found is None:
        raise BackupError(f"no running {service} container in compose project {config.app_name!r} "
                          f"(label com.docker.compose.service={service}); is the stack up? (`docker ps -a`)")
    return found


def volume_exists(name: str) -> bool:
    return subprocess.run(["docker", "volume", "inspect", name], capture_output=True, check=False).returncode == 0


def inspect(container_id: str) -> dict[str, Any]:
    return json.loads(run(["docker", "inspect", container_id], what="docker inspect"))[0]


def wait_healthy(container_ids: list[str], timeout: float) -> None:
    """Wait until each container runs and, when it has a health check, is healthy."""
    deadline = time.monotonic() + timeout
    pending = list(container_ids)
    while pending:
        state = inspect(pending[0])["State"]
        health = (state.get("Health") or {}).get("Status")
        if state.get("Running") and health in (None, "healthy"):
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            raise BackupError(f"container {pending[0][:12]} is not healthy after {timeout:.0f} s "
                              f"(status {state.get('Status')}, health {health}); see `docker logs {pending[0][:12]}`")
        time.sleep(1)


def psql_argv(config: Config, pg: str, database: str, *sql: str) -> list[str]:
    commands = [part for statement in sql for part in ("-c", statement)]
    return ["docker", "exec", "-u", "postgres", pg, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
            "-U", config.postgres_user, "-d", database, *commands]


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- backup sets ----------------------------------------------------------------------------------

class BackupSet:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        try:
            self.manifest = json.loads((path / MANIFEST).read_text())
        except (OSError, ValueError) as error:
            raise BackupError(f"backup {self.name} has no readable {MANIFEST}: {error}") from None

    @property
    def label(self) -> str:
        return str(self.manifest.get("label", ""))

    @property
    def created(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.manifest["created"])

    def verify(self) -> None:
        """Every file the manifest lists is there, with its size and SHA-256."""
        for name, meta in self.manifest["files"].items():
            path = self.path / name
            if not path.is_file():
                raise BackupError(f"backup {self.name} is incomplete: {name} is missing")
            if path.stat().st_size != meta["size"] or sha256(path) != meta["sha256"]:
                raise BackupError(f"backup {self.name} is damaged: {name} does not match its checksum")


def local_sets(config: Config) -> list[BackupSet]:
    """Complete local backups, oldest first."""
    root = config.backup_path
    if not root.is_dir():
        return []
    sets = [BackupSet(path) for path in sorted(root.iterdir())
            if path.is_dir() and not path.name.startswith(".") and (path / MANIFEST).is_file()]
    return sorted(sets, key=lambda s: (s.created, s.name))


def check_label(label: str) -> str:
    if not label or not set(label) <= LABEL_CHARS or len(label) > 80 or label.startswith((".", "-")):
        raise BackupError(f"bad label {label!r}: use letters, digits, '.', '_' and '-' (at most 80)")
    return label


def take_backup(config: Config, label: str) -> BackupSet | None:
    """One complete backup set in backup_dir, or None when there is nothing to back up yet."""
    check_label(label)
    found = {}
    for service in ("postgres", "redis"):
        if not config.values[f"{service}_enabled"]:
            continue
        found[service] = container(config, service)
        if found[service] is None:
            if volume_exists(f"{config.app_name}_{service}-data"):
                require_container(config, service)  # data but no running container: raises with the explanation
            log(f"no {service} data yet in project {config.app_name} (no container, no volume)")
    pg, redis = found.get("postgres"), found.get("redis")
    if not pg and not redis:
        log("nothing to back up yet")
        return None
    root = config.backup_path
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    root.chmod(0o700)
    while True:  # names have a resolution of one second
        created = now_utc().replace(microsecond=0)
        name = f"{created.strftime('%Y%m%dT%H%M%SZ')}-{label}"
        final = root / name
        if not final.exists():
            break
        time.sleep(0.5)
    partial = root / f".partial-{name}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(mode=0o700)
    try:
        files: dict[str, dict[str, Any]] = {}
        started = time.monotonic()
        if pg:
            dump_postgres(config, pg, partial / PG_FILE)
            files[PG_FILE] = {}
        if redis:
            snapshot_redis(redis, partial / REDIS_FILE)
            files[REDIS_FILE] = {}
        for file_name in files:
            path = partial / file_name
            files[file_name] = {"size": path.stat().st_size, "sha256": sha256(path)}
        manifest = {
            "name": name, "label": label, "app_name": config.app_name, "created": created.isoformat(),
            "postgres_user": config.postgres_user, "postgres_db": config.postgres_db, "files": files,
            "seconds": round(time.monotonic() - started, 2),
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    size = sum(meta["size"] for meta in files.values())
    log(f"backup {name} written to {final} ({size / 1e6:.1f} MB)")
    return BackupSet(final)


def dump_postgres(config: Config, pg: str, dest: Path) -> None:
    """pg_dump -Fc inside the container, as the postgres OS user over the local socket."""
    log(f"dumping PostgreSQL database {config.postgres_db}")
    with dest.open("wb") as out:
        run(["docker", "exec", "-u", "postgres", pg, "pg_dump", "-U", config.postgres_user, "-d", config.postgres_db,
             "-Fc"], stdout=out, what="pg_dump")
    # The archive must be readable by pg_restore, or it is no backup.
    with dest.open("rb") as archive:
        run(["docker", "exec", "-i", "-u", "postgres", pg, "pg_restore", "-l"], stdin=archive,
            what="checking the dump with pg_restore -l")


def redis_cli(redis: str, *args: str) -> str:
    return run(["docker", "exec", redis, "redis-cli", *args], what=f"redis-cli {args[0]}").strip()


def redis_info(redis: str, section: str) -> dict[str, str]:
    lines = redis_cli(redis, "info", section).splitlines()
    return dict(line.strip().split(":", 1) for line in lines if ":" in line)


def snapshot_redis(redis: str, dest: Path, timeout: float = 600) -> None:
    """BGSAVE, wait for it, copy the RDB file out of the container."""
    log("snapshotting Redis (BGSAVE)")
    deadline = time.monotonic() + timeout
    while True:
        reply = redis_cli(redis, "bgsave")
        if "started" in reply.lower():
            break
        if "in progress" not in reply.lower() or time.monotonic() > deadline:
            raise BackupError(f"Redis BGSAVE failed: {reply}")
        time.sleep(0.5)  # another save or an AOF rewrite is running: wait for it, then take ours
    while redis_info(redis, "persistence").get("rdb_bgsave_in_progress") != "0":
        if time.monotonic() > deadline:
            raise BackupError(f"Redis BGSAVE did not finish within {timeout:.0f} s")
        time.sleep(0.2)
    status = redis_info(redis, "persistence").get("rdb_last_bgsave_status")
    if status != "ok":
        raise BackupError(f"Redis BGSAVE failed (rdb_last_bgsave_status: {status}); see `docker logs {redis[:12]}`")
    directory = redis_cli(redis, "config", "get", "dir").splitlines()[-1]
    filename = redis_cli(redis, "config", "get", "dbfilename").splitlines()[-1]
    # `docker cp` streams a tar archive: no tool needed inside the image.
    with tempfile.TemporaryDirectory(dir=dest.parent) as scratch:
        archive = Path(scratch) / "rdb.tar"
        with archive.open("wb") as out:
            run(["docker", "cp", f"{redis}:{directory}/{filename}", "-"], stdout=out, what="copying the Redis snapshot")
        run(["tar", "-xf", str(archive), "-C", scratch], what="unpacking the Redis snapshot")
        (Path(scratch) / filename).rename(dest)


# --- retention --------------------------------------------------------------------------------------

def keep_policy(times: list[dt.datetime], keep_last: int, keep_daily: int, keep_weekly: int) -> set[int]:
    """Indexes to keep, as `restic forget --keep-last/--keep-daily/--keep-weekly` decides:
    the newest `keep_last`, then the newest of each of the last `keep_daily` days (and
    `keep_weekly` ISO weeks) that have a backup. Times in the server's time zone."""
    order = sorted(range(len(times)), key=lambda i: times[i], reverse=True)
    keep = set(order[:keep_last])
    for count, bucket in ((keep_daily, lambda t: t.astimezone().strftime("%Y-%m-%d")),
                          (keep_weekly, lambda t: "{:04d}-{:02d}".format(*t.astimezone().isocalendar()[:2]))):
        last = None
        for index in order:
            if count <= 0:
                break
            key = bucket(times[index])
            if key != last:
                keep.add(index)
                last = key
                count -= 1
    return keep


def apply_local_retention(config: Config) -> None:
    sets = local_sets(config)
    keep = keep_policy([s.created for s in sets], config.keep_last, config.keep_daily, config.keep_weekly)
    removed = [s for index, s in enumerate(sets) if index not in keep]
    for old in removed:
        shutil.rmtree(old.path)
    log(f"local retention: kept {len(keep)}, removed {len(removed)}"
        + (f" ({', '.join(s.name for s in removed)})" if removed else ""))
    # Leftovers of interrupted runs.
    for partial in config.backup_path.glob(".partial-*"):
        shutil.rmtree(partial, ignore_errors=True)


# --- restic -----------------------------------------------------------------------------------------

class Restic:
    def __init__(self, config: Config) -> None:
        if not config.restic_repository:
            raise BackupError("no off-site repository is configured (backup_restic_repository)")
        secrets = config.secrets()
        if not secrets.get("RESTIC_PASSWORD"):
            raise BackupError(f"the restic password is missing from {config.secrets_file} "
                              "(supply ONEBOX_BACKUP_RESTIC_PASSWORD to the deploy)")
        cache = Path(config.restic_cache_dir)
        cache.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "RESTIC_REPOSITORY": config.restic_repository,
            "RESTIC_CACHE_DIR": str(cache),
            # A known region spares the bucket-location lookup, which restic 0.18 retries for
            # minutes when the bucket does not exist yet (before `restic init` creates it).
            "AWS_DEFAULT_REGION": str(config.s3_region),
            **{key: value for key, value in secrets.items()
               if key in ("RESTIC_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")},
        }
        self.config = config

    def __call__(self, *args: str, what: str | None = None, stdout: Any = subprocess.PIPE) -> str:
        return run(["restic", "--quiet", *args], env=self.env, what=what or f"restic {args[0]}", stdout=stdout)

    def reachable(self, pauses: tuple[float, ...] = (1, 3)) -> None:
        """Fail in seconds when an S3 or REST server does not answer at all: restic itself
        retries a refused connection for 15 minutes before it gives up."""
        repository = self.config.restic_repository
        scheme, _, url = repository.partition(":")
        if scheme not in ("s3", "rest"):
            return  # sftp: the host may be an alias in root's ssh config
        parts = urlsplit(url)
        address = (parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        for pause in (*pauses, None):
            try:
                socket.create_connection(address, timeout=10).close()
                return
            except OSError as error:
                if pause is None:
                    raise BackupError(f"the off-site repository {repository} is unreachable "
                                      f"({address[0]}:{address[1]}: {error.strerror or error})") from None
                time.sleep(pause)

    def ensure_repository(self) -> None:
        """Initialise the repository on first use (`init` refuses an existing one, never overwrites)."""
        self.reachable()
        try:
            self("cat", "config", what="opening the off-site repository")
        except BackupError as error:
            if not any(sign in str(error) for sign in ("does not exist", "Is there a repository", "no such file")):
                raise
            unreachable = ("dial tcp", "connection refused", "no such host", "timeout", "certificate", "403", "Forbidden")
            if any(sign in str(error) for sign in unreachable):
                raise BackupError(f"the off-site repository is unreachable: {error}") from None
            log("initialising the off-site repository (restic init)")
            try:
                self("init", what="restic init")
            except BackupError as init_error:
                raise BackupError(f"{error}; and {init_error}") from None

    def snapshots(self) -> list[dict[str, Any]]:
        listing = json.loads(self("snapshots", "--json", "--tag", RESTIC_TAG, "--host", self.config.app_name) or "[]")
        for snapshot in listing:
            names = [tag[len(NAME_TAG):] for tag in snapshot.get("tags") or [] if tag.startswith(NAME_TAG)]
            snapshot["onebox_name"] = names[0] if names else None
        return sorted(listing, key=lambda s: s["time"])

    def upload(self, backup: BackupSet) -> None:
        local_time = backup.created.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        self("backup", "--host", self.config.app_name, "--tag", RESTIC_TAG, "--tag", NAME_TAG + backup.name,
             "--time", local_time, str(backup.path), what=f"restic backup of {backup.name}")
        log(f"uploaded {backup.name} off-site")

    def forget(self) -> None:
        c = self.config
        self("forget", "--host", c.app_name, "--tag", RESTIC_TAG, "--group-by", "host", "--keep-last", str(c.keep_last),
             "--keep-daily", str(c.keep_daily), "--keep-weekly", str(c.keep_weekly), "--prune",
             what="restic forget --prune")
        log("off-site retention applied (restic forget --prune)")

    def check(self) -> None:
        self("check", what="restic check")
        write_state(self.config.state_path / "last-check", f"{int(time.time())}\n")
        log("off-site repository checked (restic check)")

    def download(self, snapshot: dict[str, Any], into: Path) -> BackupSet:
        self("restore", snapshot["id"], "--target", str(into), what=f"restic restore of {snapshot['onebox_name']}")
        found = [path.parent for path in into.rglob(MANIFEST)]
        if len(found) != 1:
            raise BackupError(f"off-site snapshot {snapshot['short_id']} holds {len(found)} backups; expected one")
        return BackupSet(found[0])


def offsite_sync(config: Config) -> None:
    restic = Restic(config)
    restic.ensure_repository()
    present = {s["onebox_name"] for s in restic.snapshots()}
    for backup in local_sets(config):
        if backup.name not in present:
            restic.upload(backup)
    restic.forget()
    last_check = config.state_path / "last-check"
    interval = float(config.restic_check_interval_days) * 86400
    checked = float(last_check.read_text().strip()) if last_check.is_file() else 0.0
    if time.time() - checked >= interval - 3600:  # an hour's slack: a daily timer drifts
        restic.check()


# --- stopping and starting what writes ----------------------------------------------------------------

class Writers:
    """The API and workers: stopped while data is replaced, started and healthy afterwards.

    The release tool (onebox-release stop-app/start-app) knows the live release; without it,
    every running container of the projects <app_name>-* (releases) and the deps project's
    services other than postgres and redis."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.stopped: list[str] = []
        self.tool = Path(config.release_tool)

    def stop(self) -> None:
        if os.access(self.tool, os.X_OK):
            log(f"stopping the app ({self.tool} stop-app)")
            run([str(self.tool), "stop-app"], stdout=None, what=f"{self.tool} stop-app")
            return
        listing = run(["docker", "ps", "--format",
                       '{{.ID}} {{.Label "com.docker.compose.project"}} {{.Label "com.docker.compose.service"}}'],
                      what="docker ps")
        app = self.config.app_name
        for line in listing.splitlines():
            parts = line.split() + ["", ""]
            container_id, project, service = parts[0], parts[1], parts[2]
            if project.startswith(f"{app}-") or (project == app and service not in ("postgres", "redis")):
                self.stopped.append(container_id)
        if self.stopped:
            log(f"stopping {len(self.stopped)} app container(s)")
            run(["docker", "stop", *self.stopped], what="docker stop")

    def start(self) -> None:
        if os.access(self.tool, os.X_OK):
            log(f"starting the app ({self.tool} start-app)")
            run([str(self.tool), "start-app"], stdout=None, what=f"{self.tool} start-app")
            return
        if self.stopped:
            log(f"starting {len(self.stopped)} app container(s)")
            run(["docker", "start", *self.stopped], what="docker start")
            wait_healthy(self.stopped, float(self.config.start_timeout))


# --- restore ----------------------------------------------------------------------------------------

def restore_postgres(config: Config, pg: str, dump: Path) -> None:
    """Restore into a scratch database, then swap it in: a failed restore leaves the data as it was."""
    db, user = config.postgres_db, config.postgres_user
    scratch = f"{db[:40]}__onebox_restore"
    maintenance = "postgres" if db != "postgres" else "template1"
    log(f"restoring PostgreSQL into a scratch database {scratch}")
    run(psql_argv(config, pg, maintenance, f"DROP DATABASE IF EXISTS {quote_ident(scratch)} WITH (FORCE)",
                  f"CREATE DATABASE {quote_ident(scratch)} OWNER {quote_ident(user)} TEMPLATE template0"),
        what="creating the scratch database")
    try:
        with dump.open("rb") as archive:
            run(["docker", "exec", "-i", "-u", "postgres", pg, "pg_restore", "-U", user, "-d", scratch,
                 "--no-owner", "--role", user, "--exit-on-error", "--single-transaction"], stdin=archive,
                what="pg_restore")
    except BackupError:
        with contextlib.suppress(BackupError):
            run(psql_argv(config, pg, maintenance, f"DROP DATABASE IF EXISTS {quote_ident(scratch)} WITH (FORCE)"))
        raise
    log(f"replacing database {db} with the restored one")
    run(psql_argv(config, pg, maintenance, f"DROP DATABASE IF EXISTS {quote_ident(db)} WITH (FORCE)",
                  f"ALTER DATABASE {quote_ident(scratch)} RENAME TO {quote_ident(db)}"),
        what="swapping in the restored database")


# Shell steps run in a one-off container of the Redis image on its volume: the previous data
# moves aside (and comes back if the restore fails) before the snapshot takes its place.
REDIS_STAGE = (
    "set -e; cat > /data/.onebox-restore.rdb; rm -rf /data/.onebox-previous; mkdir /data/.onebox-previous; "
    "find /data -mindepth 1 -maxdepth 1 ! -name .onebox-restore.rdb ! -name .onebox-previous "
    "-exec mv {} /data/.onebox-previous/ \\; ; mv /data/.onebox-restore.rdb /data/dump.rdb"
)
REDIS_ROLLBACK = (
    "set -e; test -d /data/.onebox-previous; "
    "find /data -mindepth 1 -maxdepth 1 ! -name .onebox-previous -exec rm -rf {} +; "
    "find /data/.onebox-previous -mindepth 1 -maxdepth 1 -exec mv {} /data/ \\; ; rmdir /data/.onebox-previous"
)
REDIS_DONE = "rm -rf /data/.onebox-previous"


def restore_redis(config: Config, redis: str, rdb: Path, timeout: float = 300) -> None:
    """Load the RDB snapshot with a one-off server that writes a fresh append-only file from
    it, then start the real container: with appendonly on, Redis ignores a lone dump.rdb."""
    info = inspect(redis)
    image = info["Config"]["Image"]
    mount = next((m for m in info["Mounts"] if m.get("Type") == "volume" and m["Destination"] == "/data"), None)
    if mount is None:
        raise BackupError(f"the Redis container {redis[:12]} has no volume at /data; cannot restore into it")
    volume = mount["Name"]
    helper = f"{config.app_name}-redis-restore"
    shell = ["docker", "run", "--rm", "-i", "--network", "none", "-v", f"{volume}:/data", "--entrypoint", "sh", image, "-c"]
    log(f"restoring Redis into volume {volume}")
    run(["docker", "stop", redis], what="stopping Redis")
    try:
        with rdb.open("rb") as snapshot:
            run([*shell, REDIS_STAGE], stdin=snapshot, what="writing the snapshot into the Redis volume")
        try:
            keys = rewrite_append_only_file(helper, image, volume, timeout)
        except BackupError:
            with contextlib.suppress(BackupError):
                run([*shell, REDIS_ROLLBACK], stdin=subprocess.DEVNULL, what="putting the previous Redis data back")
            raise
        run([*shell, REDIS_DONE], stdin=subprocess.DEVNULL, what="removing the previous Redis data")
        log(f"Redis data restored ({', '.join(f'{k}: {v}' for k, v in keys.items()) or 'no keys'})")
    finally:
        run(["docker", "start", redis], what="starting Redis")
    wait_healthy([redis], timeout)


def rewrite_append_only_file(helper: str, image: str, volume: str, timeout: float) -> dict[str, str]:
    """A one-off Redis loads dump.rdb (append-only off), then writes the append-only file from it."""
    subprocess.run(["docker", "rm", "-f", helper], capture_output=True, check=False)
    try:
        run(["docker", "run", "-d", "--name", helper, "--network", "none", "-v", f"{volume}:/data", image,
             "redis-server", "--dir", "/data", "--appendonly", "no", "--save", ""], what="starting a one-off Redis")
        deadline = time.monotonic() + timeout
        while subprocess.run(["docker", "exec", helper, "redis-cli", "ping"], capture_output=True,
                             check=False).stdout.strip() != b"PONG":
            if time.monotonic() > deadline or not inspect(helper)["State"]["Running"]:
                logs = subprocess.run(["docker", "logs", "--tail", "5", helper], capture_output=True, text=True,
                                      check=False)
                raise BackupError("a one-off Redis could not load the snapshot: "
                                  + " | ".join((logs.stdout + logs.stderr).strip().splitlines()))
            time.sleep(0.3)
        keys = redis_info(helper, "keyspace")
        redis_cli(helper, "config", "set", "appendonly", "yes")
        while True:
            persistence = redis_info(helper, "persistence")
            if (persistence.get("aof_enabled") == "1" and persistence.get("aof_rewrite_in_progress") == "0"
                    and persistence.get("aof_rewrite_scheduled") == "0"):
                break
            if time.monotonic() > deadline:
                raise BackupError("Redis did not write its append-only file from the snapshot in time")
            time.sleep(0.3)
        if persistence.get("aof_last_bgrewrite_status") != "ok":
            raise BackupError("Redis failed to write its append-only file from the snapshot")
        run(["docker", "stop", helper], what="stopping the one-off Redis")
        return keys
    finally:
        subprocess.run(["docker", "rm", "-f", helper], capture_output=True, check=False)


def choose(sets: list[Any], name: str | None, name_of: Any) -> Any:
    if name:
        matches = [item for item in sets if name_of(item) == name]
        if not matches:
            raise BackupError(f"no backup named {name!r}; `onebox-backup list` shows them")
        return matches[-1]
    candidates = [item for item in sets if not str(name_of(item)).endswith(f"-{SAFETY_LABEL}")]
    if not candidates:
        raise BackupError("there is no backup to restore (safety dumps taken before a restore are only chosen by --name)")
    return candidates[-1]


def restore(config: Config, source: str, name: str | None, safety_dump: bool) -> None:
    scratch: Path | None = None
    try:
        if source == "local":
            backup = choose(local_sets(config), name, lambda s: s.name)
        else:
            restic = Restic(config)
            restic.reachable()
            snapshot = choose(restic.snapshots(), name, lambda s: s["onebox_name"])
            config.backup_path.mkdir(mode=0o700, parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=config.backup_path))
            log(f"downloading {snapshot['onebox_name']} from the off-site repository")
            backup = restic.download(snapshot, scratch)
        backup.verify()
        log(f"restoring backup {backup.name} (label {backup.label}, taken {backup.created.isoformat()})")
        pg = require_container(config, "postgres") if PG_FILE in backup.manifest["files"] else None
        redis = require_container(config, "redis") if REDIS_FILE in backup.manifest["files"] else None
        if safety_dump:
            take_backup(config, SAFETY_LABEL)
        if scratch is not None and not (config.backup_path / backup.name).exists():
            backup.path.rename(config.backup_path / backup.name)  # keep the downloaded backup locally too
            backup = BackupSet(config.backup_path / backup.name)
        writers = Writers(config)
        writers.stop()
        try:
            if pg:
                restore_postgres(config, pg, backup.path / PG_FILE)
            if redis:
                restore_redis(config, redis, backup.path / REDIS_FILE)
        finally:
            writers.start()
        log(f"restored {backup.name}")
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


# --- commands -----------------------------------------------------------------------------------------

def disabled(config: Config) -> bool:
    if not config.enabled:
        log("backups are disabled (backup_enabled = False in the deploy's settings); nothing done")
    return not config.enabled


def cmd_dump(config: Config, args: argparse.Namespace) -> None:
    check_label(args.label)
    if disabled(config):
        return
    with locked(config):
        take_backup(config, args.label)


def cmd_run(config: Config, args: argparse.Namespace) -> None:
    if disabled(config):
        return
    started = time.time()
    state = config.state_path
    try:
        with locked(config):
            backup = take_backup(config, SCHEDULED_LABEL)
            if backup is None:
                raise BackupError(f"no PostgreSQL or Redis data in project {config.app_name} to back up")
            apply_local_retention(config)
        if config.restic_repository:
            with locked(config, "offsite.lock"):
                offsite_sync(config)
    except BaseException as error:
        reason = str(error) if isinstance(error, BackupError) else f"{type(error).__name__}: {error}"
        write_state(state / "last-run.json", json.dumps({
            "result": "failed", "started": int(started), "finished": int(time.time()), "error": reason}) + "\n")
        raise
    finished = int(time.time())
    write_state(state / "last-run.json", json.dumps({
        "result": "ok", "started": int(started), "finished": finished, "name": backup.name,
        "offsite": bool(config.restic_repository)}) + "\n")
    write_state(state / "last-success", f"{finished}\n")
    log(f"run finished in {time.time() - started:.1f} s")


def cmd_list(config: Config, args: argparse.Namespace) -> None:
    print(f"local ({config.backup_dir}):")
    for backup in local_sets(config):
        size = sum(meta["size"] for meta in backup.manifest["files"].values())
        print(f"  {backup.name}  {size / 1e6:10.1f} MB")
    if config.restic_repository:
        print(f"off-site ({config.restic_repository}):")
        for snapshot in Restic(config).snapshots():
            print(f"  {snapshot['onebox_name']}  {snapshot['short_id']}")
    else:
        print("off-site: not configured")


def cmd_restore(config: Config, args: argparse.Namespace) -> None:
    with locked(config):
        restore(config, args.source, args.name, not args.no_safety_dump)


def cmd_check(config: Config, args: argparse.Namespace) -> None:
    with locked(config, "offsite.lock"):
        Restic(config).check()


def cmd_status(config: Config, args: argparse.Namespace) -> None:
    for name in ("last-run.json", "last-success", "last-check"):
        path = config.state_path / name
        print(f"{name}: {path.read_text().strip() if path.is_file() else '(none)'}")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="onebox-backup", description=__doc__.split("\n\n")[0])
    top.add_argument("--config", default=os.environ.get(CONFIG_ENV, DEFAULT_CONFIG), help="JSON configuration")
    commands = top.add_subparsers(dest="command", required=True)
    dump = commands.add_parser("dump", help="one backup now")
    dump.add_argument("--label", required=True, help="part of the backup's name, e.g. release-42")
    dump.set_defaults(func=cmd_dump)
    commands.add_parser("run", help="backup, retention, off-site upload (the timer)").set_defaults(func=cmd_run)
    commands.add_parser("list", help="local and off-site backups").set_defaults(func=cmd_list)
    restore_cmd = commands.add_parser("restore", help="replace the data with a backup (the app is stopped meanwhile)")
    restore_cmd.add_argument("--from", dest="source", choices=["local", "offsite"], required=True)
    restore_cmd.add_argument("--name", help="the backup to restore (default: the latest that is not a safety dump)")
    restore_cmd.add_argument("--no-safety-dump", action="store_true", help="skip the dump of the current data")
    restore_cmd.set_defaults(func=cmd_restore)
    commands.add_parser("check", help="restic check of the off-site repository").set_defaults(func=cmd_check)
    commands.add_parser("status", help="the last run's result").set_defaults(func=cmd_status)
    return top


def terminated(signum: int, frame: object) -> None:
    # A stopped unit (systemctl stop, its time limit) fails like any run: recorded, with the reason.
    raise BackupError(f"stopped by {signal.Signals(signum).name} (systemctl stop, or the unit's time limit)")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    os.umask(0o077)
    signal.signal(signal.SIGTERM, terminated)
    try:
        if os.geteuid() != 0:
            raise BackupError("run as root (the backups and their secrets are root only)")
        args.func(Config(args.config), args)
    except BackupError as error:
        print(f"onebox-backup: {args.command} failed: {error}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print(f"onebox-backup: {args.command} interrupted", file=sys.stderr, flush=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
