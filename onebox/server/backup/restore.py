"""Putting a backup back: choose it (local or off-site), keep a safety dump, stop the app,
restore each service, start the app again."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from onebox.server import docker
from onebox.server.backup import pitr
from onebox.server.backup.config import PG_FILE, REDIS_FILE, SAFETY_LABEL, BackupError, Config
from onebox.server.backup.docker import require_container, wait_healthy
from onebox.server.backup.dump import take_backup
from onebox.server.backup.postgres import restore_postgres
from onebox.server.backup.redis import restore_redis
from onebox.server.backup.restic import Restic
from onebox.server.backup.sets import BackupSet, local_sets
from onebox.server.basics import OneboxError, log, run


class Writers:
    """The API and workers: stopped while data is replaced, started and healthy afterwards.

    The release tool (onebox-release stop-app/start-app) knows the live release; without it,
    every running container of the projects <app_name>-* (releases) and the deps project's
    services other than postgres and redis."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.stopped: list[str] = []
        self.tool = Path(config.release_tool)

    def _release_tool(self, action: str, doing: str) -> bool:
        """Whether the release tool is there; when it is, it does `action` (its output is ours)."""
        if not os.access(self.tool, os.X_OK):
            return False
        log(f"{doing} the app ({self.tool} {action})")
        app = ["--app-dir", self.config.app_dir] if self.config.app_dir else []
        run([str(self.tool), *app, action], stdout_file=sys.stdout, what=f"{self.tool} {action}")
        return True

    def stop(self) -> None:
        if self._release_tool("stop-app", "stopping"):
            return
        listing = run(docker.ps_projects(), what="docker ps").stdout
        app = self.config.app_name
        for line in listing.splitlines():
            parts = line.split() + ["", ""]
            container_id, project, service = parts[0], parts[1], parts[2]
            if project.startswith(f"{app}-") or (project == app and service not in ("postgres", "redis")):
                self.stopped.append(container_id)
        if self.stopped:
            log(f"stopping {len(self.stopped)} app container(s)")
            run(docker.stop(*self.stopped), what="docker stop")

    def mark(self, note: str) -> None:
        """The restore on the dashboard's graphs (through the release tool, which keeps the app's
        changes; without it there is nothing to mark). The data is back either way: a mark that
        cannot be written is said, not raised."""
        if not os.access(self.tool, os.X_OK):
            return
        app = ["--app-dir", self.config.app_dir] if self.config.app_dir else []
        try:
            marked = run([str(self.tool), *app, "record-event", "restore", "--note", note], check=False).ok
        except OneboxError:
            marked = False
        if not marked:
            log("could not mark the restore on the dashboard's graphs")

    def start(self) -> None:
        if self._release_tool("start-app", "starting"):
            return
        if self.stopped:
            log(f"starting {len(self.stopped)} app container(s)")
            run(docker.start(*self.stopped), what="docker start")
            wait_healthy(self.stopped, float(self.config.start_timeout))


def choose(sets: list[Any], name: str | None, name_of: Callable[[Any], Any]) -> Any:
    if name:
        matches = [item for item in sets if name_of(item) == name]
        if not matches:
            raise BackupError(f"no backup named {name!r}; `onebox-backup list` shows them")
        return matches[-1]
    candidates = [item for item in sets if not str(name_of(item)).endswith(f"-{SAFETY_LABEL}")]
    if not candidates:
        raise BackupError("there is no backup to restore (safety dumps taken before a restore are only chosen by --name)")
    return candidates[-1]


def offsite_snapshot(restic: Restic, name: str | None) -> dict[str, Any]:
    """This server's snapshot of this app (the newest, or the one named); when it has none, one
    uploaded by onebox 0.1 (told apart by app name only), saying so."""
    config = restic.config
    try:
        return choose(restic.snapshots(), name, lambda s: s["onebox_name"])
    except BackupError as error:
        legacy = restic.legacy_snapshots()
        if not legacy:
            raise BackupError(f"{error} (off-site: none of server {restic.host}, app {config.app_name})"
                              + other_servers_hint(restic)) from None
        log(f"no off-site backup{f' named {name}' if name else ''} of server {restic.host}, app {config.app_name}: "
            f"taking one uploaded by onebox 0.1 (restic host {config.app_name}, any server of that app)")
        return choose(legacy, name, lambda s: s["onebox_name"])


def other_servers_hint(restic: Restic) -> str:
    """A server rebuilt under another inventory name (a new IP) finds none of its own snapshots:
    name the servers that have this app's, and the setting that makes this one take theirs over."""
    others = [name for name in restic.servers_with_app() if name != restic.host]
    if not others:
        return ""
    return (f"; the repository has backups of app {restic.config.app_name} from server(s) {', '.join(others)}: "
            f"if this server replaces {others[0]}, set backup_server_name={others[0]} "
            f"(ONEBOX_BACKUP_SERVER_NAME), converge, and restore again")


def download(config: Config, name: str | None) -> tuple[BackupSet, Path]:
    """The chosen off-site backup, downloaded into a scratch directory of backup_dir."""
    restic = Restic(config)
    restic.reachable()
    snapshot = offsite_snapshot(restic, name)
    log(f"off-site snapshot {snapshot.get('short_id') or snapshot['id'][:8]}: {snapshot['onebox_name']}, "
        f"host {snapshot.get('hostname')}, taken {snapshot['time']}")
    config.backup_path.mkdir(mode=0o700, parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=config.backup_path))
    try:
        log(f"downloading {snapshot['onebox_name']} from the off-site repository")
        return restic.download(snapshot, scratch), scratch
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def restore(config: Config, source: str, name: str | None, safety_dump: bool) -> None:
    scratch: Path | None = None
    try:
        if source == "local":
            backup = choose(local_sets(config), name, lambda s: s.name)
        else:
            backup, scratch = download(config, name)
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
        restored = False
        try:
            writers.stop()  # in the try: a stop that failed halfway still has the app started again
            # Each service's restore leaves its data as it was when it fails: the app comes back on it.
            if pg:
                restore_postgres(config, pg, backup.path / PG_FILE)
            if redis:
                restore_redis(config, redis, backup.path / REDIS_FILE)
            restored = True
        finally:
            # Marked either way: the app was stopped, and a failed restore may have replaced PostgreSQL only.
            writers.mark(backup.name if restored else f"{backup.name} (failed)")
            writers.start()
        log(f"restored {backup.name}")
        if pg and config.pitr_enabled:
            setup_after_restore(config)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def restore_point_in_time(config: Config, source: str, target: dt.datetime | None, safety_dump: bool) -> None:
    """PostgreSQL back to `target` (None: the end of the archive) from pgBackRest's repository on this
    server (local) or off-site; Redis keeps its data (it is not archived continuously)."""
    if not config.pitr_enabled:
        raise BackupError(f"point-in-time recovery is off for app {config.app_name} (backup_pitr_enabled): restore a "
                          "dump instead (`onebox restore INVENTORY --from local|offsite [--name NAME] --yes`)")
    if source == "offsite" and not config.pitr_offsite:
        raise BackupError("no off-site point-in-time copy: backup_restic_repository is not an s3:https:// bucket")
    pg = require_container(config, "postgres")
    pitr.check_target(config, pg, source, target)  # refused before anything stops
    label = f"{pitr.iso(target) if target else 'the end of the archive'} ({source} point-in-time)"
    log(f"restoring PostgreSQL to {label}; Redis keeps its data")
    if safety_dump:
        take_backup(config, SAFETY_LABEL)
    writers = Writers(config)
    restored = False
    try:
        writers.stop()
        pitr.restore_to(config, source, target)
        restored = True
    finally:
        writers.mark(label if restored else f"{label} (failed)")
        writers.start()
    log(f"restored to {label}")
    setup_after_restore(config)


def setup_after_restore(config: Config) -> None:
    """Point-in-time recovery of the restored database: a dump restored into a new volume, or a new
    timeline, needs its stanza (upgraded) and a base backup. The data is back either way: a failure
    here is said, and the backup timer and the next converge try again."""
    try:
        pitr.setup(config)
    except OneboxError as error:
        log(f"WARNING: the data is restored, but pgBackRest's setup after it failed: {error}")
