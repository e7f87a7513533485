"""What the play and board servers share: the optional-dependency check, the access gate
(Host, Origin and token checks), paths confined to a root folder, and serving with uvicorn.

Both servers listen on 127.0.0.1 by default. On any other host they warn, and every request must
carry a random token (``?token=...``; the printed URL has it), so that another machine on the
network cannot drive training or read runs without the URL. On every host they answer only their
own ``Host`` names (DNS rebinding) and only their own pages' ``Origin`` (cross-site websocket
hijacking); see :class:`AccessGate` and docs/play.md "Security".
"""

from __future__ import annotations

import secrets
import socket
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ganforge.errors import GanforgeError

STATIC = Path(__file__).parent / "static"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
WILDCARD = {"0.0.0.0", "::"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


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


def allowed_hosts(host: str, port: int, extra: Iterable[str] = ()) -> frozenset[str] | None:
    """The ``Host`` headers a server bound to ``host:port`` answers (lower case, with the port),
    or None for a wildcard bind (``0.0.0.0``, ``::``), which any name of the machine reaches and
    whose token then guards it. A loopback bind answers every loopback name, so that a page
    opened as ``localhost`` works; ``extra`` adds names the user allows (``--allow-host``)."""
    if host in WILDCARD:
        return None
    names = set(LOOPBACK) if host in LOOPBACK else {host}
    names.update(extra)
    return frozenset(f"[{n}]:{port}" if ":" in n and not n.startswith("[") else f"{n}:{port}"
                     for n in (name.lower() for name in names))


def check_origins(origins: Iterable[str]) -> list[str]:
    """``--allow-origin`` values, each ``http[s]://host[:port]`` with nothing after it."""
    from urllib.parse import urlsplit

    for origin in origins:
        try:
            parts = urlsplit(origin)
            _ = parts.port  # a port that is not a number raises ValueError
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            ok = False
        if not ok or parts.path.strip("/") or parts.query or parts.fragment or parts.username:
            raise GanforgeError(f"--allow-origin {origin[:80]!r} is not an origin",
                                "pass scheme, host and port only, e.g. --allow-origin http://localhost:3000")
    return list(origins)


class AccessGate:
    """ASGI middleware in front of both servers; every refusal is a 403 and one log line.

    * ``Host``: when ``hosts`` is given, the request's ``Host`` header must be one of them, so a
      DNS-rebinding page (``evil.example`` resolving to 127.0.0.1) reaches nothing.
    * ``Origin``: a websocket handshake, and any request other than GET/HEAD/OPTIONS, that
      carries an ``Origin`` must come from the page's own origin (``http://`` + its Host) or one
      in ``origins`` (``--allow-origin``): a page of another site or another local port cannot
      drive the server through the visitor's browser (cross-site websocket hijacking). Clients
      that send no ``Origin`` are not browsers acting for a page, and pass.
    * the token: when ``token`` is set, requests and websockets need ``?token=TOKEN``, compared
      in constant time on bytes (any input: 403, never 500); the shipped files under
      ``/static/`` are public. A websocket with a wrong token is accepted and closed at once
      with code 1008, so that the page can say why instead of reconnecting.
    """

    def __init__(self, app: Any, token: str | None = None, *, hosts: frozenset[str] | None = None,
                 origins: Iterable[str] = ()) -> None:
        self.app, self.hosts = app, hosts
        self.token = None if token is None else token.encode()
        self.origins = frozenset(o.rstrip("/").lower() for o in origins)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        host = headers.get("host", "").strip().lower()
        if self.hosts is not None and host not in self.hosts:
            await self._refuse(scope, receive, send, f"Host {host[:80]!r} is not this server's",
                               "open the URL the server printed")
            return
        origin = headers.get("origin")
        checks_origin = scope["type"] == "websocket" or scope.get("method") not in SAFE_METHODS
        if (checks_origin and origin is not None
                and origin.rstrip("/").lower() not in {f"http://{host}", *self.origins}):
            await self._refuse(scope, receive, send, f"Origin {origin[:80]!r} is not this server's",
                               "open the page from the URL the server printed (or pass --allow-origin)")
            return
        if (self.token is None or scope.get("path", "").startswith("/static/")
                or self._token_ok(scope.get("query_string", b""))):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":  # accepted then closed: the page tells the user why
            await receive()  # the websocket.connect event
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1008, "reason": "token required"})
            return
        await self._refuse(scope, receive, send, "no valid token",
                           "open the URL the server printed (?token=...)")

    def _token_ok(self, query: bytes) -> bool:
        from urllib.parse import parse_qs

        try:
            given = parse_qs(query, max_num_fields=64).get(b"token", [b""])[0]
        except ValueError:  # too many fields
            return False
        return secrets.compare_digest(given, self.token)

    @staticmethod
    async def _refuse(scope: dict, receive: Any, send: Any, problem: str, fix: str) -> None:
        client = scope.get("client") or ("?", 0)
        print(f"ganforge: refused {scope['type']} {scope.get('path', '')[:80]!r} from {client[0]}: "
              f"{problem}", file=sys.stderr, flush=True)
        if scope["type"] == "websocket":  # closing before accepting answers the handshake with 403
            await send({"type": "websocket.close", "code": 1008})
            return
        from starlette.responses import PlainTextResponse

        await PlainTextResponse(f"forbidden: {problem}; {fix}", status_code=403)(scope, receive, send)


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
    if not host.strip():
        raise GanforgeError("--host is empty (it would listen on every interface)",
                            "pass --host 127.0.0.1, or --host 0.0.0.0 to listen on every interface")
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



def serve(app: Any, *, host: str, port: int, path: str, token: str | None, what: str,
          allow_hosts: Iterable[str] = (), allow_origins: Iterable[str] = ()) -> None:
    """Run ``app`` behind the :class:`AccessGate` with uvicorn until Ctrl-C, after printing its
    URL (and a warning when the host is not loopback). The caller has checked that ``host:port``
    is free."""
    import uvicorn

    if host not in LOOPBACK:
        print(f"ganforge: warning: {what} listens on {host}, reachable from other machines; "
              "anyone with the URL (and its token) can use it", file=sys.stderr)
    print(f"{what}: {url('127.0.0.1' if host in ('0.0.0.0', '::') else host, port, path, token)}",
          flush=True)
    gate = AccessGate(app, token, hosts=allowed_hosts(host, port, allow_hosts), origins=allow_origins)
    uvicorn.run(gate, host=host, port=port, log_level="warning")


@contextmanager
def background(app: Any, host: str = "127.0.0.1", port: int = 0, token: str | None = None) -> Iterator[str]:
    """Serve ``app`` behind the :class:`AccessGate` from a thread for the duration of a ``with``
    block (a notebook, a test, a screenshot script); yields its base URL (without the token)."""
    import threading
    import time

    import uvicorn

    port = checked_port(host, port)
    gate = AccessGate(app, token, hosts=allowed_hosts(host, port))
    server = uvicorn.Server(uvicorn.Config(gate, host=host, port=port, log_level="warning"))
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
