"""`onebox-release boot`: after the server starts, every app's dependencies and live release
running again, and a release the reboot cut short finished or undone.

Docker's restart policies bring most containers back by themselves, but not all: a container
stopped by `docker kill` stays stopped under `unless-stopped`, and one attached to a swarm
overlay can fail to start before the swarm is up (moby/moby#32607, PostgreSQL and Redis on a
cluster's manager). onebox-boot.service runs this once per boot, each app under its deploy
lock; it starts what is missing and recreates nothing that runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from onebox import contract
from onebox.server import deps, engine, placement
from onebox.server.basics import EXIT_FAILED, EXIT_OK, OneboxError, log, printable
from onebox.server.model import App


def heal_app(app: App) -> None:
    engine.recover(app)
    if not app.load_state().live:
        log(f"app {app.name}: nothing is live yet; nothing to start")
        return
    placement.of(app).ready()
    deps.expand(app)
    fixed = engine.heal(app)
    log(f"app {app.name}: " + ("; ".join(fixed) if fixed else "its live release runs; nothing to do"))


def heal_every_app(app_dirs: list[Path], lock: Callable[[App], contextlib.AbstractContextManager]) -> int:
    """Each app on its own: one that fails to come back does not keep the others down."""
    failed = []
    for app_dir in app_dirs:
        if not Path(contract.AppDir(str(app_dir)).spec).exists():
            log(f"no app deployed at {app_dir} yet; nothing to start")
            continue
        try:
            app = App(app_dir)
            with lock(app):
                heal_app(app)
        except OneboxError as error:
            log(f"app at {app_dir}: {printable(str(error))}")
            failed.append(str(app_dir))
    return EXIT_FAILED if failed else EXIT_OK
