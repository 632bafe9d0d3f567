"""The contract between the controller and the server, each fact once.

The controller (deploys/, onebox/rollout.py) imports this module; the server's tools
(onebox/server/, shipped as one zipapp) carry a copy of it. Standard library only.

What is here: the paths both sides name, the spec's version and shape, the upstream
file's format, and the hash that says whether a release is what the settings ask for.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import typing
from typing import Any

# --- paths on the server ----------------------------------------------------------------------

LIB_DIR = "/usr/local/lib/onebox"
SERVER_ZIPAPP = f"{LIB_DIR}/onebox-server.pyz"  # both tools, one upload
RELEASE_COMMAND = "/usr/local/sbin/onebox-release"  # links to the zipapp
BACKUP_COMMAND = "/usr/local/sbin/onebox-backup"
SHIM = f"{LIB_DIR}/with-secrets.sh"  # exports /run/secrets/* as variables (app_secrets_in_env)
APP_DIR_FILE = "/etc/onebox/app-dir"  # where the app lived, as an onebox before the apps registry wrote it
VERSION_FILE = "/etc/onebox/version"  # the onebox version that last converged this server (one line)
APPS_FILE = "/etc/onebox/apps.json"  # the apps on this server: name -> {"dir": ..., "removed": bool}
TLS_DIR = "/etc/onebox/tls"  # stable certificate paths nginx reads
BACKUP_CONFIG = "/etc/onebox/backup.json"
BACKUP_STATE_DIR = "/var/lib/onebox/backup"
NGINX_DIR = "/etc/nginx"
MONITORING_FILE = "/etc/onebox/monitoring.json"  # where alerts go, for `onebox-release status`
ALERTMANAGER_URL = "http://127.0.0.1:9093"
PROMETHEUS_URL = "http://127.0.0.1:9090"
POSTGRES_EXPORTER_CONFIG = "/etc/onebox/postgres-exporter.yml"  # written by onebox-release metrics: its password
POSTGRES_MONITOR_PASSWORD = "/etc/onebox/postgres-monitor.password"  # the monitoring role's, root only
MONITOR_ROLES_FILE = "/var/lib/onebox/monitor-roles.json"  # app -> the PostgreSQL container its role was made in
EXPORTER_TARGETS_DIR = "/var/lib/prometheus/onebox-targets"  # the apps' PostgreSQL and Redis, for file discovery
NGINX_STATUS = "127.0.0.1:9180"  # nginx's stub_status, for the nginx exporter (loopback only)
# Maintenance mode: nginx answers 503 while this file exists (no reload needed to turn it on or off).
MAINTENANCE_DIR = "/var/lib/onebox/maintenance"
MAINTENANCE_FLAG = "on"  # a file in MAINTENANCE_DIR
MAINTENANCE_PAGE = "onebox-maintenance.html"  # in MAINTENANCE_DIR; nginx serves it as /onebox-maintenance.html
MAINTENANCE_RETRY_AFTER = 60  # seconds, in the 503's Retry-After


def cert_dir(domain: str, tls_dir: str = TLS_DIR) -> str:
    """Holds fullchain.pem and privkey.pem: links to the bootstrap or certbot's files."""
    return f"{tls_dir}/{domain}"


# --- the files of one app ---------------------------------------------------------------------
# An app's key is None for the one app of a single-app server (the files keep the names they
# had before onebox hosted several apps, so such a server needs no migration), else its name.

@dataclasses.dataclass(frozen=True)
class AppFiles:
    """Where one app's server-wide files live (relative names: tests relocate the roots)."""

    key: str | None

    def _named(self, stem: str, sep: str = "-") -> str:
        return stem if self.key is None else f"{stem}{sep}{self.key}"

    @property
    def upstream(self) -> str:  # in nginx's directory
        return f"{self._named('onebox-upstream')}.conf"

    @property
    def site(self) -> str:  # in nginx's sites-enabled
        return f"{self._named('onebox')}.conf"

    @property
    def nginx_prefix(self) -> str:  # upstream and rate-limit zone names
        return self._named("onebox", "_").replace("-", "_")

    @property
    def local_socket(self) -> str:
        return f"/run/{self._named('onebox-api')}.sock"

    @property
    def backup_config(self) -> str:
        return f"/etc/onebox/{self._named('backup')}.json"

    @property
    def backup_secrets(self) -> str:  # the restic password and S3 keys of this app's off-site copies
        return f"/etc/onebox/{self._named('backup')}.env"

    @property
    def backup_state_dir(self) -> str:
        return self._named(BACKUP_STATE_DIR)

    @property
    def backup_unit(self) -> str:  # the systemd service and timer, without their suffix
        return self._named("onebox-backup")

    def backup_dir(self, root: str) -> str:
        return root if self.key is None else f"{root}/{self.key}"

    def last_backup_success(self) -> str:
        return f"{self.backup_state_dir}/last-success"

    def maintenance_dir(self, root: str = MAINTENANCE_DIR) -> str:
        return f"{root}/{self.key}" if self.key else root


# --- the apps registry: which apps this server has (written by the converge) -----------------

@dataclasses.dataclass(frozen=True)
class RegisteredApp:
    dir: str
    key: str | None
    removed: bool = False  # named in apps_removed: stopped, its data and backups kept until a purge


def apps_text(apps: dict[str, RegisteredApp]) -> str:
    return json.dumps({name: dataclasses.asdict(app) for name, app in sorted(apps.items())}, indent=2) + "\n"


def parse_apps(text: str) -> dict[str, RegisteredApp]:
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ContractError(f"{APPS_FILE} is not JSON ({error})") from None
    if not isinstance(data, dict):
        raise ContractError(f"{APPS_FILE}: expected an object")
    return {name: _load(RegisteredApp, entry, f"{APPS_FILE}: {name}") for name, entry in data.items()}


# --- the upstream file: which slot nginx sends traffic to -------------------------------------

def upstream_path(nginx_dir: str = NGINX_DIR, key: str | None = None) -> str:
    return f"{nginx_dir}/{AppFiles(key).upstream}"


# What nginx was told before cluster_fail_timeout existed: a spec written then still means it.
FAIL_TIMEOUT_BEFORE = 5


def upstream_text(slot: str, port: int, nodes: list[str] | None = None, fail_timeout: int = FAIL_TIMEOUT_BEFORE) -> str:
    """The live slot on this server, or on each swarm node: one that fails a connection (refused, or
    no answer within the site's proxy_connect_timeout) is left out for `fail_timeout` seconds and
    the request goes to the next (nginx's proxy_next_upstream default, which retries even a POST
    then: nothing of it was sent)."""
    if not nodes:
        return f"# managed by onebox-release: the live release's slot ({slot})\nserver 127.0.0.1:{port};\n"
    servers = "".join(f"server {node}:{port} max_fails=1 fail_timeout={fail_timeout}s;\n" for node in nodes)
    return f"# managed by onebox-release: the live release's slot ({slot}) on {len(nodes)} swarm node(s)\n{servers}"


def upstream_port(text: str) -> int | None:
    """The port an upstream file points at, or None."""
    match = re.search(r"^server [0-9.]+:(\d+)[ ;]", text, re.MULTILINE)
    return int(match.group(1)) if match else None


# --- swarm nodes, as the converge labels them and the manager's tools report them -----------

# Names each node after its inventory host: node hostnames are often all alike (one provider image).
SWARM_NODE_LABEL = "onebox.host"


def node_address(described: dict) -> str:
    """A node's address in its `docker node inspect` (a manager may show 0.0.0.0 in Status.Addr;
    its ManagerStatus.Addr then has it, with the port)."""
    addr = described.get("Status", {}).get("Addr", "")
    if addr in ("", "0.0.0.0"):
        addr = described.get("ManagerStatus", {}).get("Addr", "").rsplit(":", 1)[0]
    return addr


# --- names an operator types, checked before they reach a command -----------------------------

RELEASE_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")  # 20261202-081500-3fa2c1
BACKUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")


def check_release_id(value: str) -> str:
    if not RELEASE_ID.match(value):
        raise ValueError(f"{value!r} is not a release id (like 20261202-081500-3fa2c1; see `onebox releases`)")
    return value


def check_backup_name(value: str) -> str:
    if not BACKUP_NAME.match(value) or ".." in value:
        raise ValueError(f"{value!r} is not a backup name (letters, digits, . _ -; see `onebox backup list`)")
    return value


# --- the release's env file (app.env): what compose's env_file parser reads back exactly ------

def env_value_problem(value: str) -> str | None:
    """Why `value` cannot be an app.env value compose reads back exactly, or None. compose takes a
    single-quoted value literally (no `$` interpolation, no ` #` comment, no escapes); inside one, a
    quote cannot be written and a trailing backslash would escape the closing quote."""
    if "'" in value:
        return "contains a single quote (')"
    if value.endswith("\\"):
        return "ends with a backslash"
    if any(char in value for char in "\r\n\x00"):
        return "is more than one line"
    return None


def env_file_text(env: dict[str, str]) -> str:
    """app.env: one NAME='value' line each (see env_value_problem); a value it cannot hold is refused."""
    for name, value in env.items():
        problem = env_value_problem(value)
        if problem:
            raise ValueError(f"app_env: {name} {problem}, which compose's env file cannot hold as it is")
    return "".join(f"{name}='{value}'\n" for name, value in env.items())


# --- the spec: what the server is asked to run ------------------------------------------------

# Raise it with every change of the shape below; the server refuses others. A field added with a
# default (ADDED_FIELDS) keeps it: a spec written before still loads, so an upgrade re-releases nothing.
SPEC_VERSION = 2


class ContractError(ValueError):
    """The spec does not have the shape this version of the contract says."""


@dataclasses.dataclass(frozen=True)
class Image:
    source: str  # build | tarball | registry
    ref: str
    tarball: str | None = None  # build: the uploaded context in APP_DIR/incoming
    dockerfile: str | None = None
    target: str | None = None
    args: dict[str, str] = dataclasses.field(default_factory=dict)
    registry_server: str | None = None
    registry_username: str | None = None


@dataclasses.dataclass(frozen=True)
class Process:
    command: list[str]
    healthcheck_command: list[str] | None = None
    stop_grace_period: int = 30


@dataclasses.dataclass(frozen=True)
class ReleaseSpec:
    """The part of the spec that makes a release: a change here is a new release."""

    image: Image
    source_label: str
    placeholders: dict[str, str]
    env: dict[str, str]
    secrets: list[str]
    secret_env: dict[str, str]
    secrets_in_env: bool
    command: list[str] | None
    release_command: list[str] | None
    health_path: str
    health_timeout: int
    graceful_timeout: int
    processes: dict[str, Process]


@dataclasses.dataclass(frozen=True)
class Spec:
    version: int
    app_name: str
    domain: str
    slot_ports: list[int]
    network_subnet: str
    postgres_enabled: bool
    postgres_image: str | None
    redis_enabled: bool
    releases_kept: int
    lock_timeout: int
    backup_before_release: bool
    backup_max_age_hours: int
    release: ReleaseSpec
    app_key: str | None = None  # None: the one app of a single-app server (AppFiles)
    # The swarm workers' addresses the API runs on (docs/cluster.md); empty: on this server, in compose.
    swarm_nodes: list[str] = dataclasses.field(default_factory=list)
    # Seconds nginx leaves out a swarm node that failed (cluster_fail_timeout); only with swarm_nodes.
    cluster_fail_timeout: int = FAIL_TIMEOUT_BEFORE
    # Seconds each step may take under the deploy lock before it is stopped (the settings of the same names).
    build_timeout: int = 1800
    pull_timeout: int = 600
    release_step_timeout: int = 600

    @property
    def files(self) -> AppFiles:
        return AppFiles(self.app_key)

    @property
    def dependencies(self) -> list[str]:
        """The services of the dependencies' compose project, as the settings declare them."""
        return [name for name, wanted in (("postgres", self.postgres_enabled), ("redis", self.redis_enabled)) if wanted]

    def to_json(self) -> str:
        """The fields added to version 2 are left out at their default: a single-app server's spec reads
        as one written before several apps, a single server's as before clusters, and an upgrade of
        onebox that changes no setting changes no spec.json."""
        data = dataclasses.asdict(self)
        for field in dataclasses.fields(self):
            if field.name in ADDED_FIELDS and data[field.name] == _default(field):
                del data[field.name]
        if not self.swarm_nodes:  # a single server's spec reads as before clusters
            data.pop("cluster_fail_timeout", None)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Spec:
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ContractError(f"spec.json is not JSON ({error})") from None
        version = data.get("version") if isinstance(data, dict) else None
        if version != SPEC_VERSION:
            raise ContractError(f"spec.json has version {version!r}, this onebox-release reads version "
                                f"{SPEC_VERSION}: converge with the onebox that wrote it, or upgrade both")
        return _load(cls, data, "spec")


# Spec fields added after version 2 was first written, each with a default (see Spec.to_json).
ADDED_FIELDS = ("app_key", "swarm_nodes", "build_timeout", "pull_timeout", "release_step_timeout")


def _default(field: dataclasses.Field) -> Any:
    return field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default


def inputs_hash(release: ReleaseSpec, app_compose: bytes) -> str:
    """What makes a release: its part of the spec and its compose file (not the dependencies)."""
    part = json.dumps(dataclasses.asdict(release), sort_keys=True).encode()
    return hashlib.sha256(part + b"\0" + app_compose).hexdigest()


def deps_hash(deps_compose: bytes) -> str:
    return hashlib.sha256(deps_compose).hexdigest()


def _load(cls: Any, data: Any, where: str) -> Any:
    """A dataclass from JSON, every field checked: a wrong shape names its path."""
    if not isinstance(data, dict):
        raise ContractError(f"{where}: expected an object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ContractError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, field in fields.items():
        if name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ContractError(f"{where}.{name}: missing")
            continue
        values[name] = _value(hints[name], data[name], f"{where}.{name}")
    return cls(**values)


def _value(kind: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        (kind,) = [a for a in args if a is not type(None)]
        return _value(kind, value, where)
    if dataclasses.is_dataclass(kind):
        return _load(kind, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ContractError(f"{where}: expected a list")
        return [_value(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ContractError(f"{where}: expected an object")
        return {key: _value(args[1], item, f"{where}.{key}") for key, item in value.items()}
    if kind is bool and not isinstance(value, bool) or kind is int and (isinstance(value, bool) or not isinstance(value, int)) \
            or kind is str and not isinstance(value, str):
        raise ContractError(f"{where}: expected {kind.__name__}, got {value!r}")
    return value
