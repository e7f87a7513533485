"""End to end in a real browser: Playwright drives Debian's headless Chromium against the play
and board servers (Playwright's own browser download is not reachable here, so the system
chromium is launched by path). Skipped when Playwright or a chromium is missing; `.ci/run`
installs chromium first."""

from __future__ import annotations

import shutil
from contextlib import contextmanager

import pytest

pytest.importorskip("starlette")
playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install -y chromium)")]

from ganforge.cli import main  # noqa: E402
from ganforge.web.board import create_board_app  # noqa: E402
from ganforge.web.play import create_play_app  # noqa: E402
from ganforge.web.server import background  # noqa: E402
from ganforge.web.session import PlaySession  # noqa: E402

# the number of painted (not background-white) pixels of a canvas
PAINTED = """(id) => { const c = document.querySelector(id); const d = c.getContext('2d')
    .getImageData(0, 0, c.width, c.height).data; let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] < 240 || d[i+1] < 240 || d[i+2] < 240) n++;
    return n; }"""


def wait(page, condition: str) -> None:
    """Wait until the JS ``condition`` holds, polling every 50 ms (Playwright's default polls on
    animation frames, which a background headless page may not get)."""
    page.wait_for_function(condition, polling=50, timeout=30_000)


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1400, "height": 950})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    yield page
    page.close()
    assert problems == [], problems


def test_play_trains_draws_switches_saves_and_loads(page, tmp_path, one_thread):
    session = PlaySession(tmp_path / "runs")
    with background(create_play_app(session=session)) as url:
        page.goto(url + "/")
        wait(page, "document.body.dataset.connected === '1'")
        # start training: the heatmap and the charts change while it runs
        page.click("#play")
        wait(page, "window.gfPlay.lastFrame && window.gfPlay.lastFrame.step > 30")
        first = page.evaluate("window.gfPlay.heatmapChecksum()")
        loss_pixels = page.evaluate(PAINTED, "#chart-loss")
        wait(page, "window.gfPlay.lastFrame.step > 150")
        assert page.evaluate("window.gfPlay.heatmapChecksum()") != first
        assert page.evaluate(PAINTED, "#chart-loss") != loss_pixels
        assert page.evaluate(PAINTED, "#field") > 1000
        page.click("#play")  # pause
        wait(page, "window.gfPlay.lastFrame.running === false")
        # the button is redrawn with the next animation frame, not when the frame message lands
        wait(page, "document.getElementById('play').textContent.trim().toLowerCase() === 'play'")
        assert page.inner_text("#play").strip().lower() == "play"
        # one D-only step moves the step counter by one
        step = page.evaluate("window.gfPlay.lastFrame.step")
        page.click("#step-d")
        wait(page, f"window.gfPlay.lastFrame.step === {step + 1}")
        # draw a distribution with the mouse and train on it
        page.click("#draw")
        box = page.locator("#field").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
        page.mouse.down()
        for k in range(1, 21):
            page.mouse.move(box["x"] + box["width"] * (0.3 + 0.02 * k), box["y"] + box["height"] * 0.5,
                            steps=2)
        page.mouse.up()
        page.click("#use-drawing")
        wait(page, "document.querySelector('#data').value === 'drawn'")
        assert session.settings.data == "drawn" and len(session.settings.points) >= 2
        # switch the loss: the heatmap turns into a critic's values
        page.select_option("#loss", "wgan-gp")
        wait(page, "window.gfPlay.lastFrame.heatmap.kind === 'critic'")
        assert session.settings.loss == "wgan-gp"
        # save the run, then load it back from the list
        page.fill("#save-name", "from-browser")
        page.click("#save")
        wait(page, "document.querySelector('#saved-path').textContent.includes('from-browser')")
        assert main(["info", str(tmp_path / "runs" / "from-browser")]) == 0
        page.click("#reset")
        wait(page, "window.gfPlay.lastFrame.step === 0")
        wait(page, "[...document.querySelectorAll('#runs option')].some(o => o.value === 'from-browser')")
        page.select_option("#runs", "from-browser")
        page.click("#load")
        wait(page, f"window.gfPlay.lastFrame.step === {step + 1}")
        assert session.settings.loss == "wgan-gp"
        # a bad value shows a one-line error in the status line, and the page stays connected
        page.evaluate("""() => { const e = document.querySelector('#g-width'); e.value = '100000';
                                 e.dispatchEvent(new Event('change')); }""")
        wait(page, "document.querySelector('#status').textContent.includes('g_width')")
        page.close()  # before the server stops: the page would report its reconnection attempts
    session.close()


def test_board_lists_runs_and_shows_curves(page, tmp_path, one_thread):
    from ganforge.config import load_config
    from ganforge.train import Trainer

    runs = tmp_path / "runs"
    for name in ("alpha", "beta"):
        cfg = load_config("ring8-mlp", overrides={"train.steps": 30, "train.log_every": 5,
                                                  "train.sample_every": 10, "train.checkpoint_every": 30})
        Trainer(cfg, runs / name, progress=False).fit()
    with background(create_board_app(runs)) as url:
        page.goto(url + "/")
        page.wait_for_selector('tr[data-run="alpha"]')
        assert page.locator('tr[data-run="beta"]').count() == 1
        page.click('tr[data-run="alpha"]')
        wait(page, "document.querySelectorAll('#curves canvas').length > 0")
        page.wait_for_timeout(300)
        assert page.evaluate(PAINTED, "#curves canvas") > 500
        wait(page, "document.querySelector('#config').textContent.includes('ring8')")
        wait(page, "document.querySelector('#snapshot').naturalWidth > 0")
        steps = page.evaluate("document.querySelector('#timeline').max")
        assert int(steps) >= 1
        page.close()


def test_the_page_opened_without_its_token_says_so_and_stops_retrying(page, tmp_path):
    session = PlaySession(tmp_path / "runs")
    with background(create_play_app(session=session), token="s3cret-token") as url:
        page.goto(url + "/static/play.html")
        wait(page, "document.querySelector('#status').textContent.includes('refused')")
        page.wait_for_timeout(1500)  # no reconnect loop replaces the message
        assert "refused" in page.locator("#status").text_content()
    session.close()


@contextmanager
def _connected_play_page(page, tmp_path):
    """The play page, connected to a fresh session's server; closed before the server stops."""
    session = PlaySession(tmp_path / "runs")
    with background(create_play_app(session=session)) as url:
        page.goto(url + "/")
        wait(page, "document.body.dataset.connected === '1'")
        yield page
        page.close()  # before the server stops: the page would report its reconnection attempts
    session.close()


def test_a_diverging_run_shows_its_reason_returns_to_play_and_the_status_clears(page, tmp_path, one_thread):
    with _connected_play_page(page, tmp_path):
        page.select_option("#optimizer", "sgd")
        wait(page, "window.gfPlay.lastFrame && true")
        for box in ("#lr-g", "#lr-d"):
            page.fill(box, "1")
            page.dispatch_event(box, "change")
        wait(page, "document.querySelector('#lr-d').value === '1'")
        page.click("#play")
        # no click after the stop: the page shows the reason and its Play button by itself
        wait(page, "document.querySelector('#status').textContent.includes('is not finite')")
        wait(page, "document.querySelector('#play').textContent.trim() === 'Play'")
        assert "lower lr_g and lr_d" in page.inner_text("#status")
        assert page.inner_text("#sps").strip() == "0"
        # a successful change clears the old error
        page.select_option("#optimizer", "adam")
        wait(page, "!document.querySelector('#status').classList.contains('error')")
        assert "not finite" not in page.inner_text("#status")


def test_self_conditioning_switched_on_keeps_drawing_and_charts_keep_kinds_apart(page, tmp_path, one_thread):
    with _connected_play_page(page, tmp_path):
        page.fill("#self-condition", "8")
        page.dispatch_event("#self-condition", "change")
        wait(page, "window.gfPlay.lastFrame && window.gfPlay.lastFrame.heatmap && true")
        page.click("#play")
        wait(page, "window.gfPlay.lastFrame.step > 20")
        before = page.evaluate("window.gfPlay.heatmapChecksum()")
        wait(page, "window.gfPlay.lastFrame.step > 80")
        assert page.evaluate("window.gfPlay.heatmapChecksum()") != before  # frames keep arriving
        assert "cannot draw" not in page.inner_text("#status")
        # a switch to a critic loss: the scores chart shows critic values only
        page.select_option("#loss", "wgan-gp")
        wait(page, "window.gfPlay.lastFrame.heatmap.kind === 'critic'")
        wait(page, "window.gfPlay.lastFrame.metrics.some(r => 'c_real' in r)")
        page.click("#play")
