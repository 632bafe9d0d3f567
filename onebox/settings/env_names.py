"""Which ONEBOX_<NAME> variables onebox reads: the settings, the named app secrets
(ONEBOX_SECRET_<NAME>) and a few others (ALLOWED_ENV). Any other is refused with the
closest known name ("did you mean ...?").
"""

from __future__ import annotations

import difflib
from fnmatch import fnmatchcase

from onebox.settings.model import ENV_PREFIX, NAMED_SECRET_PREFIX, Settings

# ONEBOX_* variables that are not settings, yet allowed (shell patterns); any other unknown one is
# refused, since a misspelt setting would otherwise be ignored without a word.
ALLOWED_ENV = (
    "ONEBOX_SECRET_*",  # named app secrets (app_secrets); checked by Settings._named_secrets
    "ONEBOX_TEST_*",  # test-only hooks
    # read by the inventories, the Makefile and the commands themselves
    "ONEBOX_HOST", "ONEBOX_SSH_USER", "ONEBOX_SSH_KEY", "ONEBOX_SSH_CONNECT_PORT", "ONEBOX_SECRETS_FILE",
    "ONEBOX_TARGET_INDEX", "ONEBOX_EXTRA_GROUPS", "ONEBOX_GROUP", "ONEBOX_WORKERS", "ONEBOX_WORKER_INDEXES",
    "ONEBOX_MANAGER_ADDRESS", "ONEBOX_SSH_KNOWN_HOSTS", "ONEBOX_DIR",
    "ONEBOX_ALLOW_OLDER",  # onebox/versions.py
)


def setting_env_names() -> set[str]:
    # app_secret_values is filled from ONEBOX_SECRET_<NAME> only.
    return {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields if name != "app_secret_values"}


def unknown_names(names: list[str], app_secrets: object, where: str = "") -> list[str]:
    """One line per ONEBOX_* name that is neither a setting nor allowed, with the closest known name.
    Only names are compared: a value is never shown, it may be a misspelt secret."""
    known = setting_env_names()
    secrets = [f"{NAMED_SECRET_PREFIX}{name}" for name in app_secrets] if isinstance(app_secrets, list) else []
    # Compared without the common prefix, which would make any two names look alike.
    candidates = {name.removeprefix(ENV_PREFIX): name
                  for name in (*known, *(p for p in ALLOWED_ENV if "*" not in p), *secrets)}
    lines = []
    for name in names:
        if not name.startswith(ENV_PREFIX) or name in known or any(fnmatchcase(name, p) for p in ALLOWED_ENV):
            continue
        bare = name.removeprefix(ENV_PREFIX)
        close = difflib.get_close_matches(bare, sorted(candidates), n=1)
        if f"{NAMED_SECRET_PREFIX}{bare}" in secrets:  # a named secret without its SECRET_
            hint = f"did you mean {NAMED_SECRET_PREFIX}{bare}?"
        elif close:
            hint = f"did you mean {candidates[close[0]]}?"
        else:
            hint = f"settings are ONEBOX_<NAME> of those in onebox/defaults.py, named secrets {NAMED_SECRET_PREFIX}<NAME>"
        lines.append(f"{name}{where}: not a onebox setting; {hint}")
    return lines
