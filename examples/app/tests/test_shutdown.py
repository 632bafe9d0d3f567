"""Graceful shutdown as WebSocket clients see it: a 1001 ("going away") close,
not uvicorn's 1012 ("service restart") nor a dropped connection."""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import connect

from tests.conftest import APP_DIR, free_port, wait_for_port

COMMANDS = {
    # The Dockerfile's CMD: gunicorn master forwarding SIGTERM to UvicornWorkers.
    "gunicorn": ["-m", "gunicorn", "--config", "gunicorn.conf.py"],
    # Plain uvicorn, one process (it too would read WEB_CONCURRENCY).
    "uvicorn": ["-m", "uvicorn", "--factory", "app.main:create_app", "--port", "{port}", "--workers", "1"],
}


@pytest.mark.parametrize("server", COMMANDS)
def test_sigterm_closes_websockets_with_going_away(app_env, tmp_path, server):
    port = free_port()
    command = [sys.executable] + [arg.format(port=port) for arg in COMMANDS[server]]
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=APP_DIR,
            env={**os.environ, "PORT": str(port), "WEB_CONCURRENCY": "2"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port)
            deadline = time.monotonic() + 20
            while httpx.get(f"http://127.0.0.1:{port}/ready").status_code != 200:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)

            with contextlib.ExitStack() as stack:
                # Several of each, so that under gunicorn both workers likely have some.
                clients = [
                    stack.enter_context(connect(f"ws://127.0.0.1:{port}/ws/{path}"))
                    for path in ("echo", "broadcast") * 3
                ]
                for ws in clients[::2]:  # the echo ones: prove they are live
                    ws.send("ping")
                    assert ws.recv(timeout=5) == "ping"

                proc.send_signal(signal.SIGTERM)  # what `docker stop` sends
                start = time.monotonic()
                for ws in clients:
                    with pytest.raises(ConnectionClosedOK) as closed:
                        ws.recv(timeout=5)
                    assert closed.value.rcvd is not None, "no close frame: connection dropped"
                    assert closed.value.rcvd.code == 1001, closed.value
                assert time.monotonic() - start < 3, "closing must not hold up the shutdown"
            # gunicorn exits 0; uvicorn alone re-raises the signal once it has shut down.
            expected = 0 if server == "gunicorn" else -signal.SIGTERM
            assert proc.wait(30) == expected, log_path.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    output = log_path.read_text()
    assert "Exception in ASGI application" not in output
    assert "Application shutdown complete" in output  # the lifespan shutdown still ran


class _FakeConnection:
    """Stands in for uvicorn's ASGI send: records messages, or never returns."""

    def __init__(self, stuck: bool = False) -> None:
        self.stuck = stuck
        self.sent: list[dict] = []

    async def __call__(self, message: dict) -> None:
        if self.stuck:  # a client that stopped reading: writes wait forever
            await asyncio.Event().wait()
        self.sent.append(message)


def test_stop_signal_closes_then_chains_within_timeout():
    """In-process: a stuck client can delay uvicorn's handler by CLOSE_TIMEOUT at most."""
    from app.going_away import CLOSE_TIMEOUT, OpenWebSockets, _Connection

    chained: list[float] = []
    saved = signal.signal(signal.SIGTERM, lambda sig, frame: chained.append(time.monotonic()))

    async def main() -> None:
        websockets = OpenWebSockets()
        websockets.install_signal_handlers()
        try:
            # No sockets: the previous handler runs right away, in the handler.
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(0.05)
            assert len(chained) == 1

            healthy, stuck = _FakeConnection(), _FakeConnection(stuck=True)
            websockets.connections |= {_Connection(healthy), _Connection(stuck)}
            start = time.monotonic()
            os.kill(os.getpid(), signal.SIGTERM)
            while len(chained) < 2 and time.monotonic() - start < 5:
                await asyncio.sleep(0.01)
            assert healthy.sent == [
                {"type": "websocket.close", "code": 1001, "reason": "server shutting down"}
            ]
            assert len(chained) == 2, "the previous handler must run even if a close hangs"
            assert CLOSE_TIMEOUT <= chained[1] - start < CLOSE_TIMEOUT + 1
        finally:
            websockets.restore_signal_handlers()
        assert signal.getsignal(signal.SIGTERM) != websockets._on_stop_signal

    try:
        asyncio.run(main())
    finally:
        signal.signal(signal.SIGTERM, saved)
