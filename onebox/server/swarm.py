"""A slot's API on the swarm workers (docs/cluster.md): one swarm service per slot,
<app>-<slot>_api, in global mode on every worker, publishing the slot's port on each node
(host mode: nginx on the manager sees every node and drops a dead one). The release engine
is the same as on one server: the new slot's service starts beside the live one, is gated on
every node's health answer, nginx switches to it, the old slot's service is removed.

The service is translated from the release's own compose file (`docker compose config`), so
what the API runs with (command, environment, health check, limits, grace period) is the same
in both places. Secrets become swarm secrets named by a keyed digest of their content (swarm
secrets are immutable); PostgreSQL and Redis stay on the manager, reached over an attachable
overlay network the dependencies' containers join under their service names.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from onebox import contract
from onebox.server import basics, docker, docker_state, secret_files, slot_project
from onebox.server.basics import OneboxError
from onebox.server.model import App, ReleaseRecord

RELEASE_LABEL = "onebox.release"
# Task states of a replica that failed to start or crashed (docker's task states).
FAILED_STATES = ("failed", "rejected")


def service(app: App, slot: str) -> str:
    return f"{app.project(slot)}_api"


def network(app: App) -> str:
    return f"{app.name}_swarm"


# --- the network the replicas reach the dependencies on ------------------------------------------

def ensure_network(app: App) -> None:
    name = network(app)
    if not basics.run(docker.network_inspect(name), check=False).ok:
        basics.run(docker.overlay_network_create(name), what=f"docker network create {name} (overlay)")


def attach_dependencies(app: App) -> None:
    """PostgreSQL and Redis on the overlay too, under their service names. After every compose
    up of the dependencies: a recreated container has only compose's own network."""
    ensure_network(app)
    for item in docker_state.containers(app.name):
        if item.state != "running":
            continue
        networks = basics.run(docker.container_networks(item.name), check=False).stdout
        if network(app) not in (json.loads(networks or "{}") or {}):
            basics.run(docker.network_connect(network(app), item.name, alias=item.service),
                       what=f"docker network connect {network(app)} {item.name}")


# --- the service ------------------------------------------------------------------------------

def api_config(app: App, record: ReleaseRecord, slot: str) -> tuple[dict, dict]:
    """The API service and the top-level secrets of the release's compose file, resolved."""
    text = slot_project.compose(app, record, slot, "config", "--format", "json", capture=True).stdout
    config = json.loads(text)
    return config["services"][contract.compose.API_SERVICE], config.get("secrets") or {}


def secret_name(app: App, name: str, content: bytes) -> str:
    """Per content (swarm secrets cannot change), keyed so the name says nothing of the value."""
    return f"{app.name}_{name}_{secret_files.keyed_digest(app, content, size=8)}"


def ensure_secret(name: str, content: bytes) -> None:
    if not basics.run(docker.secret_inspect(name), check=False).ok:
        basics.run(docker.secret_create(name), stdin=content, what=f"docker secret create {name}")


def ensure_config(path: str) -> str:
    """A file every replica mounts (the secrets shim), as a swarm config named by its content."""
    content = Path(path).read_bytes()
    name = f"onebox-{path.rsplit('/', 1)[-1].replace('.', '-')}-{hashlib.sha256(content).hexdigest()[:12]}"
    if not basics.run(docker.config_inspect(name), check=False).ok:
        basics.run(docker.config_create(name, path), what=f"docker config create {name}")
    return name


def service_argv(app: App, record: ReleaseRecord, slot: str) -> list[str]:
    """`docker service create` for the slot's API, from the release's compose file."""
    api, declared = api_config(app, record, slot)
    release_dir = app.releases_dir / record.id
    env_file = release_dir / f"swarm-{slot}.env"  # not on the command line, which `ps` shows
    basics.write_atomic(env_file, "".join(f"{k}={v}\n" for k, v in (api.get("environment") or {}).items()), mode=0o600)
    argv = docker.service_create(service(app, slot), network(app), str(env_file), app.port(slot),
                                 api["ports"][0]["target"], f"{RELEASE_LABEL}={record.id}")
    for entry in api.get("secrets") or []:
        source = entry["source"]
        content = Path(declared[source]["file"]).read_bytes()  # the release's own secret file
        name = secret_name(app, source, content)
        ensure_secret(name, content)
        argv += ["--secret", f"source={name},target={entry.get('target') or source}"]
    for volume in api.get("volumes") or []:
        if volume.get("source") != contract.SHIM:  # the only bind a release's API has (app_secrets_in_env)
            raise OneboxError(f"the API mounts {volume.get('source')}, which the swarm workers do not have")
        argv += ["--config", f"source={ensure_config(contract.SHIM)},target={volume['target']},mode=0444"]
    if api.get("stop_grace_period"):
        argv += ["--stop-grace-period", api["stop_grace_period"]]
    if api.get("mem_limit"):
        argv += ["--limit-memory", str(api["mem_limit"])]
    if api.get("cpus"):
        argv += ["--limit-cpu", str(api["cpus"])]
    argv += privilege_args(api)
    logging = api.get("logging") or {}
    if logging.get("driver"):
        argv += ["--log-driver", logging["driver"], *(arg for k, v in (logging.get("options") or {}).items()
                                                      for arg in ("--log-opt", f"{k}={v}"))]
    argv += health_args(api.get("healthcheck") or {})
    if api.get("entrypoint"):
        argv += ["--entrypoint", shlex.join(api["entrypoint"])]
    return [*argv, record.image, *(api.get("command") or [])]


def privilege_args(api: dict) -> list[str]:
    """The compose file's capabilities and read-only root as service flags. `docker service
    create` has no flag for security_opt (up to docker/cli 29 at least), so no-new-privileges
    comes from the workers' daemon.json (templates/docker/daemon.json.j2) for all they run."""
    argv = [arg for cap in api.get("cap_drop") or [] for arg in ("--cap-drop", cap)]
    argv += [arg for cap in api.get("cap_add") or [] for arg in ("--cap-add", cap)]
    if api.get("read_only"):
        argv.append("--read-only")
    # compose's tmpfs entries are "PATH" or "PATH:OPTIONS"; onebox writes only the path.
    argv += [arg for path in api.get("tmpfs") or []
             for arg in ("--mount", f"type=tmpfs,destination={path.split(':', 1)[0]}")]
    return argv


def health_args(check: dict) -> list[str]:
    """The compose health check as service flags (compose's ["CMD", ...] becomes a shell line)."""
    if check.get("disable") or not check.get("test"):
        return ["--no-healthcheck"] if check.get("disable") else []
    test = check["test"]
    command = test[1] if test[0] == "CMD-SHELL" else shlex.join(test[1:])
    flags = {"interval": "--health-interval", "timeout": "--health-timeout", "retries": "--health-retries",
             "start_period": "--health-start-period", "start_interval": "--health-start-interval"}
    return ["--health-cmd", command, *(arg for key, flag in flags.items() if key in check
                                       for arg in (flag, str(check[key])))]


def is_manager() -> bool:
    """This server manages a swarm (a cluster's manager, whatever this app's placement)."""
    return basics.run(docker.info("{{.Swarm.ControlAvailable}}"), check=False).stdout.strip() == "true"


@dataclass(frozen=True)
class NodeState:
    """One swarm node as the manager sees it now."""

    name: str  # its inventory host (the label the converge sets), else its hostname
    role: str  # manager | worker
    address: str
    state: str  # swarm's: ready, down, unknown, disconnected

    @property
    def ready(self) -> bool:
        return self.state == "ready"


def node_states() -> list[NodeState]:
    """Every node of the swarm this server manages, ordered by name. A machine that joined again
    leaves its old entry down under the same name and address until the next converge removes it:
    the ready one stands for both (one series per node, and no alert for the old entry)."""
    ids = basics.run(docker.node_ids(), check=False).stdout.split()
    described = json.loads(basics.run(docker.node_inspect(*ids), check=False).stdout or "[]") if ids else []
    nodes: dict[tuple[str, str, str], NodeState] = {}
    for entry in described:
        spec = entry.get("Spec", {})
        node = NodeState(name=(spec.get("Labels") or {}).get(contract.SWARM_NODE_LABEL)
                         or entry.get("Description", {}).get("Hostname", entry.get("ID", "?")),
                         role=spec.get("Role", "?"), address=contract.node_address(entry),
                         state=entry.get("Status", {}).get("State", "unknown"))
        key = (node.name, node.role, node.address)
        if key not in nodes or node.ready:
            nodes[key] = node
    return sorted(nodes.values(), key=lambda node: (node.name, node.address))


def node_lines(attention: list[str]) -> list[str]:
    """For `onebox status` on a manager: each node's state; one not ready needs attention (its
    API replica is out of nginx's rotation, the others carry the load; see docs/cluster.md)."""
    lines = []
    for node in node_states():
        lines.append(f"swarm node     {node.name:<16} {node.role:<8} {node.address:<16} {node.state}")
        if not node.ready:
            attention.append(f"swarm node {node.name} ({node.role}, {node.address}) is {node.state}")
    return lines


def exists(app: App, slot: str) -> bool:
    return basics.run(docker.service_inspect(service(app, slot)), check=False).ok


def release_of(app: App, slot: str) -> str | None:
    found = basics.run(docker.service_inspect(service(app, slot), f'{{{{index .Spec.Labels "{RELEASE_LABEL}"}}}}'),
                       check=False)
    return found.stdout.strip() or None if found.ok else None


def start_api(app: App, record: ReleaseRecord, slot: str) -> None:
    """The slot's service running `record`; one running another release is replaced."""
    if release_of(app, slot) == record.id:
        return  # swarm keeps its replicas running (and starts one on a node that joins)
    stop(app, slot)
    ensure_network(app)
    basics.run(service_argv(app, record, slot), what=f"docker service create {service(app, slot)}")


def stop(app: App, slot: str) -> None:
    """The replicas get SIGTERM and the grace period; nginx no longer sends them anything."""
    if exists(app, slot):
        basics.run(docker.service_rm(service(app, slot)), what=f"docker service rm {service(app, slot)}")


# --- what runs where -----------------------------------------------------------------------------

def tasks(app: App, slot: str) -> list[dict]:
    """Each task of the slot's service, newest first: its node's address (node names are often
    all alike, a provider's image), its state ("running"), desired state and error."""
    ids = basics.run(docker.service_task_ids(service(app, slot)), check=False).stdout.split()
    if not ids:
        return []
    described = json.loads(basics.run(docker.inspect(*ids), check=False).stdout or "[]")
    node_ids = sorted({task.get("NodeID") for task in described if task.get("NodeID")})
    nodes = json.loads(basics.run(docker.node_inspect(*node_ids), check=False).stdout or "[]") if node_ids else []
    address = {node["ID"]: node.get("Status", {}).get("Addr", "?") for node in nodes}
    return [{"Node": address.get(task.get("NodeID"), task.get("NodeID", "?")),
             "State": task.get("Status", {}).get("State", "?"), "DesiredState": task.get("DesiredState", "?"),
             "Since": task.get("Status", {}).get("Timestamp", "")[:19], "Error": task.get("Status", {}).get("Err", "")}
            for task in described]


def api_container(app: App, slot: str) -> docker_state.Container:
    """The slot's API as one entry beside the compose containers: up when every node answers health."""
    healthy = [node for node in app.spec.swarm_nodes if slot_project.http_ok(app, app.port(slot), host=node)]
    wanted = len(app.spec.swarm_nodes)
    state = "running" if len(healthy) == wanted else "missing" if not exists(app, slot) else "degraded"
    return docker_state.Container(contract.compose.API_SERVICE, state, "healthy" if state == "running" else "none",
                            f"{service(app, slot)} ({len(healthy)}/{wanted} nodes healthy)")


def wait_healthy(app: App, record: ReleaseRecord, slot: str) -> None:
    """Until every worker's replica answers the health path on the slot's port. Replicas that
    keep failing (two per node) end the wait early: a crash loop does not become healthy."""
    deadline = time.monotonic() + app.spec.release.health_timeout
    nodes = app.spec.swarm_nodes
    while time.monotonic() < deadline:
        if all(slot_project.http_ok(app, app.port(slot), host=node) for node in nodes):
            return
        failed = [task for task in tasks(app, slot) if task["State"] in FAILED_STATES]
        if len(failed) >= 2 * len(nodes):
            break
        time.sleep(1)
    for task in tasks(app, slot)[:2 * len(nodes)]:
        basics.log(f"  {task['Node']}: {task['State']} {task['Error']}".rstrip())
    basics.run(docker.service_logs(service(app, slot), 40), check=False,
               capture=False)
    stop(app, slot)
    raise OneboxError(f"the new version did not become healthy on {app.spec.release.health_path} on every swarm "
                      "node (its tasks and last log lines are above); it never received traffic")


def task_lines(app: App, slot: str) -> list[str]:
    """For `onebox status`: which replica runs where."""
    return [f"replica        {task['Node']:<16} {task['State']:<10} since {task['Since']}"
            + (f"  error: {task['Error']}" if task["Error"] else "")
            for task in tasks(app, slot) if task["DesiredState"] == "running"]


def prune(app: App) -> None:
    """The app's swarm secrets that no slot's service mounts any more (a secret changed). Swarm
    refuses to remove one in use, so a race with a starting release loses nothing."""
    names = basics.run(docker.secret_names(f"{app.name}_"), check=False).stdout.split()
    used = set()
    for slot in contract.SLOTS:
        found = basics.run(docker.service_inspect(service(app, slot), "{{json .Spec.TaskTemplate.ContainerSpec.Secrets}}"),
                           check=False)
        if found.ok:
            used |= {entry["SecretName"] for entry in json.loads(found.stdout or "null") or []}
    for name in names:
        if name.startswith(f"{app.name}_") and name not in used:
            basics.run(docker.secret_rm(name), check=False)
