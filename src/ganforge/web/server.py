"""What the play and board servers share: the optional-dependency check, the access token,
paths confined to a root folder, and serving with uvicorn.

Both servers listen on 127.0.0.1 by default. On any other host they warn, and every request must
carry a random token (``?token=...``; the printed URL has it), so that another machine on the
network cannot drive training or read runs without the URL.
"""

from __future__ import annotations

import secrets
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ganforge.errors import GanforgeError

STATIC = Path(__file__).parent / "static"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def require_web() -> None:
    """A one-line error when the ``[web]`` extra is not installed."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise GanforgeError("the web pages need the [web] extra (starlette, uvicorn, websockets)",
                            'install it with: pip install -e ".[web]"') from None


def token_for(host: str, token: str | None = None) -> str | None:
    """The token requests must carry: ``token`` if given, a random one on a non-loopback host,
    else none."""
    if token is not None:
        if len(token) < 8 or not token.isascii() or not token.replace("-", "").replace("_", "").isalnum():
            raise GanforgeError("--token must be at least 8 letters, digits, '-' or '_'",
                                "omit --token to get a random one")
        return token
    return None if host in LOOPBACK else secrets.token_urlsafe(16)


class TokenGate:
    """ASGI middleware: HTTP requests and websockets without ``?token=TOKEN`` get 403 (the
    shipped files under ``/static/`` excepted: the page loads them by plain URL)."""

    def __init__(self, app: Any, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        # the shipped static assets are public; the pages, the API and the websocket are not
        if (self.token is None or scope["type"] not in ("http", "websocket")
                or scope.get("path", "").startswith("/static/")):
            await self.app(scope, receive, send)
            return
        from urllib.parse import parse_qs

        given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        if secrets.compare_digest(given, self.token):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        from starlette.responses import PlainTextResponse

        await PlainTextResponse("forbidden: this server needs the token from its printed URL",
                                status_code=403)(scope, receive, send)


def confined(root: Path, relative: str) -> Path | None:
    """``root / relative`` when it stays inside ``root`` after resolving links and ``..``; else
    None (the caller answers 404)."""
    if not relative or "\x00" in relative or relative.startswith(("/", "\\")):
        return None
    base = root.resolve()
    try:
        path = (base / relative).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    return path if path == base or path.is_relative_to(base) else None


def url(host: str, port: int, path: str = "/", token: str | None = None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{path}" + (f"?token={token}" if token else "")


def checked_port(host: str, port: int) -> int:
    """The port to use: ``port`` when it is free on ``host`` (a free one for 0); one-line errors
    instead of uvicorn's traceback."""
    if not 0 <= port <= 65535:
        raise GanforgeError(f"--port {port} is not a port number", "use 1024..65535, or 0 for any free port")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as err:
            raise GanforgeError(f"cannot listen on {host}:{port} ({err.strerror or err})",
                                "choose another --port (or --host)") from None
        return probe.getsockname()[1]



def serve(app: Any, *, host: str, port: int, path: str, token: str | None, what: str) -> None:
    """Run ``app`` with uvicorn until Ctrl-C, after printing its URL (and a warning when the
    host is not loopback). The caller has checked that ``host:port`` is free."""
    import uvicorn

    if host not in LOOPBACK:
        print(f"ganforge: warning: {what} listens on {host}, reachable from other machines; "
              "anyone with the URL (and its token) can use it", file=sys.stderr)
    print(f"{what}: {url('127.0.0.1' if host in ('0.0.0.0', '::') else host, port, path, token)}",
          flush=True)
    uvicorn.run(TokenGate(app, token), host=host, port=port, log_level="warning")


@contextmanager
def background(app: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` from a thread for the duration of a ``with`` block (a notebook, a test, a
    screenshot script); yields its base URL."""
    import threading
    import time

    import uvicorn

    port = checked_port(host, port)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="ganforge-web", daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if not thread.is_alive() or time.time() > deadline:
            raise GanforgeError(f"the web server did not start on {host}:{port}", "choose another port")
        time.sleep(0.02)
    try:
        yield url(host, port, "").rstrip("/")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
