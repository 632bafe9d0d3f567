"""The commands of onebox-backup (the package's docstring lists them) and `main(argv)`."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import sys
import time
from contextlib import AbstractContextManager

from onebox import contract
from onebox.server import backup as package
from onebox.server.backup import pitr
from onebox.server.backup.config import CONFIG_ENV, LAST_CHECK, SCHEDULED_LABEL, BackupError, Config
from onebox.server.backup.docker import require_container
from onebox.server.backup.dump import take_backup
from onebox.server.backup.restic import Restic, offsite_sync
from onebox.server.backup.restore import restore, restore_point_in_time
from onebox.server.backup.sets import apply_local_retention, check_label, local_sets
from onebox.server.basics import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    OneboxError,
    UsageError,
    file_lock,
    log,
    set_prefix,
    write_atomic,
    write_json,
)
from onebox.server.model import chosen_apps

PROG = "onebox-backup"


def locked(config: Config, command: str, name: str = "lock") -> AbstractContextManager[None]:
    """One dump, retention or restore at a time (a release's dump waits for the nightly one).
    The off-site upload has a lock of its own: a release never waits for an upload."""
    return file_lock(config.state_path / name, float(config.lock_timeout),
                     holder=lambda: f"{PROG} {command} (pid {os.getpid()})",
                     on_wait=lambda who: log(f"waiting for {who} to finish"))


def disabled(config: Config) -> bool:
    if not config.enabled:
        log("backups are disabled (backup_enabled = False in the deploy's settings); nothing done")
    return not config.enabled


def cmd_dump(config: Config, args: argparse.Namespace) -> None:
    check_label(args.label)
    if disabled(config):
        return
    with locked(config, "dump"):
        take_backup(config, args.label)


def cmd_run(config: Config, args: argparse.Namespace) -> None:
    if disabled(config):
        return
    started = time.time()
    state = config.state_path
    try:
        with locked(config, "run"):
            backup = take_backup(config, SCHEDULED_LABEL)
            if backup is None:
                raise BackupError(f"no PostgreSQL or Redis data in project {config.app_name} to back up")
            apply_local_retention(config)
            if config.pitr_enabled:
                pitr.scheduled_backup(config)
        if config.restic_repository:
            with locked(config, "run", "offsite.lock"):
                offsite_sync(config)
    except BaseException as error:
        reason = str(error) if isinstance(error, OneboxError) else f"{type(error).__name__}: {error}"
        write_json(state / contract.BACKUP_LAST_RUN, {"result": "failed", "started": int(started),
                                             "finished": int(time.time()), "error": reason}, mode=0o644)
        raise
    finished = int(time.time())
    write_json(state / contract.BACKUP_LAST_RUN, {"result": "ok", "started": int(started), "finished": finished,
                                         "name": backup.name, "offsite": bool(config.restic_repository)}, mode=0o644)
    write_atomic(state / contract.BACKUP_LAST_SUCCESS, f"{finished}\n", 0o644)
    log(f"run finished in {time.time() - started:.1f} s")


def cmd_list(config: Config, args: argparse.Namespace) -> None:
    print(f"local ({config.backup_dir}):")
    for backup in local_sets(config):
        print(f"  {backup.name}  {backup.size / 1e6:10.1f} MB")
    if config.restic_repository:
        restic = Restic(config)
        print(f"off-site ({config.restic_repository}, server {restic.host}, app {config.app_name}):")
        for snapshot in restic.snapshots():
            print(f"  {snapshot['onebox_name']}  {snapshot['short_id']}  {snapshot['time']}")
        legacy = restic.legacy_snapshots()
        if legacy:
            print(f"off-site, uploaded by onebox 0.1 (restic host {config.app_name}, any server of the app):")
            for snapshot in legacy:
                print(f"  {snapshot['onebox_name']}  {snapshot['short_id']}  {snapshot['time']}")
    else:
        print("off-site: not configured")
    if config.pitr_enabled:
        print_windows(config)


def print_windows(config: Config) -> None:
    """The point-in-time recovery windows: `onebox restore --to` takes any moment in them."""
    pg = require_container(config, "postgres")
    state = pitr.archiver(config, pg)
    last = pitr.iso(dt.datetime.fromtimestamp(state["last_archived"], dt.UTC)) if state["last_archived"] else "none yet"
    end = f"now (the last WAL archived at {last}{', newer writes pending' if state['pending'] else ''})"
    for repo in pitr.repos(config):
        start = pitr.window_start(config, pg, repo)
        where = "local" if repo == 1 else "off-site"
        print(f"point-in-time ({where}): " + (f"from {pitr.iso(start)} to {end}" if start else "no base backup yet"))


def cmd_restore(config: Config, args: argparse.Namespace) -> None:
    if args.to and args.name:
        raise UsageError("--to and --name: one or the other (a point in time, or a dump by name)")
    try:
        target = contract.recovery_target(args.to) if args.to else None
    except ValueError as error:
        raise UsageError(f"--to: {error}") from None
    with locked(config, "restore"):
        if args.to:
            restore_point_in_time(config, args.source, target, not args.no_safety_dump)
        else:
            restore(config, args.source, args.name, not args.no_safety_dump)


def cmd_pitr_setup(config: Config, args: argparse.Namespace) -> None:
    if not config.pitr_enabled:
        log("point-in-time recovery is off (backup_pitr_enabled); nothing done")
        return
    with locked(config, "pitr-setup"):
        pitr.setup(config)


def cmd_check(config: Config, args: argparse.Namespace) -> None:
    with locked(config, "check", "offsite.lock"):
        Restic(config).check()


def cmd_status(config: Config, args: argparse.Namespace) -> None:
    for name in (contract.BACKUP_LAST_RUN, contract.BACKUP_LAST_SUCCESS, LAST_CHECK):
        path = config.state_path / name
        print(f"{name}: {path.read_text().strip() if path.is_file() else '(none)'}")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog=PROG, description=(package.__doc__ or PROG).split("\n\n")[0])
    top.add_argument("--config", default=os.environ.get(CONFIG_ENV), help="JSON configuration (instead of --app)")
    top.add_argument("--app", help="the app, by name (default: the server's only app)")
    commands = top.add_subparsers(dest="command", required=True)
    dump = commands.add_parser("dump", help="one backup now")
    dump.add_argument("--label", required=True, help="part of the backup's name, e.g. release-42")
    dump.set_defaults(func=cmd_dump)
    commands.add_parser("run", help="backup, retention, off-site upload (the timer)").set_defaults(func=cmd_run)
    commands.add_parser("list", help="local and off-site backups").set_defaults(func=cmd_list)
    restore_cmd = commands.add_parser("restore", help="replace the data with a backup (the app is stopped meanwhile)")
    restore_cmd.add_argument("--from", dest="source", choices=contract.RESTORE_SOURCES, required=True)
    restore_cmd.add_argument("--name", help="the backup to restore (default: the latest that is not a safety dump)")
    restore_cmd.add_argument("--to", help="point-in-time recovery: an ISO 8601 time with its zone, or 'latest'")
    restore_cmd.add_argument("--no-safety-dump", action="store_true", help="skip the dump of the current data")
    restore_cmd.set_defaults(func=cmd_restore)
    commands.add_parser("pitr-setup", help="pgBackRest's stanza and first base backup").set_defaults(func=cmd_pitr_setup)
    commands.add_parser("check", help="restic check of the off-site repository").set_defaults(func=cmd_check)
    commands.add_parser("status", help="the last run's result").set_defaults(func=cmd_status)
    return top


def config_path(app: str | None) -> str:
    """The backup configuration of the app named (or of the server's only app), from the apps registry."""
    chosen = chosen_apps(app)
    return contract.AppFiles(chosen[0].key if chosen else None).backup_config


def terminated(signum: int, frame: object) -> None:
    # A stopped unit (systemctl stop, its time limit) fails like any run: recorded, with the reason.
    raise BackupError(f"stopped by {signal.Signals(signum).name} (systemctl stop, or the unit's time limit)")


def main(argv: list[str] | None = None) -> int:
    set_prefix(PROG)
    args = parser().parse_args(argv)
    os.umask(0o077)
    signal.signal(signal.SIGTERM, terminated)
    try:
        if os.geteuid() != 0:
            raise BackupError("run as root (the backups and their secrets are root only)")
        args.func(Config.read(args.config or config_path(args.app)), args)
    except OneboxError as error:
        print(f"{PROG}: {args.command} failed: {error}", file=sys.stderr, flush=True)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: {args.command} interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    return EXIT_OK
