"""Settings of the host role (deploys/base.py)."""

from __future__ import annotations

import zoneinfo
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from onebox.ci import CI_USER
from onebox.settings.types import SSH_KEY_RE, HostName, PackageName, Port, PositiveInt

# Ports the proxy serves (HTTP, HTTPS); ACME's HTTP-01 challenge needs 80 too.
WEB_PORTS = (80, 443)


class HostSettings(BaseModel):
    hostname: Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
    timezone: str
    deploy_user: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")]
    deploy_ssh_keys: Annotated[list[str], Field(min_length=1)]
    ci_ssh_keys: list[str]
    sshd_port: Port
    sshd_permit_root_login: Literal["prohibit-password", "no"]
    firewall_tcp_ports: Annotated[list[Port], Field(min_length=1)]
    apt_cache_valid_time: PositiveInt
    base_packages: list[PackageName]
    unattended_upgrades_auto_reboot: bool
    unattended_upgrades_reboot_time: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    ntp_servers: list[HostName]

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
        # The deploy user's sudo rule is /etc/sudoers.d/onebox-<deploy_user>: "ci" would be CI's own file.
        if value in (CI_USER, CI_USER.removeprefix("onebox-")):
            raise ValueError(f"{value!r} is taken by CI's account {CI_USER} (its sudo rule /etc/sudoers.d/{CI_USER}); "
                             "pick another name")
        return value

    @field_validator("deploy_ssh_keys", "ci_ssh_keys")
    @classmethod
    def _public_keys(cls, keys: list[str]) -> list[str]:
        for key in keys:
            if not SSH_KEY_RE.match(key.strip()):
                raise ValueError(f"not an OpenSSH public key: {key[:40]!r}; paste the one line of an id_*.pub file")
        return [key.strip() for key in keys]

    @field_validator("firewall_tcp_ports")
    @classmethod
    def _web_ports_open(cls, ports: list[int]) -> list[int]:
        missing = [port for port in WEB_PORTS if port not in ports]
        if missing:
            raise ValueError(
                f"lacks {' and '.join(map(str, missing))}: the proxy serves HTTP and HTTPS there "
                "and the ACME HTTP-01 challenge comes in on 80; add them"
            )
        return ports

    @model_validator(mode="after")
    def _ssh_stays_open(self) -> HostSettings:
        if self.sshd_port not in self.firewall_tcp_ports:
            raise ValueError(
                f"sshd_port {self.sshd_port} is not in firewall_tcp_ports {self.firewall_tcp_ports}: "
                "the firewall would lock SSH out; add it"
            )
        return self
