"""The thread collapse: a small model's training step beside one other busy process, with torch's
2 threads against ``train.threads: auto`` (one thread for networks under 100k parameters).

    python benchmarks/threads.py [--quick]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_result  # noqa: E402

BUSY = "import torch; torch.set_num_threads(1); a = torch.randn(800, 800)\nwhile True: a @ a"


def timed_run(preset: str, steps: int, threads: str, out: Path) -> tuple[float, float]:
    """(wall seconds of the process, mean ms per step after the first rows)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ganforge", "train", preset, "--steps", str(steps), "--quiet",
                    "--out", str(out), "--set", f"train.threads={threads}",
                    "--set", f"train.log_every={max(steps // 15, 1)}"], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    with (out / "metrics.csv").open() as fh:
        rows = [float(r["sec_per_step"]) for r in csv.DictReader(fh)][3:]
    return wall, 1000 * sum(rows) / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 steps")
    args = parser.parse_args()
    steps = 300 if args.quick else 1500
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for busy in (False, True):
            neighbour = subprocess.Popen([sys.executable, "-c", BUSY]) if busy else None
            try:
                time.sleep(1.0 if busy else 0.0)
                for threads in ("2", "auto"):
                    out = Path(tmp) / f"{busy}-{threads}"
                    wall, ms = timed_run("ring8-selfcond", steps, threads, out)
                    rows.append({"preset": "ring8-selfcond", "steps": steps, "busy_neighbour": busy,
                                 "threads": threads, "ms_per_step": round(ms, 2), "wall_s": round(wall, 1)})
                    print(rows[-1], flush=True)
            finally:
                if neighbour is not None:
                    neighbour.kill()
                    neighbour.wait()
    print_table(rows, ["preset", "steps", "busy_neighbour", "threads", "ms_per_step", "wall_s"])
    path = write_result("threads_quick" if args.quick else "threads", {"rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
