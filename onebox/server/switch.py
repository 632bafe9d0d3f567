"""nginx in front of the slots: which one it sends traffic to (through the kernel's port map,
without reloading nginx), and maintenance mode (a flag file nginx checks per request: no reload to turn it on or off)."""

from __future__ import annotations

import html
import shutil
import time
from pathlib import Path

from onebox import contract
from onebox.server import basics, placement, port_map
from onebox.server.basics import OneboxError
from onebox.server.model import App

RELOAD = ["systemctl", "reload", "nginx"]
CHECK = ["nginx", "-t", "-q"]
WORKERS = ["pgrep", "-f", "^nginx: worker process"]


def live_port(app: App) -> int | None:
    """The slot port new connections reach: the kernel map's, or the upstream file's on a server
    an earlier onebox switched by that file."""
    if (port := port_map.mapped_port(app)) is not None:
        return port
    try:
        return contract.upstream_port(app.upstream.read_text())
    except OSError:
        return None


def upstream_text(app: App, slot: str) -> str:
    """nginx's upstream file, whatever the slot: the app's stable address on one server, each
    node's address on a cluster, with the app's api_port; the kernel's map picks the slot."""
    return contract.switched_upstream_text(app.api_port, placement.of(app).fronts().nodes, app.spec.cluster_fail_timeout)


def points_at(app: App, slot: str) -> bool:
    """nginx's upstream file is as it should be, and the kernel maps to exactly this slot."""
    try:
        if app.upstream.read_text() != upstream_text(app, slot):
            return False
    except OSError:
        return False
    return port_map.points_at(app, slot)


def nginx_workers() -> set[str]:
    """PIDs of nginx worker processes, the current generation and any shutting down."""
    return set(basics.run(WORKERS, check=False).stdout.split())


def point_nginx_at(app: App, slot: str) -> None:
    """Send new requests to `slot`: the kernel's map changes and nginx is not reloaded (its
    clients' connections stay open). nginx's own file changes, with a graceful reload, only when
    the swarm's nodes change, or once, when a server switched by an earlier onebox converts."""
    if points_at(app, slot) or not shutil.which("nginx"):
        return
    path = app.upstream
    wanted = upstream_text(app, slot)
    previous = path.read_text() if path.exists() else None
    with port_map.switch_lock(app):
        # nginx's file changes too (the API moved between this server and the workers): the old
        # placement's rules stay until the reload has retired the workers that use them.
        port_map.map_to(app, slot, keep=port_map.current_rules(app) if previous != wanted else None)
    if previous == wanted:
        return
    basics.write_atomic(path, wanted, mode=0o644)
    if not basics.run(CHECK, check=False).ok:
        if previous is not None:
            basics.write_atomic(path, previous, mode=0o644)
        raise OneboxError("nginx -t refused the upstream switch; the previous version keeps serving")
    reload(app)
    with port_map.switch_lock(app):
        port_map.map_to(app, slot)


def resume(app: App) -> None:
    """A switch a crash interrupted: its file may have been written and the kernel or nginx
    never told. Both are told now."""
    if not shutil.which("nginx"):
        return
    if port_map.rules_file(app).exists():
        port_map.load(app)
    reload(app)


def drain(app: App, slot: str) -> None:
    """Before the old slot stops: nginx, never reloaded, may still hold connections the map sent
    to it; wait until it has closed them."""
    if shutil.which("nginx"):
        waited = port_map.drain(app, slot)
        basics.log(f"slot {slot} drained in {waited:.1f} s", timed=True)


def reload(app: App) -> None:
    """A graceful reload, returning once no worker from before it is left."""
    old_workers = nginx_workers()
    basics.run(RELOAD, what="systemctl reload nginx (the previous version keeps serving)")
    # The reload is asynchronous, and the workers that existed before it may still send requests
    # to the old slot: wait until every one of them has exited (they finish their requests
    # first), bounded by the grace period, since an open WebSocket keeps its worker alive.
    basics.wait_until(lambda: not old_workers & nginx_workers(), app.spec.release.graceful_timeout, 0.25)


# --- maintenance mode --------------------------------------------------------------------------

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Down for maintenance</title></head>
<body><h1>Down for maintenance</h1><p>{message}</p></body></html>
"""
DEFAULT_MESSAGE = "This service is down for maintenance and will be back shortly."


def maintenance_on(directory: Path, message: str | None) -> None:
    """The page first, then the flag: nginx never serves the 503 without its page."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)  # nginx's workers read the page
    page = PAGE.format(message=html.escape(message or DEFAULT_MESSAGE))
    basics.write_atomic(directory / contract.MAINTENANCE_PAGE, page, mode=0o644)
    basics.write_atomic(directory / contract.MAINTENANCE_FLAG,
                        f"since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n", mode=0o644)


def maintenance_off(directory: Path) -> None:
    (directory / contract.MAINTENANCE_FLAG).unlink(missing_ok=True)


def maintenance_since(directory: Path) -> str | None:
    try:
        return (directory / contract.MAINTENANCE_FLAG).read_text().strip().removeprefix("since ")
    except OSError:
        return None
