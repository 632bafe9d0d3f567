"""The JSON documents the controller writes and the server reads: spec.json (what the server
is asked to run), loaded with every field checked, the loader the other documents share, and
the hashes that say whether a release or the dependencies are what the settings ask for.
Standard library only (the server's zipapp carries it)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from typing import Any

from onebox.contract.layout import FAIL_TIMEOUT_BEFORE, AppFiles

# --- the spec: what the server is asked to run ------------------------------------------------

# Raise it with every change of the shape below; the server refuses others. A field added with a
# default (ADDED_FIELDS) keeps it: a spec written before still loads, so an upgrade re-releases nothing.
SPEC_VERSION = 2


class ContractError(ValueError):
    """A document or message (spec.json, apps.json, backup.json, the state report) does not have
    the shape this version of the contract says."""


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


# The placeholders of app_env and app_secret_env that onebox-release fills in, not the settings: the
# release's id (known once the server makes it) and, in app_secret_env only, the secrets.
RELEASE_PLACEHOLDER = "release"
SECRET_PLACEHOLDERS = ("postgres_password", "postgres_password_url", "secret")


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
        return load_checked(cls, data, "spec")


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


def json_object(text: str, where: str) -> dict[str, Any]:
    """A contract document's JSON object; anything else is refused naming `where`."""
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ContractError(f"{where} is not JSON ({error})") from None
    if not isinstance(data, dict):
        raise ContractError(f"{where} is not a JSON object")
    return data


def message_version(data: dict[str, Any], expected: int, where: str, reader: str, hint: str,
                    key: str = "version") -> int:
    """A message's version, taken out of `data` (none: 1, the shape before versions); another is
    refused, naming both versions, the program that cannot read it and what to do."""
    version = data.pop(key, 1)
    if version != expected:
        raise ContractError(f"{where} has version {version!r}, this {reader} reads version {expected}: {hint}")
    return expected


def load_checked(cls: Any, data: Any, where: str) -> Any:
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
        return load_checked(kind, value, where)
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
