"""Settings for inventories and deploys: read group data, validate it, fail early.

pyinfra connects to every host before it loads the deploy file, so the inventory
calls `settings_for_group` at import time: bad settings stop the run before the
first connection.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from onebox.settings import Settings, SettingsError, validate_settings

ROOT = Path(__file__).resolve().parent.parent
GROUP_DATA = ROOT / "group_data"
SECRETS_FILE_ENV = "ONEBOX_SECRETS_FILE"


def read_group_file(path: Path) -> dict[str, Any]:
    """The public names a group data file defines, as pyinfra itself reads them."""
    namespace: dict[str, Any] = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - our own config file
    return {
        key: value for key, value in namespace.items()
        if not key.startswith("_") and not callable(value) and type(value).__name__ != "module"
    }


def group_data(group: str) -> dict[str, Any]:
    data = read_group_file(GROUP_DATA / "all.py")
    group_file = GROUP_DATA / f"{group}.py"
    if group_file.is_file():
        data.update(read_group_file(group_file))
    return data


def secrets_file(group: str) -> str | None:
    """The git-ignored dotenv file of secrets: $ONEBOX_SECRETS_FILE or secrets/<group>.env."""
    path = os.environ.get(SECRETS_FILE_ENV) or str(ROOT / "secrets" / f"{group}.env")
    return path if Path(path).is_file() else None


def settings_for_group(group: str) -> Settings:
    """Validated settings of an inventory group; exits with a clear message when invalid."""
    try:
        return validate_settings(group_data(group), secrets_file(group))
    except SettingsError as error:
        sys.exit(str(error))


def settings_for_host(data: dict[str, Any], group: str) -> Settings:
    """The deploy's view: the host's merged data, restricted to onebox settings."""
    known = {key: value for key, value in data.items() if key in Settings.model_fields}
    return validate_settings(known, secrets_file(group))
