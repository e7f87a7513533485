"""Wall time of the README's main job, `ganforge train` on the embedded defaults (the
`digits-dcgan` preset on scikit-learn's 8x8 digits), run as a user runs it: a fresh
`ganforge train` process, import and data loading included, and the scores it prints at the end.

The quality of the same run is checked by the slow test
`tests/test_quality.py::test_default_preset_makes_recognisable_digits_of_every_class`; the time is
measured here rather than asserted in a test, because it depends on what else the machine runs.

    python benchmarks/first_run.py [--quick] [--repeats 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_result  # noqa: E402
from ganforge import load_config  # noqa: E402

#: the README's promise for the first run on this 2-core machine
TARGET_MINUTES = 3.0


def time_train(out: Path, steps: int | None, device: str) -> float:
    """Seconds for one `ganforge train` process writing into ``out``."""
    command = [sys.executable, "-m", "ganforge", "train", "--out", str(out), "--quiet", "--device", device]
    if steps is not None:
        command += ["--steps", str(steps)]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 steps (a smoke run)")
    parser.add_argument("--repeats", type=int, default=1, help="runs to time (the table shows each)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    preset_steps = int(load_config().train.steps)
    steps = 200 if args.quick else None
    rows = []
    for repeat in range(args.repeats):
        work = Path(tempfile.mkdtemp(prefix="ganforge-first-run-"))
        try:
            seconds = time_train(work / "run", steps, args.device)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        ran = steps or preset_steps
        rows.append({"run": repeat, "steps": ran, "seconds": round(seconds, 1),
                     "minutes": round(seconds / 60, 2), "steps_per_s": round(ran / seconds, 1)})
    print_table(rows, ["run", "steps", "seconds", "minutes", "steps_per_s"])
    worst = max(r["minutes"] for r in rows)
    if not args.quick:
        print(f"slowest run {worst:.2f} min (README target: under {TARGET_MINUTES:.0f} min)")
    path = write_result("first_run_quick" if args.quick else "first_run",
                        {"command": "ganforge train", "preset": "digits-dcgan", "device": args.device,
                         "quick": args.quick, "target_minutes": TARGET_MINUTES, "runs": rows,
                         "slowest_minutes": worst})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
