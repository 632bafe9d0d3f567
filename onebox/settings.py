"""The settings model: every onebox setting, its type and its constraints.

Defaults and one-line documentation live in group_data/all.py (the single place a
user reads); this model only says what a valid value is. Environment variables
(ONEBOX_<NAME>) and a git-ignored secrets file override group data, so secrets
never have to enter the repository.
"""

from __future__ import annotations

import ipaddress
import re
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

Port = Annotated[int, Field(ge=1, le=65535)]
PositiveInt = Annotated[int, Field(gt=0)]
Size = Annotated[str, Field(pattern=r"^[0-9]+[kKmMgG]?$")]  # nginx/docker size, e.g. 10m
# Values that reach shell commands and config files: plain characters only, so no
# setting can smuggle in a `;`, a space or a newline.
UrlPath = Annotated[str, Field(pattern=r"^/[A-Za-z0-9._~/-]*$")]
ImageRef = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._/:@-]*$")]
HostName = Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+(:[0-9]+)?$")]
PackageName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9+.-]+$")]
HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
SSH_KEY_RE = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/=]+( .*)?$"
)
PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "password", "example", "xxx", "todo"}
SECRET_FIELDS = ("app_secret_key", "postgres_password", "registry_password")


class SettingsError(ValueError):
    """Raised before any host is touched; the message names each bad setting."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ONEBOX_", extra="forbid", frozen=True)

    # --- host (deploys/base.py) ---
    hostname: Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
    timezone: str
    deploy_user: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")]
    deploy_ssh_keys: Annotated[list[str], Field(min_length=1)]
    sshd_port: Port
    sshd_permit_root_login: Literal["prohibit-password", "no"]
    firewall_tcp_ports: Annotated[list[Port], Field(min_length=1)]
    apt_cache_valid_time: PositiveInt
    base_packages: list[PackageName]
    unattended_upgrades_auto_reboot: bool
    unattended_upgrades_reboot_time: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    ntp_servers: list[HostName]

    # --- docker (deploys/docker.py) ---
    docker_source: Literal["distro", "docker"]
    docker_apt_url: Annotated[str, Field(pattern=r"^https://")]
    docker_log_max_size: Size
    docker_log_max_file: PositiveInt
    docker_live_restore: bool

    # --- app (deploys/app.py) ---
    app_name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    app_dir: Annotated[str, Field(pattern=r"^/[A-Za-z0-9._/-]+$")]
    app_image_source: Literal["build", "registry", "tarball"]
    app_source_dir: str
    app_image: ImageRef
    app_python_image: ImageRef
    postgres_image: ImageRef
    redis_image: ImageRef
    controller_images: list[ImageRef]
    registry_server: HostName | None
    registry_username: Annotated[str, Field(pattern=r"^[A-Za-z0-9._@-]+$")] | None
    api_port: Port
    api_workers: PositiveInt
    api_timeout: PositiveInt
    api_graceful_timeout: PositiveInt
    api_max_requests: PositiveInt
    api_max_requests_jitter: Annotated[int, Field(ge=0)]
    api_memory_limit: Size
    api_cpus: Annotated[float, Field(gt=0)] | None
    postgres_memory_limit: Size
    redis_memory_limit: Size
    postgres_user: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")]
    postgres_db: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")]
    docker_network_subnet: str

    # --- proxy (deploys/proxy.py) ---
    domains: Annotated[list[str], Field(min_length=1)]
    proxy_client_max_body_size: Size
    proxy_connect_timeout: PositiveInt
    proxy_read_timeout: PositiveInt
    proxy_send_timeout: PositiveInt
    rate_limit_rps: PositiveInt
    rate_limit_burst: PositiveInt
    strict_rate_limit_rps: PositiveInt
    strict_rate_limit_burst: PositiveInt
    strict_rate_limit_paths: list[UrlPath]
    rate_limit_exempt_paths: list[UrlPath]
    websocket_paths: list[UrlPath]
    websocket_read_timeout: PositiveInt
    hsts_max_age: Annotated[int, Field(ge=0)]

    # --- tls (deploys/tls.py) ---
    letsencrypt_email: str
    acme_server: Literal["letsencrypt", "letsencrypt-staging", "custom"]
    acme_directory_url: Annotated[str, Field(pattern=r"^https://[^\s]+$")] | None
    acme_ca_bundle: str | None

    # --- secrets: environment or the git-ignored secrets file only, never group data ---
    app_secret_key: SecretStr | None = None
    postgres_password: SecretStr | None = None
    registry_password: SecretStr | None = None

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

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        if value not in zoneinfo.available_timezones():
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'UTC' or 'Europe/Berlin'")
        return value

    @field_validator("deploy_user")
    @classmethod
    def _not_root(cls, value: str) -> str:
        if value == "root":
            raise ValueError("must be an unprivileged account (it gets sudo); root's own keys stay as they are")
        return value

    @field_validator("deploy_ssh_keys")
    @classmethod
    def _public_keys(cls, keys: list[str]) -> list[str]:
        for key in keys:
            if not SSH_KEY_RE.match(key.strip()):
                raise ValueError(f"not an OpenSSH public key: {key[:40]!r}; paste the one line of an id_*.pub file")
        return [key.strip() for key in keys]

    @field_validator("domains")
    @classmethod
    def _domain_names(cls, domains: list[str]) -> list[str]:
        for domain in domains:
            if not HOSTNAME_RE.match(domain) or "." not in domain:
                raise ValueError(f"{domain!r} is not a fully qualified domain name such as 'api.example.com'")
        return domains

    @field_validator("letsencrypt_email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not EMAIL_RE.match(value):
            raise ValueError(f"{value!r} is not an e-mail address; the ACME server sends expiry notices there")
        return value

    @field_validator("docker_network_subnet")
    @classmethod
    def _subnet(cls, value: str) -> str:
        network = ipaddress.ip_network(value, strict=True)
        if network.version != 4 or network.num_addresses < 8:
            raise ValueError("expected an IPv4 network with room for the stack, such as '172.30.0.0/24'")
        return value

    @field_validator("app_secret_key", "postgres_password", "registry_password")
    @classmethod
    def _real_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        secret = value.get_secret_value()
        if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < 16:
            raise ValueError(
                "looks like a placeholder; leave it unset to have one generated on the server, "
                "or supply at least 16 random characters"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.sshd_port not in self.firewall_tcp_ports:
            raise ValueError(
                f"sshd_port {self.sshd_port} is not in firewall_tcp_ports {self.firewall_tcp_ports}: "
                "the firewall would lock SSH out; add it"
            )
        if self.acme_server == "custom" and not self.acme_directory_url:
            raise ValueError("acme_server is 'custom' but acme_directory_url is empty; set the ACME directory URL")
        if self.acme_ca_bundle and not Path(self.acme_ca_bundle).is_file():
            raise ValueError(f"acme_ca_bundle {self.acme_ca_bundle!r} is not a file on this machine "
                             "(for the local target, `python -m onebox.local.pebble up TARGET_IP` creates it)")
        if self.app_image_source == "registry" and not self.registry_server:
            raise ValueError("app_image_source is 'registry' but registry_server is empty; set it (e.g. 'ghcr.io')")
        if self.app_image_source != "registry" and not Path(self.app_source_dir, "Dockerfile").is_file():
            raise ValueError(f"app_source_dir {self.app_source_dir!r} has no Dockerfile; point it at the application to build")
        return self

    @property
    def network_gateway(self) -> str:
        """The compose network's gateway: the only peer the API trusts for X-Forwarded-*."""
        return str(next(ipaddress.ip_network(self.docker_network_subnet).hosts()))


def describe_errors(error: ValidationError) -> str:
    lines = ["onebox: invalid settings (nothing was changed on any host):"]
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        if not item["loc"]:  # a rule across settings: its message names them
            lines.append(f"  - {message}")
            continue
        path = ".".join(str(part) for part in item["loc"])
        # Never echo a secret, nor an unknown name's value: it may be a misspelt secret.
        hidden = item["type"] in ("missing", "extra_forbidden") or path in SECRET_FIELDS
        got = "" if hidden else f" (got {item.get('input')!r})"
        lines.append(f"  - {path}: {message}{got}")
    lines.append("Fix them in group_data/*.py, or for secrets in the environment (ONEBOX_<NAME>) or the secrets file.")
    return "\n".join(lines)


def validate_settings(data: dict[str, Any], secrets_file: str | None = None) -> Settings:
    """Validate merged group data; raise SettingsError with one line per bad setting."""
    leaked = [name for name in SECRET_FIELDS if data.get(name)]
    if leaked:
        raise SettingsError(
            f"onebox: secret setting(s) {', '.join(leaked)} found in group data, which lives in git; "
            "move them to the environment (ONEBOX_<NAME>) or the git-ignored secrets file"
        )
    try:
        return Settings(_env_file=secrets_file, **data)  # type: ignore[call-arg]
    except ValidationError as error:
        raise SettingsError(describe_errors(error)) from None
