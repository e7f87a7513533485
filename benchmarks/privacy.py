"""Differentially private GAN training on MNIST and Fashion-MNIST: what epsilon = 10 and
epsilon = 1 cost in sample quality and downstream accuracy.

Protocol, ``--data mnist`` (the default; results/privacy.json):
* Data: the MNIST *test* split (t10k, 10,000 images; the only MNIST split in ../shared/data/mnist),
  split exactly like the shipped ``lenet_mnist`` extractor's training data (a seeded permutation,
  seed 0): the first 8,000 images are the private training records (N = 8,000), the last 2,000
  are held out. Neither the GANs nor the LeNet extractor ever see the held-out 2,000.
* Runs: the ``mnist-dpgan`` preset (a class-conditional DP-CGAN, Torkzadehmahani et al. 2019)
  at its step budget, three ways: non-private (``algorithm.private=false``: the same Poisson
  batches, rows and loss, a plain optimiser step), (epsilon 10, delta 1e-5) and (epsilon 1,
  delta 1e-5), the noise multiplier computed by Opacus for the run (RDP accountant).
* Scores: FID with the shipped LeNet MNIST features, 1,000 generated samples (100 per class)
  against 1,000 held-out images, with the real-vs-real floor (the other 1,000 held-out images);
  class match (the LeNet's accuracy on the labels the samples were generated for);
  downstream accuracy: a fresh LeNet trained on 10,000 generated samples (1,000 per class, their
  conditioning labels) and tested on the 2,000 held-out real images, beside the same LeNet
  trained on the 8,000 real training records.
* Published: Bie, Kamath & Zhang, "Private GANs, Revisited" (TMLR 2023), abstract: "For MNIST
  at epsilon = 10, our private GANs improve the record FID from 48.4 to 13.0, and record
  downstream classifier accuracy from 83.2% to 95.0%" (DPSGD on D, as here, with many D steps
  per G step, large batches and the 60,000-image train split; FID with their own feature
  network, so not on the LeNet scale used here; the accuracy is comparable in kind).

Protocol, ``--data fashion-mnist`` (results/privacy_fashion.json): Bie et al.'s recipe, the
``fashion-dpgan`` preset (class-conditional DCGAN, DP-SGD on D with ``phases.D.repeat`` D updates
per G update, EMA of G), trained on Fashion-MNIST's 60,000 training images (N = 60,000) at
(epsilon 10, delta 1e-5) and (epsilon 1, delta 1e-5), both at the preset's step budget (stated
in CPU time per run: a fraction of Bie et al.'s 450,000 D updates, which take a GPU). Along each
run, ``snapshots`` copies of the EMA generator are kept at evenly spaced steps with the CPU time
and the epsilon spent so far (each is a release of the same private run, so covered by the
guarantee at the epsilon it had spent): downstream accuracy (a fresh LeNet trained on generated
samples, tested on the real 10,000-image test split) against CPU time is plotted. FID with the
shipped ``lenet_fashion`` features (1,000 samples vs 1,000 test images) and class match at the end.
``--data mnist-train`` (results/privacy_mnist_train.json): the same on MNIST's 60,000 training
images, when its training files are in ../shared/data/mnist (here only the test split is).
Published Fashion-MNIST figures at epsilon 10 (downstream CNN accuracy): GS-WGAN 65%, DP-Sinkhorn
71.1%, DataLens 70.6%, G-PATE 69.3%, DP-CGAN 46%, DP-MERF 75.4% (as tabulated by Dockhorn et al.
2023, "Differentially Private Diffusion Models", Table 1).

    python benchmarks/privacy.py [--data mnist|fashion-mnist|mnist-train] [--jobs 2] [--quick]
    python benchmarks/privacy.py --table benchmarks/results/privacy.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_FASHION, SHARED_MNIST, print_table, write_result  # noqa: E402
from ganforge import build_dataset, load_config  # noqa: E402
from ganforge.data.base import ArrayDataset  # noqa: E402
from ganforge.metrics.classifier import ARCHITECTURES  # noqa: E402
from ganforge.metrics.evaluate import Evaluator  # noqa: E402
from ganforge.metrics.train_classifier import accuracy, random_shift, split_mnist  # noqa: E402
from ganforge.train import Trainer  # noqa: E402
from ganforge.viz import plot_panels  # noqa: E402

#: configuration -> overrides of the preset (all at the same step budget)
CONFIGS: dict[str, dict[str, Any]] = {
    "non-private": {"algorithm.private": False, "algorithm.privacy.epsilon": None},
    "epsilon 10": {"algorithm.privacy.epsilon": 10.0},
    "epsilon 1": {"algorithm.privacy.epsilon": 1.0},
}
QUIET = {"train.sample_every": 10**9, "train.checkpoint_every": 10**9, "train.log_every": 10**9}
PUBLISHED = {
    "source": "Bie, Kamath & Zhang, Private GANs, Revisited, TMLR 2023 (arXiv:2302.02936), abstract",
    "quote": "For MNIST at epsilon = 10, our private GANs improve the record FID from 48.4 to 13.0, "
             "and record downstream classifier accuracy from 83.2% to 95.0%.",
    "epsilon": 10, "delta": 1e-5, "fid": 13.0, "downstream_accuracy": 0.950,
    "previous_record": {"fid": 48.4, "downstream_accuracy": 0.832},
    "comparable": "accuracy in kind (synthetic-trained classifier on real test images); their FID "
                  "uses another feature network and the full 60,000-image train split, so it is "
                  "not on this benchmark's LeNet scale",
}
PUBLISHED_FASHION = {
    "source": "Dockhorn, Cao, Vahdat & Kreis, Differentially Private Diffusion Models, TMLR 2023, "
              "Table 1 (Fashion-MNIST, epsilon 10, delta 1e-5, downstream CNN accuracy %, values from the "
              "literature)",
    "epsilon": 10, "delta": 1e-5,
    "downstream_accuracy": {"GS-WGAN": 0.65, "DP-Sinkhorn": 0.711, "DataLens": 0.7061, "G-PATE": 0.6934,
                            "DP-CGAN": 0.46, "DP-MERF": 0.754},
    "bie_et_al": "Bie et al.'s own Fashion-MNIST figures (their Table 2) could not be read here (no "
                 "internet beyond package registries); their released configs train 450,000 D updates "
                 "(FashionMNIST epsilon 10: batch 128, sigma 1.0, 100 D steps per G step)",
}
REPO = Path(__file__).resolve().parents[1]
FIGURE = REPO / "docs" / "figures" / "privacy_samples.png"
#: --data -> the preset, the runs, the evaluation and where results go
SETUPS: dict[str, dict[str, Any]] = {
    "mnist": {"preset": "mnist-dpgan", "configs": CONFIGS, "split": "mnist_split",
              "needs": (SHARED_MNIST, "t10k-images-idx3-ubyte.gz"),
              "overrides": {"data.root": str(SHARED_MNIST), "data.split": "test"},
              "extractor": "lenet_mnist", "classifier": "mnist",
              "result": "privacy", "figure": FIGURE, "curve": None, "published": PUBLISHED,
              "full": {"n_eval": 1000, "n_downstream": 10_000, "epochs": 5, "snapshots": 0},
              "quick": {"n_eval": 500, "n_downstream": 2_000, "epochs": 1, "steps": 60, "snapshots": 0}},
    "fashion-mnist": {"preset": "fashion-dpgan", "split": "fashion_split",
                      "needs": (SHARED_FASHION, "train-images-idx3-ubyte.gz"), "overrides": {},
                      "configs": {k: CONFIGS[k] for k in ("epsilon 10", "epsilon 1")},
                      "extractor": "lenet_fashion", "classifier": "fashion", "result": "privacy_fashion",
                      "figure": REPO / "docs" / "figures" / "privacy_fashion_samples.png",
                      "curve": REPO / "docs" / "figures" / "privacy_fashion_curve.png",
                      "published": PUBLISHED_FASHION,
                      "full": {"n_eval": 1000, "n_downstream": 10_000, "epochs": 5, "snapshots": 6},
                      "quick": {"n_eval": 500, "n_downstream": 2_000, "epochs": 1, "steps": 20,
                                "snapshots": 2}},
}
#: MNIST's 60,000 training images (when its training files are present) with the same recipe
SETUPS["mnist-train"] = {**SETUPS["fashion-mnist"], "split": "mnist_train_split",
                         "needs": (SHARED_MNIST, "train-images-idx3-ubyte.gz"),
                         "overrides": {"data.name": "mnist"}, "extractor": "lenet_mnist",
                         "classifier": "mnist", "result": "privacy_mnist_train",
                         "figure": REPO / "docs" / "figures" / "privacy_mnist_train_samples.png",
                         "curve": REPO / "docs" / "figures" / "privacy_mnist_train_curve.png",
                         "published": PUBLISHED}


def mnist_split() -> tuple[ArrayDataset, ArrayDataset, dict[str, Any]]:
    """The 8,000 private training records and the 2,000 held-out images (lenet_mnist's split)."""
    (xtr, ytr), (xte, yte), info = split_mnist(SHARED_MNIST, 0)
    info = {k: v for k, v in info.items() if k in ("data", "split", "n_train", "n_held_out")}
    return _labelled(xtr, ytr), _labelled(xte, yte), info


def fashion_split(name: str = "fashion-mnist", root: Path = SHARED_FASHION
                  ) -> tuple[ArrayDataset, ArrayDataset, dict[str, Any]]:
    """The 60,000 training images (the private records) and the 10,000 test images."""
    data = {"name": name, "root": str(root), "download": False, "size": 28}
    train, test = build_dataset({**data, "split": "train"}), build_dataset({**data, "split": "test"})
    info = {"data": f"{name} train split ({len(train):,} images) / test split ({len(test):,} images)",
            "split": "the published one", "n_train": len(train), "n_held_out": len(test)}
    return train, test, info


def mnist_train_split() -> tuple[ArrayDataset, ArrayDataset, dict[str, Any]]:
    return fashion_split("mnist", SHARED_MNIST)


def _labelled(x: torch.Tensor, y: torch.Tensor) -> ArrayDataset:
    return ArrayDataset(x, y, name="mnist", num_classes=10, extractor="lenet_mnist",
                        classes=tuple("0123456789"))


def train_run(preset: str, overrides: dict[str, Any], train: ArrayDataset, steps: int | None, seed: int,
              snapshots: int = 0) -> tuple[Trainer, float, list[dict[str, Any]]]:
    """Train ``preset``; with ``snapshots``, also copies of the sampling (EMA) generator at that many
    evenly spaced steps, each with its CPU seconds and the epsilon spent so far."""
    overrides = {"data.download": False, **QUIET, **overrides, "seed": seed}
    if steps is not None:
        overrides["train.steps"] = steps
    cfg = load_config(preset, overrides=overrides)
    total = cfg.train.steps
    marks = {round(total * (i + 1) / snapshots) for i in range(snapshots)} if snapshots else set()
    kept: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "run", progress=False, dataset=train)
        algo = trainer.algorithm
        start, cpu = time.perf_counter(), time.process_time()
        while trainer.step < total:  # fit()'s updates without its artefacts
            trainer.train_step()
            stopped = algo.stop_reason(trainer.step)
            if trainer.step in marks or (stopped and snapshots):
                kept.append({"step": trainer.step, "cpu_seconds": round(time.process_time() - cpu, 1),
                             "epsilon": algo.epsilon if algo.accountant is not None else None,
                             "G": copy.deepcopy(trainer.exp.sampling_network()).cpu()})
            if stopped:
                break
        return trainer, time.perf_counter() - start, kept


def generate(G: torch.nn.Module, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n samples, n / 10 of each class, and their labels."""
    G = G.eval()
    labels = torch.arange(n) % 10
    with torch.no_grad():
        x = G.sample(n, torch.Generator().manual_seed(seed), labels, batch_size=1000)
    return x.clamp(-1, 1), labels


def downstream_accuracy(x: torch.Tensor, y: torch.Tensor, test: ArrayDataset, epochs: int,
                        seed: int = 0, classifier: str = "mnist") -> float:
    """A fresh LeNet (the extractor's recipe: Adam, one-cycle, +-2 px shifts) trained on (x, y),
    its accuracy on the held-out real images."""
    torch.manual_seed(seed)
    model = ARCHITECTURES[classifier]()
    batch = 64
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, epochs=epochs,
                                                steps_per_epoch=-(-len(x) // batch))
    g = torch.Generator().manual_seed(seed + 1)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            loss = F.cross_entropy(model(random_shift(x[idx], 2, g)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return accuracy(model, test.x, test.y)


def evaluate(G: torch.nn.Module, held_out: ArrayDataset, settings: dict[str, Any], seed: int,
             setup: dict[str, Any]) -> dict[str, Any]:
    ev = Evaluator(held_out, ["fid", "class"], extractor=setup["extractor"], num_samples=settings["n_eval"],
                   seed=0, conditional=True)
    x, y = generate(G, ev.n, 20_000 + seed)
    scores, e = ev.score(x, y), ev.extractor.id
    return {"fid": scores[f"fid_{e}"], "class_match": scores[f"class_match_{e}"],
            "downstream_accuracy": downstream(G, held_out, settings, seed, setup),
            "n_eval": ev.n, "real_fid_floor": ev.baseline()[f"fid_{e}"]}


def downstream(G: torch.nn.Module, held_out: ArrayDataset, settings: dict[str, Any], seed: int,
               setup: dict[str, Any]) -> float:
    xd, yd = generate(G, settings["n_downstream"], 30_000 + seed)
    return downstream_accuracy(xd, yd, held_out, settings["epochs"], classifier=setup["classifier"])


def run(name: str, train: ArrayDataset, held_out: ArrayDataset, settings: dict[str, Any],
        setup: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    torch.set_num_threads(1)
    overrides = {**setup["overrides"], **setup["configs"][name]}
    trainer, seconds, kept = train_run(setup["preset"], overrides, train, settings.get("steps"), seed,
                                       settings["snapshots"])
    algo, cfg = trainer.algorithm, trainer.cfg
    private = algo.accountant is not None
    row = {"config": name, "steps": trainer.step, "d_updates": algo._d_steps_between(0, trainer.step),
           "d_steps_per_g_step": algo._d_phase.repeat, "train_seconds": round(seconds, 1),
           "N": len(train), "batch_size": cfg.train.batch_size,
           "epsilon": algo.epsilon if private else None,
           "delta": algo.options.privacy.delta if private else None,
           "noise_multiplier": algo.noise_multiplier if private else None,
           "max_grad_norm": algo.options.privacy.max_grad_norm if private else None}
    start = time.perf_counter()
    G = trainer.exp.sampling_network()
    row.update(evaluate(G, held_out, settings, seed, setup))
    row["eval_seconds"] = round(time.perf_counter() - start, 1)
    row["curve"] = [{k: v for k, v in snap.items() if k != "G"}
                    | {"downstream_accuracy": downstream(snap["G"], held_out, settings, seed, setup)}
                    for snap in kept]
    row["figure_samples"] = generate(G, 100, 40_000 + seed)[0]  # 10 per class, for the figure
    return row


def _ten_per_class(data: ArrayDataset) -> torch.Tensor:
    """100 images laid out like :func:`generate`'s: image i is of class i % 10."""
    per_class = [data.x[data.y == k][:10] for k in range(10)]
    return torch.stack(per_class, dim=1).flatten(0, 1)


def markdown_table(payload: dict[str, Any]) -> str:
    out = ["| run | epsilon (delta 1e-5) | noise multiplier | FID (LeNet) | class match % | "
           "downstream accuracy % |", "|---|---|---|---|---|---|"]
    for r in payload["rows"]:
        eps = "—" if r["epsilon"] is None else f"{r['epsilon']:.2f}"
        sigma = "—" if r["noise_multiplier"] is None else f"{r['noise_multiplier']:.3f}"
        d_steps = f", {r['d_updates']} D updates" if r.get("d_steps_per_g_step", 1) > 1 else ""
        out.append(f"| {r['config']} ({r['steps']} steps{d_steps}) | {eps} | {sigma} | {r['fid']:.1f} | "
                   f"{100 * r['class_match']:.1f} | {100 * r['downstream_accuracy']:.1f} |")
    ref = payload["reference"]
    out.append(f"| real data (floor / LeNet on the {payload['data']['n_train']} real records) | — | — | "
               f"{ref['real_fid_floor']:.1f} | — | {100 * ref['real_downstream_accuracy']:.1f} |")
    p = payload["published"]
    if isinstance(p["downstream_accuracy"], dict):
        for method, acc in p["downstream_accuracy"].items():
            out.append(f"| {method} (published, Dockhorn et al. 2023 Table 1) | {p['epsilon']} | — | — | — | "
                       f"{100 * acc:.1f} |")
    else:
        out.append(f"| Bie et al. 2023, DPSGD GAN, MNIST train split (their FID network) | {p['epsilon']} "
                   "| — | "
                   f"{p['fid']} | — | {100 * p['downstream_accuracy']:.1f} |")
    return "\n".join(out)


def curve_figure(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Downstream accuracy of each run's snapshots against the CPU seconds spent to reach them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for r in rows:
        pts = r["curve"]
        ax.plot([p["cpu_seconds"] / 60 for p in pts], [100 * p["downstream_accuracy"] for p in pts],
                marker="o", label=f"{r['config']} (sigma {r['noise_multiplier']:.2f})")
        for p in pts:
            ax.annotate(f"eps {p['epsilon']:.2g}", (p["cpu_seconds"] / 60, 100 * p["downstream_accuracy"]),
                        textcoords="offset points", xytext=(3, -10), fontsize=7)
    ax.axhline(70, color="grey", linestyle="--", linewidth=1, label="target 70%")
    ax.set(xlabel="CPU minutes (one thread)", ylabel="downstream accuracy on real test images (%)",
           title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _run_job(args: tuple) -> dict[str, Any]:
    name, data, quick = args
    setup = SETUPS[data]
    train, held_out, _ = globals()[setup["split"]]()
    return run(name, train, held_out, setup["quick" if quick else "full"], setup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=sorted(SETUPS), default="mnist", help="the private records")
    parser.add_argument("--quick", action="store_true", help="a few steps, small evaluations")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once (one thread each)")
    parser.add_argument("--table", metavar="JSON", help="only print the markdown table of a results file")
    parser.add_argument("--figure", type=Path, help="samples figure (default docs/figures/"
                        "privacy[_fashion]_samples.png on a full run, none with --quick)")
    args = parser.parse_args()
    if args.table:
        print(markdown_table(json.loads(Path(args.table).read_text())))
        return
    torch.set_num_threads(1)
    setup = SETUPS[args.data]
    root, needed = setup["needs"]
    if not (root / needed).is_file():
        print(f"skipped: benchmarks/privacy.py --data {args.data} needs {needed} in {root}")
        return
    settings = setup["quick" if args.quick else "full"]
    train, held_out, data_info = globals()[setup["split"]]()
    jobs = [(name, args.data, args.quick) for name in setup["configs"]]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(_run_job, jobs))
    for row in rows:
        brief = {k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in row.items()
                 if k not in ("figure_samples", "curve")}
        print(f"{row['config']}: {brief}", flush=True)
    figure = args.figure or (None if args.quick else setup["figure"])
    samples = {f"{r['config']} ({r['steps']} steps)": r.pop("figure_samples") for r in rows}
    kind = "class" if args.data == "fashion-mnist" else "digit"
    if figure is not None:
        plot_panels({**samples, "held-out real": _ten_per_class(held_out)}, figure, nrow=10,
                    title=f"DP-CGAN on {args.data} (column k: conditioned on {kind} k)")
        print(f"figure: {figure}")
    curve = None if args.quick else setup["curve"]
    if curve is not None:
        curve_figure(rows, curve, f"DP-GAN on {args.data} ({len(train):,} records)")
        print(f"figure: {curve}")
    real_acc = downstream_accuracy(train.x, train.y, held_out, settings["epochs"],
                                   classifier=setup["classifier"])
    reference = {"real_fid_floor": rows[0]["real_fid_floor"], "real_downstream_accuracy": real_acc}
    columns = ["config", "steps", "d_updates", "epsilon", "noise_multiplier", "fid", "class_match",
               "downstream_accuracy", "train_seconds"]
    print()
    print_table(rows, columns)
    for r in rows:
        for p in r["curve"]:
            print(f"  {r['config']}: step {p['step']}, {p['cpu_seconds']:.0f} CPU s, "
                  f"epsilon {p['epsilon']:.3g}: "
                  f"downstream {100 * p['downstream_accuracy']:.1f}%")
    print(f"real data: FID floor {reference['real_fid_floor']:.2f}, LeNet trained on the "
          f"{len(train)} real records: {100 * real_acc:.1f}% held-out accuracy")
    fids = [r["fid"] for r in rows]
    ordered = all(a < b for a, b in zip(fids, fids[1:], strict=False))
    print(f"FID ordering ({' < '.join(setup['configs'])}): {'holds' if ordered else 'DOES NOT hold'}")
    cfg = load_config(setup["preset"])
    shown = {f: str(f.relative_to(REPO)) if f and f.is_relative_to(REPO) else None for f in (figure, curve)}
    payload = {"quick": args.quick, "preset": setup["preset"], "model": cfg.model,
               "train": cfg.to_dict()["train"], "optim": cfg.optim, "phases": cfg.to_dict()["phases"],
               "configs": setup["configs"], "settings": settings, "data": data_info, "rows": rows,
               "reference": reference, "fid_ordering_holds": ordered, "published": setup["published"],
               "figure": shown[figure], "curve_figure": shown[curve]}
    path = write_result(setup["result"] + ("_quick" if args.quick else ""), payload)
    print(f"wrote {path}\n")
    print(markdown_table(payload))


if __name__ == "__main__":
    main()
