"""`onebox-release watch-nodes` (onebox-node-watch.service, on a swarm's manager): a node whose
replica stops answering is out of nginx's way within about two seconds, and back once it answers
again (issue 32).

Every second the watcher asks each node's replica of the live slot for the app's health path,
as nginx would reach it (the manager's address, the slot's host-mode port). Two failures in a
row and the kernel's map (port_map) sends the connections nginx makes to that node on to a live
one; three answers in a row and they go to the node again. nginx is never reloaded: it still
names every node, and between checks its own max_fails leaves a failing node out too.
"""

from __future__ import annotations

import contextlib
import http.client
import sys
import time
from collections.abc import Callable
from pathlib import Path

from onebox import contract
from onebox.server import basics, placement, port_map
from onebox.server.basics import OneboxError, log
from onebox.server.model import App

DOWN_AFTER = 2  # failed checks in a row
UP_AFTER = 3  # answered checks in a row
INTERVAL = 1.0  # seconds between rounds
TIMEOUT = 0.5  # seconds a check may take: a private network answers in milliseconds


def answers(address: str, port: int, path: str, timeout: float = TIMEOUT) -> bool:
    connection = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


class Streaks:
    """Per node, the checks in a row that went the same way; which nodes count as down."""

    def __init__(self, down: set[str]) -> None:
        self.down = set(down)
        self.failed: dict[str, int] = {}
        self.answered: dict[str, int] = {}

    def record(self, node: str, ok: bool) -> None:
        self.answered[node] = self.answered.get(node, 0) + 1 if ok else 0
        self.failed[node] = 0 if ok else self.failed.get(node, 0) + 1
        if node not in self.down and self.failed[node] >= DOWN_AFTER:
            self.down.add(node)
        elif node in self.down and self.answered[node] >= UP_AFTER:
            self.down.discard(node)


def live_slot(app: App) -> str | None:
    port = port_map.mapped_port(app)
    return next((slot for slot in contract.SLOTS if app.port(slot) == port), None)


def round_for(app: App, streaks: Streaks, check: Callable[[str, int, str], bool] = answers) -> None:
    """One round of checks of one app; the map rewritten when a node went down or came back."""
    slot = live_slot(app)
    if slot is None:
        return
    for node in placement.of(app).fronts().nodes:
        streaks.record(node, check(node, app.port(slot), app.spec.release.health_path))
    if streaks.down == port_map.down_nodes(app):
        return
    try:
        with port_map.switch_lock(app):
            slot = live_slot(app)  # a release may have switched since the checks
            if slot is None:
                return
            basics.write_json(app.dir / port_map.DOWN_FILE, sorted(streaks.down), mode=0o644)
            port_map.map_to(app, slot)
    except OneboxError as error:
        log(f"app {app.name}: {error}")
        return
    log(f"app {app.name}: nodes down {sorted(streaks.down) or 'none'}; nginx's connections to them go to the others")


def watch(app_dirs: Callable[[], list[Path]], rounds: int | None = None) -> None:
    """Forever (or `rounds` times): every app whose API runs on swarm nodes, checked each second.
    Returns when a converge replaced the program (systemd starts the new one)."""
    streaks: dict[str, Streaks] = {}
    program = Path(sys.argv[0])
    installed = program.stat().st_mtime if program.exists() else None
    while rounds is None or rounds > 0:
        if installed is not None and program.stat().st_mtime != installed:
            log("onebox-release was replaced by a converge: restarting with the new one")
            return
        for app_dir in app_dirs():
            with contextlib.suppress(OneboxError):
                app = App(app_dir)
                if placement.of(app).fronts().nodes:
                    round_for(app, streaks.setdefault(app.name, Streaks(port_map.down_nodes(app))))
        rounds = None if rounds is None else rounds - 1
        time.sleep(INTERVAL)
