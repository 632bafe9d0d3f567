"""The pyinfra command line each `onebox` subcommand runs (onebox/cli.py parses and runs it).

A subcommand that changes a server runs a deploy file with its arguments as pyinfra data
(`--data key=value`, checked by onebox.operator_args); the others run one server command
through `pyinfra exec`. Nothing here runs anything: an argument onebox will not pass on
raises Refused first.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pyinfra.api import StringCommand

from onebox import kit, server_calls
from onebox.operator_args import (
    APP,
    MAINTENANCE,
    MAINTENANCE_MESSAGE,
    PURGE_CONFIRM,
    RESTORE_CONFIRM,
    RESTORE_FROM,
    RESTORE_NAME,
    RESTORE_SOURCES,
    RESTORE_TO,
    ROLLBACK_TO,
    SERVICE_NAME,
    Refused,
    check_maintenance_message,
    checked_app_name,
    checked_backup_name,
    checked_release_id,
    recovery_target_problem,
)

PYINFRA = str(Path(sys.executable).with_name("pyinfra"))


def deploy_file(inventory: str, name: str) -> str:
    """The deploy directory's deploys/<name>.py (the inventory's folder's sibling) when it has one, as the
    user would type it, else onebox's own: a deploy directory may add roles to its site.py."""
    own = Path(inventory).resolve().parent.parent / "deploys" / f"{name}.py"
    path = own if own.is_file() else kit.deploy_file(name)
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _kept_as_text(value: str) -> bool:
    """Whether pyinfra's `--data key=value` keeps `value` a string (pyinfra_cli.util.parse_cli_arg)."""
    if value.lower() in ("true", "false"):
        return False
    try:
        int(value)
        return False
    except ValueError:
        pass
    try:
        json.loads(value)
        return False
    except ValueError:
        return True


def data_flag(key: str, value: str) -> list[str]:
    """`--data key=value`, the value JSON-quoted when pyinfra would otherwise read it as a number, a boolean or JSON."""
    return ["--data", f"{key}={value if _kept_as_text(value) else json.dumps(value, ensure_ascii=False)}"]


def app_flags(app: str | None) -> list[str]:
    """A deploy file's --data for --app NAME (checked)."""
    name = checked_app_name(app or "")
    return data_flag(APP, name) if name else []


def checked_app(app: str | None) -> str | None:
    """A server tool's --app NAME (checked), or None: the server's one app."""
    return checked_app_name(app or "") or None


def deploy_argv(inventory: str, dry: bool = False, extra: Sequence[str] = ()) -> list[str]:
    # --dry without -y: pyinfra detects the changes (and --diff says why), then stops.
    mode = ["--dry", "--diff"] if dry else []
    return [PYINFRA, *([] if dry else ["-y"]), inventory, deploy_file(inventory, "site"), *mode, *extra]


def rollback_argv(inventory: str, release_id: str | None = None, app: str | None = None) -> list[str]:
    release_id = checked_release_id(release_id or "")
    return [PYINFRA, "-y", inventory, deploy_file(inventory, "rollback"),
            *(data_flag(ROLLBACK_TO, release_id) if release_id else []), *app_flags(app)]


def restore_argv(inventory: str, source: str | None, name: str | None = None, yes: bool = False,
                 app: str | None = None, to: str | None = None) -> list[str]:
    if not yes:
        raise Refused("onebox: a restore REPLACES the server's PostgreSQL database and Redis data with a backup "
                      "(a safety dump of the current data is taken first). Nothing was run. To go ahead, add --yes: "
                      "onebox restore INVENTORY --from local|offsite [--name NAME] --yes")
    if source is None and to:
        source = "local"  # a point in time: this server's repository unless --from offsite says otherwise
    if source not in RESTORE_SOURCES:
        raise Refused(f"onebox: --from must be 'local' or 'offsite' (got {source!r}; only --to defaults to "
                      "local); nothing was run")
    name = checked_backup_name(name or "")
    problem = recovery_target_problem(name or "", to or "")
    if problem:
        raise Refused(f"onebox: {problem}; nothing was run")
    return [PYINFRA, "-y", inventory, deploy_file(inventory, "restore"), *data_flag(RESTORE_CONFIRM, "yes"),
            *data_flag(RESTORE_FROM, source), *(data_flag(RESTORE_NAME, name) if name else []),
            *(data_flag(RESTORE_TO, to) if to else []), *app_flags(app)]


def backup_now_argv(inventory: str, app: str | None = None) -> list[str]:
    return [PYINFRA, "-y", inventory, deploy_file(inventory, "backup_now"), *app_flags(app)]


def purge_argv(inventory: str, app: str | None, yes: bool = False) -> list[str]:
    if not app:
        raise Refused("onebox: purge needs --app NAME (an app in apps_removed); nothing was run")
    if not yes:
        raise Refused(f"onebox: a purge DELETES app {app}'s database, Redis data, volumes, releases and backups for "
                      f"good. Nothing was run. To go ahead, add --yes: onebox purge INVENTORY --app {app} --yes")
    return [PYINFRA, "-y", inventory, deploy_file(inventory, "purge"), *app_flags(app), *data_flag(PURGE_CONFIRM, "yes")]


def maintenance_argv(inventory: str, on: bool, message: str | None = None, app: str | None = None) -> list[str]:
    message = check_maintenance_message(message or "")
    if message and not on:
        raise Refused("onebox: --message goes with `maintenance on` only; nothing was run")
    return [PYINFRA, "-y", inventory, deploy_file(inventory, "maintenance"), *data_flag(MAINTENANCE, "on" if on else "off"),
            *(data_flag(MAINTENANCE_MESSAGE, message) if message else []), *app_flags(app)]


def exec_argv(inventory: str, remote: StringCommand) -> list[str]:
    """`pyinfra exec` of one server command (onebox.server_calls)."""
    return [PYINFRA, "-y", inventory, "exec", "--", server_calls.as_shell(remote)]


def logs_argv(inventory: str, follow: bool = False, lines: int | None = None, raw: bool = False,
              service: str | None = None, app: str | None = None) -> list[str]:
    if service and not SERVICE_NAME.match(service):
        raise Refused(f"onebox: {service!r} is not a service name (api, worker, postgres, redis, ...); nothing was run")
    return exec_argv(inventory, server_calls.release_tool_for(
        checked_app(app), "logs", *(["-f"] if follow else []), *(["-n", str(lines)] if lines is not None else []),
        *(["--raw"] if raw else []), *([service] if service else [])))


def run_argv(inventory: str, command: Sequence[str], app: str | None = None) -> list[str]:
    if not command:
        raise Refused("onebox: run needs a command: onebox run INVENTORY -- COMMAND...; nothing was run")
    return exec_argv(inventory, server_calls.release_tool_for(checked_app(app), "run", "--", *command))


def plan(args: argparse.Namespace) -> tuple[list[str], bool]:
    """The pyinfra command line for parsed arguments, and whether it is a `pyinfra exec` (filtered output).
    Raises Refused before anything runs."""
    inventory = args.inventory
    if args.command == "deploy":
        return deploy_argv(inventory, args.dry, args.rest), False
    app = getattr(args, "app", None)
    if args.command == "rollback":
        return rollback_argv(inventory, args.release_id, app), False
    if args.command == "restore":
        return restore_argv(inventory, args.source, args.name, args.yes, app, args.to), False
    if args.command == "purge":
        return purge_argv(inventory, app, args.yes), False
    if args.command == "backup":
        return (backup_now_argv(inventory, app), False) if args.action == "now" else \
            (exec_argv(inventory, server_calls.backup_tool_for(checked_app(app), "list")), True)
    if args.command == "maintenance":
        return maintenance_argv(inventory, args.action == "on", getattr(args, "message", None), app), False
    if args.command in ("status", "releases"):
        return exec_argv(inventory, server_calls.release_tool_for(checked_app(app), args.command)), True
    if args.command == "logs":
        return logs_argv(inventory, args.follow, args.lines, args.raw, args.service, app), True
    if args.command == "run":
        return run_argv(inventory, [*args.words, *args.rest], app), True
    raise AssertionError(args.command)
