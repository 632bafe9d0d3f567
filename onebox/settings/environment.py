"""The environment over group data: ONEBOX_<NAME> variables and the git-ignored secrets file
(dotenv lines) override a group's values, so secrets never have to enter the repository.
The environment wins over the secrets file, as over group data.
"""

from __future__ import annotations

import os
from fnmatch import fnmatchcase
from typing import Any

from dotenv import dotenv_values

from onebox.settings.env_names import ALLOWED_ENV, setting_env_names, unknown_names
from onebox.settings.errors import shown
from onebox.settings.model import ENV_PREFIX, NAMED_SECRET_PREFIX, Settings


def named_secrets(secrets_file: str | None) -> dict[str, str]:
    """ONEBOX_SECRET_<NAME> values from the secrets file, then the environment (which wins)."""
    file_values = dotenv_values(secrets_file) if secrets_file else {}
    merged = {**file_values, **os.environ}
    return {key.removeprefix(NAMED_SECRET_PREFIX): value for key, value in merged.items()
            if key.startswith(NAMED_SECRET_PREFIX) and value}


def over_group_data(data: dict[str, Any], secrets_file: str | None) -> tuple[dict[str, Any], list[str]]:
    """Group data with the secrets file's settings and the environment's over it (the named
    secrets aside: named_secrets), and one problem line per ONEBOX_* name that is no setting."""
    app_secrets = data.get("app_secrets")
    problems = unknown_names(sorted(os.environ), app_secrets)
    from_file: dict[str, Any] = {}
    unprefixed: dict[str, Any] = {}  # refused by the model (extra_forbidden)
    if secrets_file:
        # The secrets file without the named secrets, which pydantic would take for unknown settings.
        others = {k: v for k, v in dotenv_values(secrets_file).items() if not k.startswith(NAMED_SECRET_PREFIX)}
        problems += unknown_names(list(others), app_secrets, f" (in {shown(secrets_file)})")
        known = setting_env_names()
        problems += [f"{k} (in {shown(secrets_file)}): read from the environment only; export it instead"
                     for k in others if k.startswith(ENV_PREFIX) and k not in known
                     and any(fnmatchcase(k, p) for p in ALLOWED_ENV)]
        from_file = {k.removeprefix(ENV_PREFIX).lower(): v for k, v in others.items() if k in known}
        unprefixed = {k: v for k, v in others.items() if not k.startswith(ENV_PREFIX)}
    # A setting the environment or the secrets file sets replaces the group's value whole (a dict or a
    # list too): pydantic-settings would deep-merge a dict from the environment into the group's.
    # The environment wins over the secrets file, as over group data.
    from_env = {name.lower() for name in os.environ}
    replaced = {name for name in Settings.model_fields if f"{ENV_PREFIX}{name}".lower() in from_env or name in from_file}
    data = {**{k: v for k, v in data.items() if k not in replaced},
            **{k: v for k, v in from_file.items() if f"{ENV_PREFIX}{k}".lower() not in from_env}, **unprefixed}
    if isinstance(data.get("apps"), dict):  # an app's own values give way to the environment too
        data["apps"] = {name: {k: v for k, v in entry.items() if k not in replaced} if isinstance(entry, dict) else entry
                        for name, entry in data["apps"].items()}
    return data, problems
