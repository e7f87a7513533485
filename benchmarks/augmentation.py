"""GAN data augmentation for class imbalance on Fashion-MNIST, against the classical remedies.

Protocol (every number from one command, fixed seeds):
* Data: the Fashion-MNIST train split cut to ``per_class`` images per class (a seeded subset,
  for the CPU budget), then the rare class (6, Shirt: the hardest class) cut to ``fraction``
  of that (1% and 5%: imbalance ratios 1:100 and 1:20), with ``seed``; the untouched
  10,000-image test split scores everything.
* Remedies, each training the same small CNN (``ganforge.augmentation.classifier.SmallCNN``)
  for the same fixed number of steps: none; random oversampling (imblearn); class-weighted loss
  (n / (K n_k)); SMOTE (imblearn, flattened pixels); classical augmentation (flips, shifts,
  crops of the minority's own images); a conditional GAN (the ``fashion-imbalanced-acgan`` and
  ``-projection`` presets at a reduced step budget, trained on the same imbalanced data with the
  ``gan`` algorithm) sampled to top every class up to the largest; and the same GAN samples
  filtered by confidence.
* Filter judge: the random-oversampling classifier of the same seed (trained on the same
  imbalanced real data: it brings in no information the other remedies lack). A GAN sample is
  kept when that classifier gives its conditioning class probability >= ``threshold``, the most
  confident first. The shipped ``lenet_fashion`` is *not* used: it was trained on the full
  train split, 6,000 shirts included, which would smuggle the removed data back in.
* Metrics (scikit-learn): balanced accuracy, minority recall and precision, macro F1; mean and
  standard error over the seeds. CAS (Ravuri & Vinyals 2019): the same CNN trained only on
  ``n_cas`` samples per class of each generator, accuracy on the real test split.
* Seeds: the subset, the cut, the GAN and the classifier of seed s all use s.

    python benchmarks/augmentation.py [--quick] [--root FASHION_MNIST_IDX_FOLDER]
    python benchmarks/augmentation.py --table benchmarks/results/augmentation.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_result  # noqa: E402
from ganforge import load_config  # noqa: E402
from ganforge.augmentation import (  # noqa: E402
    ClassifierBudget,
    apply_remedy,
    class_counts,
    classifier_judge,
    evaluate_classifier,
    generator_sampler,
    imbalanced_indices,
    synthetic_only,
    train_classifier,
)
from ganforge.data.base import ArrayDataset  # noqa: E402
from ganforge.data.mnist import load_idx_dataset  # noqa: E402
from ganforge.train import Trainer  # noqa: E402

SHARED_FASHION = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fashion-mnist"
GANS = ("acgan", "projection")
CLASSICAL = ("none", "oversample", "weighted", "smote", "classical")
METRICS = ("balanced_accuracy", "minority_recall", "minority_precision", "macro_f1")
QUIET = {"train.sample_every": 10**9, "train.checkpoint_every": 10**9, "train.log_every": 10**9}
SETTINGS: dict[str, dict[str, Any]] = {
    "full": {"rare": [6], "fractions": [0.01, 0.05], "seeds": [0, 1, 2], "per_class": 1000,
             "gan_steps": 1000, "classifier_steps": 300, "n_cas": 300, "threshold": 0.7},
    "quick": {"rare": [6], "fractions": [0.01, 0.05], "seeds": [0], "per_class": 200,
              "gan_steps": 60, "classifier_steps": 60, "n_cas": 50, "threshold": 0.7},
}


def remedies() -> list[str]:
    """Row order of the table."""
    return [*CLASSICAL, *(f"gan-{g}" for g in GANS), *(f"gan-{g}-filtered" for g in GANS)]


def train_gan(conditional: str, data: ArrayDataset, setting: dict[str, Any], fraction: float,
              seed: int) -> tuple[torch.nn.Module, float]:
    """The preset's GAN trained on ``data`` for ``gan_steps``; its generator (eval) and seconds."""
    overrides = {"data.base.root": "(the benchmark's data)", "data.base.download": False,
                 "data.per_class": setting["per_class"], "data.fraction": fraction,
                 "data.rare_classes": setting["rare"], "data.seed": seed, "seed": seed,
                 "train.steps": setting["gan_steps"], **QUIET}
    cfg = load_config(f"fashion-imbalanced-{conditional}", overrides=overrides)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "run", progress=False, dataset=data)
        start = time.perf_counter()
        while trainer.step < cfg.train.steps:  # fit()'s updates without its artefacts
            trainer.train_step()
        return trainer.exp.sampling_network(ema=False).eval(), time.perf_counter() - start


def one_cell(train: ArrayDataset, test: ArrayDataset, setting: dict[str, Any], fraction: float,
             seed: int) -> dict[str, Any]:
    """Every remedy (and the CAS of each GAN) for one (fraction, seed)."""
    k, rare = train.num_classes, setting["rare"]
    keep = imbalanced_indices(train.y, rare, fraction, seed=seed, per_class=setting["per_class"])
    data = ArrayDataset(train.x[keep], train.y[keep], name=train.name, num_classes=k,
                        classes=train.classes, extractor=train.extractor)
    budget = ClassifierBudget(steps=setting["classifier_steps"])
    out: dict[str, Any] = {"counts": class_counts(data.y, k), "remedies": {}, "cas": {}, "seconds": {}}

    def score(name: str, ts) -> torch.nn.Module:
        start = time.perf_counter()
        model = train_classifier(ts.x, ts.y, k, budget=budget, seed=seed, class_weight=ts.class_weight)
        out["remedies"][name] = {**evaluate_classifier(model, test.x, test.y, rare, k),
                                 "n_train": len(ts.y),
                                 **{key: ts.info[key] for key in ("acceptance",) if key in ts.info}}
        out["seconds"][name] = round(time.perf_counter() - start, 1)
        return model

    judge = None
    for name in CLASSICAL:
        model = score(name, apply_remedy(name, data.x, data.y, k, seed=seed))
        if name == "oversample":
            judge = classifier_judge(model)
    for g in GANS:
        G, seconds = train_gan(g, data, setting, fraction, seed)
        out["seconds"][f"train {g}"] = round(seconds, 1)
        sampler = generator_sampler(G)
        score(f"gan-{g}", apply_remedy("gan", data.x, data.y, k, seed=seed, sampler=sampler))
        score(f"gan-{g}-filtered", apply_remedy("gan-filtered", data.x, data.y, k, seed=seed,
                                                sampler=sampler, judge=judge,
                                                threshold=setting["threshold"]))
        cas = synthetic_only(sampler, k, setting["n_cas"], seed=seed + 7)
        model = train_classifier(cas.x, cas.y, k, budget=budget, seed=seed)
        out["cas"][g] = evaluate_classifier(model, test.x, test.y, rare, k)["accuracy"]
    return out


def summarise(cells: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per (fraction, remedy): mean and standard error over the seeds."""
    rows = []
    for fraction, runs in cells.items():
        for name in remedies():
            row: dict[str, Any] = {"fraction": float(fraction), "remedy": name, "seeds": len(runs)}
            for metric in METRICS:
                values = np.array([r["remedies"][name][metric] for r in runs])
                row[metric] = float(values.mean())
                se = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else None
                row[f"{metric}_se"] = None if se is None else float(se)
            gan = name.removeprefix("gan-").removesuffix("-filtered")
            if gan in GANS:
                row["cas"] = float(np.mean([r["cas"][gan] for r in runs]))
                if name.endswith("filtered"):
                    row["acceptance"] = float(np.mean([r["remedies"][name]["acceptance"] for r in runs]))
            rows.append(row)
    return rows


def _pm(row: dict[str, Any], metric: str) -> str:
    se = row.get(f"{metric}_se")
    return f"{100 * row[metric]:.1f}" + ("" if se is None else f" ± {100 * se:.1f}")


def conclusions(rows: list[dict[str, Any]]) -> list[str]:
    """Where a GAN remedy beats random oversampling and SMOTE on minority recall, and where not
    (a difference counts when it exceeds twice the combined standard error, when there is one)."""
    lines = []
    for fraction in sorted({r["fraction"] for r in rows}):
        by = {r["remedy"]: r for r in rows if r["fraction"] == fraction}
        for base in ("oversample", "smote"):
            b = by[base]
            for name in [n for n in by if n.startswith("gan-")]:
                r = by[name]
                diff = r["minority_recall"] - b["minority_recall"]
                se = [x for x in (r.get("minority_recall_se"), b.get("minority_recall_se")) if x is not None]
                margin = 2 * math.sqrt(sum(s * s for s in se)) if len(se) == 2 else None
                if margin is None:
                    verdict = "higher" if diff > 0 else "not higher"
                    verdict += " (one seed: no error bar)"
                elif diff > margin:
                    verdict = "BEATS"
                elif diff < -margin:
                    verdict = "LOSES TO"
                else:
                    verdict = "ties (within 2 SE)"
                lines.append(f"{100 * fraction:g}%: {name} minority recall "
                             f"{100 * r['minority_recall']:.1f}% vs {base} "
                             f"{100 * b['minority_recall']:.1f}% ({100 * diff:+.1f} points): {verdict}")
    return lines


def markdown_table(payload: dict[str, Any]) -> str:
    out = ["| rare class kept | remedy | balanced accuracy % | minority recall % | minority precision % | "
           "macro F1 % | CAS % |", "|---|---|---|---|---|---|---|"]
    for r in payload["rows"]:
        cas = "" if r.get("cas") is None else f"{100 * r['cas']:.1f}"
        kept = r.get("acceptance")
        name = r["remedy"] + ("" if kept is None else f" (kept {100 * kept:.0f}% of draws)")
        out.append(f"| {100 * r['fraction']:g}% | {name} | {_pm(r, 'balanced_accuracy')} | "
                   f"{_pm(r, 'minority_recall')} | {_pm(r, 'minority_precision')} | "
                   f"{_pm(r, 'macro_f1')} | {cas} |")
    return "\n".join(out)


FIGURE = Path(__file__).resolve().parents[1] / "docs" / "figures" / "augmentation_recall.png"


def recall_figure(payload: dict[str, Any], path: Path) -> Path:
    """Minority recall and precision of every remedy (mean ± standard error over the seeds), one
    panel per kept fraction of the rare class."""
    from matplotlib.figure import Figure

    from ganforge.viz._atomic import save_figure

    fractions = sorted({r["fraction"] for r in payload["rows"]})
    fig = Figure(figsize=(5.5 * len(fractions), 4.2))
    axes = fig.subplots(1, len(fractions), squeeze=False)[0]
    for ax, fraction in zip(axes, fractions, strict=True):
        rows = [r for r in payload["rows"] if r["fraction"] == fraction]
        y = range(len(rows))
        for offset, (metric, colour) in enumerate((("minority_recall", "tab:blue"),
                                                    ("minority_precision", "tab:orange"))):
            ax.barh([i + 0.38 * offset for i in y], [100 * r[metric] for r in rows], height=0.38,
                    xerr=[100 * r[f"{metric}_se"] for r in rows], color=colour,
                    label=metric.replace("_", " "))
        ax.set_yticks([i + 0.19 for i in y], [r["remedy"] for r in rows], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("% on the real test split (mean ± s.e., 3 seeds)")
        ax.set_title(f"Shirt kept at {100 * fraction:g}%", fontsize=10)
        ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, small data, few steps")
    parser.add_argument("--root", type=Path, default=SHARED_FASHION, help="Fashion-MNIST IDX folder")
    parser.add_argument("--table", metavar="JSON", help="only print the markdown table of a results file "
                        "and draw its figure")
    parser.add_argument("--figure", type=Path, help="recall figure (default docs/figures/"
                        "augmentation_recall.png on a full run or with --table, none with --quick)")
    args = parser.parse_args()
    if args.table:
        payload = json.loads(Path(args.table).read_text())
        print(markdown_table(payload))
        print(f"figure: {recall_figure(payload, args.figure or FIGURE)}")
        return
    torch.set_num_threads(1)
    if not (args.root / "train-images-idx3-ubyte.gz").is_file():
        print(f"benchmarks/augmentation.py needs Fashion-MNIST in {args.root}: skipped")
        return
    setting = SETTINGS["quick" if args.quick else "full"]
    train = load_idx_dataset("fashion-mnist", str(args.root), "train")
    test = load_idx_dataset("fashion-mnist", str(args.root), "test")
    start = time.perf_counter()
    cells: dict[str, list[dict[str, Any]]] = {}
    for fraction in setting["fractions"]:
        for seed in setting["seeds"]:
            cell = one_cell(train, test, setting, fraction, seed)
            cells.setdefault(str(fraction), []).append(cell)
            brief = {n: round(100 * m["minority_recall"], 1) for n, m in cell["remedies"].items()}
            print(f"fraction {fraction} seed {seed} (counts {cell['counts']}): minority recall % {brief}; "
                  f"{time.perf_counter() - start:.0f} s so far", flush=True)
    wall = time.perf_counter() - start
    rows = summarise(cells)
    print()
    print_table([{k: (100 * v if k in METRICS or k in ("cas", "acceptance") else v) for k, v in r.items()
                  if not k.endswith("_se")} for r in rows],
                ["fraction", "remedy", *METRICS, "cas", "acceptance"])
    lines = conclusions(rows)
    print("\nminority recall, GAN augmentation against oversampling and SMOTE:")
    for line in lines:
        print("  " + line)
    preset = load_config("fashion-imbalanced-acgan")
    payload = {"quick": args.quick, "settings": setting, "classifier_budget": ClassifierBudget(
                   steps=setting["classifier_steps"]).to_dict(),
               "data": {"train": f"Fashion-MNIST train split, {setting['per_class']} images per class "
                                 f"(seeded subset), class(es) {setting['rare']} cut to each fraction",
                        "test": f"Fashion-MNIST test split, {len(test)} images, untouched",
                        "classes": list(train.classes)},
               "gan_presets": [f"fashion-imbalanced-{g}" for g in GANS],
               "gan_model": preset.model, "filter_judge": "the random-oversampling classifier of the same "
               "seed (trained on the same imbalanced real data); lenet_fashion not used (it saw the full "
               "train split)",
               "budget": {"target_minutes_one_thread": 35, "wall_seconds": round(wall, 1),
                          "torch_threads": torch.get_num_threads()},
               "rows": rows, "conclusions": lines, "cells": cells}
    path = write_result("augmentation" + ("_quick" if args.quick else ""), payload)
    print(f"\nwall time {wall:.0f} s; wrote {path}\n")
    print(markdown_table(payload))
    figure = args.figure or (None if args.quick else FIGURE)
    if figure is not None:
        print(f"figure: {recall_figure(payload, figure)}")


if __name__ == "__main__":
    main()
