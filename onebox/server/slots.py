"""A release in a slot: its compose project (<app>-blue or <app>-green), started, checked
for health on the slot's port, and stopped with each service's grace period. In a cluster
the slot's API is a swarm service on the workers instead (swarm.py); its processes and the
release step stay in the compose project on the manager. The compose command line and the
health probe both use are slot_project.py's."""

from __future__ import annotations

import time

from onebox.server import basics, docker, slot_project, swarm
from onebox.server.basics import OneboxError
from onebox.server.model import App, ReleaseRecord


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
        if api and api[0].health in ("healthy", "none") and slot_project.http_ok(app, app.port(slot)):
            return
        time.sleep(0.5)
    # Enough lines for a crash loop: each failed boot logs a few (the traceback, the exit).
    slot_project.compose(app, record, slot, "logs", "--no-color", "--tail", "80", "api", check=False)
    raise OneboxError(f"the new version did not become healthy on {app.spec.release.health_path} "
                      "(its last log lines are above); it never received traffic")


def start_api(app: App, record: ReleaseRecord, slot: str) -> None:
    if swarm.enabled(app):
        swarm.start_api(app, record, slot)
    else:
        slot_project.compose(app, record, slot, *docker.up("api"))


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
    slot_project.compose(app, record, slot, "down", "--remove-orphans", check=False)


def start_processes(app: App, record: ReleaseRecord, slot: str, settle: float = 3.0) -> None:
    """The extra processes (workers): started, and still running a few seconds later. They
    usually have no health check, so `compose up --wait` cannot judge them."""
    names = list(app.spec.release.processes)
    slot_project.compose(app, record, slot, *docker.up(*names))
    time.sleep(settle)
    found = {c.service: c for c in docker.containers(app.project(slot))}
    failing = [name for name in names if name not in found or not found[name].up]
    if failing:
        slot_project.compose(app, record, slot, "logs", "--no-color", "--tail", "30", *failing, check=False)
        raise OneboxError(f"{', '.join(failing)} did not stay up (logs above); the new API serves, "
                          "the previous release's processes are stopped: fix and deploy again")


def start_again(app: App, record: ReleaseRecord, slot: str) -> None:
    """The live release started again after a stop (a restore): the API, healthy, then its processes.
    Not one `compose up --wait`: a process without a health check fails that wait."""
    start_api(app, record, slot)
    wait_healthy(app, record, slot)
    if record.processes_started and app.spec.release.processes:
        start_processes(app, record, slot)
