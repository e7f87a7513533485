"""Adversarial robustness on Fashion-MNIST: GAN defences against oblivious and adaptive attacks.

Protocol (per seed; every trained part from that seed; one torch thread per process):
* the classifier to defend: :class:`ganforge.robust.UnitClassifier` (the shipped LeNet layout)
  trained 3 epochs on the 60,000 training images;
* PGD adversarial training (Madry et al. 2018), the non-GAN baseline: the same network trained
  2 epochs on PGD-7 images at eps 0.3 (eps ramped up over the first 30% of the updates);
* Defense-GAN: the ``fashion-defensegan`` preset's WGAN-GP generator (8,000 steps; trained here
  when ``--work`` does not already hold ``gen-s{seed}``), L = 100 Adam steps (rate 0.05) from
  R = 4 random codes per image;
* APE-GAN: 2 epochs on FGSM images at eps 0.1 and 0.3 against the classifier;
* the detector: a CNN on 20,000 training images and as many attacked copies (FGSM and PGD-10 at
  eps 0.1 and 0.3 and CW-L2 with 50 steps, an equal share each, against the classifier);
  Defense-GAN's reconstruction error as a second score;
* attacks (torchattacks): FGSM and PGD-40 at L-inf eps 0.1 and 0.3 on [0, 1] pixels, CW-L2
  (c = 10, 100 Adam steps); threat models: oblivious (attack the classifier alone) and adaptive
  (attack the defended classifier: APE-GAN by backpropagation, Defense-GAN by BPDA with EOT over
  2 draws of its random restarts, once with BPDA's identity backward pass (``defense-gan``) and
  once with its tangent-space projection (``defense-gan/tangent``); CW through Defense-GAN by
  BPDA without EOT);
* test images: seed s scores the 1,000 test images from index 1000 s (3,000 distinct images over
  three seeds); the adaptive attacks through Defense-GAN, which run a whole projection per attack
  step, score the first ``--adaptive-n`` (default 100) of them (300 over three seeds).

    python benchmarks/robustness.py [--quick] [--seeds 0 1 2] [--work DIR]

Each seed's numbers go to ``benchmarks/results/robustness_runs/seed{s}.json`` (so seeds can run
in separate processes; ``--tangent-only`` and ``--detector-only`` add ``seed{s}_tangent.json``
and ``seed{s}_detector.json`` to seeds measured before those parts existed, retraining the seed's
classifier and checking it against the stored accuracy); every run then rewrites
``benchmarks/results/robustness.json`` from the seeds on disk (``robustness_quick.json`` with
--quick) with mean and standard error per cell, the targets, and (not with --quick) the figures
``docs/figures/robust-strip.png`` and ``docs/figures/robust-accuracy-eps.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, SHARED_FASHION, machine_info, print_checks, write_result  # noqa: E402
from ganforge.robust import (  # noqa: E402
    APEConfig,
    ClassifierConfig,
    Defended,
    DetectorConfig,
    accuracy,
    detection_aucs,
    evaluate_defenses,
    load_images,
    parse_attack,
    train_ape_gan,
    train_classifier,
    train_detector,
)
from ganforge.robust.build import DefenseOptions, defense_gan_from_run  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIGURES = REPO / "docs" / "figures"
PER_SEED = RESULTS / "robustness_runs"

FULL = {
    "train_n": None,
    "test_n": 1000,
    "adaptive_n": 100,
    "clf_epochs": 3,
    "at_epochs": 2,
    "ape_epochs": 2,
    "detector_n": 20000,
    "detector_epochs": 3,
    "gen_steps": 8000,
    "pgd_steps": 40,
    "cw_steps": 100,
    "L": 100,
    "R": 4,
    "eot": 2,
}
QUICK = {
    "train_n": 3000,
    "test_n": 200,
    "adaptive_n": 20,
    "clf_epochs": 1,
    "at_epochs": 1,
    "ape_epochs": 1,
    "detector_n": 2000,
    "detector_epochs": 1,
    "gen_steps": 300,
    "pgd_steps": 10,
    "cw_steps": 20,
    "L": 30,
    "R": 2,
    "eot": 2,
}
ATTACKS = ("fgsm:0.1", "fgsm:0.3", "pgd:0.1", "pgd:0.3", "cw")

#: published numbers, quoted for orientation (other datasets, models and budgets; see docs/robustness.md)
PUBLISHED = [
    {
        "source": "Madry et al. 2018 (ICLR), MNIST, PGD adversarial training at eps 0.3",
        "row": "white-box PGD (100 steps, 50 restarts) eps 0.3",
        "accuracy": 0.893,
    },
    {
        "source": "Athalye, Carlini and Wagner 2018 (ICML), Table 1",
        "row": "Defense-GAN on MNIST under BPDA, L2 eps 0.005",
        "accuracy": 0.55,
    },
]


def generator_run(work: Path, seed: int, steps: int) -> tuple[Path, float | None]:
    """``work/gen-s{seed}``: the fashion-defensegan run of this seed, trained here if absent;
    (run dir, training seconds from its metrics.csv)."""
    from ganforge import load_config
    from ganforge.train import Trainer

    run = work / f"gen-s{seed}"
    if not (run / "checkpoints" / "final.pt").is_file():
        overrides: dict[str, Any] = {"seed": seed, "train.steps": steps}
        if SHARED_FASHION.is_dir():
            overrides.update({"data.root": str(SHARED_FASHION), "data.download": False})
        Trainer(load_config("fashion-defensegan", overrides=overrides), run, progress=False).fit()
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    per_step = statistics.fmean(float(r["sec_per_step"]) for r in rows if r.get("sec_per_step"))
    return run, round(per_step * int(rows[-1]["step"]), 1) if rows else None


def seed_data(seed: int, cfg: dict[str, Any], root: str) -> tuple[torch.Tensor, ...]:
    """The training images and this seed's 1,000 (``test_n``) test images, and where they start."""
    x, y = load_images("fashion-mnist", "train", root)
    if cfg["train_n"]:
        x, y = x[: cfg["train_n"]], y[: cfg["train_n"]]
    xt, yt = load_images("fashion-mnist", "test", root)
    start = (seed * cfg["test_n"]) % len(xt)
    return x, y, xt[start : start + cfg["test_n"]], yt[start : start + cfg["test_n"]], start


def seed_attacks(cfg: dict[str, Any]) -> list:
    return [parse_attack(a, pgd_steps=cfg["pgd_steps"], cw_steps=cfg["cw_steps"], cw_c=10.0) for a in ATTACKS]


def tangent_cells(clf, run: Path, cfg: dict[str, Any], seed: int, xt, yt) -> list[dict[str, Any]]:
    """The adaptive attacks through Defense-GAN with BPDA's tangent-space backward pass
    (``defense-gan/tangent``): the same attacks, images, EOT and seeds as the identity's."""
    options = DefenseOptions(cfg["L"], cfg["R"], 0.05, seed, bpda="tangent")
    gan = defense_gan_from_run(run, "fashion-mnist", options)
    cells = evaluate_defenses(
        [Defended("defense-gan/tangent", clf, gan)],
        seed_attacks(cfg),
        xt,
        yt,
        threats=("adaptive",),
        eot=cfg["eot"],
        seed=seed,
        adaptive_images=cfg["adaptive_n"],
        log=lambda line: print(f"[seed {seed}] {line}", flush=True),
    )
    return [c.as_dict() for c in cells if c.attack != "clean"]


def run_seed(seed: int, cfg: dict[str, Any], work: Path, root: str) -> dict[str, Any]:
    torch.manual_seed(seed)
    x, y, xt, yt, start = seed_data(seed, cfg, root)
    seconds: dict[str, float | None] = {}

    def timed(name: str, fn):
        t = time.perf_counter()
        out = fn()
        seconds[name] = round(time.perf_counter() - t, 1)
        print(f"[seed {seed}] {name}: {seconds[name]:.0f} s", flush=True)
        return out

    meta = {"dataset": "fashion-mnist"}
    clf = timed(
        "classifier",
        lambda: train_classifier(x, y, ClassifierConfig(epochs=cfg["clf_epochs"], seed=seed), meta=meta),
    )
    robust = timed(
        "pgd_at",
        lambda: train_classifier(
            x, y, ClassifierConfig(epochs=cfg["at_epochs"], seed=seed, adv_eps=0.3, adv_steps=7), meta=meta
        ),
    )
    ape = timed("ape_gan", lambda: train_ape_gan(clf, x, y, APEConfig(epochs=cfg["ape_epochs"], seed=seed)))
    n_det = min(cfg["detector_n"], len(x))
    detector = timed(
        "detector",
        lambda: train_detector(
            clf, x[:n_det], y[:n_det], DetectorConfig(epochs=cfg["detector_epochs"], seed=seed)
        ),
    )
    run, seconds["generator"] = generator_run(work, seed, cfg["gen_steps"])
    gan = defense_gan_from_run(run, "fashion-mnist", DefenseOptions(cfg["L"], cfg["R"], 0.05, seed))

    attacks = seed_attacks(cfg)
    defences = [
        Defended("none", clf),
        Defended("defense-gan", clf, gan),
        Defended("ape-gan", clf, ape),
        Defended("pgd-at", robust),
    ]
    cache: dict = {}
    cells = timed(
        "evaluate",
        lambda: evaluate_defenses(
            defences,
            attacks,
            xt,
            yt,
            eot=cfg["eot"],
            seed=seed,
            adaptive_images=cfg["adaptive_n"],
            cache=cache,
            log=lambda line: print(f"[seed {seed}] {line}", flush=True),
        ),
    )
    detection = timed(
        "detection",
        lambda: detection_aucs(
            clf, attacks, xt, yt, detector=detector, defense_gan=gan, seed=seed, cache=cache
        ),
    )
    tangent = timed("tangent", lambda: tangent_cells(clf, run, cfg, seed, xt, yt))
    strip = None
    if seed == 0:
        adv = cache[(id(clf), attacks[1].key)][0][:8]
        gan.reseed(0)
        with torch.no_grad():
            strip = {"clean": xt[:8], "FGSM eps=0.3": adv, "Defense-GAN": gan(adv), "APE-GAN": ape(adv)}
    return {
        "seed": seed,
        "test_start": start,
        "cells": [c.as_dict() for c in cells] + tangent,
        "detection": detection,
        "seconds": seconds,
        "clean_accuracy": {"classifier": accuracy(clf, xt, yt), "pgd_at": accuracy(robust, xt, yt)},
        "strip": None
        if strip is None
        else {k: v.double().numpy().round(3).tolist() for k, v in strip.items()},
        "ape_gan_rec_mse_clean": float(((ape(xt[:500]) - xt[:500]) ** 2).mean().detach()),
    }


def aggregate(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Mean, standard error and pooled image count per (defence, attack, threat) and per detector."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for record in records:
        for cell in record["cells"]:
            groups.setdefault((cell["defense"], cell["attack"], cell["threat"]), []).append(cell)
    rows = []
    for (defense, attack, threat), cells in groups.items():
        values = [c["accuracy"] for c in cells]
        rows.append(
            {
                "defense": defense,
                "attack": attack,
                "threat": threat,
                "mean": statistics.fmean(values),
                "se": statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else None,
                "per_seed": values,
                "images": sum(c["n"] for c in cells),
                "attack_ms_per_image": 1e3 * statistics.fmean(c["attack_seconds"] for c in cells),
                "defense_ms_per_image": 1e3 * statistics.fmean(c["defense_seconds"] for c in cells),
            }
        )
    detections: dict[tuple[str, str], list[float]] = {}
    for record in records:
        for row in record["detection"]:
            detections.setdefault((row["detector"], row["attack"]), []).append(row["auc"])
    det_rows = [
        {
            "detector": d,
            "attack": a,
            "mean": statistics.fmean(v),
            "se": statistics.stdev(v) / len(v) ** 0.5 if len(v) > 1 else None,
            "per_seed": v,
        }
        for (d, a), v in detections.items()
    ]
    return rows, det_rows


def checks(rows: list[dict[str, Any]], det_rows: list[dict[str, Any]]) -> dict[str, bool]:
    acc = {(r["defense"], r["attack"], r["threat"]): r["mean"] for r in rows}
    attacked = [(a, t) for (_, a, t) in acc if a != "clean"]
    fgsm3 = next(a for a, _ in attacked if a.startswith("fgsm") and a.endswith("-0.3"))
    pgd = sorted({a for a, t in attacked if t == "adaptive" and a.startswith("pgd")})

    def strongest(defense: str, attack: str) -> float:
        """The defence's accuracy under its strongest adaptive attack (either BPDA gradient)."""
        return min(
            v
            for (d, a, t), v in acc.items()
            if d.split("/")[0] == defense and a == attack and t == "adaptive"
        )

    return {
        "oblivious FGSM eps 0.3: Defense-GAN far above the undefended classifier (>= +25 points)": acc[
            ("defense-gan", fgsm3, "oblivious")
        ]
        >= acc[("none", fgsm3, "oblivious")] + 0.25,
        "adaptive PGD (BPDA + EOT) breaks Defense-GAN: >= 20 points below oblivious at each eps": all(
            strongest("defense-gan", a) <= acc[("defense-gan", a, "oblivious")] - 0.20 for a in pgd
        ),
        "PGD adversarial training strongest under every adaptive PGD attack": all(
            strongest("pgd-at", a) >= max(strongest(d, a) for d in ("none", "defense-gan", "ape-gan"))
            for a in pgd
        ),
        "detector ROC AUC >= 0.9 against every oblivious attack": all(
            r["mean"] >= 0.9 for r in det_rows if r["detector"] == "detector"
        ),
    }


def figures(records: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    from ganforge.viz.robustness import plot_accuracy_against_eps, plot_purification_strip

    strip = next((r["strip"] for r in records if r.get("strip")), None)
    if strip is not None:
        plot_purification_strip({k: torch.tensor(v) for k, v in strip.items()}, FIGURES / "robust-strip.png")
    plot_accuracy_against_eps(rows, FIGURES / "robust-accuracy-eps.png")


def supplement(seed: int, cfg: dict[str, Any], work: Path, per_seed: Path, part: str) -> None:
    """Add ``part`` (``tangent``: the tangent-BPDA cells; ``detector``: a detector retrained with
    the default attacks) to a seed measured without it, as ``seed{s}_{part}.json``. The seed's
    classifier is retrained from its seed and must score the stored test accuracy exactly."""
    x, y, xt, yt, _ = seed_data(seed, cfg, str(SHARED_FASHION))
    config = ClassifierConfig(epochs=cfg["clf_epochs"], seed=seed)
    clf = train_classifier(x, y, config, meta={"dataset": "fashion-mnist"})
    stored = json.loads((per_seed / f"seed{seed}.json").read_text())
    if accuracy(clf, xt, yt) != stored["clean_accuracy"]["classifier"]:
        raise SystemExit(f"seed {seed}: the retrained classifier differs from the measured one")
    started = time.perf_counter()
    record: dict[str, Any] = {"seed": seed}
    if part == "tangent":
        record["cells"] = tangent_cells(
            clf, generator_run(work, seed, cfg["gen_steps"])[0], cfg, seed, xt, yt
        )
    else:
        n = min(cfg["detector_n"], len(x))
        detector = train_detector(clf, x[:n], y[:n], DetectorConfig(epochs=cfg["detector_epochs"], seed=seed))
        record["detection"] = detection_aucs(clf, seed_attacks(cfg), xt, yt, detector=detector, seed=seed)
        record["attacks"] = detector.meta["attacks"]
    record.update(seconds=round(time.perf_counter() - started, 1), machine=machine_info())
    (per_seed / f"seed{seed}_{part}.json").write_text(json.dumps(record) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--work", type=Path, help="folder for the generator runs (default: a results subfolder)"
    )
    parser.add_argument("--adaptive-n", type=int)
    parser.add_argument(
        "--aggregate-only", action="store_true", help="only rebuild the summary from seeds on disk"
    )
    parser.add_argument(
        "--detector-only",
        action="store_true",
        help="retrain the seed's detector with the default attacks (CW among them) and score it again",
    )
    parser.add_argument(
        "--tangent-only",
        action="store_true",
        help="add the tangent-BPDA cells to seeds measured without them (retrains the "
        "seed's classifier, checked against the stored accuracy)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cfg = dict(QUICK if args.quick else FULL)
    if args.adaptive_n:
        cfg["adaptive_n"] = args.adaptive_n
    if not (SHARED_FASHION / "train-images-idx3-ubyte.gz").is_file():
        print(f"skipped: Fashion-MNIST not found in {SHARED_FASHION}")
        return 0
    suffix = "_quick" if args.quick else ""
    per_seed = PER_SEED / "quick" if args.quick else PER_SEED
    work = args.work or Path(tempfile.gettempdir()) / f"ganforge-robustness{suffix}"
    work.mkdir(parents=True, exist_ok=True)
    per_seed.mkdir(parents=True, exist_ok=True)
    if args.tangent_only or args.detector_only:
        for seed in args.seeds:
            supplement(seed, cfg, work, per_seed, "tangent" if args.tangent_only else "detector")
    elif not args.aggregate_only:
        for seed in args.seeds:
            record = run_seed(seed, cfg, work, str(SHARED_FASHION))
            record.update(config=cfg, machine=machine_info())
            (per_seed / f"seed{seed}.json").write_text(json.dumps(record) + "\n")
    records = [json.loads(p.read_text()) for p in sorted(per_seed.glob("seed?.json"))]
    for record in records:  # cells added later by --tangent-only
        extra = per_seed / f"seed{record['seed']}_tangent.json"
        if extra.is_file():
            added = json.loads(extra.read_text())
            record["cells"] += added["cells"]
            record["seconds"]["tangent"] = added["seconds"]
        extra = per_seed / f"seed{record['seed']}_detector.json"
        if extra.is_file():  # the detector retrained with CW among its attacks (--detector-only)
            for row in record["detection"]:
                if row["detector"] == "detector":
                    row["detector"] = "detector, trained without CW"
            record["detection"] += json.loads(extra.read_text())["detection"]
    rows, det_rows = aggregate(records)
    print(f"\nseeds {[r['seed'] for r in records]}; accuracy, mean over seeds (pooled images)")
    for r in sorted(rows, key=lambda r: (r["defense"], r["attack"], r["threat"])):
        se = f" +- {r['se']:.3f}" if r["se"] is not None else ""
        print(
            f"  {r['defense']:<12} {r['attack']:<10} {r['threat']:<9} {r['mean']:.3f}{se}  "
            f"({r['images']} images, "
            f"defence {r['defense_ms_per_image']:.1f} ms/image)"
        )
    for r in det_rows:
        print(f"  detection {r['detector']:<18} {r['attack']:<10} ROC AUC {r['mean']:.3f}")
    result = {
        "protocol": __doc__,
        "config": cfg,
        "seeds": [r["seed"] for r in records],
        "accuracy": rows,
        "detection": det_rows,
        "seconds": {str(r["seed"]): r["seconds"] for r in records},
        "clean_accuracy": {str(r["seed"]): r["clean_accuracy"] for r in records},
        "published": PUBLISHED,
    }
    if len(records) > 0 and not args.quick:
        result["checks"] = checks(rows, det_rows)
        print_checks(result["checks"])
        figures(records, rows)
    path = write_result(f"robustness{suffix}", result)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
