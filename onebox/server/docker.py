"""Docker and compose commands as argument lists (tested for the exact list), and the
one parser of `docker ps` that every part of the server tools reads containers with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from onebox.server import basics


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


def build(ref: str, dockerfile: str, target: str | None, args: dict[str, str]) -> list[str]:
    """Built from the context on stdin (`-`): the uploaded tarball itself."""
    argv = ["docker", "build", "-q", "-f", dockerfile, "-t", ref]
    if target:
        argv += ["--target", target]
    for name, value in args.items():
        argv += ["--build-arg", f"{name}={value}"]
    return [*argv, "-"]


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


@dataclass(frozen=True)
class Container:
    service: str
    state: str  # running, exited, restarting, ...
    health: str  # healthy, unhealthy, starting, none
    name: str
    id: str = ""

    @property
    def up(self) -> bool:
        return self.state == "running" and self.health != "unhealthy"


def parse_ps(output: str) -> list[Container]:
    found = []
    for line in output.splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        labels = dict(part.split("=", 1) for part in item.get("Labels", "").split(",") if "=" in part)
        status = item.get("Status", "")
        health = ("healthy" if "(healthy)" in status else "unhealthy" if "(unhealthy)" in status
                  else "starting" if "(health: starting)" in status else "none")
        found.append(Container(labels.get("com.docker.compose.service", "?"), item.get("State", "?"), health,
                               item.get("Names", ""), item.get("ID", "")))
    return found


def containers(project: str) -> list[Container]:
    """The compose project's containers (none when docker cannot answer)."""
    return parse_ps(basics.run(ps(project), check=False).stdout)


def image_present(ref: str) -> bool:
    return image_id(ref) is not None


def image_config(ref: str, field: str = "Config"):  # noqa: ANN201 - JSON of the field
    return json.loads(basics.run(image_inspect(ref, f"{{{{json .{field}}}}}")).stdout)


def image_id(ref: str) -> str | None:
    found = basics.run(image_inspect(ref, "{{.Id}}"), check=False)
    return found.stdout.strip() if found.ok else None
