"""A release in a slot: its compose project (<app>-blue or <app>-green), started, checked
for health on the slot's port, and stopped with each service's grace period. In a cluster
the slot's API is a swarm service on the workers instead (swarm.py); its processes and the
release step stay in the compose project on the manager."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from onebox.server import basics, docker, swarm
from onebox.server.basics import OneboxError, Result
from onebox.server.model import App, ReleaseRecord

# releases made by older onebox versions may carry entrypoint.json instead of override.json
OVERRIDES = ("override.json", "entrypoint.json")


def compose_env(app: App, record: ReleaseRecord, slot: str) -> dict[str, str]:
    return {"APP_IMAGE": record.image, "ONEBOX_RELEASE": record.id, "ONEBOX_SLOT_PORT": str(app.port(slot))}


def compose_argv(app: App, record: ReleaseRecord, slot: str, *args: str) -> list[str]:
    release_dir = app.releases_dir / record.id
    files = [release_dir / "compose.yaml", *(release_dir / name for name in OVERRIDES if (release_dir / name).exists())]
    return docker.compose(app.project(slot), release_dir, files, *args)


def compose(app: App, record: ReleaseRecord, slot: str, *args: str, check: bool = True,
            capture: bool = False) -> Result:
    """Output to the release log unless captured."""
    return basics.run(compose_argv(app, record, slot, *args), env=compose_env(app, record, slot), check=check,
                      capture=capture, what=f"docker compose {args[0]} ({app.project(slot)})")


def http_ok(app: App, port: int, timeout: float = 2.0, host: str = "127.0.0.1") -> bool:
    """The app's health path on a slot's port, as nginx would ask it."""
    request = urllib.request.Request(f"http://{host}:{port}{app.spec.release.health_path}",
                                     headers={"Host": app.spec.domain, "X-Forwarded-Proto": "https"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback only
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_healthy(app: App, record: ReleaseRecord, slot: str) -> None:
    """Until the app answers its health path on the slot's port (and Docker's check, if any, passes)."""
    if swarm.enabled(app):
        swarm.wait_healthy(app, record, slot)
        return
    deadline = time.monotonic() + app.spec.release.health_timeout
    while time.monotonic() < deadline:
        api = [c for c in docker.containers(app.project(slot)) if c.service == "api"]
        if api and api[0].state in ("exited", "dead", "restarting"):
            break  # it crashed: restarting it in a loop would not make it healthy
        if api and api[0].health in ("healthy", "none") and http_ok(app, app.port(slot)):
            return
        time.sleep(0.5)
    # Enough lines for a crash loop: each failed boot logs a few (the traceback, the exit).
    compose(app, record, slot, "logs", "--no-color", "--tail", "80", "api", check=False)
    raise OneboxError(f"the new version did not become healthy on {app.spec.release.health_path} "
                      "(its last log lines are above); it never received traffic")


def start_api(app: App, record: ReleaseRecord, slot: str) -> None:
    if swarm.enabled(app):
        swarm.start_api(app, record, slot)
    else:
        compose(app, record, slot, *docker.up("api"))


def containers(app: App, slot: str) -> list[docker.Container]:
    """What runs in a slot: its compose project's containers, and in a cluster its API service."""
    found = docker.containers(app.project(slot))
    return [*found, swarm.api_container(app, slot)] if swarm.enabled(app) else found


def stop(app: App, slot: str, record: ReleaseRecord | None) -> None:
    """SIGTERM, then each service's own grace period (stop_grace_period): in-flight requests finish."""
    if swarm.enabled(app) or swarm.is_manager():  # or left from a placement on the workers
        swarm.stop(app, slot)
    if record is None:
        basics.run(["docker", "compose", "-p", app.project(slot), "down", "--remove-orphans"], check=False)
        return
    compose(app, record, slot, "down", "--remove-orphans", check=False)


def start_processes(app: App, record: ReleaseRecord, slot: str, settle: float = 3.0) -> None:
    """The extra processes (workers): started, and still running a few seconds later. They
    usually have no health check, so `compose up --wait` cannot judge them."""
    names = list(app.spec.release.processes)
    compose(app, record, slot, *docker.up(*names))
    time.sleep(settle)
    found = {c.service: c for c in docker.containers(app.project(slot))}
    failing = [name for name in names if name not in found or not found[name].up]
    if failing:
        compose(app, record, slot, "logs", "--no-color", "--tail", "30", *failing, check=False)
        raise OneboxError(f"{', '.join(failing)} did not stay up (logs above); the new API serves, "
                          "the previous release's processes are stopped: fix and deploy again")


def start_again(app: App, record: ReleaseRecord, slot: str) -> None:
    """The live release started again after a stop (a restore): the API, healthy, then its processes.
    Not one `compose up --wait`: a process without a health check fails that wait."""
    start_api(app, record, slot)
    wait_healthy(app, record, slot)
    if record.processes_started and app.spec.release.processes:
        start_processes(app, record, slot)
