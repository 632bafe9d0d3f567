"""validate_settings: group data, with the environment over it, made one Settings; on a server
of several apps (the `apps` setting) one Settings per app, each entry of `apps` over the top
level, then what the apps may not share. Every problem is gathered before SettingsError.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsError as SourceError

from onebox.settings.apps import app_data, clashes
from onebox.settings.environment import named_secrets, over_group_data
from onebox.settings.errors import SettingsError, error_lines, report, source_error_line
from onebox.settings.model import ENV_PREFIX, NAMED_SECRET_PREFIX, SECRET_FIELDS, Settings
from onebox.settings.proxy import CLIENT_CONNECTIONS_CEILING


def validate_settings(data: dict[str, Any], secrets_file: str | None = None) -> Settings:
    """Validate merged group data; raise SettingsError with one line per bad setting."""
    leaked = [name for name in (*SECRET_FIELDS, "app_secret_values") if data.get(name)]
    if leaked:
        raise SettingsError(
            f"onebox: secret setting(s) {', '.join(leaked)} found in group data, which lives in git; "
            "move them to the environment (ONEBOX_<NAME>) or the git-ignored secrets file"
        )
    secrets = named_secrets(secrets_file)
    data, problems = over_group_data(data, secrets_file)
    if not data.get("apps"):
        settings = _build(data, secrets, problems)
        if problems or settings is None:
            raise SettingsError(report(problems)) from None
        return settings
    return _build_apps(data, secrets, problems)


def _build(data: dict[str, Any], secrets: dict[str, str], problems: list[str], where: str = "") -> Settings | None:
    """One Settings, its problems appended (prefixed by `where`, e.g. "apps.api.")."""
    try:
        return Settings(app_secret_values={name: SecretStr(value) for name, value in secrets.items()}, **data)
    except ValidationError as error:
        problems += error_lines(error, where)
    except SourceError as error:  # an environment variable pydantic-settings cannot even parse
        problems.append(source_error_line(error))
    return None


def _build_apps(data: dict[str, Any], secrets: dict[str, str], problems: list[str]) -> Settings:
    """Several apps: each entry of `apps` over the top level, validated whole; then what they may not share."""
    apps: dict[str, Settings] = {}
    if not isinstance(data["apps"], dict):
        problems.append("apps: expected a dict of app name -> that app's settings")
    else:
        for name in data["apps"]:
            entry = data["apps"][name]
            if not isinstance(entry, dict):
                problems.append(f"apps.{name}: expected a dict of that app's settings (may be empty)")
                continue
            merged = app_data(data, name)
            # Each app gets the named secrets it lists; one nobody lists is refused below.
            listed = merged["app_secrets"] if isinstance(merged.get("app_secrets"), list) else []
            app = _build(merged, {k: v for k, v in secrets.items() if k in listed}, problems, f"apps.{name}.")
            if app is not None:
                apps[name] = app
    listed_by_any = {secret for app in apps.values() for secret in app.app_secrets}
    problems += [f"{NAMED_SECRET_PREFIX}{name} is supplied but no app lists {name} in app_secrets; add it there "
                 "or remove the variable" for name in secrets if apps and name not in listed_by_any]
    if any(app.postgres_password for app in apps.values()):
        problems.append(f"{ENV_PREFIX}POSTGRES_PASSWORD: with several apps each app's database has its own password, "
                        "generated on the server; unset it (an app's own password stays in its app_dir/secrets)")
    problems += clashes(apps)
    # Each app counts a client's connections in a zone of its own: one client may hold the sum.
    held = sum(app.max_connections_per_client for app in apps.values())
    if held > CLIENT_CONNECTIONS_CEILING:
        problems.append(f"max_connections_per_client: the apps' limits add up to {held}, so one client could hold "
                        f"that many requests open across them; keep the sum at most {CLIENT_CONNECTIONS_CEILING}")
    if problems:
        raise SettingsError(report(sorted(set(problems), key=problems.index))) from None
    everyone = list(apps.values())
    for name, app in apps.items():
        app._key = name
        app._apps = everyone
    return everyone[0]
