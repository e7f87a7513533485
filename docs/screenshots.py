"""Screenshots of `ganforge play` and `ganforge board` for docs/play.md, taken in headless
Chromium (needs the [web] and [test] extras and Debian's chromium).

    python docs/screenshots.py            # writes docs/figures/play-*.png and board.png
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import torch
from playwright.sync_api import sync_playwright

from ganforge.config import load_config
from ganforge.train import Trainer
from ganforge.web.board import create_board_app
from ganforge.web.play import create_play_app
from ganforge.web.server import background
from ganforge.web.session import PlaySession

FIGURES = Path(__file__).resolve().parent / "figures"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def shoot_play(browser, runs: Path) -> list[Path]:
    session = PlaySession(runs)
    views = [  # (changes, steps to train after a reset, file)
        ({}, 1500, "play-ring.png"),  # a half-trained ring: modes found, not yet sharp
        ({"data": "spiral", "loss": "wgan-gp", "d_steps": 3}, 800, "play-spiral-wgan-gp.png"),
        ({"mode": "image", "z_dim": 16, "g_width": 256, "d_width": 256, "loss": "non-saturating",
          "d_steps": 1, "lr_g": 2e-4, "lr_d": 2e-4, "batch_size": 64}, 1500, "play-digits.png"),
    ]
    shots = []
    with background(create_play_app(session=session)) as url:
        page = browser.new_page(viewport={"width": 1440, "height": 960})
        page.goto(url + "/")
        page.wait_for_function("document.body.dataset.connected === '1'")
        for changes, steps, name in views:
            session.configure(changes)
            session.reset()
            for _ in range(steps):
                session.step()
            page.click("#step-both")  # one more step: the page redraws and shows the settings
            page.wait_for_timeout(800)
            shots.append(FIGURES / name)
            page.screenshot(path=shots[-1])
        page.close()
    session.close()
    return shots


def shoot_board(browser, runs: Path) -> Path:
    for name, loss in (("ring8-r1", "r1"), ("ring8-hinge", "hinge")):
        cfg = load_config("ring8-mlp", overrides={
            "train.steps": 1500, "train.log_every": 25, "loss.name": loss, "train.sample_every": 300,
            "train.checkpoint_every": 1500})
        Trainer(cfg, runs / "sweep" / name, progress=False).fit()
    with background(create_board_app(runs)) as url:
        page = browser.new_page(viewport={"width": 1440, "height": 1100})
        page.goto(url + "/")
        page.wait_for_selector('tr[data-run="sweep/ring8-r1"]')
        page.click('tr[data-run="sweep/ring8-r1"]')
        page.wait_for_function("document.querySelector('#snapshot').naturalWidth > 0")
        page.wait_for_timeout(800)
        path = FIGURES / "board.png"
        page.screenshot(path=path, full_page=True)
        page.close()
    return path


def main() -> None:
    if CHROMIUM is None:
        sys.exit("docs/screenshots.py needs chromium: apt-get install -y chromium")
    torch.set_num_threads(1)
    FIGURES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        shots = shoot_play(browser, Path(tmp) / "play-runs")
        shots.append(shoot_board(browser, Path(tmp) / "runs"))
        browser.close()
    for path in shots:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
