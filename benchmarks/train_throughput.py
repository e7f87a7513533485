"""Training throughput of the `mnist-dcgan` preset: ms per step, images per second, and the
achieved fraction of this machine's fp32 GEMM rate, in each memory layout.

One "step" is the trainer's real `train_step` (n_disc D updates + one G update, Adam, batch 64).
FLOPs of one step are counted with torch.utils.flop_counter (matmuls and convolutions, forward
and backward); the machine's reachable fp32 rate is measured in the same run with square matmuls
on the same number of threads. Each layout (`train.channels_last` false = NCHW, true = channels
last) is timed on its own trainer; the steps of the two are interleaved so that a change in the
machine's load hits both alike.

The convolution table says where the rest goes: every convolution of the step, timed alone
(forward + backward with the shapes the step gives it, same threads and layout), as a fraction of
the GEMM rate; and the share of the step's time outside convolutions and matmuls (BatchNorm,
activations, Adam), from torch.profiler. Together they bound what the step can reach.

    python benchmarks/train_throughput.py [--quick] [--device cpu|cuda] [--batch-size 64]
                                          [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_MNIST, cpu_slug, print_table, write_result  # noqa: E402
from ganforge import load_config  # noqa: E402
from ganforge.data import ArrayDataset, build_dataset  # noqa: E402
from ganforge.train import Trainer  # noqa: E402

LAYOUTS = {"nchw": False, "channels_last": True}
CONVOLUTIONS = (nn.Conv2d, nn.ConvTranspose2d)
#: ops counted as "compute" in the profile: everything else is overhead around the GEMMs
COMPUTE_OPS = ("convolution", "mm", "addmm", "bmm", "matmul")


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


def timed(fn: Any, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def step_flops(trainer: Trainer) -> int:
    with FlopCounterMode(display=False) as counter:
        trainer.train_step()
    return counter.get_total_flops()


def overhead_share(trainer: Trainer, steps: int) -> float:
    """The share of a step's self time spent outside convolutions and matmuls."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            trainer.train_step()
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in events)
    compute = sum(e.self_cpu_time_total for e in events
                  if any(op in e.key for op in COMPUTE_OPS))
    return 1.0 - compute / total


def convolution_table(trainer: Trainer, device: torch.device, channels_last: bool,
                      gemm: float, repeats: int) -> list[dict[str, Any]]:
    """Every convolution of a step, timed alone (forward + backward) at the shape it meets."""
    seen: dict[str, tuple[nn.Module, torch.Size]] = {}  # the first call's input shape
    calls: Counter[str] = Counter()
    hooks = []
    for net_name, net in trainer.algorithm.networks.items():
        for name, module in net.named_modules():
            if isinstance(module, CONVOLUTIONS):
                def record(m: nn.Module, inputs: tuple, _out: Any, key: str = f"{net_name}.{name}") -> None:
                    seen.setdefault(key, (m, inputs[0].shape))
                    calls[key] += 1
                hooks.append(module.register_forward_hook(record))
    trainer.train_step()
    for hook in hooks:
        hook.remove()
    rows = []
    layout = torch.channels_last if channels_last else torch.contiguous_format
    for key, (module, shape) in seen.items():
        layer = copy.deepcopy(module).to(memory_format=layout)
        x = torch.randn(shape, device=device).contiguous(memory_format=layout).requires_grad_(True)

        def step(layer: nn.Module = layer, x: torch.Tensor = x) -> None:
            y = layer(x)
            y.backward(torch.ones_like(y))

        for _ in range(2):
            step()
        with FlopCounterMode(display=False) as counter:
            step()
        sec = statistics.median(timed(step, device) for _ in range(repeats))
        rows.append({"layer": key, "input": "x".join(map(str, shape)), "calls_per_step": calls[key],
                     "ms_fwd_bwd": 1000 * sec, "gflops": counter.get_total_flops() / sec / 1e9,
                     "fraction_of_peak": counter.get_total_flops() / sec / gemm})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--preset", default="mnist-dcgan")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's, one per core)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    warmup, steps = (2, 4) if args.quick else (5, 30)
    dataset, data_note = mnist_like_dataset()
    rows, tables, overheads = [], {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {}
        for layout, channels_last in LAYOUTS.items():
            cfg = load_config(args.preset, overrides={
                "train.batch_size": args.batch_size, "device": args.device,
                "train.channels_last": channels_last,
                "train.threads": torch.get_num_threads()})
            trainers[layout] = Trainer(cfg, Path(tmp) / layout, progress=False, dataset=dataset)
        device = next(iter(trainers.values())).exp.device
        flops = {}
        for layout, trainer in trainers.items():
            for _ in range(warmup):
                trainer.train_step()
            flops[layout] = step_flops(trainer)
        times: dict[str, list[float]] = {layout: [] for layout in trainers}
        for _ in range(steps):  # interleaved
            for layout, trainer in trainers.items():
                times[layout].append(timed(trainer.train_step, device))
        gemm = gemm_flops_per_second(device, 1024 if args.quick else 2048, 3 if args.quick else 10)
        for layout, trainer in trainers.items():
            if device.type == "cpu":
                overheads[layout] = overhead_share(trainer, 2 if args.quick else 5)
            tables[layout] = convolution_table(trainer, device, LAYOUTS[layout], gemm,
                                               3 if args.quick else 10)

    for layout in trainers:
        sec = statistics.median(times[layout])
        q = statistics.quantiles(times[layout], n=4)
        rows.append({
            "preset": args.preset, "layout": layout, "device": str(device),
            "threads": torch.get_num_threads(), "batch_size": args.batch_size,
            "ms_per_step": 1000 * sec, "ms_per_step_iqr": 1000 * (q[2] - q[0]),
            "images_per_s": args.batch_size / sec, "gflop_per_step": flops[layout] / 1e9,
            "achieved_gflops": flops[layout] / sec / 1e9, "gemm_peak_gflops": gemm / 1e9,
            "fraction_of_peak": flops[layout] / sec / gemm,
            "non_gemm_share": overheads.get(layout),
        })
    print_table(rows, [c for c in rows[0] if c not in ("preset", "device")])
    for layout, table in tables.items():
        print(f"\nconvolutions alone, {layout}:")
        print_table(table, list(table[0]))
    images = args.batch_size * sum(p.repeat for p in trainers["nchw"].exp.phases)
    print(f"\n(images/s counts real images consumed; each step also generates {images // 2} "
          f"fake ones. data: {data_note}; {steps} timed steps, median)")
    # one file per kind of CPU: the kernels, and so the fraction of peak, differ between them
    path = write_result(f"train_throughput_{cpu_slug()}" + ("_quick" if args.quick else ""),
                        {"quick": args.quick, "data": data_note, "timed_steps": steps,
                         "results": rows, "convolutions": tables})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
