"""A release in a slot: its compose project (<app>-blue or <app>-green), started, checked
for health on the slot's port, and stopped with each service's grace period. In a cluster
the slot's API is a swarm service on the workers instead (placement.py, swarm.py); its processes and the
release step stay in the compose project on the manager. The compose command line and the
health probe both use are slot_project.py's."""

from __future__ import annotations

import time

from onebox.server import basics, docker, docker_state, placement, slot_project
from onebox.server.basics import OneboxError
from onebox.server.model import App, ReleaseRecord


def wait_healthy(app: App, record: ReleaseRecord, slot: str) -> None:
    """Until the slot's API answers health wherever its placement runs it."""
    placement.of(app).wait_healthy(record, slot)


def start_api(app: App, record: ReleaseRecord, slot: str) -> None:
    placement.of(app).start_api(record, slot)


def containers(app: App, slot: str) -> list[docker_state.Container]:
    """What runs in a slot: its compose project's containers, and in a cluster its API service."""
    return [*docker_state.containers(app.project(slot)), *placement.of(app).api_outside_project(slot)]


def stop(app: App, slot: str, record: ReleaseRecord | None) -> None:
    """SIGTERM, then each service's own grace period (stop_grace_period): in-flight requests finish."""
    placement.stop_api_anywhere(app, slot)
    if record is None:
        basics.run(docker.compose_down_unfiled(app.project(slot)), check=False)
        return
    slot_project.compose(app, record, slot, "down", "--remove-orphans", check=False)


def start_processes(app: App, record: ReleaseRecord, slot: str, settle: float = 3.0) -> None:
    """The extra processes (workers): started, and still running a few seconds later. They
    usually have no health check, so `compose up --wait` cannot judge them."""
    names = list(app.spec.release.processes)
    slot_project.compose(app, record, slot, *docker.up(*names))
    time.sleep(settle)
    found = {c.service: c for c in docker_state.containers(app.project(slot))}
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
