"""What the server's Docker engine says: the one parser of `docker ps` that every part of the
server tools reads containers with, and the images present (argv from onebox/server/docker.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from onebox.server import basics
from onebox.server.docker import image_inspect, ps


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
