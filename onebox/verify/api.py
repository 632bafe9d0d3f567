"""Live checks of the API straight on a server, through an SSH tunnel: the API is bound
to 127.0.0.1 there, so a tunnel is the only way in that does not pass the proxy."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator

import httpx
import websockets

from onebox.contract import AppFiles


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def api_tunnel(ssh_args: list[str], remote: str = AppFiles(None).local_socket) -> Iterator[str]:
    """Forward a local port to an app's live release on the server (nginx's local socket of the app,
    whichever slot is live; or "127.0.0.1:PORT"); yields the base URL."""
    port = free_port()
    tunnel = subprocess.Popen(
        ["ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-L", f"{port}:{remote}", *ssh_args],
    )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        tunnel.terminate()
        tunnel.wait()


def wait_ready(base_url: str, timeout: float = 60, path: str = "/ready") -> httpx.Response:
    """Poll `path` (/ready) until it answers 200 (after a restart the API needs a moment)."""
    deadline = time.monotonic() + timeout
    response = None
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            response = httpx.get(f"{base_url}{path}", timeout=3)
            if response.status_code == 200:
                return response
        time.sleep(0.5)
    raise AssertionError(f"{path} did not answer 200 in {timeout}s (last: {response})")


async def _broadcast(ws_url: str, message: str) -> list[str | bytes]:
    async with websockets.connect(ws_url) as first, websockets.connect(ws_url) as second:
        await asyncio.sleep(0.5)  # both subscriptions are live before anything is published
        await first.send(message)
        return [await asyncio.wait_for(client.recv(), 10) for client in (first, second)]


def broadcast_received(base_url: str, path: str, message: str) -> list[str | bytes]:
    """Send one message on a broadcast socket; return what each of two clients received."""
    return asyncio.run(_broadcast(base_url.replace("http", "ws", 1) + path, message))
