"""The ``ganforge play`` server: the page, and one websocket that drives a :class:`PlaySession`.

The protocol is documented in docs/play.md. Every page connected to the server sees the same
session (one training run); each gets its own frames. Work that touches torch runs in a worker
thread, so the event loop keeps answering while a step or a rebuild runs.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganforge.errors import GanforgeError
from ganforge.web.server import STATIC
from ganforge.web.session import CHOICES, FPS, LIMITS, PROBABILITY_LOSSES, PlaySession

MAX_MESSAGE = 256_000  # bytes: a drawn distribution of 2000 points is about 40 kB


@dataclass(eq=False)
class _Client:
    """One page: where it is in the metrics history, and whether it needs a frame now."""

    cursor: tuple[int, int] = (0, 0)
    settings_version: int = -1
    #: whether the last frame sent showed training running: a stop (a diverged run) is then sent
    #: at once, with its reason, though nothing else changed
    sent_running: bool = False
    dirty: asyncio.Event = field(default_factory=asyncio.Event)


def hello(session: PlaySession) -> dict[str, Any]:
    return {"type": "hello", "settings": session.settings.as_json(),
            "choices": {k: list(v) for k, v in CHOICES.items()},
            "limits": {k: list(v) for k, v in LIMITS.items()}, "fps": FPS,
            "probability_losses": list(PROBABILITY_LOSSES),
            "runs_dir": str(session.runs_dir)}


async def handle(session: PlaySession, message: Any) -> dict[str, Any] | None:
    """The reply to one client message (None: nothing but a fresh frame). Raises GanforgeError
    for a message the page got wrong."""
    run = asyncio.to_thread
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise GanforgeError("a message must be a JSON object with a string 'type'",
                            'send e.g. {"type": "play"}')
    kind = message["type"]
    if kind == "configure":
        settings = await run(session.configure, message.get("settings"))
        return {"type": "settings", "settings": settings.as_json()}
    if kind == "play":
        session.play()
        return None
    if kind == "pause":
        await run(session.pause)
        return None
    if kind == "step":
        if session.running:
            raise GanforgeError("cannot single-step while playing", "pause first")
        await run(session.step, message.get("which", "both"))
        return None
    if kind == "reset":
        await run(session.reset)
        return {"type": "settings", "settings": session.settings.as_json()}
    if kind == "save":
        path = await run(session.save, message.get("name"))
        return {"type": "saved", "path": str(path)}
    if kind == "load":
        settings = await run(session.load, message.get("run"))
        return {"type": "settings", "settings": settings.as_json()}
    if kind == "list_runs":
        return {"type": "runs", "runs": await run(session.runs)}
    raise GanforgeError(f"unknown message type {kind!r}",
                        "use configure, play, pause, step, reset, save, load or list_runs")


def create_play_app(runs_dir: str | Path = "runs", session: PlaySession | None = None) -> Any:
    """The Starlette app: ``/`` the page, ``/static/*`` its files, ``/ws`` the session."""
    from starlette.applications import Starlette
    from starlette.responses import FileResponse
    from starlette.routing import Mount, Route, WebSocketRoute
    from starlette.staticfiles import StaticFiles
    from starlette.websockets import WebSocket, WebSocketDisconnect

    state = {"session": session}
    clients: set[_Client] = set()

    def current() -> PlaySession:
        if state["session"] is None:
            state["session"] = PlaySession(runs_dir)
        return state["session"]

    async def page(request: Any) -> FileResponse:
        return FileResponse(STATIC / "play.html")

    def encoded_frame(session: PlaySession, client: _Client) -> str:
        frame, client.cursor = session.frame(client.cursor)
        client.sent_running = bool(frame.get("running"))
        try:
            return json.dumps(frame, allow_nan=False)
        except ValueError:  # a NaN somewhere (a diverged network): the slow, careful way
            return json.dumps(json_safe(frame), allow_nan=False)

    async def frames(ws: WebSocket, client: _Client) -> None:
        """Send a frame every 1/FPS s while training runs, and at once after any change."""
        session = current()
        loop = asyncio.get_running_loop()
        due = loop.time()
        try:
            while True:
                try:
                    await asyncio.wait_for(client.dirty.wait(), timeout=max(due - loop.time(), 0.001))
                except asyncio.TimeoutError:
                    if not session.running and not client.sent_running:
                        due = loop.time() + 1 / FPS
                        continue  # nothing changes: no frame (a stop still gets its last one)
                client.dirty.clear()
                due = max(due + 1 / FPS, loop.time())  # a steady rate, not 1/FPS after each send
                try:
                    text = await asyncio.to_thread(encoded_frame, session, client)
                except Exception as err:  # noqa: BLE001  a picture that fails must not end the stream
                    await ws.send_json({"type": "error", "message": f"cannot draw this state: {err}"})
                    await asyncio.sleep(1)
                    continue
                version = session.settings_version
                if version != client.settings_version:  # changed by another page, or by the API
                    client.settings_version = version
                    await ws.send_json({"type": "settings", "settings": session.settings.as_json()})
                await ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError, ConnectionError):
            return  # the page went away

    async def socket(ws: WebSocket) -> None:
        await ws.accept()
        session = await asyncio.to_thread(current)
        client = _Client()
        clients.add(client)
        await ws.send_json(hello(session))
        client.dirty.set()
        sender = asyncio.create_task(frames(ws, client))
        try:
            while True:
                text = await ws.receive_text()
                try:
                    if len(text) > MAX_MESSAGE:
                        raise GanforgeError(f"message of {len(text)} bytes is too long",
                                            f"send at most {MAX_MESSAGE} bytes")
                    try:
                        message = json.loads(text)
                    except json.JSONDecodeError:
                        raise GanforgeError("message is not JSON", 'send e.g. {"type": "play"}') from None
                    reply = await handle(session, message)
                except GanforgeError as err:
                    reply = {"type": "error", "message": str(err)}
                except Exception as err:  # noqa: BLE001  a failure the checks missed: say it, stay up
                    print(f"ganforge play: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
                    reply = {"type": "error", "message": f"that failed ({type(err).__name__}: {err}); "
                                                         "the session goes on"}
                if reply is not None:
                    await ws.send_json(reply)
                for each in clients:  # every page shows the one session: all redraw
                    each.dirty.set()
        except (WebSocketDisconnect, RuntimeError, ConnectionError):
            pass  # the page went away
        finally:
            sender.cancel()
            clients.discard(client)

    app = Starlette(routes=[Route("/", page), WebSocketRoute("/ws", socket),
                            Mount("/static", StaticFiles(directory=STATIC), name="static")])
    app.state.current = current
    return app


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN): a diverged
    network's frame still reaches the page."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value
