"""The kernel's map from an app's stable address to its live slot: how a release switches
traffic on one server without reloading nginx (issue 33).

nginx's upstream names SWITCH_ADDRESS:api_port, where nothing listens (127.0.0.0/8 is all
local; the slots publish on 127.0.0.1). One nftables DNAT rule in the output hook sends each
new connection to it on to the live slot. A switch replaces the app's table in one nft
transaction: new upstream connections reach the new slot at once, connections already open
keep the slot they were made to (conntrack keeps each one's translation), and nginx, never
reloaded, keeps every client connection. The old slot stops once nginx has closed its
connections to it (drain: idle ones after proxy_upstream_keepalive_timeout, busy ones after
proxy_upstream_keepalive_time, each after its response).

The rules file in the app's directory is the durable record: the kernel forgets the table at a
reboot, and heal (at boot, on every converge) loads the file again."""

from __future__ import annotations

import re
import time
from pathlib import Path

from onebox import contract
from onebox.server import basics
from onebox.server.basics import OneboxError
from onebox.server.model import App

RULES_FILE = "switch.nft"


def table(app: App) -> str:
    """The app's own nft table (several apps switch independently); never the firewall's."""
    return f"{app.files.nginx_prefix}_switch"


def rules_file(app: App) -> Path:
    return app.dir / RULES_FILE


def rules_text(app: App, slot: str) -> str:
    """The app's table as one transaction: declared (so the delete finds it), deleted, made anew."""
    name = table(app)
    return (f"# managed by onebox-release: app {app.name}'s new connections go to its live slot ({slot})\n"
            f"table ip {name}\ndelete table ip {name}\n"
            f"table ip {name} {{\n"
            "    chain output {\n"
            "        type nat hook output priority -100; policy accept;\n"
            f"        {rule(app, slot)}\n"
            "    }\n"
            "}\n")


def rule(app: App, slot: str) -> str:
    return f"ip daddr {contract.SWITCH_ADDRESS} tcp dport {app.port('blue')} dnat to 127.0.0.1:{app.port(slot)}"


def mapped_port(app: App) -> int | None:
    """The slot port the rules file sends new connections to, or None without one."""
    try:
        match = re.search(r"dnat to 127\.0\.0\.1:(\d+)$", rules_file(app).read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def points_at(app: App, slot: str) -> bool:
    """The file and the kernel both send the app's new connections to `slot`."""
    try:
        if rules_file(app).read_text() != rules_text(app, slot):
            return False
    except OSError:
        return False
    listed = basics.run(["nft", "list", "table", "ip", table(app)], check=False)
    return listed.ok and rule(app, slot) in listed.stdout


def load(app: App) -> None:
    basics.run(["nft", "-f", str(rules_file(app))], what=f"nft -f {rules_file(app)}")


def map_to(app: App, slot: str) -> None:
    """Send the app's new connections to `slot`; on failure the previous map stays, file and kernel."""
    path = rules_file(app)
    previous = path.read_text() if path.exists() else None
    basics.write_atomic(path, rules_text(app, slot), mode=0o644)
    try:
        load(app)
    except OneboxError as error:
        if previous is None:
            path.unlink(missing_ok=True)
        else:
            basics.write_atomic(path, previous, mode=0o644)
            basics.run(["nft", "-f", str(path)], check=False)
        raise OneboxError(f"the switch to slot {slot} failed ({error}); the previous version keeps serving") from None


def remove(app: App) -> None:
    """The app's table and file go (a retired app, an API moved onto swarm workers)."""
    if basics.run(["nft", "list", "table", "ip", table(app)], check=False).ok:
        basics.run(["nft", "delete", "table", "ip", table(app)], check=False)
    rules_file(app).unlink(missing_ok=True)


def open_connections(port: int) -> int:
    """Connections established to a slot's published port (Docker's proxy accepts them on 127.0.0.1)."""
    listed = basics.run(["ss", "-Htn", "state", "established", "sport", "=", f":{port}"], check=False)
    return len(listed.stdout.splitlines()) if listed.ok else 0


def drain(app: App, slot: str) -> float:
    """Wait until nginx holds no connection to `slot` (bounded by the grace period: an open
    WebSocket may stay for hours); the seconds it took."""
    started = time.monotonic()
    basics.wait_until(lambda: open_connections(app.port(slot)) == 0, app.spec.release.graceful_timeout, 0.25)
    return time.monotonic() - started
