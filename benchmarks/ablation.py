"""Ablation of the stabilisers and the conditional variants, with the real Trainer and metrics.

Three parts (``--part``), each a table and a section of benchmarks/results/ablation.json:

* ``toy``: the PacGAN mode-collapse protocol (presets ``ring8-modes``, ``grid25-modes``; 2,500
  scored samples, modes / high-quality % / reverse KL). The baseline is the vanilla
  non-saturating MLP GAN with equal learning rates; every other row adds exactly one remedy.
* ``images``: DCGAN on ``digits`` (16 px) and on MNIST (the shared test split, 28 px) at a fixed
  step budget, plain versus + spectral norm, + minibatch std, + EMA, + DiffAugment; scored with
  the shipped LeNet digit classifier (FID, precision, recall) against held-out real data.
* ``conditional``: the ``mnist-projection`` and ``mnist-acgan`` presets at their own budget;
  class-match accuracy and intra-class FID from the LeNet MNIST classifier.

    python benchmarks/ablation.py [--quick] [--part toy|images|conditional|all] [--jobs 2]
    python benchmarks/ablation.py --table benchmarks/results/ablation.json   # the docs tables

MNIST parts need ../shared/data/mnist beside the repository (skipped with a note otherwise).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_MNIST, print_table, write_result  # noqa: E402
from ganforge import build_dataset, load_config  # noqa: E402
from ganforge.metrics.evaluate import Evaluator  # noqa: E402
from ganforge.metrics.modes import mode_metrics  # noqa: E402
from ganforge.train import Trainer  # noqa: E402
from toy2d import mean_se  # noqa: E402

TOY_PRESETS = {"ring": "ring8-modes", "grid": "grid25-modes"}
VANILLA = {"optim.G.lr": 2e-4, "optim.D.lr": 2e-4}
#: remedy -> overrides on top of the vanilla toy baseline
TOY_VARIANTS: dict[str, dict[str, Any]] = {
    "vanilla (non-saturating)": {},
    "spectral norm": {"stabilisers.spectral_norm": True},
    "minibatch std": {"stabilisers.minibatch_std": True},
    # B=5 kernels of C=3 dims: the O(N^2 B C) layer at Salimans' B=50, C=5 costs ~1 s per update
    # at batch 256 on one core, too slow for 2,500-step runs here
    "minibatch discrimination (5x3)": {"stabilisers.minibatch_discrimination": True,
                                       "stabilisers.mbd_kernels": 5, "stabilisers.mbd_kernel_dim": 3},
    "feature matching": {"stabilisers.feature_matching": 1.0},
    "historical averaging": {"stabilisers.historical_averaging_g": 1e-3,
                             "stabilisers.historical_averaging_d": 1e-3},
    "label smoothing 0.1": {"stabilisers.label_smoothing": 0.1},
    "instance noise 0.1 (annealed)": {"stabilisers.instance_noise": 0.1},
    "TTUR (1e-4 / 4e-4)": {"optim.G.lr": 1e-4, "optim.D.lr": 4e-4},
    "EMA 0.999": {"train.ema_decay": 0.999},
    "R1 (gamma 0.03)": {"stabilisers.r1": 0.03},
    "PacGAN4": {"stabilisers.pack": 4},
}
IMAGE_SETUPS = {
    "digits": {"preset": "digits-dcgan", "steps": 1000, "quick_steps": 200, "n_eval": 898,
               "overrides": {"model.minibatch_std": False, "train.ema_decay": None}},
    "mnist": {"preset": "mnist-dcgan", "steps": 800, "quick_steps": 100, "n_eval": 2000,
              "overrides": {"data.root": str(SHARED_MNIST), "data.split": "test", "data.download": False,
                            "model.width": 16, "model.z_dim": 64}},
}
IMAGE_VARIANTS: dict[str, dict[str, Any]] = {
    "dcgan": {},
    "+ spectral norm": {"stabilisers.spectral_norm": True},
    "+ minibatch std": {"stabilisers.minibatch_std": True},
    "+ EMA 0.999": {"train.ema_decay": 0.999},
    "+ DiffAugment": {"stabilisers.diffaugment": "color,translation,cutout"},
}
CONDITIONAL_PRESETS = ("mnist-projection", "mnist-acgan")
MNIST_DATA = {"data.root": str(SHARED_MNIST), "data.split": "test", "data.download": False}
QUIET = {"train.sample_every": 10**9, "train.checkpoint_every": 10**9}


def _train(cfg) -> tuple[Trainer, float]:
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "run", progress=False)
        start = time.perf_counter()
        while trainer.step < cfg.train.steps:  # fit()'s updates without its artefacts
            trainer.train_step()
        return trainer, time.perf_counter() - start


def _generator(trainer: Trainer):
    return trainer.exp.sampling_network().eval()


def toy_run(dataset: str, variant: str, seed: int, quick: bool) -> dict[str, Any]:
    torch.set_num_threads(1)
    overrides = {**VANILLA, **TOY_VARIANTS[variant], "seed": seed, **QUIET}
    if quick:
        overrides["train.steps"] = load_config(TOY_PRESETS[dataset]).train.steps // 3
    cfg = load_config(TOY_PRESETS[dataset], overrides=overrides)
    trainer, seconds = _train(cfg)
    G, data = _generator(trainer), trainer.exp.dataset
    with torch.no_grad():
        x = G(G.sample_z(2500, torch.Generator().manual_seed(10_000 + seed)))
    m = mode_metrics(x, data.centers, data.std)
    return {"part": "toy", "dataset": dataset, "variant": variant, "seed": seed, "seconds": seconds,
            "modes": m["modes"], "high_quality": m["high_quality"], "reverse_kl": m["reverse_kl"]}


def _evaluate(trainer: Trainer, n: int, seed: int, conditional: bool = False) -> dict[str, float]:
    cfg = trainer.cfg
    dataset = build_dataset(cfg.data)
    metrics = ["fid", "prdc"] + (["class"] if conditional else [])
    ev = Evaluator(dataset, metrics, num_samples=n, seed=0, data_name=cfg.data["name"],
                   data_section=cfg.data)
    G = _generator(trainer)
    labels = trainer.algorithm.labels_for(ev.n) if conditional else None
    with torch.no_grad():
        x = G(G.sample_z(ev.n, torch.Generator().manual_seed(20_000 + seed)), labels).cpu()
    scores = ev.score(x, None if labels is None else labels.cpu())
    e = ev.extractor.id
    out = {"fid": scores[f"fid_{e}"], "precision": scores[f"precision_{e}"],
           "recall": scores[f"recall_{e}"], "extractor": e, "n": ev.n}
    if conditional:
        out.update(class_match=scores[f"class_match_{e}"], intra_fid=scores[f"intra_fid_{e}"])
        base = ev.baseline()
        out.update(real_class_match=base[f"class_match_{e}"], real_intra_fid=base[f"intra_fid_{e}"])
    return out


def image_run(dataset: str, variant: str, seed: int, quick: bool) -> dict[str, Any]:
    torch.set_num_threads(1)
    setup = IMAGE_SETUPS[dataset]
    steps = setup["quick_steps"] if quick else setup["steps"]
    overrides = {**setup["overrides"], **IMAGE_VARIANTS[variant], "seed": seed, "train.steps": steps, **QUIET}
    cfg = load_config(setup["preset"], overrides=overrides)
    trainer, seconds = _train(cfg)
    return {"part": "images", "dataset": dataset, "variant": variant, "seed": seed, "steps": steps,
            "seconds": seconds, **_evaluate(trainer, setup["n_eval"], seed)}


def conditional_run(preset: str, seed: int, quick: bool) -> dict[str, Any]:
    torch.set_num_threads(1)
    overrides = {**MNIST_DATA, "seed": seed, **QUIET}
    if quick:
        overrides["train.steps"] = 300
    cfg = load_config(preset, overrides=overrides)
    trainer, seconds = _train(cfg)
    return {"part": "conditional", "dataset": "mnist", "variant": preset, "seed": seed,
            "steps": cfg.train.steps, "seconds": seconds, **_evaluate(trainer, 2000, seed, True)}


def _dispatch(job: tuple) -> dict[str, Any]:
    kind, *args = job
    return {"toy": toy_run, "images": image_run, "conditional": conditional_run}[kind](*args)


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows, keys = [], []
    for r in runs:
        key = (r["part"], r["dataset"], r["variant"])
        if key not in keys:
            keys.append(key)
    for part, dataset, variant in keys:
        rs = [r for r in runs if (r["part"], r["dataset"], r["variant"]) == (part, dataset, variant)]
        row: dict[str, Any] = {"part": part, "dataset": dataset, "variant": variant, "seeds": len(rs)}
        fields = {"toy": ("modes", "high_quality", "reverse_kl"),
                  "images": ("fid", "precision", "recall"),
                  "conditional": ("class_match", "intra_fid", "fid", "real_class_match",
                                  "real_intra_fid")}[part]
        for f in (*fields, "seconds"):
            row[f], row[f + "_se"] = mean_se([float(r[f]) for r in rs])
        rows.append(row)
    return rows


def markdown_tables(payload: dict[str, Any]) -> str:
    out = []
    rows = payload["summary"]
    toy = [r for r in rows if r["part"] == "toy"]
    if toy:
        out += ["| dataset | remedy | modes | high quality % | reverse KL |", "|---|---|---|---|---|"]
        out += [f"| {r['dataset']} | {r['variant']} | {r['modes']:.1f} ± {r['modes_se']:.1f} | "
                f"{100 * r['high_quality']:.1f} ± {100 * r['high_quality_se']:.1f} | "
                f"{r['reverse_kl']:.2f} ± {r['reverse_kl_se']:.2f} |" for r in toy]
        out.append("")
    images = [r for r in rows if r["part"] == "images"]
    if images:
        out += ["| dataset | variant | FID (LeNet) | precision | recall |", "|---|---|---|---|---|"]
        out += [f"| {r['dataset']} | {r['variant']} | {r['fid']:.2f} ± {r['fid_se']:.2f} | "
                f"{r['precision']:.3f} ± {r['precision_se']:.3f} | {r['recall']:.3f} ± {r['recall_se']:.3f} |"
                for r in images]
        out.append("")
    cond = [r for r in rows if r["part"] == "conditional"]
    if cond:
        out += ["| preset | class-match % | intra-class FID | FID | real data: class-match % / intra FID |",
                "|---|---|---|---|---|"]
        out += [f"| {r['variant']} | {100 * r['class_match']:.1f} | {r['intra_fid']:.2f} | {r['fid']:.2f} | "
                f"{100 * r['real_class_match']:.1f} / {r['real_intra_fid']:.2f} |" for r in cond]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds and steps")
    parser.add_argument("--part", choices=["toy", "images", "conditional", "all"], default="all")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (1 thread each)")
    parser.add_argument("--table", metavar="JSON", help="only print the markdown tables of a results file")
    args = parser.parse_args()
    if args.table:
        print(markdown_tables(json.loads(Path(args.table).read_text())))
        return
    parts = ["toy", "images", "conditional"] if args.part == "all" else [args.part]
    have_mnist = (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file()
    if not have_mnist:
        print(f"note: {SHARED_MNIST} not found; the MNIST rows are skipped")
    jobs: list[tuple] = []
    if "toy" in parts:
        seeds = 2 if args.quick else 5
        jobs += [("toy", d, v, s, args.quick)
                 for d in TOY_PRESETS for v in TOY_VARIANTS for s in range(seeds)]
    if "images" in parts:
        seeds = 1 if args.quick else 3
        datasets = [d for d in IMAGE_SETUPS if d != "mnist" or have_mnist]
        jobs += [("images", d, v, s, args.quick)
                 for d in datasets for v in IMAGE_VARIANTS for s in range(seeds)]
    if "conditional" in parts and have_mnist:
        jobs += [("conditional", p, 0, args.quick) for p in CONDITIONAL_PRESETS]
    runs = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for run in pool.map(_dispatch, jobs):
            runs.append(run)
            brief = {k: round(v, 4) for k, v in run.items() if isinstance(v, float)}
            print(f"[{len(runs)}/{len(jobs)}] {run['part']} {run['dataset']} {run['variant']} "
                  f"seed {run['seed']}: {brief}", flush=True)
    rows = summarise(runs)
    for part in parts:
        table = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()
                  if not k.endswith("_se") and k != "part"} for r in rows if r["part"] == part]
        if table:
            print(f"\n{part}")
            print_table(table, list(table[0]))
    name = "ablation" + ("_quick" if args.quick else "") + ("" if args.part == "all" else f"_{args.part}")
    path = write_result(name, {"quick": args.quick, "parts": parts, "jobs": args.jobs,
                               "toy_presets": TOY_PRESETS, "toy_baseline": VANILLA,
                               "toy_variants": TOY_VARIANTS, "image_setups": IMAGE_SETUPS,
                               "image_variants": IMAGE_VARIANTS, "summary": rows, "runs": runs})
    print(f"wrote {path}\n")
    print(markdown_tables(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
