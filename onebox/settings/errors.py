"""How a settings problem is told: SettingsError, raised before any host is touched, with one
line per problem. A line never shows a secret's value, nor an unknown name's (it may be a
misspelt secret).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import SettingsError as SourceError

from onebox.settings.model import ENV_PREFIX, SECRET_FIELDS


class SettingsError(ValueError):
    """Raised before any host is touched; the message names each bad setting."""


def report(problems: list[str]) -> str:
    """The message of a SettingsError: one line per problem."""
    return "\n".join([
        "onebox: invalid settings (nothing was changed on any host):",
        *(f"  - {problem}" for problem in problems),
        "Fix them in group_data/*.py, or for secrets in the environment (ONEBOX_<NAME>) or the secrets file.",
    ])


def describe_errors(error: ValidationError) -> str:
    return report(error_lines(error))


def error_lines(error: ValidationError, where: str = "") -> list[str]:
    """One line per problem; `where` (e.g. "apps.jobs.") prefixes the path of one app's settings."""
    lines = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        if message.startswith("apps"):  # already names its path
            lines.append(message)
            continue
        if not item["loc"]:  # a rule across settings: its message names them
            lines.append(f"{where.rstrip('.')}: {message}" if where else message)
            continue
        path = where + ".".join(str(part) for part in item["loc"])
        # Never echo a secret, nor an unknown name's value: it may be a misspelt secret.
        hidden = item["type"] in ("missing", "extra_forbidden") or path.removeprefix(where).split(".")[0] in (
            *SECRET_FIELDS, "app_secret_values", "alert_webhook_url",  # its URL may carry a token
            "backup_restic_repository")  # a refused one may hold a password (USER:PASSWORD@HOST)
        got = "" if hidden else f" (got {item.get('input')!r})"
        lines.append(f"{path}: {message}{got}")
    return lines


def source_error_line(error: SourceError) -> str:
    """The one line for an environment variable pydantic-settings could not parse (malformed JSON)."""
    match = re.search(r'field "(\w+)"', str(error))
    if not match:
        return f"the environment: {error}"
    name = match.group(1)
    cause = error.__cause__
    why = f"{cause.msg} at character {cause.pos + 1}" if isinstance(cause, json.JSONDecodeError) else "unreadable"
    return (f"{ENV_PREFIX}{name.upper()}: not valid JSON ({why}); list and dict settings take JSON, "
            """e.g. '[22, 80, 443]' or '{"NAME": "value"}'""")


def shown(path: str) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path
