"""The settings: every onebox setting, its type and its constraints, split by role, and how
group data, the environment and the secrets file make them.

Defaults and one-line documentation live in onebox/defaults.py (the single place a
user reads); this package only says what a valid value is. Environment variables
(ONEBOX_<NAME>) and a git-ignored secrets file override group data, so secrets
never have to enter the repository.

    model.py        the Settings class (the roles' settings: host.py, app.py, ...) and the secrets' rules
    environment.py  the environment and the secrets file over group data
    env_names.py    which ONEBOX_* names are read, and "did you mean" for the others
    validate.py     validate_settings: one Settings, or one per app of a server of several
    errors.py       SettingsError and its lines, which never show a secret
"""

from onebox.settings.env_names import ALLOWED_ENV
from onebox.settings.errors import SettingsError, shown
from onebox.settings.model import SECRET_FIELDS, Settings
from onebox.settings.validate import validate_settings

__all__ = ["ALLOWED_ENV", "SECRET_FIELDS", "Settings", "SettingsError", "shown", "validate_settings"]
