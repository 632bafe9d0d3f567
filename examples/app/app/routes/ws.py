import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from app.metrics import WEBSOCKETS

router = APIRouter()
log = logging.getLogger("app.ws")

MAX_MESSAGE_CHARS = 4096  # broadcast goes to everyone; keep it small


@router.websocket("/ws/echo")
async def echo(ws: WebSocket) -> None:
    await ws.accept()
    gauge = WEBSOCKETS.labels("/ws/echo")
    gauge.inc()
    try:
        while True:
            await ws.send_text(await ws.receive_text())
    except WebSocketDisconnect:
        pass
    finally:
        gauge.dec()


@router.websocket("/ws/broadcast")
async def broadcast(ws: WebSocket) -> None:
    hub = ws.app.state.hub
    await ws.accept()
    # A message published before this worker's subscriber is up would be lost
    # for local clients; give a freshly booted worker a moment to subscribe.
    if not await hub.wait_subscribed(timeout=3.0):
        await ws.close(code=1013, reason="broadcast unavailable")  # try again later
        return
    gauge = WEBSOCKETS.labels("/ws/broadcast")
    gauge.inc()
    hub.add(ws)
    try:
        while True:
            text = await ws.receive_text()
            if len(text) > MAX_MESSAGE_CHARS:
                await ws.close(code=1009, reason="message too big")
                return
            await hub.publish(text)
    except WebSocketDisconnect:
        pass
    finally:
        hub.discard(ws)
        gauge.dec()
