"""The play server's protocol, through Starlette's test client (no browser), and the CLI's
start-up errors."""

from __future__ import annotations

import socket
import time

import pytest

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402

from ganforge.cli import main  # noqa: E402
from ganforge.errors import GanforgeError  # noqa: E402
from ganforge.web.play import create_play_app, json_safe  # noqa: E402
from ganforge.web.server import AccessGate, allowed_hosts, background, check_origins, confined  # noqa: E402
from ganforge.web.session import LIMITS, PlaySession  # noqa: E402


@pytest.fixture
def client(tmp_path, one_thread):
    session = PlaySession(tmp_path / "runs")
    with TestClient(create_play_app(session=session)) as c:
        yield c
    session.close()


def _until(ws, kind: str, where=lambda message: True, limit: int = 50) -> dict:
    """The next message of type ``kind`` for which ``where`` holds (frames already on their way
    when a command was sent still arrive first)."""
    for _ in range(limit):
        message = ws.receive_json()
        if message["type"] == kind and where(message):
            return message
    raise AssertionError(f"no such {kind} message")


def test_the_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="field"' in page.text
    assert client.get("/static/play.js").status_code == 200
    for path in ("/static/../server.py", "/static/%2e%2e/server.py", "/static/..%2fsession.py"):
        assert client.get(path).status_code == 404


def test_hello_then_a_frame(client):
    with client.websocket_connect("/ws") as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and hello["settings"]["data"] == "ring8"
        assert "wgan-gp" in hello["choices"]["loss"] and hello["limits"]["g_depth"] == list(LIMITS["g_depth"])
        frame = _until(ws, "frame")
        assert frame["step"] == 0 and not frame["running"] and len(frame["heatmap"]["values"]) > 0


@pytest.mark.parametrize("message, words", [
    ("not json", "not JSON"), ("[1, 2]", "JSON object"), ('{"type": "fly"}', "unknown message type"),
    ('{"type": "configure", "settings": {"g_depth": 99}}', "g_depth"),
    ('{"type": "configure", "settings": {"points": [[0, 0], ["a", 1]]}}', "points"),
    ('{"type": "step", "which": "E"}', "both, D or G"), ('{"type": "save", "name": "../x"}', "plain folder"),
    ('{"type": "load", "run": "nothing"}', "not a finished run"), ("x" * 300_000, "too long"),
])
def test_a_bad_message_gets_an_error_frame_and_the_connection_stays(client, message, words):
    with client.websocket_connect("/ws") as ws:
        _until(ws, "frame")
        ws.send_text(message)
        error = _until(ws, "error")
        assert words in error["message"] and "\n" not in error["message"]
        ws.send_json({"type": "step"})  # still alive
        _until(ws, "frame", lambda f: f["step"] == 1)


def test_steps_settings_play_pause_save_and_load(client, tmp_path):
    with client.websocket_connect("/ws") as ws:
        _until(ws, "frame")
        ws.send_json({"type": "step", "which": "D"})
        _until(ws, "frame", lambda f: f["step"] == 1)
        ws.send_json({"type": "configure", "settings": {"loss": "hinge", "speed": 100}})
        reply = _until(ws, "settings")
        assert reply["settings"]["loss"] == "hinge"
        _until(ws, "frame", lambda f: f["heatmap"]["kind"] == "critic")
        ws.send_json({"type": "play"})
        frames, started = [], time.perf_counter()
        while len(frames) < 5 and time.perf_counter() - started < 20:
            message = ws.receive_json()
            if message["type"] == "frame":
                frames.append(message)
        assert frames[-1]["running"] and frames[-1]["step"] > frames[0]["step"]
        ws.send_json({"type": "step"})
        assert "pause first" in _until(ws, "error")["message"]
        ws.send_json({"type": "pause"})
        ws.send_json({"type": "save", "name": "from-page"})
        saved = _until(ws, "saved")
        assert saved["path"].endswith("from-page")
        ws.send_json({"type": "list_runs"})
        assert [r["name"] for r in _until(ws, "runs")["runs"]] == ["from-page"]
        ws.send_json({"type": "reset"})
        _until(ws, "frame", lambda f: f["step"] == 0 and f["metrics"] == [])
        ws.send_json({"type": "load", "run": "from-page"})
        assert _until(ws, "settings")["settings"]["loss"] == "hinge"
        _until(ws, "frame", lambda f: f["step"] > 1 and len(f["metrics"]) > 1)
    assert main(["info", str(tmp_path / "runs" / "from-page")]) == 0


def test_every_page_follows_a_change_made_on_another(client):
    with client.websocket_connect("/ws") as first, client.websocket_connect("/ws") as second:
        _until(first, "frame")
        _until(second, "frame")
        first.send_json({"type": "configure", "settings": {"data": "spiral"}})
        _until(first, "settings", lambda m: m["settings"]["data"] == "spiral")
        _until(second, "settings", lambda m: m["settings"]["data"] == "spiral")


def test_a_token_guards_everything_but_the_static_files(tmp_path):
    session = PlaySession(tmp_path / "runs")
    app = AccessGate(create_play_app(session=session), "s3cret-token")
    with TestClient(app) as c:
        assert c.get("/").status_code == 403
        assert c.get("/?token=wrong-token").status_code == 403
        assert c.get("/?token=s3cret-token").status_code == 200
        assert c.get("/static/play.js").status_code == 200
        # accepted and closed with 1008, so that the page says why instead of reconnecting
        with c.websocket_connect("/ws") as ws, pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1008
        with c.websocket_connect("/ws?token=s3cret-token") as ws:
            assert ws.receive_json()["type"] == "hello"
    session.close()


@pytest.mark.parametrize("query", ["token=%C3%A9", "token=" + "a" * 60_000, "token=s3cret-toke%00n",
                                   "token=%FF%FE", "token=s3cret-token%20", "token", "&".join(["x=1"] * 100)])
def test_any_wrong_token_is_403_never_500(tmp_path, query):
    app = AccessGate(create_play_app(session=PlaySession(tmp_path / "runs")), "s3cret-token")
    with TestClient(app, raise_server_exceptions=True) as c:
        response = c.get(f"/?{query}")
    assert response.status_code == 403 and "token" in response.text


ORIGIN = "http://127.0.0.1:8765"


@pytest.fixture
def gated(tmp_path, one_thread):
    """The play app behind the gate a loopback server on port 8765 uses."""
    session = PlaySession(tmp_path / "runs")
    app = AccessGate(create_play_app(session=session), hosts=allowed_hosts("127.0.0.1", 8765),
                     origins=["http://localhost:3000"])
    with TestClient(app, base_url=ORIGIN) as c:
        yield c
    session.close()


def _ws(client, **headers):
    """A websocket to the gated app (the test client's handshake names host 'testserver')."""
    return client.websocket_connect("/ws", headers={"Host": "127.0.0.1:8765", **headers})


def test_a_foreign_origin_cannot_open_the_websocket(gated, capfd):
    for origin in ("http://localhost:9999", "http://evil.example", "null", "http://127.0.0.1:8766"):
        with pytest.raises(WebSocketDisconnect):
            with _ws(gated, Origin=origin) as ws:
                ws.receive_json()
    log = capfd.readouterr().err
    assert log.count("ganforge: refused websocket '/ws'") == 4 and "Origin 'http://evil.example'" in log
    for origin in (ORIGIN, "http://localhost:3000", None):  # its own page, an allowed one, no browser
        headers = {"Origin": origin} if origin else {}
        with _ws(gated, **headers) as ws:
            assert ws.receive_json()["type"] == "hello"


def test_a_state_changing_request_from_a_foreign_origin_is_403(gated):
    assert gated.post("/", headers={"Origin": "http://evil.example"}).status_code == 403
    # a GET changes nothing (and a cross-origin page cannot read the answer)
    assert gated.get("/", headers={"Origin": "http://evil.example"}).status_code == 200
    assert gated.post("/", headers={"Origin": ORIGIN}).status_code == 405  # reaches the app


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1:9999", "127.0.0.2:8765",
                                  "", "127.0.0.1:8765.evil.example"])
def test_a_foreign_host_is_403_on_pages_and_websockets(gated, host):
    """DNS rebinding: a name the attacker controls, resolved to 127.0.0.1, still names itself."""
    response = gated.get("/", headers={"Host": host})
    assert response.status_code == 403 and "Host" in response.text
    with pytest.raises(WebSocketDisconnect):
        with _ws(gated, Host=host) as ws:
            ws.receive_json()


def test_every_loopback_name_reaches_a_loopback_server(gated):
    for host in ("127.0.0.1:8765", "localhost:8765", "LOCALHOST:8765", "[::1]:8765"):
        assert gated.get("/", headers={"Host": host}).status_code == 200


def test_allowed_hosts():
    assert allowed_hosts("0.0.0.0", 80) is None  # any name reaches a wildcard bind; the token guards it
    assert allowed_hosts("192.168.1.5", 80, ["MyBox"]) == {"192.168.1.5:80", "mybox:80"}
    assert "[::1]:5" in allowed_hosts("::1", 5)


def test_a_real_server_refuses_a_rebound_host(tmp_path, one_thread):
    import urllib.error
    import urllib.request

    session = PlaySession(tmp_path / "runs")
    with background(create_play_app(session=session)) as base:
        assert urllib.request.urlopen(base + "/", timeout=10).status == 200
        request = urllib.request.Request(base + "/", headers={"Host": "evil.example"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 403
    session.close()


@pytest.mark.parametrize("bad", ["localhost:3000", "ftp://x", "http://x/path", "http://x:port", "http://"])
def test_allow_origin_must_be_an_origin(bad, tmp_path, capsys):
    with pytest.raises(GanforgeError, match="is not an origin"):
        check_origins([bad])
    assert main(["play", "--allow-origin", bad, "--port", "0", "--runs", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not (tmp_path / "r").exists()
    assert check_origins(["http://localhost:3000", "https://a.example"]) == ["http://localhost:3000",
                                                                            "https://a.example"]


def test_an_empty_host_is_refused(tmp_path, capsys):
    assert main(["board", str(tmp_path), "--host", ""]) == 2
    assert "--host is empty" in capsys.readouterr().err


def test_confined_paths(tmp_path):
    (tmp_path / "root" / "a").mkdir(parents=True)
    (tmp_path / "secret").write_text("x")
    (tmp_path / "root" / "link").symlink_to(tmp_path / "secret")
    root = tmp_path / "root"
    assert confined(root, "a") == (root / "a").resolve()
    for bad in ("../secret", "a/../../secret", "/etc/passwd", "link", "", "a\x00b"):
        assert confined(root, bad) is None


def test_non_finite_numbers_become_null():
    assert json_safe({"a": [1.0, float("nan"), {"b": float("inf")}], "c": "x"}) == {
        "a": [1.0, None, {"b": None}], "c": "x"}


def test_the_commands_refuse_bad_addresses_with_one_line(tmp_path, capsys):
    assert main(["play", "--port", "70000", "--runs", str(tmp_path / "r")]) == 2
    assert "is not a port number" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["board", str(tmp_path), "--port", str(port)]) == 2
        err = capsys.readouterr().err
        assert "cannot listen on 127.0.0.1" in err and err.count("\n") == 1
    assert main(["board", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["play", "--token", "short", "--port", "0", "--runs", str(tmp_path / "r")]) == 2
    assert "--token" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing written


def test_without_the_web_extra_the_commands_say_how_to_get_it(monkeypatch, capsys, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_starlette(name, *args, **kwargs):
        if name.startswith(("starlette", "uvicorn")):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_starlette)
    assert main(["board", str(tmp_path)]) == 2
    assert 'pip install -e ".[web]"' in capsys.readouterr().err


def test_a_save_onto_a_dangling_link_is_an_error_frame_and_the_socket_stays(client, tmp_path):
    (tmp_path / "runs").mkdir(exist_ok=True)
    (tmp_path / "runs" / "dangling").symlink_to(tmp_path / "runs" / "nowhere")
    with client.websocket_connect("/ws") as ws:
        _until(ws, "hello")
        ws.send_json({"type": "save", "name": "dangling"})
        assert "already exists" in _until(ws, "error")["message"]
        ws.send_json({"type": "list_runs"})
        assert _until(ws, "runs")["runs"] == []


def test_an_unexpected_failure_is_an_error_frame_and_the_socket_stays(client, monkeypatch):
    session = client.app.state.current()

    def broken(*args, **kwargs):
        raise NotADirectoryError(20, "Not a directory")

    monkeypatch.setattr(session, "save", broken)
    with client.websocket_connect("/ws") as ws:
        _until(ws, "hello")
        ws.send_json({"type": "save", "name": "x"})
        message = _until(ws, "error")["message"]
        assert "NotADirectoryError" in message and "the session goes on" in message
        ws.send_json({"type": "list_runs"})
        assert _until(ws, "runs")["type"] == "runs"


def test_a_diverging_run_sends_its_stop_at_once(client):
    """No click needed: the frame that says running false, with the reason, arrives by itself."""
    import threading

    with client.websocket_connect("/ws") as ws:
        _until(ws, "hello")
        ws.send_json({"type": "configure", "settings": {"optimizer": "sgd", "lr_g": 1.0, "lr_d": 1.0}})
        _until(ws, "settings")
        ws.send_json({"type": "play"})
        _until(ws, "frame", lambda f: f["running"])
        stopped: list[dict] = []
        waiter = threading.Thread(target=lambda: stopped.append(
            _until(ws, "frame", lambda f: not f["running"], limit=10_000)), daemon=True)
        waiter.start()
        waiter.join(timeout=60)  # a server that sends nothing once stopped would block forever
        assert stopped, "no frame announced the stop"
        assert "is not finite" in stopped[0]["error"]
