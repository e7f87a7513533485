"""The mode-collapse benchmark: the PacGAN protocol (Lin et al., 2018, Table 1) on ganforge.

Datasets: ring of 8 Gaussians (radius 1, std 0.01) and 5x5 grid (means {-4,-2,0,2,4}^2, std
0.05), the presets ``ring8-modes`` and ``grid25-modes``. Each variant changes the loss, the
discriminator or the schedule of those presets (same G, D widths, batch and learning rates;
``r1 -> sharpen`` also runs 10,000 steps instead of 2,500) and is trained with the real
:class:`~ganforge.train.Trainer` (progress off), then scored on 2,500 samples by
:func:`ganforge.metrics.modes.mode_metrics`: modes covered, high-quality fraction (within 3 std of
the nearest mean) and reverse KL of the mode histogram. Mean and standard error over seeds.

    python benchmarks/toy2d.py [--quick] [--jobs 2]
    python benchmarks/toy2d.py --table benchmarks/results/toy2d.json   # the README table
    python benchmarks/toy2d.py --figure docs/figures/toy2d_samples.png  # seed 0's samples

writes benchmarks/results/toy2d.json (``--quick``: 2 seeds, a third of the steps,
toy2d_quick.json).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, print_table, write_result  # noqa: E402
from ganforge import load_config  # noqa: E402
from ganforge.metrics.modes import mode_metrics  # noqa: E402
from ganforge.train import Trainer  # noqa: E402

DATASETS = {"ring": "ring8-modes", "grid": "grid25-modes"}
#: variant -> overrides of the dataset preset
VARIANTS: dict[str, dict[str, Any]] = {
    "gan (minimax)": {"loss": {"name": "minimax"}},
    "non-saturating": {},
    "wgan-gp": {"loss": {"name": "wgan-gp", "gp_weight": 10.0}, "train.betas_g": [0.5, 0.9],
                "train.betas_d": [0.5, 0.9]},
    "hinge + SN": {"loss": {"name": "hinge"}, "stabilisers.spectral_norm": True},
    "pacgan4": {"stabilisers.pack": 4},
    # R1 keeps D smooth while G spreads over the modes, then the plain D sharpens them and both
    # rates decay to 0 (algorithm.penalty_until, train.lr_decay_start); 4x the steps of the others.
    "r1 -> sharpen": {"loss": {"name": "r1", "gamma": 0.01}, "train.steps": 10_000,
                      "train.penalty_until": 3_500, "train.lr_schedule": "linear",
                      "train.lr_decay_start": 6_500},
}
#: variants that are presets of their own: dataset -> preset
PRESET_VARIANTS: dict[str, dict[str, str]] = {
    # ganforge's best preset: a self-conditioned GAN (Liu et al., 2020), G and D conditioned on
    # k-means clusters of D's features, so that no single G has to bridge the gaps between modes.
    "self-conditioned": {"ring": "ring8-selfcond", "grid": "grid25-selfcond"},
}
ALL_VARIANTS = [*VARIANTS, *PRESET_VARIANTS]
#: schedule keys that are step counts: --quick scales them with train.steps
SCHEDULE_STEPS = ("algorithm.penalty_until", "train.lr_decay_start")
#: PacGAN, Table 1 (Lin et al., 2018): modes, high-quality %, reverse KL
PUBLISHED = {
    ("ring", "GAN"): (6.3, 98.2, 0.45), ("grid", "GAN"): (17.3, 94.8, 0.70),
    ("ring", "PacGAN4"): (7.8, 95.9, 0.07), ("grid", "PacGAN4"): (24.8, 93.6, 0.04),
}
TARGETS = {"ring": (8.0, 98.0, 0.02), "grid": (25.0, 97.0, 0.02)}
N_SCORED = 2500


def preset_for(dataset: str, variant: str) -> str:
    return PRESET_VARIANTS.get(variant, DATASETS)[dataset]


def train_and_sample(dataset: str, variant: str, seed: int,
                     fraction: float = 1.0) -> tuple[torch.Tensor, Any, float, int]:
    """Train one (dataset, variant, seed) for ``fraction`` of its steps; returns (N_SCORED
    samples, the dataset, seconds of training, steps)."""
    torch.set_num_threads(1)
    preset = preset_for(dataset, variant)
    overrides = {**VARIANTS.get(variant, {}), "seed": seed}
    if fraction != 1.0:
        full = load_config(preset, overrides=overrides).to_dict()
        overrides["train.steps"] = max(1, round(full["train"]["steps"] * fraction))
        for key in SCHEDULE_STEPS:
            section, name = key.split(".")
            value = full[section].get(name)
            if value:
                overrides[key] = round(value * fraction)
    cfg = load_config(preset, overrides=overrides)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()  # a self-conditioned run clusters the data when it is built
        trainer = Trainer(cfg, Path(tmp) / "run", progress=False)
        # fit()'s update loop; its checkpoints, snapshots and plots are not part of the protocol.
        while trainer.step < cfg.train.steps:
            trainer.train_step()
        seconds = time.perf_counter() - start
        algorithm = trainer.algorithm
        G = algorithm.generator.eval()
        with torch.no_grad():  # a conditional G draws its labels from p(y) (the clusters' sizes)
            y = algorithm.labels_for(N_SCORED, torch.Generator().manual_seed(20_000 + seed))
            x = G(G.sample_z(N_SCORED, torch.Generator().manual_seed(10_000 + seed)), y)
    return x, trainer.exp.dataset, seconds, cfg.train.steps


def one_run(dataset: str, variant: str, seed: int, fraction: float = 1.0) -> dict[str, Any]:
    """Train and score one (dataset, variant, seed)."""
    x, data, seconds, steps = train_and_sample(dataset, variant, seed, fraction)
    m = mode_metrics(x, data.centers, data.std)
    return {"dataset": dataset, "variant": variant, "seed": seed, "seconds": seconds,
            "steps": steps, **m}


def figure(path: Path, variants: tuple[str, ...] = ("non-saturating", "self-conditioned"),
           seed: int = 0) -> Path:
    """Samples of seed ``seed`` of each variant on both datasets, over the true modes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(DATASETS), len(variants), figsize=(4.2 * len(variants), 8.4))
    for row, dataset in enumerate(DATASETS):
        for col, variant in enumerate(variants):
            x, data, _, _ = train_and_sample(dataset, variant, seed)
            m = mode_metrics(x, data.centers, data.std)
            ax = axes[row, col]
            ax.scatter(*x.T.numpy(), s=2, alpha=0.4, color="tab:orange", label="generated")
            ax.scatter(*data.centers.T.numpy(), s=30, marker="x", color="k", label="true means")
            ax.set_title(f"{dataset}, {variant}: {m['modes']} modes, "
                         f"{100 * m['high_quality']:.1f}% hq, KL {m['reverse_kl']:.3f}", fontsize=9)
            ax.set_aspect("equal")
            lim = 1.5 if dataset == "ring" else 5.5
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim))
    axes[0, 0].legend(loc="upper right", fontsize=8)
    fig.suptitle(f"{N_SCORED} samples each, seed {seed}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def mean_se(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return float("nan"), float("nan")
    se = statistics.stdev(finite) / math.sqrt(len(finite)) if len(finite) > 1 else 0.0
    return statistics.fmean(finite), se


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for dataset in DATASETS:
        for variant in ALL_VARIANTS:
            rs = [r for r in runs if r["dataset"] == dataset and r["variant"] == variant]
            if not rs:
                continue
            modes, modes_se = mean_se([r["modes"] for r in rs])
            hq, hq_se = mean_se([100 * r["high_quality"] for r in rs])
            kl, kl_se = mean_se([r["reverse_kl"] for r in rs])
            sec, _ = mean_se([r["seconds"] for r in rs])
            rows.append({"dataset": dataset, "variant": variant, "seeds": len(rs),
                         "modes": modes, "modes_se": modes_se, "hq_pct": hq, "hq_pct_se": hq_se,
                         "reverse_kl": kl, "reverse_kl_se": kl_se, "sec_per_run": sec,
                         "max_sec": max(r["seconds"] for r in rs)})
    return rows


def markdown_table(payload: dict[str, Any]) -> str:
    """The README table: measured mean ± s.e. beside PacGAN's published numbers and the targets."""
    lines = ["| dataset | variant | modes | high quality % | reverse KL | s / run |",
             "|---|---|---|---|---|---|"]
    for r in payload["summary"]:
        lines.append(f"| {r['dataset']} | {r['variant']} | {r['modes']:.1f} ± {r['modes_se']:.1f} | "
                     f"{r['hq_pct']:.1f} ± {r['hq_pct_se']:.1f} | "
                     f"{r['reverse_kl']:.3f} ± {r['reverse_kl_se']:.3f} | {r['sec_per_run']:.0f} |")
    for key, v in payload["published_pacgan_table1"].items():
        dataset, variant = key.split("/")
        lines.append(f"| {dataset} | *published {variant}* | {v['modes']} | {v['hq_pct']} | "
                     f"{v['reverse_kl']} | |")
    for dataset, v in payload["targets"].items():
        lines.append(f"| {dataset} | *target* | {v['modes']} | >= {v['hq_pct']} | "
                     f"<= {v['reverse_kl']} | < 60 |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, a third of the steps")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 10)")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (1 thread each)")
    parser.add_argument("--variants", nargs="+", choices=ALL_VARIANTS, metavar="NAME",
                        help="run only these variants and keep the other variants' runs from the "
                             f"existing results file (choices: {', '.join(ALL_VARIANTS)})")
    parser.add_argument("--table", metavar="JSON", help="only print the markdown table of a results file")
    parser.add_argument("--figure", metavar="PNG", help="only draw seed 0's samples of non-saturating "
                                                       "and self-conditioned on both datasets")
    args = parser.parse_args()
    if args.figure:
        print(f"wrote {figure(Path(args.figure))}")
        return
    if args.table:
        print(markdown_table(json.loads(Path(args.table).read_text())))
        return
    seeds = args.seeds or (2 if args.quick else 10)
    fraction = 1 / 3 if args.quick else 1.0
    variants = args.variants or ALL_VARIANTS
    runs = []
    previous = RESULTS / ("toy2d" + ("_quick" if args.quick else "") + ".json")
    if args.variants and previous.is_file():
        runs = [r for r in json.loads(previous.read_text())["runs"] if r["variant"] not in variants]
    jobs = [(d, v, s, fraction) for d in DATASETS for v in variants for s in range(seeds)]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for done, run in enumerate(pool.map(one_run, *zip(*jobs, strict=True)), 1):
            runs.append(run)
            print(f"[{done}/{len(jobs)}] {run['dataset']} {run['variant']} seed {run['seed']}: "
                  f"{run['modes']} modes, {100 * run['high_quality']:.1f}% hq, "
                  f"KL {run['reverse_kl']:.3f}, {run['seconds']:.1f} s", flush=True)
    runs.sort(key=lambda r: (list(DATASETS).index(r["dataset"]), ALL_VARIANTS.index(r["variant"]),
                             r["seed"]))
    rows = summarise(runs)
    table = [{"dataset": r["dataset"], "variant": r["variant"],
              "modes": f"{r['modes']:.1f} ± {r['modes_se']:.1f}",
              "high quality %": f"{r['hq_pct']:.1f} ± {r['hq_pct_se']:.1f}",
              "reverse KL": f"{r['reverse_kl']:.3f} ± {r['reverse_kl_se']:.3f}",
              "s/run": f"{r['sec_per_run']:.1f}"} for r in rows]
    print_table(table, list(table[0]))
    print("\npublished (PacGAN Table 1): " + "; ".join(
        f"{d} {v}: {m} modes / {h}% / {k}" for (d, v), (m, h, k) in PUBLISHED.items()))
    path = write_result("toy2d" + ("_quick" if args.quick else ""), {
        "quick": args.quick, "seeds": seeds, "jobs": args.jobs, "scored_samples": N_SCORED,
        "presets": DATASETS, "variants": VARIANTS, "preset_variants": PRESET_VARIANTS,
        "published_pacgan_table1": {f"{d}/{v}": {"modes": m, "hq_pct": h, "reverse_kl": k}
                                    for (d, v), (m, h, k) in PUBLISHED.items()},
        "targets": {d: {"modes": m, "hq_pct": h, "reverse_kl": k} for d, (m, h, k) in TARGETS.items()},
        "summary": rows, "runs": runs})
    print(f"wrote {path}\n")
    print(markdown_table(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
