"""Several apps on one server: `apps` maps a name to that app's own settings.

An empty `apps` is the single-app server of before: the app is the top-level settings, and
its files keep their names (contract.AppFiles with key None). With `apps`, each entry is the
top-level settings with the entry's values on top, validated as a whole; server-wide
settings (host, hardening, Docker, TLS account) stay top-level only.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator, model_validator

from onebox import contract
from onebox.settings.app import AppSettings
from onebox.settings.backup import BackupSettings
from onebox.settings.proxy import ProxySettings

AppKey = Annotated[str, Field(pattern=contract.APP_KEY_PATTERN)]
# What an entry of `apps` may set: the app's contract and resources, its proxy, its backups.
# Secrets are never settings here; app_name is the entry's key; backups go to backup_dir/<name>.
PER_APP_SETTINGS = frozenset(
    set(AppSettings.model_fields) | set(ProxySettings.model_fields) | set(BackupSettings.model_fields)
) - {"app_name", "backup_dir", "backup_server_name", "backup_restic_password", "backup_s3_access_key_id",
     "backup_s3_secret_access_key"}


def default_app_dir(name: str) -> str:
    return f"/opt/onebox-{name}"


class AppsSettings(BaseModel):
    apps: dict[AppKey, dict[str, Any]]
    apps_removed: list[AppKey]

    @field_validator("apps")
    @classmethod
    def _per_app_names(cls, apps: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, entry in apps.items():
            for key in entry:
                if key == "app_name":
                    raise ValueError(f"apps.{name}.app_name: an app's name is its key in apps ({name!r}); remove it")
                if key not in PER_APP_SETTINGS:
                    raise ValueError(f"apps.{name}.{key}: not a setting an app can have; server-wide settings "
                                     "(host, firewall, Docker, TLS account, backup_dir, backup_server_name) are set "
                                     "outside apps")
            for a, b in ((name, other) for other in apps if other != name):
                if any(a == f"{b}-{slot}" for slot in contract.SLOTS):
                    raise ValueError(f"apps.{a}: its name is the compose project of app {b}'s {a[len(b) + 1:]} "
                                     "slot; rename it")
        return apps

    @model_validator(mode="after")
    def _removed_are_gone(self) -> AppsSettings:
        both = sorted(set(self.apps) & set(self.apps_removed))
        if both:
            raise ValueError(f"apps_removed: {', '.join(both)} is also in apps; keep it in one of them")
        return self


def app_data(data: dict[str, Any], name: str) -> dict[str, Any]:
    """The group data of one app: the top level, the entry of `apps` on top."""
    entry = data["apps"][name]
    return {**data, **entry, "app_name": name, "app_dir": entry.get("app_dir", default_app_dir(name))}


def clashes(apps: dict[str, Any]) -> list[str]:
    """What two apps of one server may not share: directories, host ports, subnets, domains.
    `apps` maps each name to its validated settings (an AppSettings and ProxySettings)."""
    problems = []
    seen: list[tuple[str, Any]] = []
    for name, s in apps.items():
        for other, o in seen:
            problems += _pair(name, s, other, o, apps)
        seen.append((name, s))
    return problems


def _pair(name: str, s: Any, other: str, o: Any, apps: dict[str, Any]) -> list[str]:
    problems = []
    nested = s.app_dir == o.app_dir or s.app_dir.startswith(o.app_dir + "/") or o.app_dir.startswith(s.app_dir + "/")
    if nested:
        problems.append(f"apps.{name}.app_dir: {s.app_dir} and apps.{other}'s {o.app_dir} overlap; give each app a "
                        f"directory of its own such as {default_app_dir(name)!r}")
    if set(s.slot_ports) & set(o.slot_ports):
        taken = {port for a in apps.values() for port in a.slot_ports}
        free = next(p for p in range(8000, 65534, 10) if p not in taken and p + 1 not in taken)
        problems.append(f"apps.{name}.api_port: its slots {s.slot_ports[0]} and {s.slot_ports[1]} meet apps.{other}'s "
                        f"({o.slot_ports[0]}, {o.slot_ports[1]}); each app needs api_port and api_port + 1 of its own: "
                        f"pick another such as {free}")
    mine, theirs = ipaddress.ip_network(s.docker_network_subnet), ipaddress.ip_network(o.docker_network_subnet)
    if mine.overlaps(theirs):
        problems.append(f"apps.{name}.docker_network_subnet: {mine} overlaps apps.{other}'s {theirs}; each app has "
                        f"a network of its own: pick another such as {_free_subnet(apps)}")
    shared = sorted(set(s.domains) & set(o.domains))
    if shared:
        problems.append(f"apps.{name}.domains: {', '.join(shared)} is also apps.{other}'s; each domain belongs to "
                        "one app")
    return problems


def _free_subnet(apps: dict[str, Any]) -> str:
    taken = [ipaddress.ip_network(a.docker_network_subnet) for a in apps.values()]
    for third in range(256):
        candidate = ipaddress.ip_network(f"172.30.{third}.0/24")
        if not any(candidate.overlaps(t) for t in taken):
            return str(candidate)
    return "a /24 of your choice"
