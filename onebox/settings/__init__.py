"""The settings model: every onebox setting, its type and its constraints, split by role.

Defaults and one-line documentation live in onebox/defaults.py (the single place a
user reads); this package only says what a valid value is. Environment variables
(ONEBOX_<NAME>) and a git-ignored secrets file override group data, so secrets
never have to enter the repository.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dotenv import dotenv_values
from pydantic import PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from onebox import contract
from onebox.settings.app import AppSettings, placeholders
from onebox.settings.apps import AppsSettings, app_data, clashes
from onebox.settings.backup import BackupSettings
from onebox.settings.docker import DockerSettings
from onebox.settings.hardening import HardeningSettings
from onebox.settings.host import HostSettings
from onebox.settings.monitoring import MonitoringSettings
from onebox.settings.proxy import ProxySettings
from onebox.settings.tls import TlsSettings
from onebox.settings.types import home_problem, overlap

PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "password", "example", "xxx", "todo"}
SECRET_FIELDS = ("postgres_password", "registry_password", "backup_restic_password", "backup_s3_access_key_id",
                 "backup_s3_secret_access_key", "alert_smtp_password")
# A named app secret (app_secrets) is supplied as ONEBOX_SECRET_<NAME>.
NAMED_SECRET_PREFIX = "ONEBOX_SECRET_"
ENV_PREFIX = "ONEBOX_"
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


class SettingsError(ValueError):
    """Raised before any host is touched; the message names each bad setting."""


def check_secret(value: str) -> None:
    if value.lower() in PLACEHOLDER_SECRETS or len(value) < 16:
        raise ValueError(
            "looks like a placeholder; leave it unset to have one generated on the server, "
            "or supply at least 16 random characters"
        )


class Settings(HostSettings, HardeningSettings, DockerSettings, AppSettings, ProxySettings, TlsSettings,
               BackupSettings, MonitoringSettings, AppsSettings, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ONEBOX_", extra="forbid", frozen=True)
    # Set by validate_settings: the key of this app (None: the one app of a single-app server)
    # and every app of the server (this one first), each a whole Settings.
    _key: str | None = PrivateAttr(default=None)
    _apps: list[Settings] = PrivateAttr(default_factory=list)

    @property
    def files(self) -> contract.AppFiles:
        """This app's server-wide files (upstream, site, sockets, backup units)."""
        return contract.AppFiles(self._key)

    @property
    def app_list(self) -> list[Settings]:
        """Every app of the server, each with its own settings; [self] on a single-app server."""
        return self._apps or [self]

    @property
    def app_backup_dir(self) -> str:
        return self.files.backup_dir(self.backup_dir)

    # --- secrets: environment or the git-ignored secrets file only, never group data ---
    postgres_password: SecretStr | None = None
    registry_password: SecretStr | None = None
    # Named app secrets (app_secrets) supplied as ONEBOX_SECRET_<NAME>; the rest are generated on the server.
    app_secret_values: dict[str, SecretStr] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over group data: that is how secrets and one-off
        # overrides reach a run without editing files.
        return env_settings, dotenv_settings, init_settings

    @field_validator("postgres_password", "registry_password")
    @classmethod
    def _real_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        check_secret(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _api_ports_free(self) -> Settings:
        taken = {22: "SSH's port", 80: "the proxy's HTTP port", 443: "the proxy's HTTPS port",
                 **{port: "in firewall_tcp_ports" for port in self.firewall_tcp_ports},
                 self.sshd_port: "sshd_port"}
        blue, green = self.slot_ports
        for slot, port in (("api_port", blue), ("api_port + 1 (the green slot)", green)):
            if port in taken:
                free = next(p for p in range(8000, 65535) if p not in taken and p + 1 not in taken)
                raise ValueError(f"{slot} is {port}, which is {taken[port]}; the app needs api_port and api_port + 1 "
                                 f"free on the server: pick another api_port such as {free}")
        return self

    @model_validator(mode="after")
    def _directories_apart(self) -> Settings:
        # backup_dir is re-owned root:700 on every converge and `onebox purge` deletes app_dir whole: the
        # deploy user's home (its SSH keys) must be neither, nor either the other (each app checks its own).
        for setting, value, example in (("app_dir", self.app_dir, "/opt/myapp"),
                                        ("backup_dir", self.backup_dir, "/var/backups/onebox")):
            problem = home_problem(value, self.deploy_user)
            if problem:
                raise ValueError(f"{setting}: {value!r} {problem}; use a directory of its own such as {example!r}")
        if overlap(self.app_dir, self.backup_dir):
            raise ValueError(f"backup_dir: {self.backup_dir!r} and app_dir {self.app_dir!r} overlap (the same, or one "
                             "holds the other): `onebox purge` deletes app_dir and the app's backups whole, and each "
                             "converge re-owns backup_dir root-only; keep them apart, e.g. backup_dir "
                             "'/var/backups/onebox' and app_dir '/opt/myapp'")
        return self

    @model_validator(mode="after")
    def _password_fits_its_urls(self) -> Settings:
        password = self.postgres_password.get_secret_value() if self.postgres_password else ""
        if password == quote(password, safe=""):
            return self
        for name, template in self.app_secret_env.items():
            if "://" in template and "postgres_password" in placeholders(template):
                raise ValueError(f"app_secret_env: {name} puts {{postgres_password}} in a URL, and the supplied "
                                 "password has characters a URL must escape; use {postgres_password_url} there")
        return self

    @model_validator(mode="after")
    def _named_secrets(self) -> Settings:
        for name, value in self.app_secret_values.items():
            if name not in self.app_secrets:
                raise ValueError(f"{NAMED_SECRET_PREFIX}{name} is supplied but {name} is not in app_secrets; "
                                 "add it there or remove the variable")
            try:
                check_secret(value.get_secret_value())
            except ValueError as error:
                raise ValueError(f"{NAMED_SECRET_PREFIX}{name}: {error}") from None
        return self


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
            *SECRET_FIELDS, "app_secret_values")
        got = "" if hidden else f" (got {item.get('input')!r})"
        lines.append(f"{path}: {message}{got}")
    return lines


def shown(path: str) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


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


def named_secrets(secrets_file: str | None) -> dict[str, str]:
    """ONEBOX_SECRET_<NAME> values from the secrets file, then the environment (which wins)."""
    file_values = dotenv_values(secrets_file) if secrets_file else {}
    merged = {**file_values, **os.environ}
    return {key.removeprefix(NAMED_SECRET_PREFIX): value for key, value in merged.items()
            if key.startswith(NAMED_SECRET_PREFIX) and value}


def validate_settings(data: dict[str, Any], secrets_file: str | None = None) -> Settings:
    """Validate merged group data; raise SettingsError with one line per bad setting."""
    leaked = [name for name in (*SECRET_FIELDS, "app_secret_values") if data.get(name)]
    if leaked:
        raise SettingsError(
            f"onebox: secret setting(s) {', '.join(leaked)} found in group data, which lives in git; "
            "move them to the environment (ONEBOX_<NAME>) or the git-ignored secrets file"
        )
    secrets = named_secrets(secrets_file)
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
    if problems:
        raise SettingsError(report(sorted(set(problems), key=problems.index))) from None
    everyone = list(apps.values())
    for name, app in apps.items():
        app._key = name
        app._apps = everyone
    return everyone[0]
