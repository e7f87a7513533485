"""Training throughput of the `mnist-dcgan` preset: ms per step, images per second, and the
achieved fraction of this machine's fp32 GEMM rate.

One "step" is the trainer's real `train_step` (n_disc D updates + one G update, Adam, batch 64).
FLOPs of one step are counted with torch.utils.flop_counter (matmuls and convolutions, forward
and backward); the machine's reachable fp32 rate is measured in the same run with square matmuls.

    python benchmarks/train_throughput.py [--quick] [--device cpu|cuda] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_MNIST, cpu_slug, print_table, write_result  # noqa: E402
from ganforge import load_config  # noqa: E402
from ganforge.data import ArrayDataset, build_dataset  # noqa: E402
from ganforge.train import Trainer  # noqa: E402


def gemm_flops_per_second(device: torch.device, n: int, repeats: int) -> float:
    """Best-of-`repeats` rate of an n x n fp32 matmul (2 n^3 FLOPs)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def mnist_like_dataset() -> tuple[ArrayDataset, str]:
    if (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").exists():
        ds = build_dataset({"name": "mnist", "root": str(SHARED_MNIST), "split": "test"})
        return ds, "mnist test split (../shared/data/mnist)"
    g = torch.Generator().manual_seed(0)
    return ArrayDataset(torch.rand(10_000, 1, 28, 28, generator=g) * 2 - 1), "random 28x28"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--preset", default="mnist-dcgan")
    args = parser.parse_args()

    warmup, steps = (2, 5) if args.quick else (5, 30)
    cfg = load_config(args.preset, overrides={"train.batch_size": args.batch_size,
                                              "device": args.device})
    dataset, data_note = mnist_like_dataset()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "run", progress=False, dataset=dataset)
        device = trainer.exp.device
        for _ in range(warmup):
            trainer.train_step()
        with FlopCounterMode(display=False) as counter:
            trainer.train_step()
        flops_per_step = counter.get_total_flops()
        times = []
        for _ in range(steps):
            _sync(device)
            start = time.perf_counter()
            trainer.train_step()
            _sync(device)
            times.append(time.perf_counter() - start)

    gemm = gemm_flops_per_second(device, 1024 if args.quick else 2048, 3 if args.quick else 10)
    sec = statistics.median(times)
    # every repeat of every phase handles one batch (D: real and fake; G: fake)
    images = args.batch_size * sum(p.repeat for p in trainer.exp.phases)
    row = {
        "preset": args.preset, "device": str(device), "batch_size": args.batch_size,
        "ms_per_step": 1000 * sec, "ms_per_step_iqr": 1000 * (
            statistics.quantiles(times, n=4)[2] - statistics.quantiles(times, n=4)[0]),
        "images_per_s": args.batch_size / sec, "gflop_per_step": flops_per_step / 1e9,
        "achieved_gflops": flops_per_step / sec / 1e9, "gemm_peak_gflops": gemm / 1e9,
        "fraction_of_peak": flops_per_step / sec / gemm,
    }
    print_table([row], list(row))
    print(f"\n(images/s counts real images consumed; each step also generates {images // 2} "
          f"fake ones. data: {data_note}; {steps} timed steps, median)")
    # one file per kind of CPU: the kernels, and so the fraction of peak, differ between them
    path = write_result(f"train_throughput_{cpu_slug()}" + ("_quick" if args.quick else ""),
                        {"quick": args.quick, "data": data_note, "timed_steps": steps,
                         "results": [row]})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
