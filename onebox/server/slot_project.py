"""A release in a slot as Docker Compose and HTTP reach it: its compose project (<app>-blue or
<app>-green) with the release's own compose files, and the app's health answer on the slot's
port. slots.py (which starts and stops a slot) and swarm.py (a slot's API on the workers) both
use these; neither imports the other for them.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from onebox import contract
from onebox.server import basics, docker
from onebox.server.basics import Result
from onebox.server.model import App, ReleaseRecord

# releases made by older onebox versions may carry entrypoint.json instead of override.json
OVERRIDES = ("override.json", "entrypoint.json")


def compose_env(app: App, record: ReleaseRecord, slot: str) -> dict[str, str]:
    names = contract.compose
    return {names.IMAGE_VAR: record.image, names.RELEASE_VAR: record.id, names.SLOT_PORT_VAR: str(app.port(slot))}


def compose_argv(app: App, record: ReleaseRecord, slot: str, *args: str) -> list[str]:
    release_dir = app.releases_dir / record.id
    files = [release_dir / "compose.yaml", *(release_dir / name for name in OVERRIDES if (release_dir / name).exists())]
    return docker.compose(app.project(slot), release_dir, files, *args)


def compose(app: App, record: ReleaseRecord, slot: str, *args: str, check: bool = True,
            capture: bool = False, timeout: float | None = None) -> Result:
    """Output to the release log unless captured."""
    return basics.run(compose_argv(app, record, slot, *args), env=compose_env(app, record, slot), check=check,
                      capture=capture, timeout=timeout, what=f"docker compose {args[0]} ({app.project(slot)})")


def http_ok(app: App, port: int, timeout: float = 2.0, host: str = "127.0.0.1") -> bool:
    """The app's health path on a slot's port, as nginx would ask it."""
    request = urllib.request.Request(f"http://{host}:{port}{app.spec.release.health_path}",
                                     headers={"Host": app.spec.domain, "X-Forwarded-Proto": "https"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback only
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False
