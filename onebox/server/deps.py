"""The dependencies (PostgreSQL, Redis) follow expand/contract, like migrations: what a new
release adds is started before it; what it drops or replaces goes only after the switch,
so a release that fails leaves everything the running version uses. A PostgreSQL major
upgrade is refused: the new server would not start on the old data directory."""

from __future__ import annotations

import re
from pathlib import Path

from onebox.contract import compose
from onebox.server import basics, docker, docker_state, placement, secret_files
from onebox.server.basics import OneboxError
from onebox.server.model import App


def compose_argv(app: App, *args: str) -> list[str]:
    return docker.compose(app.name, app.dir, [Path(app.layout.deps_compose)], *args)


def _network(app: App) -> None:
    name = compose.network(app.name)
    if not basics.run(docker.network_inspect(name), check=False).ok:
        basics.run(docker.network_create(name, app.spec.network_subnet), what=f"docker network create {name}")


def expand(app: App) -> None:
    """Before a release: start what is missing, touch nothing that runs (no recreate, no removal)."""
    _network(app)
    secret_files.write_postgres_secret(app)
    check_postgres_major(app)
    basics.run(compose_argv(app, "up", "-d", "--wait", "--wait-timeout", "180", "--no-recreate"),
               capture=False, what="starting the dependencies")
    placement.of(app).attach_dependencies()


def contract(app: App) -> None:
    """After the switch (or with no release at stake): the dependencies exactly as declared,
    changed ones recreated, removed ones stopped (their volumes stay)."""
    _network(app)
    secret_files.write_postgres_secret(app)
    check_postgres_major(app)
    basics.run(compose_argv(app, "up", "-d", "--wait", "--wait-timeout", "180", "--remove-orphans"),
               capture=False, what="applying the dependencies")
    placement.of(app).attach_dependencies()


def removed(app: App) -> list[str]:
    """Services of the dependencies' project that run but are no longer declared."""
    wanted = set(app.spec.dependencies)
    return sorted({c.service for c in docker_state.containers(app.name)} - wanted)


def postgres_major_of_image(image: str) -> str | None:
    """The image's PostgreSQL major version: its PG_MAJOR (the official image and onebox's
    stand-in set it), else the tag's leading number (postgres:17.2 -> 17); None when unknown."""
    if docker_state.image_present(image):
        for item in docker_state.image_config(image).get("Env") or []:
            if item.startswith("PG_MAJOR="):
                return item.split("=", 1)[1].split(".")[0]
    name = image.split("@", 1)[0]  # postgres:17@sha256:... -> postgres:17
    last = name.rsplit("/", 1)[-1]
    match = re.match(r"^(\d+)", last.rsplit(":", 1)[1]) if ":" in last else None
    return match.group(1) if match else None


def postgres_major_of_data(app: App) -> str | None:
    """PG_VERSION of the data volume, or None when there is no data yet."""
    found = basics.run(docker.volume_mountpoint(compose.volume(app.name, compose.PG_DATA_VOLUME)), check=False)
    if not found.ok:
        return None
    try:
        return (Path(found.stdout.strip()) / "PG_VERSION").read_text().strip()
    except OSError:
        return None


def check_postgres_major(app: App) -> None:
    if not app.spec.postgres_enabled or not app.spec.postgres_image:
        return
    data = postgres_major_of_data(app)
    image = postgres_major_of_image(app.spec.postgres_image)
    if data and image and data != image:
        raise OneboxError(
            f"postgres_image {app.spec.postgres_image} is PostgreSQL {image}, but the database's data was made by "
            f"PostgreSQL {data}; a major version cannot start on it. Keep postgres_image at a {data} image, and "
            f"upgrade by dump and restore (onebox backup now, then a server or volume with PostgreSQL {image} and "
            "onebox restore) or with pg_upgrade. Nothing was changed; the running version serves")
