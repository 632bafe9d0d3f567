"""nginx in front of the slots: which one it sends traffic to, switched by a graceful reload,
and maintenance mode (a flag file nginx checks per request: no reload to turn it on or off)."""

from __future__ import annotations

import html
import shutil
import time
from pathlib import Path

from onebox import contract
from onebox.server import basics
from onebox.server.basics import OneboxError
from onebox.server.model import App

RELOAD = ["systemctl", "reload", "nginx"]
CHECK = ["nginx", "-t", "-q"]
WORKERS = ["pgrep", "-f", "^nginx: worker process"]


def upstream_port(app: App) -> int | None:
    try:
        return contract.upstream_port(app.upstream.read_text())
    except OSError:
        return None


def upstream_text(app: App, slot: str) -> str:
    return contract.upstream_text(slot, app.port(slot), app.spec.swarm_nodes, app.spec.cluster_fail_timeout)


def points_at(app: App, slot: str) -> bool:
    """nginx's upstream file names exactly this slot (on exactly the spec's nodes)."""
    try:
        return app.upstream.read_text() == upstream_text(app, slot)
    except OSError:
        return False


def nginx_workers() -> set[str]:
    """PIDs of nginx worker processes, the current generation and any shutting down."""
    return set(basics.run(WORKERS, check=False).stdout.split())


def point_nginx_at(app: App, slot: str) -> None:
    """Graceful switch: new nginx workers use the new slot; old workers finish their requests."""
    path = app.upstream
    if points_at(app, slot) or not shutil.which("nginx"):
        return
    previous = path.read_text() if path.exists() else None
    basics.write_atomic(path, upstream_text(app, slot), mode=0o644)
    if not basics.run(CHECK, check=False).ok:
        if previous is not None:
            basics.write_atomic(path, previous, mode=0o644)
        raise OneboxError("nginx -t refused the upstream switch; the previous version keeps serving")
    reload(app)


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
