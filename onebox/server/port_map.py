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

On a cluster nginx names each worker's address at api_port instead, and the table holds one
rule per worker that catches only nginx's connections; the node watcher (node_watch.py) points
a silent worker's rule at a live one.

The rules file in the app's directory is the durable record: the kernel forgets the table at a
reboot, and heal (at boot, on every converge) loads the file again."""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path

from onebox.server import basics, placement
from onebox.server.basics import OneboxError
from onebox.server.model import App

RULES_FILE = "switch.nft"


def table(app: App) -> str:
    """The app's own nft table (several apps switch independently); never the firewall's."""
    return f"{app.files.nginx_prefix}_switch"


def rules_file(app: App) -> Path:
    return app.dir / RULES_FILE


DOWN_FILE = "down-nodes.json"  # the nodes the watcher found down (node_watch.py)


def fronts(app: App) -> list[str]:
    """The addresses nginx's upstream names, each with the app's api_port (placement.Fronts)."""
    return list(placement.of(app).fronts().targets)


def down_nodes(app: App) -> set[str]:
    return set(basics.read_json(app.dir / DOWN_FILE, []))


def rules(app: App, slot: str, down: set[str] | None = None) -> list[str]:
    """One DNAT rule per address nginx names. A node the watcher found down is sent to a live
    node instead (nginx never waits on it), in turn so the live ones share its load."""
    port, fronts = app.port(slot), placement.of(app).fronts()
    down = down_nodes(app) if down is None else down
    alive = [host for host in fronts.targets.values() if host not in down] or list(fronts.targets.values())
    spare = itertools.cycle(alive)
    owner = f'meta skuid "{fronts.owner}" ' if fronts.owner else ""
    return [f"{owner}ip daddr {front} tcp dport {app.api_port} dnat to {host if host in alive else next(spare)}:{port}"
            for front, host in fronts.targets.items()]


def front(rule: str) -> str:
    """The address and port a rule catches: `ip daddr A tcp dport P`."""
    return rule[rule.index("ip daddr"):rule.index(" dnat")]


def current_rules(app: App) -> list[str]:
    """The rules the file holds now (none before the first switch)."""
    try:
        text = rules_file(app).read_text()
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if " dnat to " in line]


def rules_text(app: App, slot: str, keep: list[str] | None = None) -> str:
    """The app's table as one transaction: declared (so the delete finds it), deleted, made anew.
    `keep`: rules of the placement before (one server, or the nodes) for the addresses nginx's
    old workers still use until a reload has retired them."""
    name = table(app)
    wanted = rules(app, slot)
    kept = [rule for rule in keep or [] if front(rule) not in {front(new) for new in wanted}]
    body = "".join(f"        {line}\n" for line in wanted + kept)
    return (f"# managed by onebox-release: app {app.name}'s new connections go to its live slot ({slot})\n"
            f"table ip {name}\ndelete table ip {name}\n"
            f"table ip {name} {{\n"
            "    chain output {\n"
            "        type nat hook output priority -100; policy accept;\n"
            f"{body}"
            "    }\n"
            "}\n")


def mapped_port(app: App) -> int | None:
    """The slot port the rules file sends new connections to, or None without one."""
    try:
        match = re.search(r"dnat to [0-9.]+:(\d+)$", rules_file(app).read_text(), re.MULTILINE)
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
    # nft lists a user by number and quotes nothing: compare the rules' addresses and ports.
    return listed.ok and all(rule[rule.index("ip daddr"):] in listed.stdout for rule in rules(app, slot))


def switch_lock(app: App):  # noqa: ANN201 - a context manager
    """The map is written by a switch and by the node watcher: one at a time (each holds it only
    while it writes and loads the table, so the other waits a moment)."""
    return basics.file_lock(app.dir / ".switch-lock", 60)


def load(app: App, check: bool = True) -> None:
    basics.run(["nft", "-f", str(rules_file(app))], check=check, what=f"nft -f {rules_file(app)}")


def map_to(app: App, slot: str, keep: list[str] | None = None) -> None:
    """Send the app's new connections to `slot`; on failure the previous map stays, file and kernel."""
    path = rules_file(app)
    previous = path.read_text() if path.exists() else None
    basics.write_atomic(path, rules_text(app, slot, keep=keep), mode=0o644)
    try:
        load(app)
    except OneboxError as error:
        if previous is None:
            path.unlink(missing_ok=True)
        else:
            basics.write_atomic(path, previous, mode=0o644)
            load(app, check=False)
        raise OneboxError(f"the switch to slot {slot} failed ({error}); the previous version keeps serving") from None


def remove(app: App) -> None:
    """The app's table and file go (a retired app); no table (never switched, or a reboot since) is no error."""
    basics.run(["nft", "delete", "table", "ip", table(app)], check=False)
    rules_file(app).unlink(missing_ok=True)


CONNTRACK = Path("/proc/net/nf_conntrack")
# One connection's two tuples: as made (to the stable address) and as answered (by the slot).
TUPLES = re.compile(r" ESTABLISHED src=\S+ dst=(\S+) sport=\d+ dport=(\d+) src=\S+ dst=\S+ sport=(\d+) ")


def mapped_connections(conntrack: str, front: tuple[str, int], slot_port: int) -> int:
    """Established connections made to the stable address `front` that the map sent to
    `slot_port`: nginx's, and only nginx's (Prometheus scrapes a slot's port directly)."""
    address, port = front[0], str(front[1])
    return sum(1 for match in TUPLES.finditer(conntrack)
               if (match[1], match[2], match[3]) == (address, port, str(slot_port)))


def drain(app: App, slot: str) -> float:
    """Wait until nginx holds no connection the map sent to `slot` (bounded by the grace period:
    an open WebSocket may stay for hours); the seconds it took."""
    started = time.monotonic()

    def drained() -> bool:
        try:
            text = CONNTRACK.read_text()
            return sum(mapped_connections(text, (front, app.api_port), app.port(slot)) for front in fronts(app)) == 0
        except OSError:  # a kernel without the conntrack table in /proc: wait out the grace period
            return False

    basics.wait_until(drained, app.spec.release.graceful_timeout, 0.25)
    return time.monotonic() - started
