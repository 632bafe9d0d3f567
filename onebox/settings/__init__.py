"""The settings model: every onebox setting, its type and its constraints, split by role.

Defaults and one-line documentation live in group_data/all.py (the single place a
user reads); this package only says what a valid value is. Environment variables
(ONEBOX_<NAME>) and a git-ignored secrets file override group data, so secrets
never have to enter the repository.
"""

from __future__ import annotations

import os
from typing import Any

from dotenv import dotenv_values
from pydantic import SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from onebox.settings.app import AppSettings
from onebox.settings.docker import DockerSettings
from onebox.settings.host import HostSettings
from onebox.settings.proxy import ProxySettings
from onebox.settings.tls import TlsSettings

PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "password", "example", "xxx", "todo"}
SECRET_FIELDS = ("postgres_password", "registry_password")
# A named app secret (app_secrets) is supplied as ONEBOX_SECRET_<NAME>.
NAMED_SECRET_PREFIX = "ONEBOX_SECRET_"


class SettingsError(ValueError):
    """Raised before any host is touched; the message names each bad setting."""


def check_secret(value: str) -> None:
    if value.lower() in PLACEHOLDER_SECRETS or len(value) < 16:
        raise ValueError(
            "looks like a placeholder; leave it unset to have one generated on the server, "
            "or supply at least 16 random characters"
        )


class Settings(HostSettings, DockerSettings, AppSettings, ProxySettings, TlsSettings, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ONEBOX_", extra="forbid", frozen=True)

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


def describe_errors(error: ValidationError) -> str:
    lines = ["onebox: invalid settings (nothing was changed on any host):"]
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        if not item["loc"]:  # a rule across settings: its message names them
            lines.append(f"  - {message}")
            continue
        path = ".".join(str(part) for part in item["loc"])
        # Never echo a secret, nor an unknown name's value: it may be a misspelt secret.
        hidden = item["type"] in ("missing", "extra_forbidden") or path.split(".")[0] in (*SECRET_FIELDS, "app_secret_values")
        got = "" if hidden else f" (got {item.get('input')!r})"
        lines.append(f"  - {path}: {message}{got}")
    lines.append("Fix them in group_data/*.py, or for secrets in the environment (ONEBOX_<NAME>) or the secrets file.")
    return "\n".join(lines)


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
    env_file = None
    if secrets_file:
        # The secrets file without the named secrets, which pydantic would take for unknown settings.
        others = {k: v for k, v in dotenv_values(secrets_file).items() if not k.startswith(NAMED_SECRET_PREFIX)}
        data = {**data, **{k.removeprefix("ONEBOX_").lower(): v for k, v in others.items() if k.startswith("ONEBOX_")},
                **{k: v for k, v in others.items() if not k.startswith("ONEBOX_")}}
    try:
        return Settings(_env_file=env_file, app_secret_values=secrets, **data)  # type: ignore[call-arg]
    except ValidationError as error:
        raise SettingsError(describe_errors(error)) from None
