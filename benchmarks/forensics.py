"""Cross-generator forensics: a detector trained on one GAN's images, tested on other generators'.

Protocol (Wang et al. 2020 ask the same question of ProGAN -> other GANs; Durall et al. 2020
show the spectral cue):

* Real data: the MNIST test split (10,000 images, 28 x 28, ../shared/data/mnist beside the
  repository; the benchmark is skipped with a note when it is absent), split once (seed 0) into
  pool A (5,000 images: the detectors' real training images) and pool B (5,000: the real test
  images), so no real test image was seen by a detector.
* Generators: five families trained on all 10,000 images with the shipped presets, one seed
  each, for a fixed step budget chosen to take about 2-3 minutes each on one CPU thread (the
  measured wall time is reported): DCGAN (``mnist-dcgan`` at width 16, z 64, as in
  benchmarks/ablation.py), WGAN-GP (the same with ``loss.name=wgan-gp``), the MLP GAN
  (``mnist-mlp``), a self-conditioned GAN (the DCGAN with a projection D conditioned on 20
  k-means clusters of D's features, ``stabilisers.self_condition=20``) and a VAE
  (``fashion-vae``'s algorithm with the ``vae-conv`` model on MNIST; its samples are the
  decoder means). Runs are cached under ``--runs`` (default runs/forensics-bench/MODE), so a
  rerun skips training.
* Detectors (``ganforge.forensics``): ``spectrum`` (logistic regression on the 1-D power
  spectrum) and ``cnn`` (small CNN, blur + JPEG augmentation), each trained on N_train real
  images of pool A vs N_train DCGAN samples, then tested on N_test real images of pool B vs
  N_test fresh samples (other seeds) of every family: ROC AUC (scikit-learn) and accuracy at
  p = 0.5. Every generated image is rounded to 8-bit levels first (as a saved PNG, and as the
  real images are), as ``ganforge detect`` does. Three detector seeds (the real subset, the
  samples, the fit); mean +- sample std.
* Figure: the mean 1-D spectra (log power) of pool B and of 2,000 samples of each generator,
  docs/figures/forensics_spectra.png.

    python benchmarks/forensics.py [--quick] [--runs DIR] [--seeds 3]

Results: benchmarks/results/forensics.json (``--quick``: forensics_quick.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_MNIST, print_table, write_result  # noqa: E402
from ganforge import build_dataset, load_config, load_run  # noqa: E402
from ganforge.forensics import evaluate, fit_detector, radial_spectrum  # noqa: E402
from ganforge.forensics.images import quantise_8bit  # noqa: E402
from ganforge.train import Trainer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIGURE = REPO / "docs" / "figures" / "forensics_spectra.png"
MNIST = {"name": "mnist", "root": str(SHARED_MNIST), "split": "test", "download": False, "size": 28}
SMALL_DCGAN = {"model.width": 16, "model.z_dim": 64}
#: family -> preset, overrides, full step budget (about 2-3 minutes each on one thread)
FAMILIES: dict[str, dict[str, Any]] = {
    "DCGAN": {"preset": "mnist-dcgan", "overrides": SMALL_DCGAN, "steps": 1000},
    "WGAN-GP": {"preset": "mnist-dcgan", "overrides": {**SMALL_DCGAN, "loss.name": "wgan-gp"}, "steps": 800},
    "MLP GAN": {"preset": "mnist-mlp", "overrides": {}, "steps": 2500},
    "self-cond. GAN": {"preset": "mnist-dcgan", "steps": 900,
                       "overrides": {**SMALL_DCGAN, "model.conditional": "projection",
                                     "stabilisers.self_condition": 20}},
    "VAE": {"preset": "fashion-vae", "steps": 3000,
            "overrides": {"model.name": "vae-conv", "model.z_dim": 32, "model.hidden": [32, 64],
                          "algorithm.kl_warmup": 500, "train.lr_schedule": "constant"}},
}
TRAIN_FAMILY = "DCGAN"
SETTINGS = {
    "full": {"step_divisor": 1, "n_train": 4000, "n_test": 2000, "cnn_epochs": 8, "n_spectra": 2000},
    "quick": {"step_divisor": 10, "n_train": 1000, "n_test": 500, "cnn_epochs": 3, "n_spectra": 500},
}
DETECTORS = ("spectrum", "cnn")


def slug(family: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in family.lower()).strip("-").replace("--", "-")


def family_config(family: str, steps: int):
    spec = FAMILIES[family]
    overrides = {"seed": 0, **spec["overrides"], "data": dict(MNIST), "train.steps": steps,
                 "train.threads": 1, "train.sample_every": steps, "train.checkpoint_every": steps,
                 "train.log_every": 50}
    return load_config(spec["preset"], overrides=overrides)


def train_family(family: str, steps: int, root: Path) -> tuple[Path, float, bool]:
    """The cached run of ``family`` at ``steps`` (trained now if absent): (dir, seconds, cached)."""
    run_dir = root / f"{slug(family)}-{steps}"
    timings = root / "train_seconds.json"
    recorded = json.loads(timings.read_text()) if timings.is_file() else {}
    if (run_dir / "checkpoints" / "final.pt").is_file() and run_dir.name in recorded:
        return run_dir, recorded[run_dir.name], True
    if run_dir.exists():  # an interrupted earlier attempt
        from ganforge.train.rundir import clear_run

        clear_run(run_dir)
    cfg = family_config(family, steps)
    print(f"training {family} ({cfg.algorithm['name']}, {cfg.model['name']}) for {steps} steps -> {run_dir}",
          flush=True)
    start = time.perf_counter()
    Trainer(cfg, run_dir, progress=False).fit()
    seconds = time.perf_counter() - start
    recorded = json.loads(timings.read_text()) if timings.is_file() else {}
    timings.write_text(json.dumps({**recorded, run_dir.name: seconds}, indent=2) + "\n")
    return run_dir, seconds, False


def _shown(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it (result files name no machine)."""
    path = path.absolute()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def mean_std(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def spectra_figure(spectra: dict[str, np.ndarray], size: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    freq = np.arange(len(spectra["real"])) / (size / 2)  # 1 = the Nyquist frequency along an axis
    fig, (ax, dx) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, s in spectra.items():
        style = {"color": "black", "linewidth": 2.5} if name == "real" else {"linewidth": 1.5}
        ax.plot(freq, s, label=name if name != "real" else "real (MNIST)", **style)
        if name != "real":
            dx.plot(freq, s - spectra["real"], label=name, **style)
    dx.axhline(0, color="black", linewidth=1)
    ax.set(xlabel="spatial frequency (1 = Nyquist along an axis)", ylabel="mean log power",
           title="Mean 1-D power spectrum (azimuthal average)")
    dx.set(xlabel="spatial frequency (1 = Nyquist along an axis)", ylabel="difference in log power",
           title="Generator minus real")
    ax.legend(fontsize=8)
    dx.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1/10 of the steps, fewer images and epochs")
    parser.add_argument("--runs", type=Path, help="cache of trained runs (default runs/forensics-bench/MODE)")
    parser.add_argument("--seeds", type=int, default=3, help="detector seeds (default 3)")
    parser.add_argument("--figure", type=Path, help=f"spectra figure (default {FIGURE.relative_to(REPO)} "
                                                     "for a full run, none for --quick)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").exists():
        print(f"skipped: the MNIST test split is not at {SHARED_MNIST}")
        return 0
    mode = "quick" if args.quick else "full"
    setting = SETTINGS[mode]
    root = args.runs or REPO / "runs" / "forensics-bench" / mode
    root.mkdir(parents=True, exist_ok=True)

    real = build_dataset(MNIST).x
    order = torch.randperm(len(real), generator=torch.Generator().manual_seed(0))
    pool_a, pool_b = real[order[: len(real) // 2]], real[order[len(real) // 2:]]

    families: dict[str, dict[str, Any]] = {}
    for family, spec in FAMILIES.items():
        steps = max(1, spec["steps"] // setting["step_divisor"])
        run_dir, seconds, cached = train_family(family, steps, root)
        families[family] = {"preset": spec["preset"], "overrides": spec["overrides"], "steps": steps,
                            "train_seconds": round(seconds, 1), "cached": cached, "run_dir": _shown(run_dir),
                            "run": load_run(run_dir)}
        print(f"  {family}: {steps} steps, {seconds:.0f} s{' (cached)' if cached else ''}", flush=True)

    rows: list[dict[str, Any]] = []
    fit_seconds: dict[str, list[float]] = {d: [] for d in DETECTORS}
    n_train, n_test = setting["n_train"], setting["n_test"]
    for seed in range(args.seeds):
        g = torch.Generator().manual_seed(seed)
        real_train = pool_a[torch.randperm(len(pool_a), generator=g)[:n_train]]
        real_test = pool_b[torch.randperm(len(pool_b), generator=g)[:n_test]]
        fake_train = quantise_8bit(families[TRAIN_FAMILY]["run"].sample(n_train, seed=100 + seed))
        fakes_test = {f: quantise_8bit(info["run"].sample(n_test, seed=1000 + seed))
                      for f, info in families.items()}
        for kind in DETECTORS:
            params = {"epochs": setting["cnn_epochs"]} if kind == "cnn" else {}
            start = time.perf_counter()
            detector = fit_detector(kind, real_train, fake_train, seed=seed, **params)
            fit_seconds[kind].append(time.perf_counter() - start)
            for family, fake in fakes_test.items():
                m = evaluate(detector, real_test, fake)
                rows.append({"detector": kind, "seed": seed, "test_family": family, **m})
            aucs = ", ".join(f"{r['test_family']} {r['auc']:.3f}" for r in rows[-len(families):])
            print(f"seed {seed} {kind}: fit {fit_seconds[kind][-1]:.1f} s; AUC {aucs}", flush=True)

    summary = []
    for kind in DETECTORS:
        for family in families:
            picked = [r for r in rows if r["detector"] == kind and r["test_family"] == family]
            auc, auc_sd = mean_std([r["auc"] for r in picked])
            acc, acc_sd = mean_std([r["accuracy"] for r in picked])
            summary.append({"detector": kind, "trained on": f"{TRAIN_FAMILY} vs real",
                            "tested on": family + (" (same family)" if family == TRAIN_FAMILY else ""),
                            "AUC": f"{auc:.3f} ± {auc_sd:.3f}", "accuracy": f"{acc:.3f} ± {acc_sd:.3f}",
                            "auc_mean": auc, "auc_std": auc_sd, "accuracy_mean": acc, "accuracy_std": acc_sd})
    print()
    print_table([{"family": f, "preset": info["preset"], "steps": info["steps"],
                  "train seconds": info["train_seconds"]} for f, info in families.items()],
                ["family", "preset", "steps", "train seconds"])
    print()
    print_table(summary, ["detector", "trained on", "tested on", "AUC", "accuracy"])

    n_spec = setting["n_spectra"]
    spectra = {"real": radial_spectrum(pool_b[:n_spec]).mean(0)}
    for family, info in families.items():
        spectra[family] = radial_spectrum(quantise_8bit(info["run"].sample(n_spec, seed=5000))).mean(0)
    figure = args.figure or (None if args.quick else FIGURE)
    if figure is not None:
        spectra_figure(spectra, real.shape[-1], figure)
        print(f"figure: {figure}")

    payload = {
        "protocol": {
            "real": "MNIST test split, 28x28; pool A (5000, seed-0 split) trains, pool B (5000) tests",
            "generators": "trained once (seed 0) on all 10,000 images, one CPU thread, fixed step budget",
            "train_family": TRAIN_FAMILY, "n_train_per_class": n_train, "n_test_per_class": n_test,
            "seeds": args.seeds, "cnn_epochs": setting["cnn_epochs"], "mode": mode,
            "std": "sample std over seeds (ddof 1)",
        },
        "families": {f: {k: v for k, v in info.items() if k != "run"} for f, info in families.items()},
        "fit_seconds": {k: mean_std(v)[0] for k, v in fit_seconds.items()},
        "summary": [{k: v for k, v in s.items() if k not in ("AUC", "accuracy")} for s in summary],
        "rows": rows,
        "mean_log_spectra": {k: v.round(4).tolist() for k, v in spectra.items()},
        "figure": _shown(figure) if figure is not None else None,
    }
    path = write_result("forensics_quick" if args.quick else "forensics", payload)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
