"""The play protocol under random messages: whatever JSON a page (or anything else) sends, the
server answers with a reply or a one-line error frame; it never raises anything but a
GanforgeError from a message and never drops the session."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from ganforge.errors import GanforgeError  # noqa: E402
from ganforge.web.play import create_play_app, handle  # noqa: E402
from ganforge.web.session import PlaySession, PlaySettings  # noqa: E402

TYPES = ["configure", "play", "pause", "step", "reset", "save", "load", "list_runs"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                    st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                    max_leaves=12)
SETTING_NAMES = [f for f in PlaySettings.__dataclass_fields__ if f != "points"] + ["bogus"]
SETTINGS = st.dictionaries(st.sampled_from(SETTING_NAMES), JSON, max_size=3)
MESSAGES = st.one_of(
    JSON,
    st.fixed_dictionaries({"type": st.sampled_from(TYPES)},
                          optional={"settings": st.one_of(SETTINGS, JSON), "name": JSON, "run": JSON,
                                    "which": JSON, "extra": JSON}),
    st.fixed_dictionaries({"type": JSON}),
)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    s = PlaySession(tmp_path_factory.mktemp("fuzz") / "runs")
    yield s
    s.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=MESSAGES)
def test_any_message_gets_a_reply_or_a_one_line_error(session, message):
    if isinstance(message, dict) and message.get("type") == "play":
        message = {"type": "pause"}  # background training is the browser tests' business
    try:
        reply = asyncio.run(handle(session, message))
    except GanforgeError as err:
        assert "\n" not in str(err)
    else:
        assert reply is None or isinstance(reply["type"], str)
        json.dumps(reply)  # whatever comes back can be sent
    session.frame((0, 0))  # and the session can still be pictured


@settings(max_examples=25, deadline=None)
@given(texts=st.lists(st.one_of(st.text(max_size=40), MESSAGES.map(lambda m: json.dumps(m, default=str))),
                      min_size=1, max_size=4))
def test_the_socket_survives_any_text(texts, tmp_path_factory):
    s = PlaySession(tmp_path_factory.mktemp("sock") / "runs")
    try:
        with TestClient(create_play_app(session=s)) as client, client.websocket_connect("/ws") as ws:
            assert ws.receive_json()["type"] == "hello"
            for text in texts:
                if '"play"' in text:
                    continue
                ws.send_text(text)
            ws.send_json({"type": "list_runs"})
            for _ in range(200):  # frames and the replies to the texts come first
                if ws.receive_json()["type"] == "runs":
                    break
            else:
                raise AssertionError("no answer to list_runs: the session was dropped")
    finally:
        s.close()
