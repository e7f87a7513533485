"""`ganforge play` responsiveness: frames per second reaching the page while the default 2D model
trains at full speed, and the training rate with the page open against the CLI's rate on the
same config.

    python benchmarks/play.py [--quick] [--client browser|socket]

``browser`` (the default when Playwright and a chromium are installed) opens the real page in
headless Chromium and reads the page's own counters; ``socket`` is a Python websocket client that
decodes every frame (no drawing). Targets (issue "ganforge play and ganforge board"): >= 10 frames
per second, and >= 70% of the CLI's steps per second.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_result  # noqa: E402
from ganforge.web.session import PlaySettings  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def cli_rate(steps: int, tmp: Path) -> float:
    """Steps per second of `ganforge train` on the play page's default config (the metrics'
    sec_per_step, the first tenth of the run left out as warm-up)."""
    tree = PlaySettings().to_config().to_dict()
    tree["train"].update(steps=steps, log_every=max(steps // 20, 1), sample_every=10**9,
                         checkpoint_every=10**9)
    config = tmp / "play-default.yaml"
    config.write_text(yaml.safe_dump(tree))
    out = tmp / "cli"
    subprocess.run([sys.executable, "-m", "ganforge", "train", "--config", str(config), "--quiet",
                    "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    with (out / "metrics.csv").open() as fh:
        per_step = [float(r["sec_per_step"]) for r in csv.DictReader(fh)][2:]
    return 1 / (sum(per_step) / len(per_step))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "ganforge", "play", "--port", str(port),
                               "--runs", str(tmp / "runs")], stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline()  # "ganforge play: http://127.0.0.1:PORT/"
    if "http://" not in line:
        server.kill()
        raise RuntimeError(f"the play server did not start: {line!r}")
    deadline = time.time() + 30
    while time.time() < deadline:  # the URL is printed just before uvicorn binds the port
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, port
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the play server did not open its port within 30 s")


def measure_browser(port: int, seconds: float) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_function("document.body.dataset.connected === '1'")
        page.evaluate("""() => { const s = document.querySelector('#speed');
                                 s.value = s.max; s.dispatchEvent(new Event('change')); }""")
        page.click("#play")
        page.wait_for_timeout(3000)  # warm-up
        before = page.evaluate("() => [window.gfPlay.framesReceived, window.gfPlay.lastFrame.step]")
        page.wait_for_timeout(seconds * 1000)
        after = page.evaluate("() => [window.gfPlay.framesReceived, window.gfPlay.lastFrame.step]")
        page.click("#play")
        browser.close()
    return {"fps": (after[0] - before[0]) / seconds, "steps_per_s": (after[1] - before[1]) / seconds}


def measure_socket(port: int, seconds: float) -> dict[str, float]:
    import websockets

    async def run() -> dict[str, float]:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_size=2**24) as ws:
            await ws.send(json.dumps({"type": "configure", "settings": {"speed": 100}}))
            await ws.send(json.dumps({"type": "play"}))
            frames, first, last, started = 0, None, None, None
            while True:
                message = json.loads(await ws.recv())
                if message["type"] != "frame":
                    continue
                now = time.perf_counter()
                if started is None:
                    if message["running"] and message["step"] > 0:
                        started, first = now + 3, None  # 3 s warm-up
                    continue
                if now < started:
                    continue
                if first is None:
                    first, t0 = message["step"], now
                frames += 1
                last = message["step"]
                if now - t0 >= seconds:
                    await ws.send(json.dumps({"type": "pause"}))
                    return {"fps": frames / (now - t0), "steps_per_s": (last - first) / (now - t0)}

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (5 s of page, 1000 CLI steps)")
    parser.add_argument("--client", choices=["browser", "socket"],
                        default="browser" if CHROMIUM else "socket")
    args = parser.parse_args()
    seconds, steps = (5.0, 1000) if args.quick else (20.0, 4000)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cli = cli_rate(steps, tmp)
        server, port = start_server(tmp)
        try:
            page = (measure_browser if args.client == "browser" else measure_socket)(port, seconds)
        finally:
            server.terminate()
            server.wait(timeout=10)
    row = {"client": args.client, "seconds": seconds, "fps": round(page["fps"], 1),
           "page_steps_per_s": round(page["steps_per_s"], 1), "cli_steps_per_s": round(cli, 1),
           "ratio": round(page["steps_per_s"] / cli, 3)}
    row["meets_fps"] = row["fps"] >= 10
    row["meets_ratio"] = row["ratio"] >= 0.70
    print_table([row], list(row))
    name = f"play_{args.client}" + ("_quick" if args.quick else "")
    path = write_result(name, {"settings": PlaySettings().updated({"speed": 100}).as_json(), "rows": [row],
                               "targets": {"fps": 10, "ratio": 0.70}})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
