"""Close open WebSockets with 1001 ("going away") when the process is told to stop.

Why this exists: on SIGTERM, uvicorn (alone or as gunicorn's UvicornWorker)
runs Server.shutdown(), which calls shutdown() on every open connection, and
its WebSocket protocols close with a hard-coded 1012 ("service restart"). That
happens *before* the ASGI lifespan shutdown, so closing sockets there (as
BroadcastHub.stop() does) comes too late.

What comes first is the signal: uvicorn's handler (Server.handle_exit) only
sets a flag that its main loop checks every 0.1 s. So we install our own
handler on top of it: it sends a 1001 close frame to every accepted WebSocket
of this process (waiting at most CLOSE_TIMEOUT), then calls the handler it
replaced, and uvicorn's shutdown proceeds unchanged. A socket whose close frame
is already sent is left alone by uvicorn's shutdown() (it just drops the TCP
connection), so the client sees our 1001. No uvicorn internals are patched.

The handlers are installed from the lifespan startup because that runs inside
uvicorn's Server.serve(), after uvicorn installed its own (it would overwrite
anything installed earlier, e.g. when create_app() runs).
"""

import asyncio
import contextlib
import logging
import signal
import threading
from types import FrameType
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("app.going_away")

CLOSE_TIMEOUT = 1.0  # seconds; a stuck client must not hold up the shutdown
# Graceful stop (SIGTERM: docker stop, gunicorn's graceful stop), Ctrl+C
# (SIGINT) and gunicorn's quick stop (it sends workers SIGQUIT).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
GOING_AWAY = {"type": "websocket.close", "code": 1001, "reason": "server shutting down"}


class _Connection:
    def __init__(self, send: Send) -> None:
        self.send = send
        self.gone = False  # our 1001 was sent; the app must not send any more

    async def going_away(self) -> None:
        if not self.gone:
            self.gone = True
            await self.send(GOING_AWAY)


class OpenWebSockets:
    """The accepted WebSockets of this process, closed with 1001 on a stop signal."""

    def __init__(self) -> None:
        self.connections: set[_Connection] = set()
        self._previous: dict[int, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def install_signal_handlers(self) -> None:
        # Only the main thread may set handlers: under TestClient the lifespan
        # runs in another thread, and there is no server to stop anyway.
        if threading.current_thread() is not threading.main_thread():
            return
        self._loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            previous = signal.getsignal(sig)
            # Wrap only handlers set from Python: uvicorn's for SIGTERM/SIGINT,
            # the event loop's for SIGQUIT under UvicornWorker (its callback is
            # dispatched by the loop itself, not by this handler, so it still
            # runs). A default or ignored signal keeps its behaviour.
            if callable(previous):
                self._previous[sig] = previous
                signal.signal(sig, self._on_stop_signal)

    def restore_signal_handlers(self) -> None:
        for sig, previous in self._previous.items():
            if signal.getsignal(sig) == self._on_stop_signal:
                signal.signal(sig, previous)

    async def close_all(self) -> None:
        connections = list(self.connections)
        if not connections:
            return
        log.info("closing websockets: going away", extra={"count": len(connections)})
        # return_exceptions: one dead connection must not stop the others;
        # the timeout cancels closes still waiting on a client that doesn't read.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(c.going_away() for c in connections), return_exceptions=True),
                CLOSE_TIMEOUT,
            )

    def _on_stop_signal(self, sig: int, frame: FrameType | None) -> None:
        previous = self._previous[sig]
        if not self.connections or self._loop is None:
            previous(sig, frame)  # nothing to close: exactly the old behaviour
            return
        # A signal handler can't await; close from a task on the loop, then
        # chain. A repeated signal (second Ctrl+C = force exit) finds the
        # sockets already closed and chains at once.
        try:
            self._loop.call_soon_threadsafe(self._close_then_chain, previous, sig, frame)
        except RuntimeError:  # loop already closed
            previous(sig, frame)

    def _close_then_chain(self, previous: Any, sig: int, frame: FrameType | None) -> None:
        async def run() -> None:
            try:
                await self.close_all()
            finally:
                previous(sig, frame)

        assert self._loop is not None
        task = self._loop.create_task(run())
        self._tasks.add(task)  # keep a reference until done
        task.add_done_callback(self._tasks.discard)


class GoingAwayMiddleware:
    """Pure ASGI: registers every accepted WebSocket, whatever the endpoint."""

    def __init__(self, app: ASGIApp, websockets: OpenWebSockets) -> None:
        self.app = app
        self.websockets = websockets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        conn = _Connection(send)
        open_set = self.websockets.connections

        async def tracked_send(message: Message) -> None:
            if conn.gone:
                if message["type"] == "websocket.close":
                    return  # already closed with 1001
                # Like a dropped client: Starlette turns OSError into
                # WebSocketDisconnect, which endpoints already handle.
                raise ConnectionResetError("websocket closed: server shutting down")
            if message["type"] == "websocket.close":
                open_set.discard(conn)
            await send(message)
            if message["type"] == "websocket.accept":
                open_set.add(conn)

        try:
            await self.app(scope, receive, tracked_send)
        finally:
            open_set.discard(conn)
