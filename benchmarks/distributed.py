"""Training throughput against world size on this machine: one process with 2 threads against 2
processes (torch.distributed, gloo) with 1 thread each, at the same global batch.

The step time is the mean ``sec_per_step`` that rank 0 logs after a warm-up (start-up, data loading
and torchrun's launch are excluded); images/s counts the global batch of every data-drawing phase.

    python benchmarks/distributed.py [--quick]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_result  # noqa: E402

CASES = {  # preset -> (global batch, steps)
    "ring8-mlp": (256, 1500),
    "digits-dcgan": (64, 300),
}


def run(preset: str, batch: int, steps: int, nproc: int, threads: int, out: Path) -> float:
    """Mean seconds per step after the first fifth of the run."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    common = ["train", preset, "--quiet", "--out", str(out), "--steps", str(steps),
              "--set", f"train.batch_size={batch // nproc}", "--set", f"train.log_every={steps // 10}",
              "--set", f"train.checkpoint_every={steps}", "--set", f"train.sample_every={steps}"]
    if nproc == 1:
        command = [sys.executable, "-c", f"import torch, sys; torch.set_num_threads({threads}); "
                   "from ganforge.cli import main; sys.exit(main(sys.argv[1:]))", *common]
    else:
        command = [sys.executable, "-m", "ganforge", *common, "--nproc", str(nproc)]
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    with (out / "metrics.csv").open() as fh:
        rows = [float(r["sec_per_step"]) for r in csv.DictReader(fh)]
    keep = rows[len(rows) // 5:]
    return sum(keep) / len(keep)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fifth of the steps")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset, (batch, steps) in CASES.items():
            steps = steps // 5 if args.quick else steps
            for nproc, threads in ((1, 1), (1, 2), (2, 1)):
                sec = run(preset, batch, steps, nproc, threads, Path(tmp) / f"{preset}-{nproc}-{threads}")
                rows.append({"preset": preset, "global_batch": batch, "processes": nproc,
                             "threads_each": threads, "ms_per_step": round(1000 * sec, 2),
                             "steps_per_s": round(1 / sec, 1)})
                print(rows[-1], flush=True)
    for preset in CASES:
        base = next(r for r in rows
                    if r["preset"] == preset and r["processes"] == 1 and r["threads_each"] == 2)
        for r in rows:
            if r["preset"] == preset:
                r["speed_vs_1x2"] = round(base["ms_per_step"] / r["ms_per_step"], 2)
    print_table(rows, ["preset", "global_batch", "processes", "threads_each", "ms_per_step", "steps_per_s",
                       "speed_vs_1x2"])
    path = write_result("distributed_quick" if args.quick else "distributed",
                        {"backend": "gloo", "device": "cpu", "quick": args.quick, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
