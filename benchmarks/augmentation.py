"""GAN data augmentation for class imbalance on Fashion-MNIST, against the classical remedies.

Protocol (every number from one command, fixed seeds):
* Data: the Fashion-MNIST train split cut to ``per_class`` images per class (a seeded subset,
  for the CPU budget), then the rare classes cut to a fraction of that, with ``seed``: Shirt
  (6, the hardest class) at 1% and 5% (10 and 50 images: imbalance 1:100 and 1:20), and
  Pullover, Coat and Shirt (2, 4, 6: the three classes most confused with each other) at 5%
  each. The untouched 10,000-image test split scores everything.
* Remedies, each training the same small CNN (``ganforge.augmentation.classifier.SmallCNN``)
  for the same fixed number of steps: none; random oversampling (imblearn); class-weighted loss
  (n / (K n_k)); SMOTE (imblearn, flattened pixels); classical augmentation (flips, shifts,
  crops of the minority's own images); and per conditional GAN (``--gans``: ``bagan``, the
  ``fashion-imbalanced-bagan`` preset's BAGAN-GP; ``acgan`` and ``projection``, the earlier
  conditional DCGANs), trained on the same imbalanced data for its preset's ``train.steps``
  (CPU seconds recorded), three ways of using it: ``gan`` (every class topped up to the
  largest with generated images), ``gan-filtered`` (the same, keeping only confident samples)
  and ``gan-every-class`` (the top-up plus as many generated images as the largest class has in
  every class, so "looks generated" is no cue for the rare class).
* Filter judge: the random-oversampling classifier of the same seed (trained on the same
  imbalanced real data: it brings in no information the other remedies lack). A GAN sample is
  kept when that classifier gives its conditioning class probability >= ``threshold``, the most
  confident first. The shipped ``lenet_fashion`` is *not* used: it was trained on the full
  train split, 6,000 shirts included, which would smuggle the removed data back in.
* Metrics (scikit-learn): balanced accuracy, minority recall and precision (means over the rare
  classes), macro F1; mean and standard error over the seeds. CAS (Ravuri & Vinyals 2019): the
  same CNN trained only on ``n_cas`` samples per class of each generator, accuracy on the real
  test split, with each class's recall (the rare classes' is the generator's grip on them); it
  is also measured at ``cas_points`` evenly spaced steps of the GAN's training.
* Seeds: the subset, the cut, the GAN and the classifier of seed s all use s; the cells run
  ``--jobs`` at a time, one thread each.

    python benchmarks/augmentation.py [--quick] [--gans bagan,acgan] [--jobs 2] [--root DIR]
    python benchmarks/augmentation.py --table benchmarks/results/augmentation.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
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
from ganforge.models.base import evaluating  # noqa: E402
from ganforge.train import Trainer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_FASHION = REPO.parent / "shared" / "data" / "fashion-mnist"
#: GAN remedies -> preset (fashion-imbalanced-<name>); each trains its preset's train.steps
GANS = ("bagan", "acgan", "projection")
CLASSICAL = ("none", "oversample", "weighted", "smote", "classical")
METRICS = ("balanced_accuracy", "minority_recall", "minority_precision", "macro_f1")
QUIET = {"train.sample_every": 10**9, "train.checkpoint_every": 10**9, "train.log_every": 10**9}
#: the imbalance settings: the rare classes and the fraction of their images kept
CASES: dict[str, dict[str, Any]] = {
    "Shirt 1%": {"rare": [6], "fraction": 0.01},
    "Shirt 5%": {"rare": [6], "fraction": 0.05},
    "Pullover+Coat+Shirt 5%": {"rare": [2, 4, 6], "fraction": 0.05},
}
SETTINGS: dict[str, dict[str, Any]] = {
    "full": {"cases": list(CASES), "seeds": [0, 1, 2], "per_class": 1000, "gan_steps": None,
             "classifier_steps": 300, "n_cas": 300, "threshold": 0.7, "cas_points": 3},
    "quick": {"cases": ["Shirt 1%", "Pullover+Coat+Shirt 5%"], "seeds": [0], "per_class": 200,
              "gan_steps": 60, "classifier_steps": 60, "n_cas": 50, "threshold": 0.7, "cas_points": 2},
}


def remedies(gans: tuple[str, ...]) -> list[str]:
    """Row order of the table."""
    return [*CLASSICAL, *(f"gan-{g}{suffix}" for suffix in ("", "-filtered", "-every-class") for g in gans)]


def train_gan(gan: str, data: ArrayDataset, setting: dict[str, Any], case: dict[str, Any], seed: int,
              on_point: Any = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The preset's GAN trained on ``data`` for its own ``train.steps`` (or the setting's
    ``gan_steps``); its sampling generator (eval) and the steps and CPU seconds. ``on_point(G,
    step)`` is called at ``cas_points`` evenly spaced steps (the last one the end)."""
    overrides = {"data.base.root": "(the benchmark's data)", "data.base.download": False,
                 "data.per_class": setting["per_class"], "data.fraction": case["fraction"],
                 "data.rare_classes": case["rare"], "data.seed": seed, "seed": seed, **QUIET}
    if setting["gan_steps"] is not None:
        overrides["train.steps"] = setting["gan_steps"]
    cfg = load_config(f"fashion-imbalanced-{gan}", overrides=overrides)
    total, points = cfg.train.steps, setting["cas_points"]
    marks = {round(total * (i + 1) / points) for i in range(points)}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "run", progress=False, dataset=data)
        start, scoring = time.process_time(), 0.0
        while trainer.step < total:  # fit()'s updates without its artefacts
            trainer.train_step()
            if on_point is not None and trainer.step in marks:  # the CAS is not training time
                before = time.process_time()
                with evaluating(trainer.exp.sampling_network()) as G:
                    on_point(G, trainer.step)
                scoring += time.process_time() - before
        seconds = time.process_time() - start - scoring
        info = {"steps": trainer.step, "cpu_seconds": round(seconds, 1)}
        return trainer.exp.sampling_network().eval(), info


def one_cell(job: tuple[str, int, dict[str, Any], tuple[str, ...], Path]) -> dict[str, Any]:
    """Every remedy (and the per-class CAS of each GAN along its training) for one (case, seed)."""
    case_name, seed, setting, gans, root = job
    torch.set_num_threads(1)
    train = load_idx_dataset("fashion-mnist", str(root), "train")
    test = load_idx_dataset("fashion-mnist", str(root), "test")
    case = CASES[case_name]
    k, rare = train.num_classes, case["rare"]
    keep = imbalanced_indices(train.y, rare, case["fraction"], seed=seed, per_class=setting["per_class"])
    data = ArrayDataset(train.x[keep], train.y[keep], name=train.name, num_classes=k,
                        classes=train.classes, extractor=train.extractor)
    budget = ClassifierBudget(steps=setting["classifier_steps"])
    out: dict[str, Any] = {"case": case_name, "seed": seed, "counts": class_counts(data.y, k), "remedies": {},
                           "cas": {}, "cas_per_class": {}, "cas_along": {}, "gan_training": {},
                           "seconds": {}}
    start_all = time.perf_counter()

    def score(name: str, ts) -> torch.nn.Module:
        start = time.perf_counter()
        model = train_classifier(ts.x, ts.y, k, budget=budget, seed=seed, class_weight=ts.class_weight)
        out["remedies"][name] = {**evaluate_classifier(model, test.x, test.y, rare, k),
                                 "n_train": len(ts.y),
                                 **{key: ts.info[key] for key in ("acceptance",) if key in ts.info}}
        out["seconds"][name] = round(time.perf_counter() - start, 1)
        return model

    def cas(sampler) -> dict[str, Any]:
        """CAS: the classifier trained on n_cas generated images per class only, on real test images."""
        synthetic = synthetic_only(sampler, k, setting["n_cas"], seed=seed + 7)
        model = train_classifier(synthetic.x, synthetic.y, k, budget=budget, seed=seed)
        return evaluate_classifier(model, test.x, test.y, rare, k)

    judge = None
    for name in CLASSICAL:
        model = score(name, apply_remedy(name, data.x, data.y, k, seed=seed))
        if name == "oversample":
            judge = classifier_judge(model)
    for g in gans:
        along = out["cas_along"][g] = []

        def at_point(G, step, along=along):
            m = cas(generator_sampler(G))
            along.append({"step": step, "accuracy": m["accuracy"],
                          "rare_recall": [m["per_class_recall"][c] for c in rare]})

        G, info = train_gan(g, data, setting, case, seed, at_point)
        out["gan_training"][g] = info
        sampler = generator_sampler(G)
        score(f"gan-{g}", apply_remedy("gan", data.x, data.y, k, seed=seed, sampler=sampler))
        score(f"gan-{g}-filtered", apply_remedy("gan-filtered", data.x, data.y, k, seed=seed,
                                                sampler=sampler, judge=judge,
                                                threshold=setting["threshold"]))
        score(f"gan-{g}-every-class", apply_remedy("gan-every-class", data.x, data.y, k, seed=seed,
                                                   sampler=sampler))
        final = cas(sampler)
        out["cas"][g], out["cas_per_class"][g] = final["accuracy"], final["per_class_recall"]
        if seed == setting["seeds"][0]:  # ten samples of each rare class, for the figure
            out.setdefault("figure", {})[g] = {c: sampler(c, 10, 99).tolist() for c in rare}
    if seed == setting["seeds"][0]:
        out.setdefault("figure", {})["real"] = {c: data.x[data.y == c][:10].tolist() for c in rare}
    out["seconds"]["cell"] = round(time.perf_counter() - start_all, 1)
    return out


def summarise(cells: dict[str, list[dict[str, Any]]], gans: tuple[str, ...]) -> list[dict[str, Any]]:
    """One row per (case, remedy): mean and standard error over the seeds."""
    rows = []
    for case, runs in cells.items():
        for name in remedies(gans):
            row: dict[str, Any] = {"case": case, "remedy": name, "seeds": len(runs)}
            for metric in METRICS:
                values = np.array([r["remedies"][name][metric] for r in runs])
                row[metric] = float(values.mean())
                se = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else None
                row[f"{metric}_se"] = None if se is None else float(se)
            gan = name.removeprefix("gan-").removesuffix("-filtered").removesuffix("-every-class")
            if gan in gans:
                row["cas"] = float(np.mean([r["cas"][gan] for r in runs]))
                rare = CASES[case]["rare"]
                row["cas_rare_recall"] = float(np.mean([[r["cas_per_class"][gan][c] for c in rare]
                                                        for r in runs]))
                if name.endswith("filtered"):
                    row["acceptance"] = float(np.mean([r["remedies"][name]["acceptance"] for r in runs]))
            rows.append(row)
    return rows


def _pm(row: dict[str, Any], metric: str) -> str:
    se = row.get(f"{metric}_se")
    return f"{100 * row[metric]:.1f}" + ("" if se is None else f" ± {100 * se:.1f}")


def _verdict(diff: float, margin: float | None) -> str:
    if margin is None:
        return ("higher" if diff > 0 else "not higher") + " (one seed: no error bar)"
    if diff > margin:
        return "BEATS"
    return "LOSES TO" if diff < -margin else "ties (within 2 SE)"


def conclusions(rows: list[dict[str, Any]]) -> list[str]:
    """Where a GAN remedy beats random oversampling and SMOTE on minority recall, and where not
    (a difference counts when it exceeds twice the combined standard error, when there is one),
    and whether it keeps balanced accuracy."""
    lines = []
    for case in dict.fromkeys(r["case"] for r in rows):
        by = {r["remedy"]: r for r in rows if r["case"] == case}
        for base in ("oversample", "smote"):
            b = by[base]
            for name in [n for n in by if n.startswith("gan-")]:
                r = by[name]
                parts = []
                for metric in ("minority_recall", "balanced_accuracy"):
                    diff = r[metric] - b[metric]
                    se = [x for x in (r.get(f"{metric}_se"), b.get(f"{metric}_se")) if x is not None]
                    margin = 2 * math.sqrt(sum(v * v for v in se)) if len(se) == 2 else None
                    parts.append(f"{metric.replace('_', ' ')} {100 * r[metric]:.1f}% vs "
                                 f"{100 * b[metric]:.1f}% "
                                 f"({100 * diff:+.1f} points): {_verdict(diff, margin)}")
                lines.append(f"{case}: {name} against {base}: " + "; ".join(parts))
    return lines


def markdown_table(payload: dict[str, Any]) -> str:
    out = ["| setting | remedy | balanced accuracy % | minority recall % | minority precision % | "
           "macro F1 % | CAS % (rare classes' recall) |", "|---|---|---|---|---|---|---|"]
    for r in payload["rows"]:
        cas = "" if r.get("cas") is None else f"{100 * r['cas']:.1f} ({100 * r['cas_rare_recall']:.1f})"
        kept = r.get("acceptance")
        name = r["remedy"] + ("" if kept is None else f" (kept {100 * kept:.0f}% of draws)")
        case = r.get("case") or f"Shirt {100 * r['fraction']:g}%"
        out.append(f"| {case} | {name} | {_pm(r, 'balanced_accuracy')} | "
                   f"{_pm(r, 'minority_recall')} | {_pm(r, 'minority_precision')} | "
                   f"{_pm(r, 'macro_f1')} | {cas} |")
    return "\n".join(out)


FIGURE = Path(__file__).resolve().parents[1] / "docs" / "figures" / "augmentation_recall.png"
SAMPLES_FIGURE = Path(__file__).resolve().parents[1] / "docs" / "figures" / "augmentation_shirts.png"


def recall_figure(payload: dict[str, Any], path: Path) -> Path:
    """Minority recall and precision of every remedy (mean ± standard error over the seeds), one
    panel per imbalance setting."""
    from matplotlib.figure import Figure

    from ganforge.viz._atomic import save_figure

    cases = list(dict.fromkeys(r["case"] for r in payload["rows"]))
    fig = Figure(figsize=(5.5 * len(cases), 4.2))
    axes = fig.subplots(1, len(cases), squeeze=False)[0]
    for ax, case in zip(axes, cases, strict=True):
        rows = [r for r in payload["rows"] if r["case"] == case]
        y = range(len(rows))
        for offset, (metric, colour) in enumerate((("minority_recall", "tab:blue"),
                                                    ("minority_precision", "tab:orange"))):
            ax.barh([i + 0.38 * offset for i in y], [100 * r[metric] for r in rows], height=0.38,
                    xerr=[100 * (r[f"{metric}_se"] or 0) for r in rows], color=colour,
                    label=metric.replace("_", " "))
        ax.set_yticks([i + 0.19 for i in y], [r["remedy"] for r in rows], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(f"% on the real test split (mean ± s.e., {rows[0]['seeds']} seeds)")
        ax.set_title(case, fontsize=10)
        ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def samples_figure(cells: dict[str, list[dict[str, Any]]], path: Path) -> Path:
    """Per setting, the rare classes' real training images and each GAN's samples of them (seed 0)."""
    from ganforge.viz import plot_panels

    panels = {}
    for case, runs in cells.items():
        shown = runs[0].get("figure", {})
        for source, per_class in shown.items():
            images = [torch.tensor(v) for v in per_class.values()]
            images = [torch.cat([im, torch.full((10 - len(im), *im.shape[1:]), -1.0)]) for im in images]
            panels[f"{case}: {source}"] = torch.cat(images)
    return plot_panels(panels, path, nrow=10, title="rare classes: real training images and GAN samples "
                       "(one row per rare class)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, small data, few steps")
    parser.add_argument("--root", type=Path, default=SHARED_FASHION, help="Fashion-MNIST IDX folder")
    parser.add_argument("--gans", default=",".join(GANS),
                        help=f"comma-separated GAN remedies ({', '.join(GANS)})")
    parser.add_argument("--jobs", type=int, default=2, help="cells run at once (one thread each)")
    parser.add_argument("--out", default="augmentation", help="result name (benchmarks/results/NAME.json)")
    parser.add_argument("--table", metavar="JSON", help="only print the markdown table of a results file "
                        "and draw its figure")
    parser.add_argument("--figure", type=Path, help="recall figure (default docs/figures/"
                        "augmentation_recall.png on a full run or with --table, none with --quick)")
    args = parser.parse_args()
    if args.table:
        payload = json.loads(Path(args.table).read_text())
        print(markdown_table(payload))
        if "case" in payload["rows"][0]:
            print(f"figure: {recall_figure(payload, args.figure or FIGURE)}")
        return
    gans = tuple(g for g in args.gans.split(",") if g)
    unknown = [g for g in gans if g not in GANS]
    if unknown:
        parser.error(f"unknown GAN remedy {unknown[0]!r}; choose from {', '.join(GANS)}")
    torch.set_num_threads(1)
    if not (args.root / "train-images-idx3-ubyte.gz").is_file():
        print(f"benchmarks/augmentation.py needs Fashion-MNIST in {args.root}: skipped")
        return
    setting = SETTINGS["quick" if args.quick else "full"]
    start = time.perf_counter()
    jobs = [(case, seed, setting, gans, args.root) for case in setting["cases"] for seed in setting["seeds"]]
    cells: dict[str, list[dict[str, Any]]] = {case: [] for case in setting["cases"]}
    partial = Path(tempfile.gettempdir()) / f"ganforge-{args.out}-cells.json"
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for cell in pool.map(one_cell, jobs):
            cells[cell["case"]].append(cell)
            partial.write_text(json.dumps(cells))  # a crash later loses no finished cell
            brief = {n: round(100 * m["minority_recall"], 1) for n, m in cell["remedies"].items()}
            print(f"{cell['case']} seed {cell['seed']} (counts {cell['counts']}): minority recall % {brief}; "
                  f"CAS along training {cell['cas_along']}; {time.perf_counter() - start:.0f} s so far",
                  flush=True)
    wall = time.perf_counter() - start
    rows = summarise(cells, gans)
    print()
    print_table([{k: (100 * v if k in METRICS or k in ("cas", "cas_rare_recall", "acceptance") else v)
                  for k, v in r.items() if not k.endswith("_se")} for r in rows],
                ["case", "remedy", *METRICS, "cas", "cas_rare_recall", "acceptance"])
    lines = conclusions(rows)
    print("\nGAN augmentation against oversampling and SMOTE:")
    for line in lines:
        print("  " + line)
    samples = None if args.quick else samples_figure(cells, SAMPLES_FIGURE)
    for runs in cells.values():
        for r in runs:
            r.pop("figure", None)
    payload = {"quick": args.quick, "settings": setting, "cases": {c: CASES[c] for c in setting["cases"]},
               "classifier_budget": ClassifierBudget(steps=setting["classifier_steps"]).to_dict(),
               "data": {"train": f"Fashion-MNIST train split, {setting['per_class']} images per class "
                                 "(seeded subset), the rare classes cut to each case's fraction",
                        "test": "Fashion-MNIST test split, 10,000 images, untouched",
                        "classes": list(load_idx_dataset("fashion-mnist", str(args.root), "test").classes)},
               "gan_presets": {g: f"fashion-imbalanced-{g}" for g in gans},
               "gan_steps": {g: load_config(f"fashion-imbalanced-{g}").train.steps
                             if setting["gan_steps"] is None else setting["gan_steps"] for g in gans},
               "filter_judge": "the random-oversampling classifier of the same seed (trained on the same "
               "imbalanced real data); lenet_fashion not used (it saw the full train split)",
               "budget": {"wall_seconds": round(wall, 1), "jobs": args.jobs, "torch_threads": 1},
               "rows": rows, "conclusions": lines, "cells": cells,
               "samples_figure": None if samples is None else str(SAMPLES_FIGURE.relative_to(REPO))}
    path = write_result(args.out + ("_quick" if args.quick else ""), payload)
    print(f"\nwall time {wall:.0f} s; wrote {path}\n")
    print(markdown_table(payload))
    figure = args.figure or (None if args.quick else FIGURE)
    if figure is not None:
        print(f"figure: {recall_figure(payload, figure)}")


if __name__ == "__main__":
    main()
