"""Where a slot's API runs, chosen once per app (`of`): in the slot's compose project on this
server (the default), or as a swarm service on the workers when the app lists swarm nodes
(swarm.py, docs/cluster.md). Everything else of a release (processes, release step,
dependencies) stays in compose on this server either way. The callers ask the placement to act
and never which one it is, so a third (or a change to one) touches this module only.

Imports slot_project and swarm, never slots (which imports this): no cycle."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from onebox import contract
from onebox.server import basics, docker, docker_state, slot_project, swarm
from onebox.server.basics import OneboxError
from onebox.server.model import App, ReleaseRecord

SWARM_WAIT = 300  # seconds: a manager's swarm comes up after dockerd, once its raft store is read
# nginx's workers run as this user (nginx.conf.j2): on a cluster only their connections are
# mapped, so the manager's own tools and Prometheus still reach a node's slot ports as they are.
NGINX_USER = "www-data"


@dataclass(frozen=True)
class Fronts:
    """What the kernel's map (port_map.py) catches: each address nginx's upstream names (at the
    app's api_port) and the host its connections go to, and whose connections (None: anyone's)."""

    targets: dict[str, str]
    owner: str | None = None

    @property
    def nodes(self) -> list[str]:
        """The swarm nodes that serve the API, each watched by onebox-node-watch ([]: none)."""
        return list(self.targets) if self.owner else []


@dataclass(frozen=True)
class OnThisServer:
    """The API in the slot's compose project, beside its processes: nothing of swarm."""

    app: App

    def ready(self) -> None:
        """Docker running is enough (boot runs after docker.service)."""

    def start_api(self, record: ReleaseRecord, slot: str) -> None:
        """`compose up` of the API, again when runc did not start its container (compose has
        removed it then, and nothing of the app ran)."""
        def up() -> basics.Result:
            result = slot_project.compose(self.app, record, slot, *docker.up(contract.compose.API_SERVICE), check=False,
                                          capture=True)
            with contextlib.suppress(OSError):  # the release log, as when not captured (a gone session: no log)
                print(result.stdout + result.stderr, end="", flush=True)
            return result

        basics.run_until_started(up, f"docker compose up ({self.app.project(slot)})",
                                 lambda result: basics.RUNC_NOT_STARTED in result.stdout + result.stderr)

    def wait_healthy(self, record: ReleaseRecord, slot: str) -> None:
        """Until the app answers its health path on the slot's port (and Docker's check, if any, passes)."""
        app = self.app
        deadline = time.monotonic() + app.spec.release.health_timeout
        while time.monotonic() < deadline:
            api = [c for c in docker_state.containers(app.project(slot)) if c.service == contract.compose.API_SERVICE]
            if api and api[0].state in ("exited", "dead", "restarting"):
                break  # it crashed: restarting it in a loop would not make it healthy
            if api and api[0].health in ("healthy", "none") and slot_project.http_ok(app, app.port(slot)):
                return
            time.sleep(0.5)
        # Enough lines for a crash loop: each failed boot logs a few (the traceback, the exit).
        slot_project.compose(app, record, slot, "logs", "--no-color", "--tail", "80", contract.compose.API_SERVICE, check=False)
        raise OneboxError(f"the new version did not become healthy on {app.spec.release.health_path} "
                          "(its last log lines are above); it never received traffic")

    def api_outside_project(self, slot: str) -> list[docker_state.Container]:
        """The API is one of the compose project's containers: nothing more to list."""
        return []

    def stop_api_outside_project(self, slot: str) -> None:
        """Stopping the compose project stops the API too."""

    def attach_dependencies(self) -> None:
        """The API shares compose's network with the dependencies already."""

    def prune(self) -> None:
        """Images are pruned by the engine; nothing else is left behind."""

    def task_lines(self, slot: str) -> list[str]:
        return []

    def api_status_in_name(self) -> bool:
        """A compose container's name says nothing its state and health do not."""
        return False

    def fronts(self) -> Fronts:
        """nginx names a stable local address that nothing listens on; the slot is on loopback."""
        return Fronts({contract.SWITCH_ADDRESS: "127.0.0.1"})


@dataclass(frozen=True)
class OnWorkers:
    """The API as one swarm service per slot on every worker (swarm.py); its processes and the
    release step stay in the compose project on this server, the swarm's manager."""

    app: App

    def ready(self) -> None:
        """The swarm active: a service started before it is lost (a manager's comes up after dockerd)."""
        if not basics.wait_until(swarm_active, SWARM_WAIT, interval=2):
            raise OneboxError(f"the swarm did not become active within {SWARM_WAIT} s (`docker info`); "
                              "the next converge starts the app")

    def start_api(self, record: ReleaseRecord, slot: str) -> None:
        swarm.start_api(self.app, record, slot)

    def wait_healthy(self, record: ReleaseRecord, slot: str) -> None:
        swarm.wait_healthy(self.app, record, slot)

    def api_outside_project(self, slot: str) -> list[docker_state.Container]:
        """The slot's service as one entry beside the compose containers."""
        return [swarm.api_container(self.app, slot)]

    def stop_api_outside_project(self, slot: str) -> None:
        swarm.stop(self.app, slot)

    def attach_dependencies(self) -> None:
        """PostgreSQL and Redis on the overlay the replicas reach them on."""
        swarm.attach_dependencies(self.app)

    def prune(self) -> None:
        """The swarm secrets no slot's service mounts any more."""
        swarm.prune(self.app)

    def task_lines(self, slot: str) -> list[str]:
        return swarm.task_lines(self.app, slot)

    def api_status_in_name(self) -> bool:
        """The service's entry names how many nodes answer health."""
        return True

    def fronts(self) -> Fronts:
        """nginx names each node, whose replica answers on the slot's port there."""
        return Fronts({node: node for node in self.app.spec.swarm_nodes}, owner=NGINX_USER)


Placement = OnThisServer | OnWorkers


def of(app: App) -> Placement:
    """The one place that decides: on the workers when the app lists swarm nodes."""
    return OnWorkers(app) if app.spec.swarm_nodes else OnThisServer(app)


def swarm_active() -> bool:
    return basics.run(docker.info("{{.Swarm.LocalNodeState}}"), check=False).stdout.strip() == "active"


def stop_api_anywhere(app: App, slot: str) -> None:
    """Before the slot's compose project goes: its API service too, where one may be. On a
    manager whatever this app's placement, since a service is left from a placement on the
    workers the app's spec no longer asks for."""
    if isinstance(of(app), OnWorkers) or swarm.is_manager():
        OnWorkers(app).stop_api_outside_project(slot)
