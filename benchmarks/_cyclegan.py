"""The CycleGAN section of benchmarks/image_to_image.py (Zhu et al. 2017), on two unpaired tasks:

* **thin -> thick MNIST strokes** (``mnist-thickness-cyclegan``): trained on disjoint halves of
  the MNIST test files (no image's partner is in the training set), scored on the held-out
  images against their true thick partners: PSNR / L1 / SSIM of G(thin) vs the identity
  baseline (output = the thin input), and the cycle L1 mean |F(G(a)) - a|.
  Check: PSNR(G) > PSNR(identity).
* **Sneaker -> Ankle boot** (``fashion-cyclegan``): scored on the Fashion-MNIST *test* sneakers
  (1,000) and boots: the share of G(sneaker) the shipped Fashion-MNIST LeNet calls an ankle boot
  (centre 28x28 crop), the share of F(boot) it calls a sneaker, and the cycle L1.
  Check: share(G(sneaker) = boot) >= 90%.

Figure: thin | G(thin) | true thick | sneaker | G(sneaker) | F(G(sneaker)) for 8 test images
(docs/figures/cyclegan.png; ``--quick`` writes benchmarks/results/cyclegan_quick.png).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from _common import print_checks
from ganforge import load_config
from ganforge.data import build_dataset
from ganforge.metrics.classifier import load_classifier
from ganforge.metrics.unpaired import class_share, evaluate_unpaired
from ganforge.train import Trainer, load_run

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
QUIET = {"train.sample_every": 10**9, "train.checkpoint_every": 10**9, "train.log_every": 100}
PRESETS = {"thickness": "mnist-thickness-cyclegan", "fashion": "fashion-cyclegan"}
CYCLEGAN_QUICK = {"steps": 300, "test_images": 500}
TARGET_SHARE = 0.9


def _train(preset: str, work: Path, overrides: dict[str, Any]) -> tuple[Any, float, float]:
    """Train ``preset`` into ``work/preset``; (loaded run, wall s, CPU s)."""
    cfg = load_config(preset, overrides=overrides)
    wall, cpu = time.perf_counter(), time.process_time()
    Trainer(cfg, work / preset, progress=False).fit()
    return load_run(work / preset), time.perf_counter() - wall, time.process_time() - cpu


def _overrides(quick: bool, folder: str) -> dict[str, Any]:
    over: dict[str, Any] = dict(QUIET)
    if quick:
        over["train.steps"] = CYCLEGAN_QUICK["steps"]
    if (SHARED / folder).is_dir():
        over.update({"data.root": str(SHARED / folder), "data.download": False})
    return over


def thickness_row(quick: bool, work: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    run, wall, cpu = _train(PRESETS["thickness"], work, _overrides(quick, "mnist"))
    test = build_dataset({**run.config.data, "split": "test"})
    n = CYCLEGAN_QUICK["test_images"] if quick else len(test)
    r = evaluate_unpaired(run.algorithm, test.cond[:n], partner=test.x[:n])
    row = {"task": "thin->thick", "steps": run.step, "images": n, "psnr": r["paired"]["psnr"],
           "psnr_identity": r["identity"]["psnr"], "l1": r["paired"]["l1"],
           "l1_identity": r["identity"]["l1"],
           "ssim": r["paired"]["ssim"], "ssim_identity": r["identity"]["ssim"], "cycle_l1": r["cycle_l1"],
           "train_wall_s": wall, "train_cpu_s": cpu}
    a = test.cond[:8]
    return row, {"thin": a, "G(thin)": run.algorithm.translate(a), "true thick": test.x[:8]}


def fashion_row(quick: bool, work: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    run, wall, cpu = _train(PRESETS["fashion"], work, _overrides(quick, "fashion-mnist"))
    data = run.config.data
    test = build_dataset({**data, "split": "test", "limit": None})
    n = CYCLEGAN_QUICK["test_images"] if quick else len(test.a)
    classifier, _ = load_classifier("fashion")
    algo = run.algorithm
    r = evaluate_unpaired(algo, test.a[:n], target_class=test.class_b, classifier=classifier)
    back = algo.translate(test.b[:n], algo.G_BA)
    row = {"task": f"{test.domains[0]}->{test.domains[1]}", "steps": run.step, "images": n,
           "target_share": r["target_share"], "input_share": r["input_share"],
           "reverse_share": class_share(back, test.class_a, classifier),
           "cycle_l1": r["cycle_l1"], "train_wall_s": wall, "train_cpu_s": cpu}
    a = test.a[:8]
    out = algo.translate(a)
    return row, {"sneaker": a, "G(sneaker)": out, "F(G(sneaker))": algo.translate(out, algo.G_BA)}


def markdown(thick: dict[str, Any], fashion: dict[str, Any]) -> str:
    """The two tables of docs/image-to-image.md's CycleGAN section."""
    return "\n".join([
        "| thin -> thick (held-out true pairs) | PSNR (dB) | L1 | SSIM | cycle L1 |",
        "| --- | --- | --- | --- | --- |",
        f"| CycleGAN G(thin) | {thick['psnr']:.2f} | {thick['l1']:.4f} | {thick['ssim']:.3f} | "
        f"{thick['cycle_l1']:.4f} |",
        f"| identity (thin input) | {thick['psnr_identity']:.2f} | {thick['l1_identity']:.4f} | "
        f"{thick['ssim_identity']:.3f} | |",
        "",
        "| Sneaker <-> Ankle boot (test images) | classified as the target class | cycle L1 |",
        "| --- | --- | --- |",
        f"| G(sneaker) -> ankle boot | {100 * fashion['target_share']:.1f}% | {fashion['cycle_l1']:.4f} |",
        f"| F(ankle boot) -> sneaker | {100 * fashion['reverse_share']:.1f}% | |",
        f"| sneaker input itself -> ankle boot | {100 * fashion['input_share']:.1f}% | |",
    ])


def cyclegan_section(quick: bool, work: Path) -> dict[str, Any]:
    """Both CycleGAN tasks; see the module docstring."""
    from ganforge.viz import plot_panels

    torch.set_num_threads(1)
    thick, thick_images = thickness_row(quick, work)
    fashion, fashion_images = fashion_row(quick, work)
    checks = {"thickness: PSNR > identity": thick["psnr"] > thick["psnr_identity"],
              f"fashion: target share >= {TARGET_SHARE:.0%}": fashion["target_share"] >= TARGET_SHARE}
    table = markdown(thick, fashion)
    print(table)
    print_checks(checks)
    for row in (thick, fashion):
        print(f"  {row['task']}: {row['steps']} steps, train {row['train_wall_s']:.0f} s wall, "
              f"{row['train_cpu_s']:.0f} s CPU")
    figure = (ROOT / "benchmarks" / "results" / "cyclegan_quick.png") if quick else (
        ROOT / "docs" / "figures" / "cyclegan.png")
    plot_panels({**thick_images, **fashion_images}, figure, nrow=1, panel_inches=1.4,
                title=f"CycleGAN, unpaired ({thick['steps']} / {fashion['steps']} steps; test images)")
    print(f"  figure {figure}")
    return {"thickness": thick, "fashion": fashion, "checks": checks, "table": table,
            "figure": str(figure.relative_to(ROOT))}
