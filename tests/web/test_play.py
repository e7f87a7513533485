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
from ganforge.web.play import create_play_app, json_safe  # noqa: E402
from ganforge.web.server import TokenGate, confined  # noqa: E402
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
    app = TokenGate(create_play_app(session=session), "s3cret-token")
    with TestClient(app) as c:
        assert c.get("/").status_code == 403
        assert c.get("/?token=wrong-token").status_code == 403
        assert c.get("/?token=s3cret-token").status_code == 200
        assert c.get("/static/play.js").status_code == 200
        with pytest.raises(WebSocketDisconnect):
            with c.websocket_connect("/ws") as ws:
                ws.receive_json()
        with c.websocket_connect("/ws?token=s3cret-token") as ws:
            assert ws.receive_json()["type"] == "hello"


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
