"""`onebox dashboard INVENTORY`: an SSH tunnel to the server's Prometheus (on its loopback
only) and the local URLs of onebox's console pages (current values; graphs of the server and of
each app), until Ctrl-C (or SIGTERM, SIGHUP: a closed terminal, a `kill`), which closes the
tunnel too.

The SSH options come from the inventory, as pyinfra reads it (user, port, key, known hosts).
"""

from __future__ import annotations

import json
import runpy
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from types import FrameType
from typing import Any
from urllib.parse import quote, urlencode

from onebox.consoles import DEFAULT_RANGE, RANGES
from onebox.contract import PROMETHEUS_URL

CONSOLE_PATH = "/consoles/onebox.html"
SERVER_GRAPHS_PATH = "/consoles/onebox-server.html?range={range}"
APP_GRAPHS_PATH = "/consoles/onebox-app.html?app={app}&range={range}"


def first_host(inventory: str) -> tuple[str, dict[str, Any]]:
    """The first (host, data) of an inventory file: its groups are lists of those (or of names)."""
    namespace = runpy.run_path(inventory)
    for name, group in namespace.items():
        if name.startswith("_") or not isinstance(group, list | tuple):
            continue
        for entry in group:
            if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str):
                return entry[0], entry[1]
            if isinstance(entry, str):
                return entry, {}
    raise SystemExit(f"onebox: {inventory} lists no host")


def ssh_args(inventory: str) -> list[str]:
    """`ssh` arguments for the inventory's first host."""
    name, data = first_host(inventory)
    args = ["-o", "ExitOnForwardFailure=yes", "-o", "BatchMode=yes"]
    if data.get("ssh_port"):
        args += ["-p", str(data.get("ssh_port"))]
    if data.get("ssh_key"):
        args += ["-i", str(data.get("ssh_key"))]
    if data.get("ssh_known_hosts_file"):
        args += ["-o", f"UserKnownHostsFile={data.get('ssh_known_hosts_file')}"]
    user = data.get("ssh_user")
    return [*args, f"{user}@{name}" if user else name]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def close(tunnel: subprocess.Popen) -> None:
    if tunnel.poll() is None:
        tunnel.terminate()
    tunnel.wait()


def open_tunnel(args: list[str], local_port: int) -> subprocess.Popen:
    remote = PROMETHEUS_URL.removeprefix("http://")
    tunnel = subprocess.Popen(["ssh", "-N", "-L", f"127.0.0.1:{local_port}:{remote}", *args])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and tunnel.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", local_port), timeout=1):
                    return tunnel
            except OSError:
                time.sleep(0.2)
    except BaseException:  # interrupted while it comes up
        close(tunnel)
        raise
    close(tunnel)
    raise SystemExit("onebox: the SSH tunnel to the server's Prometheus did not come up (see ssh's message above)")


def monitored_apps(base: str) -> list[str]:
    """The apps the server's Prometheus has onebox's facts of now, for their pages' URLs ([] when it
    cannot say: the pages link every app too)."""
    url = f"{base}/api/v1/query?" + urlencode({"query": "count by (app) (onebox_container_up)"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the tunnel, never a proxy
    try:
        with opener.open(url, timeout=5) as response:
            result = json.load(response)["data"]["result"]
        return sorted({str(item["metric"]["app"]) for item in result if item["metric"].get("app")})
    except (OSError, ValueError, KeyError, TypeError):
        return []


def interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM and SIGHUP end the dashboard as Ctrl-C does: the tunnel is closed, not left running."""
    raise KeyboardInterrupt


def main(inventory: str, port: int | None = None) -> int:
    local_port = port or free_port()
    previous = {signum: signal.signal(signum, interrupt) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        tunnel = open_tunnel(ssh_args(inventory), local_port)
        try:
            base = f"http://127.0.0.1:{local_port}"
            print(f"onebox dashboard: {base}{CONSOLE_PATH}", flush=True)
            lines = [f"  graphs of the server: {base}{SERVER_GRAPHS_PATH.format(range=DEFAULT_RANGE)}"]
            lines += [f"  graphs of app {app}: {base}{APP_GRAPHS_PATH.format(app=quote(app), range=DEFAULT_RANGE)}"
                      for app in monitored_apps(base)]
            lines += [f"  (range: {', '.join(RANGES)}; each page links the others)",
                      f"  Prometheus (queries, alerts, targets): {base}/", "  Ctrl-C closes the tunnel."]
            print("\n".join(lines), flush=True)
            return tunnel.wait()
        finally:
            close(tunnel)
    except KeyboardInterrupt:
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
