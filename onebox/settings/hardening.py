"""Settings of the host hardening done by the host role (deploys/base.py): sshd limits,
fail2ban, kernel parameters and modules, login defaults, extra packages, AIDE, auditd,
security updates during the deploy."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import BaseModel, Field, NonNegativeInt, field_validator

from onebox.settings.types import PackageName, PositiveInt

SysctlKey = Annotated[str, Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_-]+)+$")]
SysctlValue = int | Annotated[str, Field(pattern=r"^[A-Za-z0-9 ._:/-]+$")]
ModuleName = Annotated[str, Field(pattern=r"^[a-z0-9_-]+$")]
# Keys that live in each network namespace: a container applies them to itself only.
NETWORK_NAMESPACE_PREFIXES = ("net.ipv4.", "net.ipv6.")
# Docker routes container traffic through the host: these must stay on.
DOCKER_FORWARDING_KEYS = ("net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding", "net.ipv4.conf.default.forwarding")


class HardeningSettings(BaseModel):
    sshd_max_auth_tries: Annotated[int, Field(ge=2, le=10)]
    sshd_max_sessions: Annotated[int, Field(le=64)]
    sshd_allow_tcp_forwarding: Literal["no", "local", "yes"]
    fail2ban_enabled: bool
    fail2ban_maxretry: PositiveInt
    fail2ban_findtime: PositiveInt
    fail2ban_bantime: PositiveInt
    fail2ban_ignore_ips: list[str]
    sysctl_network: dict[SysctlKey, SysctlValue]
    sysctl_kernel: dict[SysctlKey, SysctlValue]
    blocked_kernel_modules: list[ModuleName]
    hardening_packages: list[PackageName]
    aide_enabled: bool
    auditd_enabled: bool
    login_banner: Annotated[str, Field(min_length=1, max_length=2000)]
    shell_idle_timeout: NonNegativeInt
    security_updates_on_deploy: bool

    @field_validator("sshd_max_sessions")
    @classmethod
    def _room_for_pyinfra(cls, value: int) -> int:
        if value < 3:
            raise ValueError("pyinfra keeps an SFTP session open beside its commands: below 3 sessions per "
                             "connection deploys fail with 'open failed'; use 3 or more")
        return value

    @field_validator("login_banner")
    @classmethod
    def _plain_text(cls, value: str) -> str:
        if "\\" in value or any((ord(char) < 32 and char != "\n") or ord(char) == 127 for char in value):
            raise ValueError("must be plain text: no backslashes (getty expands them in /etc/issue) "
                             "and no control characters but newlines")
        return value

    @field_validator("fail2ban_ignore_ips")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(f"{value!r} is not an IP address or network (e.g. 203.0.113.7 or 10.0.0.0/8)") from None
        return values

    @field_validator("sysctl_network")
    @classmethod
    def _per_namespace(cls, values: dict[str, int | str]) -> dict[str, int | str]:
        for key in values:
            if not key.startswith(NETWORK_NAMESPACE_PREFIXES):
                raise ValueError(f"{key} is not a per-network-namespace key (net.ipv4.*, net.ipv6.*); "
                                 "put it in sysctl_kernel")
        return _forwarding_stays_on(values)

    @field_validator("sysctl_kernel")
    @classmethod
    def _host_kernel(cls, values: dict[str, int | str]) -> dict[str, int | str]:
        for key, value in values.items():
            if key.startswith(NETWORK_NAMESPACE_PREFIXES):
                raise ValueError(f"{key} is a per-network-namespace key; put it in sysctl_network")
            if key == "kernel.modules_disabled" and str(value) != "0":
                raise ValueError("kernel.modules_disabled would stop Docker and nftables loading the modules "
                                 "they need (bridge, veth, overlay, nf_*) until the next reboot; remove it")
        return _forwarding_stays_on(values)


def _forwarding_stays_on(values: dict[str, int | str]) -> dict[str, int | str]:
    for key in DOCKER_FORWARDING_KEYS:
        if key in values and str(values[key]) == "0":
            raise ValueError(f"{key} = 0 would cut every container off the network (Docker forwards their "
                             "traffic); remove it")
    return values
