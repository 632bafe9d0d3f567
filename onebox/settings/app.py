"""Settings of the app role (deploys/app.py): the application's contract with onebox.

Nothing here names the example app's routes, ports or variables: its contract is
the defaults in onebox/defaults.py.
"""

from __future__ import annotations

import ipaddress
import string
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from onebox import contract
from onebox.settings.types import (
    PRIVATE_NETWORKS,
    TAKEN_NETWORKS,
    Argument,
    EnvName,
    HostName,
    ImageRef,
    Port,
    PositiveInt,
    ServiceName,
    Size,
    UrlPath,
    directory_problem,
)

# Services and commands onebox itself runs in the compose projects.
MANAGED_SERVICES = {contract.compose.API_SERVICE, contract.compose.POSTGRES_SERVICE, contract.compose.REDIS_SERVICE, "release"}
# Variables onebox sets in every app container.
MANAGED_ENV = {contract.compose.RELEASE_VAR}
# Values any app_env / app_secret_env entry may use, as {name}.
PLAIN_PLACEHOLDERS = {
    "postgres_host", "postgres_port", "postgres_user", "postgres_db", "redis_url", "domain", "public_url",
    contract.RELEASE_PLACEHOLDER, "app_port", "proxy_ip", "api_workers", "api_timeout", "api_graceful_timeout",
    "api_max_requests", "api_max_requests_jitter",
}
# A step's time limit under the deploy lock: at least a second, at most a day (a value in
# milliseconds, or meant as "no limit", would hold the lock for days).
Seconds = Annotated[int, Field(ge=1, le=86400)]
# Only app_secret_env may embed secrets: it is assembled on the server, never here.
# {postgres_password_url} is the password percent-encoded, for a URL such as DATABASE_URL.
SECRET_PLACEHOLDERS = set(contract.SECRET_PLACEHOLDERS)


class Process(BaseModel):
    """An extra process from the app's image: a worker, a scheduler. Never published."""

    model_config = {"extra": "forbid", "frozen": True}
    command: Annotated[list[Argument], Field(min_length=1)]
    stop_grace_period: PositiveInt = 30
    healthcheck_command: list[Argument] | None = None


# A Linux capability as Docker takes it: SETUID or CAP_SETUID.
Capability = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")]


def placeholders(template: str) -> set[str]:
    """The {names} a value uses (`{secret[NAME]}` counts as `secret`)."""
    names = set()
    for _, field, _, _ in string.Formatter().parse(template):
        if field is not None:
            names.add(field.split("[", 1)[0].split(".", 1)[0])
    return names


class AppSettings(BaseModel):
    app_name: Annotated[str, Field(pattern=contract.APP_NAME_PATTERN)]
    app_dir: Annotated[str, Field(pattern=r"^/[A-Za-z0-9._/-]+$")]
    app_image_source: Literal["build", "registry", "tarball"]
    api_placement: Literal["manager", "workers"]
    app_source_dir: str
    app_dockerfile: Annotated[str, Field(pattern=r"^[A-Za-z0-9._/-]+$")]
    app_build_args: dict[EnvName, Argument]
    app_build_target: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+$")] | None
    app_image: ImageRef
    postgres_image: ImageRef
    redis_image: ImageRef
    controller_images: list[ImageRef]
    registry_server: HostName | None
    registry_username: Annotated[str, Field(pattern=r"^[A-Za-z0-9._@-]+$")] | None

    app_port: Port
    app_command: list[Argument] | None
    app_health_path: UrlPath
    app_healthcheck_command: list[Argument] | None
    app_health_timeout: PositiveInt
    app_metrics_path: UrlPath | None
    app_env: dict[EnvName, Argument]
    app_secrets: list[EnvName]
    app_secret_env: dict[EnvName, Argument]
    app_secrets_in_env: bool
    app_release_command: list[Argument] | None
    app_processes: dict[ServiceName, Process]
    app_cap_add: list[Capability]
    app_read_only: bool
    releases_kept: Annotated[int, Field(ge=2, le=50)]
    deploy_lock_timeout: Annotated[int, Field(ge=0)]
    build_timeout: Seconds
    pull_timeout: Seconds
    release_step_timeout: Seconds

    api_port: Annotated[int, Field(ge=1024, le=65534)]
    api_workers: PositiveInt
    api_timeout: PositiveInt
    api_graceful_timeout: PositiveInt
    api_max_requests: Annotated[int, Field(ge=0)]
    api_max_requests_jitter: Annotated[int, Field(ge=0)]
    api_memory_limit: Size
    api_cpus: Annotated[float, Field(gt=0)] | None
    postgres_enabled: bool
    redis_enabled: bool
    postgres_memory_limit: Size
    redis_memory_limit: Size
    postgres_user: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")]
    postgres_db: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")]
    docker_network_subnet: str

    @field_validator("app_dir")
    @classmethod
    def _not_a_system_dir(cls, value: str) -> str:
        # Never a directory the system, Docker or onebox own: the rollout replaces files there, a purge deletes it.
        problem = directory_problem(value, "/opt/myapp")
        if problem:
            raise ValueError(problem)
        return str(PurePosixPath(value))

    @field_validator("docker_network_subnet")
    @classmethod
    def _subnet(cls, value: str) -> str:
        network = ipaddress.ip_network(value, strict=True)
        if network.version != 4 or network.num_addresses < 8:
            raise ValueError("expected an IPv4 network with room for the stack, such as '172.30.0.0/24'")
        return value

    @field_validator("docker_network_subnet")
    @classmethod
    def _subnet_free(cls, value: str) -> str:
        network = ipaddress.IPv4Network(value)
        if not any(network.subnet_of(private) for private in PRIVATE_NETWORKS):
            raise ValueError("must be inside a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16): "
                             "Docker routes the whole subnet to its bridge, hiding those addresses from the server")
        for taken, owner in TAKEN_NETWORKS.items():
            if network.overlaps(taken):
                raise ValueError(f"overlaps {taken}, {owner}; pick another such as '172.30.0.0/24', clear of "
                                 "the server's own networks too (onebox cannot see those before it connects)")
        return value

    @field_validator("app_processes")
    @classmethod
    def _process_names(cls, processes: dict[str, Process]) -> dict[str, Process]:
        clash = MANAGED_SERVICES.intersection(processes)
        if clash:
            raise ValueError(f"{sorted(clash)} is a service onebox manages; name the process differently (e.g. 'worker')")
        return processes

    @field_validator("app_cap_add")
    @classmethod
    def _not_all(cls, names: list[str]) -> list[str]:
        if "ALL" in names:
            raise ValueError("ALL would give back every capability onebox drops; name only those the image "
                             "needs, such as ['SETUID', 'SETGID']")
        return names

    @model_validator(mode="after")
    def _contract(self) -> AppSettings:
        if self.app_image_source == "registry" and not self.registry_server:
            raise ValueError("app_image_source is 'registry' but registry_server is empty; set it (e.g. 'ghcr.io')")
        if self.app_image_source != "registry":
            context = Path(self.app_source_dir)
            dockerfile = (context / self.app_dockerfile).resolve()
            if not context.is_dir():
                raise ValueError(f"app_source_dir {self.app_source_dir!r} is not a directory on this machine; "
                                 "point it at the application to build")
            if not dockerfile.is_file() or not dockerfile.is_relative_to(context.resolve()):
                raise ValueError(f"app_dockerfile {self.app_dockerfile!r} is not a file inside app_source_dir "
                                 f"{self.app_source_dir!r}; give its path relative to the build context")
        self._check_env()
        return self

    @model_validator(mode="after")
    def _secret_file_names(self) -> AppSettings:
        # Each named secret is also <NAME>_FILE in the container, whichever setting comes first.
        for setting, variables in (("app_env", self.app_env), ("app_secrets", self.app_secrets),
                                   ("app_secret_env", self.app_secret_env)):
            for name in variables:
                secret = name.removesuffix("_FILE")
                if name.endswith("_FILE") and secret in self.app_secrets:
                    raise ValueError(f"{setting}: {name} is set by onebox itself (the file of secret {secret}); "
                                     "choose another name")
        return self

    def _check_env(self) -> None:
        names: dict[str, str] = {}
        for setting, variables in (("app_env", self.app_env), ("app_secrets", self.app_secrets),
                                   ("app_secret_env", self.app_secret_env)):
            for name in variables:
                if name in MANAGED_ENV or name.endswith("_FILE") and name.removesuffix("_FILE") in names:
                    raise ValueError(f"{setting}: {name} is set by onebox itself; choose another name")
                if name in names:
                    raise ValueError(f"{setting}: {name} is also set by {names[name]}; set each variable once")
                names[name] = setting
        for name, value in self.app_env.items():
            problem = contract.env_value_problem(value)
            if problem:
                raise ValueError(f"app_env: {name} {problem}, which the release's env file (app.env, read by "
                                 "docker compose) cannot hold as it is; set it in app_secret_env instead: the container "
                                 f"reads it from the file ${name}_FILE (or as {name} with app_secrets_in_env), "
                                 "whatever its characters")
            unknown = placeholders(value) - PLAIN_PLACEHOLDERS
            if unknown & SECRET_PLACEHOLDERS:
                raise ValueError(f"app_env: {name} uses a secret; move it to app_secret_env, which is assembled on the server")
            if unknown:
                raise ValueError(f"app_env: {name} uses unknown {{{sorted(unknown)[0]}}}; "
                                 f"known: {', '.join(sorted(PLAIN_PLACEHOLDERS))}")
        for name, value in self.app_secret_env.items():
            unknown = placeholders(value) - PLAIN_PLACEHOLDERS - SECRET_PLACEHOLDERS
            if unknown:
                raise ValueError(f"app_secret_env: {name} uses unknown {{{sorted(unknown)[0]}}}; known: "
                                 f"{', '.join(sorted(PLAIN_PLACEHOLDERS | SECRET_PLACEHOLDERS))}, secret[NAME]")
            for secret in _secret_refs(value) - set(self.app_secrets):
                raise ValueError(f"app_secret_env: {name} uses secret[{secret}], which is not in app_secrets; add it there")
        uses = " ".join([*self.app_env.values(), *self.app_secret_env.values()])
        if not self.postgres_enabled and any(f"{{{p}" in uses for p in ("postgres_", )):
            raise ValueError("postgres_enabled is False but app_env/app_secret_env use {postgres_*}; remove them")
        if not self.redis_enabled and "{redis_url}" in uses:
            raise ValueError("redis_enabled is False but app_env/app_secret_env use {redis_url}; remove it")

    @property
    def network_gateway(self) -> str:
        """The compose network's gateway: the only peer the API trusts for X-Forwarded-*."""
        return str(next(ipaddress.ip_network(self.docker_network_subnet).hosts()))

    @property
    def slot_ports(self) -> tuple[int, int]:
        """Host ports of the two API slots (blue, green): a release starts beside the live one."""
        return self.api_port, self.api_port + 1


def _secret_refs(template: str) -> set[str]:
    refs = set()
    for _, field, _, _ in string.Formatter().parse(template):
        if field and field.startswith("secret["):
            refs.add(field[len("secret["):].rstrip("]"))
    return refs
