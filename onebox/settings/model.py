"""The settings model: every onebox setting, its type and its constraints, one class made of
the roles' settings (host.py, hardening.py, docker.py, app.py, ...), and the rules across them.

Defaults and one-line documentation live in onebox/defaults.py (the single place a user
reads); this module only says what a valid value is. Secrets come from the environment
or the git-ignored secrets file, never group data (validate.py refuses them there).
"""

from __future__ import annotations

from urllib.parse import quote

from pydantic import PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from onebox import contract
from onebox.settings.app import AppSettings, placeholders
from onebox.settings.apps import AppsSettings
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
