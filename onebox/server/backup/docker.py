"""The deps project's containers, found by their compose labels, and the docker argv
the other modules run."""

from __future__ import annotations

import functools
import json
import time
from typing import Any

from onebox.server import docker as server_docker
from onebox.server.backup.config import BackupError, Config
from onebox.server.basics import RUNC_NOT_STARTED, Result, run, run_until_started, wait_until

SERVICE_LABEL = "com.docker.compose.service"


# runc now and then fails to start an exec'd process ("OCI runtime exec failed: ... unable to
# start container process"), seen under load just after a container started. The command never
# ran, so running it again is safe.
EXEC_NOT_STARTED = RUNC_NOT_STARTED


def run_exec(argv: list[str], what: str) -> Result:
    """A `docker exec` (reading no input of ours), run again when runc did not start it."""
    return run_until_started(lambda: run(argv, check=False), what,
                             lambda result: result.returncode == 126 and EXEC_NOT_STARTED in result.stderr)


def container(config: Config, service: str, running: bool = True) -> str | None:
    """The ID of a service's container in the deps project (found by compose labels)."""
    ids = run(server_docker.ps_service_ids(config.app_name, service, running), what="docker ps").stdout.split()
    if len(ids) > 1:
        raise BackupError(f"{len(ids)} containers of service {service} in project {config.app_name}; expected one")
    return ids[0] if ids else None


def require_container(config: Config, service: str) -> str:
    found = container(config, service)
    if found is None:
        raise BackupError(f"no running {service} container in compose project {config.app_name!r} "
                          f"(label {SERVICE_LABEL}={service}); is the stack up? (`docker ps -a`)")
    return found


def volume_exists(name: str) -> bool:
    return run(server_docker.volume_inspect(name), check=False).ok


def inspect(container_id: str) -> dict[str, Any]:
    return dict(json.loads(run(server_docker.inspect(container_id), what="docker inspect").stdout)[0])


def _health(container_id: str) -> tuple[bool, dict[str, Any], str | None]:
    """Whether a container runs and, when it has a health check, is healthy; its state."""
    state = inspect(container_id)["State"]
    health = (state.get("Health") or {}).get("Status")
    return bool(state.get("Running")) and health in (None, "healthy"), state, health


def _healthy(container_id: str) -> bool:
    return _health(container_id)[0]


def wait_healthy(container_ids: list[str], timeout: float) -> None:
    """Wait until each container runs and, when it has a health check, is healthy."""
    deadline = time.monotonic() + timeout
    for container_id in container_ids:
        if wait_until(functools.partial(_healthy, container_id), max(0.0, deadline - time.monotonic()), interval=1):
            continue
        _, state, health = _health(container_id)
        short = container_id[:12]
        raise BackupError(f"container {short} is not healthy after {timeout:.0f} s "
                          f"(status {state.get('Status')}, health {health}); see `docker logs {short}`")
