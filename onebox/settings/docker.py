"""Settings of the docker role (deploys/docker.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from onebox.settings.types import PositiveInt, Size


class DockerSettings(BaseModel):
    docker_source: Literal["distro", "docker"]
    docker_apt_url: Annotated[str, Field(pattern=r"^https://")]
    docker_log_max_size: Size
    docker_log_max_file: PositiveInt
    docker_live_restore: bool
