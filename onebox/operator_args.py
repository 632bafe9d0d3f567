"""The operator's arguments, checked: by `onebox` before any connection, and again by the deploy
files (deploys/rollback.py, restore.py, backup_now.py, maintenance.py, purge.py) on the pyinfra
data they are given, before any operation. One check for both, so `onebox rollback` and
`pyinfra ... deploys/rollback.py --data ...` refuse the same values with the same words.

Only the standard library and onebox.contract: a deploy file imports this, never the command line.
"""

from __future__ import annotations

import re
from typing import Any

from onebox import contract
from onebox.contract import check_backup_name, check_release_id

# The pyinfra data the deploy files read (`--data key=value`); not settings: they stay out of the settings model.
ROLLBACK_TO = "onebox_rollback_to"
RESTORE_CONFIRM = "onebox_restore_confirm"
RESTORE_FROM = "onebox_restore_from"
RESTORE_NAME = "onebox_restore_name"
RESTORE_TO = "onebox_restore_to"  # point-in-time recovery: an ISO 8601 time with its zone, or "latest"
MAINTENANCE = "onebox_maintenance"
MAINTENANCE_MESSAGE = "onebox_maintenance_message"
APP = "onebox_app"
PURGE_CONFIRM = "onebox_purge_confirm"

# What an argument may be.
APP_NAME = re.compile(contract.APP_NAME_PATTERN)
RESTORE_SOURCES = contract.RESTORE_SOURCES
MAINTENANCE_MESSAGE_MAX = 500
SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z")


class Refused(ValueError):
    """An argument onebox will not pass on; the message says which and why. Nothing was run."""


def data_text(data: Any, key: str) -> str:
    """A text value of pyinfra data (`--data key=value`), "" when absent. pyinfra reads
    true/false, numbers and JSON as such: a value it did not keep as text is refused."""
    value = data.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    raise Refused(f"onebox: {key}: pyinfra read {value!r} as {type(value).__name__}, not text; "
                  f"give it as a JSON string (--data '{key}=\"...\"'); nothing was changed")


def _checked(check, value: str) -> str | None:  # noqa: ANN001 - a contract.check_* function
    """An operator's argument through its contract check, or None when not given."""
    if not value:
        return None
    try:
        return check(value)
    except ValueError as error:
        raise Refused(f"onebox: {error}; nothing was changed") from None


def checked_release_id(value: str) -> str | None:
    """A release id to roll back to, or None (the previous release)."""
    return _checked(check_release_id, value)


def checked_backup_name(value: str) -> str | None:
    return _checked(check_backup_name, value)


def check_maintenance_message(message: str) -> str:
    """The text of the maintenance page: at most 500 printable characters (no newline, no control)."""
    if len(message) > MAINTENANCE_MESSAGE_MAX:
        raise Refused(f"onebox: the maintenance message has {len(message)} characters, at most "
                      f"{MAINTENANCE_MESSAGE_MAX} are allowed; nothing was changed")
    if not message.isprintable():
        bad = next(char for char in message if not char.isprintable())
        raise Refused(f"onebox: the maintenance message holds the unprintable character {bad!r} "
                      "(one line of printable text only); nothing was changed")
    return message


def checked_app_name(value: str) -> str | None:
    if value and not APP_NAME.fullmatch(value):  # fullmatch: no trailing newline either
        raise Refused(f"onebox: --app {value!r} is not an app name (lowercase letters, digits, - and _, as "
                      "app_name and the apps setting allow); nothing was changed")
    return value or None


def chosen_app(settings: Any, data: Any) -> Any:
    """The app a deploy file works on: `onebox_app` (--app) among the settings' apps, or the only app."""
    name = checked_app_name(data_text(data, APP))
    apps = {app.app_name: app for app in settings.app_list}
    if name is None:
        if len(apps) > 1:
            raise Refused(f"onebox: this server has several apps ({', '.join(apps)}): name one with --app NAME "
                          f"(--data {APP}=NAME); nothing was changed")
        return settings.app_list[0]
    if name not in apps:
        raise Refused(f"onebox: --app {name}: no such app in the settings (apps: {', '.join(apps)}); nothing was changed")
    return apps[name]


def rollback_target(data: Any) -> str | None:
    """deploys/rollback.py's argument: the release id in `onebox_rollback_to`, or None."""
    return checked_release_id(data_text(data, ROLLBACK_TO))


def maintenance_request(data: Any) -> tuple[bool, str]:
    """deploys/maintenance.py's arguments: (on?, message)."""
    mode = data_text(data, MAINTENANCE)
    if mode not in ("on", "off"):
        raise Refused(f"onebox: {MAINTENANCE} must be 'on' or 'off' (got {mode!r}; e.g. --data {MAINTENANCE}=on); "
                      "nothing was changed")
    message = check_maintenance_message(data_text(data, MAINTENANCE_MESSAGE))
    if mode == "off" and message:
        raise Refused(f"onebox: {MAINTENANCE_MESSAGE} goes with {MAINTENANCE}=on only; nothing was changed")
    return mode == "on", message


def recovery_target_problem(name: str, to: str) -> str | None:
    """Why `--to` (onebox_restore_to) cannot be, or None: checked before anything connects."""
    if not to:
        return None
    if name:
        return "--to and --name (onebox_restore_to, onebox_restore_name): one or the other, a point in time or a dump"
    try:
        contract.recovery_target(to)
    except ValueError as error:
        return f"--to (onebox_restore_to): {error}"
    return None
