"""Every docker and compose command onebox runs, as argument lists built here and nowhere else
(each builder is pure, and tests/unit/test_docker_argv.py holds its exact list): the server
tools' and the controller's (onebox/images.py on this machine, the swarm role through pyinfra).
What the engine answers is read in onebox/server/docker_state.py."""

from __future__ import annotations

from pathlib import Path


def compose(project: str, project_dir: Path, files: list[Path], *args: str) -> list[str]:
    argv = ["docker", "compose", "-p", project, "--project-directory", str(project_dir)]
    for path in files:
        argv += ["-f", str(path)]
    return [*argv, *args]


def up(*services: str, wait: bool = False, no_recreate: bool = False, remove_orphans: bool = False) -> list[str]:
    """`compose up` of images that are already here: never a build, never a pull."""
    argv = ["up", "-d", "--no-build", "--pull", "never"]
    if no_recreate:
        argv.append("--no-recreate")
    if remove_orphans:
        argv.append("--remove-orphans")
    if wait:
        argv += ["--wait", "--wait-timeout", "180"]
    return [*argv, *services]


def ps(project: str) -> list[str]:
    return ["docker", "ps", "-a", "--filter", f"label=com.docker.compose.project={project}", "--format", "{{json .}}"]


def image_inspect(ref: str, template: str | None = None) -> list[str]:
    return ["docker", "image", "inspect", *(["-f", template] if template else []), ref]


def build(ref: str, dockerfile: str, target: str | None, args: dict[str, str], context: str = "-") -> list[str]:
    """Built from `context`; on the server the context on stdin (`-`): the uploaded tarball itself."""
    argv = ["docker", "build", "-q", "-f", dockerfile, "-t", ref]
    if target:
        argv += ["--target", target]
    for name, value in args.items():
        argv += ["--build-arg", f"{name}={value}"]
    return [*argv, context]


def save(*refs: str) -> list[str]:
    """The images as one archive on stdout (the controller sends its own images: app_image_source)."""
    return ["docker", "save", *refs]


def load(archive: str) -> list[str]:
    return ["docker", "load", "-q", "-i", archive]


def login(server: str | None, username: str) -> list[str]:
    return ["docker", "login", *([server] if server else []), "-u", username, "--password-stdin"]


def pull(ref: str) -> list[str]:
    return ["docker", "pull", "-q", ref]


def images(repository: str) -> list[str]:
    return ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", repository]


def image_rm(ref: str) -> list[str]:
    return ["docker", "image", "rm", ref]


def network_inspect(name: str) -> list[str]:
    return ["docker", "network", "inspect", name]


def network_create(name: str, subnet: str) -> list[str]:
    return ["docker", "network", "create", "--subnet", subnet, name]


def overlay_network_create(name: str) -> list[str]:
    """A swarm overlay network standalone containers may join too (the manager's dependencies)."""
    return ["docker", "network", "create", "--driver", "overlay", "--attachable", name]


def volume_rm(name: str) -> list[str]:
    return ["docker", "volume", "rm", name]


def volume_mountpoint(name: str) -> list[str]:
    return ["docker", "volume", "inspect", "-f", "{{.Mountpoint}}", name]


def compose_down_unfiled(project: str) -> list[str]:
    """`compose down` by project name alone: a slot whose release record is gone has no files to name."""
    return ["docker", "compose", "-p", project, "down", "--remove-orphans"]


# --- containers ------------------------------------------------------------------------------

def inspect(*targets: str, template: str | None = None) -> list[str]:
    """`docker inspect` of containers, tasks or any object by id or name (`template`: `-f`)."""
    return ["docker", "inspect", *(["-f", template] if template else []), *targets]


def container_networks(container: str) -> list[str]:
    return inspect(container, template="{{json .NetworkSettings.Networks}}")


def restart_counts(*ids: str) -> list[str]:
    return inspect(*ids, template="{{.Id}} {{.RestartCount}}")


def container_running(container: str) -> list[str]:
    return inspect(container, template="{{.State.Running}}")


def ps_projects() -> list[str]:
    """Every running container as `id project service`, by its compose labels."""
    return ["docker", "ps", "--format", '{{.ID}} {{.Label "com.docker.compose.project"}} {{.Label "com.docker.compose.service"}}']


def ps_service_ids(project: str, service: str, running: bool = True) -> list[str]:
    """The ids of a compose service's containers (`running=False`: stopped ones too), by its labels."""
    return ["docker", "ps", "-q", *([] if running else ["-a"]), "--filter", f"label=com.docker.compose.project={project}",
            "--filter", f"label=com.docker.compose.service={service}"]


def rm_force(container: str, short_flag: bool = False) -> list[str]:
    # `-f` and `--force` are the same flag; both spellings are kept as the callers had them.
    return ["docker", "rm", "-f" if short_flag else "--force", container]


def stop(*containers: str) -> list[str]:
    return ["docker", "stop", *containers]


def start(*containers: str) -> list[str]:
    return ["docker", "start", *containers]


def logs(container: str, tail: int) -> list[str]:
    return ["docker", "logs", "--tail", str(tail), container]


def copy_out(container: str, path: str) -> list[str]:
    """A file of the container as a tar stream on stdout."""
    return ["docker", "cp", f"{container}:{path}", "-"]


def exec_in(container: str, *command: str, user: str | None = None, stdin: bool = False) -> list[str]:
    """`docker exec` of a command in a container (`stdin`: the command reads ours)."""
    return ["docker", "exec", *(["-i"] if stdin else []), *(["-u", user] if user else []), container, *command]


# The one-off containers on a data volume (Redis's restore), as compose runs Redis itself (deps.compose.yaml.j2).
NO_NEW_PRIVILEGES = ["--security-opt", "no-new-privileges=true"]


def run_shell_on_volume(volume: str, image: str) -> list[str]:
    """A throwaway `sh -c` (the script is the next argument) in `image`, off the network, with the
    volume at /data and stdin open."""
    return ["docker", "run", "--rm", "-i", "--network", "none", *NO_NEW_PRIVILEGES, "-v", f"{volume}:/data",
            "--entrypoint", "sh", image, "-c"]


def run_detached_on_volume(name: str, volume: str, image: str, *command: str) -> list[str]:
    """A named container of `image` in the background, off the network, with the volume at /data."""
    return ["docker", "run", "-d", "--name", name, "--network", "none", *NO_NEW_PRIVILEGES, "-v", f"{volume}:/data",
            image, *command]


# --- volumes and networks ----------------------------------------------------------------------

def volume_inspect(name: str) -> list[str]:
    return ["docker", "volume", "inspect", name]


def network_rm(name: str) -> list[str]:
    return ["docker", "network", "rm", name]


def network_connect(network: str, container: str, alias: str) -> list[str]:
    return ["docker", "network", "connect", "--alias", alias, network, container]


# --- swarm -------------------------------------------------------------------------------------

def info(template: str) -> list[str]:
    return ["docker", "info", "--format", template]


def node_ids() -> list[str]:
    return ["docker", "node", "ls", "-q"]


def node_inspect(*ids: str) -> list[str]:
    return ["docker", "node", "inspect", *ids]


def health_starting() -> list[str]:
    """The containers whose health check has not passed yet."""
    return ["docker", "ps", "-q", "--filter", "health=starting"]


def swarm_init(address: str) -> list[str]:
    """A new swarm, its manager reached by the others at `address` (its stdout holds the join token)."""
    return ["docker", "swarm", "init", "--advertise-addr", address, "--listen-addr", f"{address}:2377"]


def join_token(role: str) -> list[str]:
    return ["docker", "swarm", "join-token", "-q", role]


def node_add_labels(node_id: str, labels: dict[str, str]) -> list[str]:
    return ["docker", "node", "update", *[arg for key, value in labels.items() for arg in ("--label-add", f"{key}={value}")],
            node_id]


def node_drain(node_id: str) -> list[str]:
    return ["docker", "node", "update", "--availability", "drain", node_id]


def node_task_states(node_id: str) -> list[str]:
    return ["docker", "node", "ps", node_id, "--format", "{{.CurrentState}}"]


def node_rm(node_id: str) -> list[str]:
    """--force: the node itself is not there to `docker swarm leave` first."""
    return ["docker", "node", "rm", "--force", node_id]


def secret_inspect(name: str) -> list[str]:
    return ["docker", "secret", "inspect", name]


def secret_create(name: str) -> list[str]:
    """The secret's content is read from stdin."""
    return ["docker", "secret", "create", name, "-"]


def secret_names(prefix: str) -> list[str]:
    return ["docker", "secret", "ls", "--filter", f"name={prefix}", "--format", "{{.Name}}"]


def secret_rm(name: str) -> list[str]:
    return ["docker", "secret", "rm", name]


def config_inspect(name: str) -> list[str]:
    return ["docker", "config", "inspect", name]


def config_create(name: str, path: str) -> list[str]:
    return ["docker", "config", "create", name, path]


def service_create(name: str, network: str, env_file: str, published: int | str, target: int | str,
                   label: str) -> list[str]:
    """The fixed head of a global API service on the workers; the caller appends the options its
    compose file asks for. `label` (key=value) goes on the service and on its containers."""
    return ["docker", "service", "create", "--detach", "--name", name, "--mode", "global",
            "--constraint", "node.role==worker", "--network", network, "--env-file", env_file,
            "--publish", f"mode=host,published={published},target={target}",
            "--label", label, "--container-label", label,
            "--restart-condition", "any", "--update-order", "stop-first", "--update-failure-action", "rollback",
            "--no-resolve-image", "--with-registry-auth"]


def service_inspect(name: str, template: str | None = None) -> list[str]:
    return ["docker", "service", "inspect", *(["-f", template] if template else []), name]


def service_rm(name: str) -> list[str]:
    return ["docker", "service", "rm", name]


def service_task_ids(name: str) -> list[str]:
    return ["docker", "service", "ps", "-q", "--no-trunc", name]


def service_logs(name: str, tail: int) -> list[str]:
    return ["docker", "service", "logs", "--no-task-ids", "--tail", str(tail), name]
