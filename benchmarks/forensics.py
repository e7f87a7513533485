"""Cross-generator forensics: a detector trained on one GAN's images, tested on other generators'.

Protocol ``one-family`` (the default; Wang et al. 2020 ask the same question of ProGAN -> other
GANs; Durall et al. 2020 show the spectral cue):

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

``--protocol lofo``: leave one family out, on Fashion-MNIST at 32 px. Does a detector trained on
many GAN families spot a family it has never seen?

* Real data: the Fashion-MNIST test split (10,000 images, 28 px centred on 32 x 32 as the fashion
  presets pad them; ../shared/data/fashion-mnist beside the repository, skipped with a note when
  absent), split once (seed 0) into pool A (5,000: the detectors' real training images) and pool
  B (5,000: the real test images).
* Generators: eleven families, each trained once (seed 0) on the 60,000 training images at
  32 px from its preset, for ``--budget`` CPU seconds (default 180; ``--quick`` 15) of one thread
  (``_common.train_for_budget``; the steps that fit are recorded), ``--jobs`` (default 2) at a
  time, cached under ``--runs`` (default runs/forensics-lofo/MODE/FAMILY, with FAMILY.json
  beside it holding the budget, steps and CPU seconds; a rerun at the same budget skips
  training): DCGAN (``fashion-dcgan``), WGAN-GP (the same with ``loss.name=wgan-gp``), ProGAN
  (``fashion-progan``; its growth schedule fitted to 90% of the budget from each resolution's
  measured step time, as benchmarks/generators.py does), StyleGAN (``fashion-stylegan``),
  StyleGAN2 (``fashion-stylegan2``), BigGAN (``fashion-biggan``), the VAE (``fashion-vae``,
  padded to 32 px; its samples are the decoder means), StackGAN (``fashion-stackgan``: its run
  samples without extra input, captions drawn from its caption bank; stage I gets half the
  budget, from its measured step time, so stage II trains too), the self-conditioned GAN
  (``fashion-dcgan`` with ``model.conditional=projection``, ``stabilisers.self_condition=20``),
  DP-GAN (``fashion-dpgan`` padded to 32 px, (epsilon 10, delta 1e-5)-DP: its noise is planned
  from ``train.steps``, so ``train.steps`` is set to the steps that fit 95% of the budget (from
  the measured step time) and training stops there, never past the privacy budget) and the MLP
  GAN (``mnist-mlp`` pointed at Fashion-MNIST padded to 32 px). Every run must ``sample``
  (n, 1, 32, 32) images (checked after training; none had to be dropped).
* Detectors: for each held-out family F and seeds 0, 1, 2, ``spectrum``, ``cnn`` and
  ``combined`` are trained on N_train real images of pool A vs N_train samples drawn equally
  from the ten other families, and tested on N_test real images of pool B vs N_test fresh
  samples (other seeds) of F: ROC AUC and accuracy at p = 0.5. N_train = 2,500 per class (250
  samples of each other family), N_test = 1,000, 8 CNN epochs (``--quick``: 500, 300, 3), sized
  from a measured CNN fit (about 0.5 ms of CPU per image and epoch at 32 px, augmentation
  included: 23 CPU s per fit) so the 33 (seed, F) cells need about 7 minutes of 2 idle cores
  (14 minutes measured while another two-process benchmark shared the machine). Every image is
  rounded to 8-bit levels. The CNN (alone and in ``combined``) trains with blur, JPEG and random-resize
  augmentation (``p_resize`` 0.5). ``combined`` averages the two detectors' probabilities; as
  fitting it with a seed fits exactly those two detectors, it is built from the fitted
  ``spectrum`` and ``cnn`` (``CombinedDetector.from_parts``) rather than fitted twice. The
  (seed, F) fits run ``--jobs`` at a time. Table: AUC per held-out family, mean +- sample std
  over seeds; the mean row averages over the families (its std is over the seeds' means).
* Figure: the mean 1-D spectra of pool B and of each family's samples,
  docs/figures/forensics_lofo_spectra.png.

    python benchmarks/forensics.py --protocol lofo [--quick] [--budget 180] [--jobs 2] [--seeds 3]

Results: benchmarks/results/forensics_lofo.json (``--quick``: forensics_lofo_quick.json).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    SHARED_FASHION,
    SHARED_MNIST,
    fashion_overrides,
    print_table,
    train_for_budget,
    write_result,
)
from ganforge import build_dataset, load_config, load_run  # noqa: E402
from ganforge.forensics import CombinedDetector, evaluate, fit_detector, radial_spectrum  # noqa: E402
from ganforge.forensics.augment import P_RESIZE  # noqa: E402
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


def spectra_figure(spectra: dict[str, np.ndarray], size: int, path: Path,
                   real_label: str = "real (MNIST)") -> None:
    """The mean 1-D spectra (``spectra["real"]`` in black, labelled ``real_label``) and each
    generator's difference from the real one; more than ten generators get tab20's colours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    freq = np.arange(len(spectra["real"])) / (size / 2)  # 1 = the Nyquist frequency along an axis
    fig, (ax, dx) = plt.subplots(1, 2, figsize=(11, 4.2))
    many = len(spectra) - 1 > 10
    for k, (name, s) in enumerate(spectra.items()):
        style = {"color": "black", "linewidth": 2.5} if name == "real" else {"linewidth": 1.5}
        if many and name != "real":
            style["color"] = plt.cm.tab20(k % 20)
        ax.plot(freq, s, label=name if name != "real" else real_label, **style)
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


def write_payload(name: str, payload: dict[str, Any], rows: list[dict[str, Any]],
                  spectra: dict[str, np.ndarray], figure: Path | None) -> int:
    """benchmarks/results/NAME.json: ``payload`` with the per-seed rows, the mean spectra and the
    figure's path; says where it went."""
    path = write_result(name, {**payload, "rows": rows,
                               "mean_log_spectra": {k: v.round(4).tolist() for k, v in spectra.items()},
                               "figure": _shown(figure) if figure is not None else None})
    print(f"results: {path}")
    return 0


# --------------------------------------------------------------------------- leave one family out

LOFO_FIGURE = REPO / "docs" / "figures" / "forensics_lofo_spectra.png"
LOFO_QUIET = {"train.log_every": 10**9, "train.sample_every": 10**9, "train.checkpoint_every": 10**9}
FASHION_32 = {"name": "fashion-mnist", "root": str(SHARED_FASHION), "size": 28, "pad_to": 32,
              "download": False}
#: family -> preset, overrides, and ``schedule``: how the steps that depend on ``train.steps`` are fitted
#: to the budget (``progan``: the growth; ``stackgan``: stage I's length; ``private``: the DP noise plan)
LOFO_FAMILIES: dict[str, dict[str, Any]] = {
    "DCGAN": {"preset": "fashion-dcgan", "overrides": {}},
    "WGAN-GP": {"preset": "fashion-dcgan", "overrides": {"loss.name": "wgan-gp"}},
    "ProGAN": {"preset": "fashion-progan", "overrides": {}, "schedule": "progan"},
    "StyleGAN": {"preset": "fashion-stylegan", "overrides": {}},
    "StyleGAN2": {"preset": "fashion-stylegan2", "overrides": {}},
    "BigGAN": {"preset": "fashion-biggan", "overrides": {}},
    "VAE": {"preset": "fashion-vae", "overrides": {"data.pad_to": 32}},
    "StackGAN": {"preset": "fashion-stackgan", "overrides": {}, "schedule": "stackgan"},
    "self-cond. GAN": {"preset": "fashion-dcgan",
                       "overrides": {"model.conditional": "projection", "stabilisers.self_condition": 20}},
    "DP-GAN": {"preset": "fashion-dpgan", "overrides": {"data.pad_to": 32}, "schedule": "private"},
    "MLP GAN": {"preset": "mnist-mlp", "overrides": {"data": {**FASHION_32, "split": "train"}}},
}
LOFO_SETTINGS = {
    "full": {"budget": 180.0, "n_train": 2500, "n_test": 1000, "cnn_epochs": 8, "n_spectra": 2000},
    "quick": {"budget": 15.0, "n_train": 500, "n_test": 300, "cnn_epochs": 3, "n_spectra": 500},
}
LOFO_DETECTORS = ("spectrum", "cnn", "combined")
#: share of the budget the fitted schedules plan for (ProGAN's growth, DP-GAN's steps)
PROGAN_SHARE, PRIVATE_SHARE, STAGE1_SHARE = 0.9, 0.95, 0.5


def lofo_base(family: str) -> dict[str, Any]:
    """The overrides of ``family``'s run: the shared data, one thread, no logs, seed 0."""
    spec = LOFO_FAMILIES[family]
    data = {} if "data" in spec["overrides"] else fashion_overrides(None)
    return {**data, **LOFO_QUIET, "seed": 0, "train.threads": 1, **spec["overrides"]}


def fitted_schedule(family: str, budget: float, base: dict[str, Any]) -> dict[str, Any]:
    """The overrides that fit ``family``'s step-dependent schedule to ``budget`` CPU seconds, from
    measured step times (benchmarks/generators.py's timing); {} for a family without one."""
    from generators import fitted_steps, measured_step_seconds

    schedule = LOFO_FAMILIES[family].get("schedule")
    if schedule is None:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if schedule == "progan":  # generators.py's fit, read from its own family table
            return fitted_steps("ProGAN", PROGAN_SHARE * budget, base, work)[1]
        cfg = load_config(LOFO_FAMILIES[family]["preset"], overrides=base)
        seconds = measured_step_seconds(cfg, work, warmup=2, timed=5)
    if schedule == "stackgan":  # stage I (16 px) for half the budget, stage II (32 px) after it
        stage1 = max(5, int(STAGE1_SHARE * budget / seconds))
        return {"algorithm.stage1_steps": stage1, "train.steps": 2 * stage1}
    if schedule == "private":  # the DP noise is planned for exactly these steps
        return {"train.steps": max(2, int(PRIVATE_SHARE * budget / seconds))}
    raise ValueError(f"unknown schedule {schedule!r}")


def train_capped(preset: str, overrides: dict[str, Any], budget: float, run_dir: Path):
    """``train_for_budget``, but also stopping at ``train.steps`` and at the algorithm's
    ``stop_reason`` (DP-GAN: one more update would spend more than epsilon)."""
    from ganforge.train import Trainer

    torch.set_num_threads(1)
    trainer = Trainer(load_config(preset, overrides=overrides), run_dir, progress=False)
    spent, start_wall = 0.0, time.perf_counter()
    while (spent < budget and trainer.step < trainer.cfg.train.steps
           and not trainer.algorithm.stop_reason(trainer.step)):
        start = time.process_time()
        trainer.train_step()
        spent += time.process_time() - start
    return trainer, {"steps": trainer.step, "train_cpu_seconds": spent,
                     "train_wall_seconds": time.perf_counter() - start_wall}


def train_lofo_family(job: tuple[str, float, str]) -> dict[str, Any]:
    """Train ``family`` for ``budget`` CPU seconds into ``run_dir`` (a worker process); its
    record: steps, CPU and wall seconds, the overrides used."""
    from ganforge.config import save_config

    family, budget, run_dir = job[0], job[1], Path(job[2])
    torch.set_num_threads(1)
    spec = LOFO_FAMILIES[family]
    base = lofo_base(family)
    start = time.process_time()
    fitted = fitted_schedule(family, budget, base)
    schedule_seconds = time.process_time() - start
    overrides = {**base, **fitted}
    trainer_fn = train_capped if spec.get("schedule") == "private" else train_for_budget
    trainer, info = trainer_fn(spec["preset"], overrides, budget, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(trainer.cfg, run_dir / "config.yaml")
    trainer.save("final.pt")
    record = {"family": family, "preset": spec["preset"], "budget_cpu_seconds": budget, **info,
              "schedule_overrides": fitted, "schedule_timing_cpu_seconds": round(schedule_seconds, 1),
              "overrides": {k: v for k, v in spec["overrides"].items()}}
    if spec.get("schedule") == "private":
        record["privacy"] = trainer.algorithm.privacy_summary()
    return record


def lofo_runs(budget: float, root: Path, jobs: int) -> dict[str, dict[str, Any]]:
    """Every family's run under ``root``: trained now (``jobs`` at a time) unless cached at this
    budget. Returns family -> record (with ``run_dir``, ``cached``)."""
    from ganforge.train.rundir import clear_run

    records: dict[str, dict[str, Any]] = {}
    todo = []
    for family in LOFO_FAMILIES:
        run_dir, info_file = root / slug(family), root / f"{slug(family)}.json"
        if (run_dir / "checkpoints" / "final.pt").is_file() and info_file.is_file():
            record = json.loads(info_file.read_text())
            if record.get("budget_cpu_seconds") == budget:
                records[family] = {**record, "cached": True}
                continue
            print(f"  {family}: cached at {record.get('budget_cpu_seconds')} CPU s, not {budget:g}: "
                  "retraining")
        if run_dir.exists():  # an interrupted attempt, or another budget
            clear_run(run_dir)  # refuses a folder holding anything a run did not write
            shutil.rmtree(run_dir)  # what is left: the lock file
        info_file.unlink(missing_ok=True)
        todo.append((family, budget, str(run_dir)))
    if todo:
        print(f"training {len(todo)} families for {budget:g} CPU s each, {jobs} at a time -> {root}",
              flush=True)
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for record in pool.map(train_lofo_family, todo):
                info_file = root / f"{slug(record['family'])}.json"
                info_file.write_text(json.dumps(record, indent=2) + "\n")
                records[record["family"]] = {**record, "cached": False}
                print(f"  {record['family']}: {record['steps']} steps in "
                      f"{record['train_cpu_seconds']:.0f} CPU s ({record['train_wall_seconds']:.0f} s wall)",
                      flush=True)
    for family in LOFO_FAMILIES:
        records[family]["run_dir"] = _shown(root / slug(family))
    return {f: records[f] for f in LOFO_FAMILIES}


def split_evenly(n: int, parts: int) -> list[int]:
    """``n`` as ``parts`` counts differing by at most one (the larger first)."""
    return [n // parts + (k < n % parts) for k in range(parts)]


def fit_and_score(job: dict[str, Any]) -> dict[str, Any]:
    """One (seed, held-out family) cell (a worker process): fit ``spectrum`` and ``cnn`` on the
    training images, combine them, and score all three on the test images."""
    torch.set_num_threads(1)
    seed, params = job["seed"], job["cnn"]
    fitted, seconds = {}, {}
    for kind in ("spectrum", "cnn"):
        start = time.process_time()
        fitted[kind] = fit_detector(kind, job["real_train"], job["fake_train"], seed=seed,
                                    **(params if kind == "cnn" else {}))
        seconds[kind] = time.process_time() - start
    fitted["combined"] = CombinedDetector.from_parts(fitted["spectrum"], fitted["cnn"])
    seconds["combined"] = seconds["spectrum"] + seconds["cnn"]
    rows = []
    for kind in LOFO_DETECTORS:
        m = evaluate(fitted[kind], job["real_test"], job["fake_test"])
        rows.append({"detector": kind, "seed": seed, "held_out": job["held_out"], **m,
                     "fit_cpu_seconds": round(seconds[kind], 2)})
    return {"rows": rows, "final_cnn_loss": fitted["cnn"].losses[-1]}


def lofo_jobs(runs: dict[str, Any], pool_a: torch.Tensor, pool_b: torch.Tensor, n_train: int, n_test: int,
              seeds: int, cnn: dict[str, Any]):
    """The (seed, held-out family) cells, one seed's samples drawn at a time: training fakes
    with sample seeds 100 + seed, test fakes with 1000 + seed."""
    families = list(runs)
    for seed in range(seeds):
        g = torch.Generator().manual_seed(seed)
        real_train = quantise_8bit(pool_a[torch.randperm(len(pool_a), generator=g)[:n_train]])
        real_test = quantise_8bit(pool_b[torch.randperm(len(pool_b), generator=g)[:n_test]])
        per_family = -(-n_train // (len(families) - 1))
        train_pool = {f: quantise_8bit(run.sample(per_family, seed=100 + seed)) for f, run in runs.items()}
        test_pool = {f: quantise_8bit(run.sample(n_test, seed=1000 + seed)) for f, run in runs.items()}
        for held_out in families:
            others = [f for f in families if f != held_out]
            fake_train = torch.cat([train_pool[f][:k] for f, k in zip(
                others, split_evenly(n_train, len(others)), strict=True)])
            yield {"seed": seed, "held_out": held_out, "real_train": real_train, "fake_train": fake_train,
                   "real_test": real_test, "fake_test": test_pool[held_out], "cnn": cnn}


def lofo(args: argparse.Namespace) -> int:
    """The leave-one-family-out protocol on Fashion-MNIST at 32 px (module docstring)."""
    needed = ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz")
    if not all((SHARED_FASHION / name).exists() for name in needed):
        print(f"skipped: Fashion-MNIST (train and test splits) is not at {SHARED_FASHION}")
        return 0
    mode = "quick" if args.quick else "full"
    setting = LOFO_SETTINGS[mode]
    budget = float(args.budget if args.budget is not None else setting["budget"])
    root = args.runs or REPO / "runs" / "forensics-lofo" / mode
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    real = build_dataset({**FASHION_32, "split": "test"}).x
    order = torch.randperm(len(real), generator=torch.Generator().manual_seed(0))
    pool_a, pool_b = real[order[: len(real) // 2]], real[order[len(real) // 2:]]

    families = lofo_runs(budget, root, args.jobs)
    runs = {}
    for family in families:
        run = load_run(root / slug(family))
        x = run.sample(4, seed=0)
        if tuple(x.shape) != (4, *real.shape[1:]):
            raise SystemExit(f"{family} samples {tuple(x.shape[1:])}, not {tuple(real.shape[1:])} images")
        runs[family] = run
    train_seconds = time.perf_counter() - started

    n_train, n_test = setting["n_train"], setting["n_test"]
    cnn = {"epochs": setting["cnn_epochs"], "p_resize": P_RESIZE}
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    cnn_losses = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for out in pool.map(fit_and_score, lofo_jobs(runs, pool_a, pool_b, n_train, n_test, args.seeds, cnn)):
            rows.extend(out["rows"])
            cnn_losses.append(out["final_cnn_loss"])
            r = out["rows"]
            print(f"seed {r[0]['seed']} held out {r[0]['held_out']}: AUC "
                  + ", ".join(f"{x['detector']} {x['auc']:.3f}" for x in r)
                  + f" (cnn fit {r[1]['fit_cpu_seconds']:.0f} CPU s)", flush=True)
    detector_seconds = time.perf_counter() - start

    def picked(kind: str, family: str | None = None) -> list[dict[str, Any]]:
        return [r for r in rows if r["detector"] == kind and (family is None or r["held_out"] == family)]

    table, summary = [], []
    for family in families:
        line: dict[str, Any] = {"held-out family": family}
        for kind in LOFO_DETECTORS:
            auc, auc_sd = mean_std([r["auc"] for r in picked(kind, family)])
            acc, acc_sd = mean_std([r["accuracy"] for r in picked(kind, family)])
            line[f"{kind} AUC"] = f"{auc:.3f} ± {auc_sd:.3f}"
            summary.append({"detector": kind, "held_out": family, "auc_mean": auc, "auc_std": auc_sd,
                            "accuracy_mean": acc, "accuracy_std": acc_sd})
        table.append(line)
    lofo_mean: dict[str, dict[str, float]] = {}
    mean_line: dict[str, Any] = {"held-out family": "mean"}
    for kind in LOFO_DETECTORS:
        per_seed = [float(np.mean([r["auc"] for r in picked(kind) if r["seed"] == seed]))
                    for seed in range(args.seeds)]
        acc_seed = [float(np.mean([r["accuracy"] for r in picked(kind) if r["seed"] == seed]))
                    for seed in range(args.seeds)]
        auc, auc_sd = mean_std(per_seed)
        acc, acc_sd = mean_std(acc_seed)
        lofo_mean[kind] = {"auc_mean": auc, "auc_std": auc_sd, "accuracy_mean": acc, "accuracy_std": acc_sd,
                           "auc_per_seed": per_seed}
        mean_line[f"{kind} AUC"] = f"{auc:.3f} ± {auc_sd:.3f}"
    table.append(mean_line)
    best = max(LOFO_DETECTORS, key=lambda k: lofo_mean[k]["auc_mean"])

    print()
    print_table([{"family": f, "preset": r["preset"], "steps": r["steps"],
                  "train CPU s": round(r["train_cpu_seconds"], 1), "cached": r["cached"]}
                 for f, r in families.items()], ["family", "preset", "steps", "train CPU s", "cached"])
    print()
    print_table(table, ["held-out family", *(f"{k} AUC" for k in LOFO_DETECTORS)])
    print(f"\nbest detector: {best}, mean LOFO AUC {lofo_mean[best]['auc_mean']:.3f} "
          f"({'meets' if lofo_mean[best]['auc_mean'] >= 0.9 else 'misses'} the 0.9 target); "
          f"detectors took {detector_seconds / 60:.1f} min")

    n_spec = setting["n_spectra"]
    spectra = {"real": radial_spectrum(quantise_8bit(pool_b[:n_spec])).mean(0)}
    for family, run in runs.items():
        spectra[family] = radial_spectrum(quantise_8bit(run.sample(n_spec, seed=5000))).mean(0)
    figure = args.figure or (None if args.quick else LOFO_FIGURE)
    if figure is not None:
        spectra_figure(spectra, real.shape[-1], figure, real_label="real (Fashion-MNIST)")
        print(f"figure: {figure}")

    payload = {
        "protocol": {
            "name": "leave one family out",
            "real": "Fashion-MNIST test split, 28 px padded to 32x32; pool A (5000, seed-0 split) trains, "
                    "pool B (5000) tests",
            "generators": "trained once (seed 0) on the 60,000 training images at 32 px, one CPU thread "
                          f"each, for a budget of {budget:g} CPU seconds (train_for_budget)",
            "train": "n_train pool-A reals vs n_train samples drawn equally from the other families",
            "test": "n_test pool-B reals vs n_test fresh samples of the held-out family",
            "n_train_per_class": n_train, "n_test_per_class": n_test, "seeds": args.seeds,
            "cnn_epochs": setting["cnn_epochs"], "cnn_augmentation": {"p_blur": 0.5, "p_jpeg": 0.5,
                                                                      "p_resize": P_RESIZE},
            "combined": "mean of the spectrum and cnn detectors' P(generated) (from_parts of the fitted two)",
            "quantised": "every image rounded to 8-bit levels", "mode": mode, "jobs": args.jobs,
            "std": "sample std over seeds (ddof 1); the mean row's std is over the seeds' family means",
        },
        "families": families,
        "train_wall_seconds": round(train_seconds, 1),
        "detector_wall_seconds": round(detector_seconds, 1),
        "fit_cpu_seconds": {k: float(np.mean([r["fit_cpu_seconds"] for r in picked(k)]))
                            for k in LOFO_DETECTORS},
        "lofo_mean": lofo_mean, "best_detector": best,
        "target_auc": 0.9, "target_met": lofo_mean[best]["auc_mean"] >= 0.9,
        "summary": summary,
    }
    return write_payload("forensics_lofo_quick" if args.quick else "forensics_lofo", payload, rows, spectra,
                         figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--protocol", choices=("one-family", "lofo"), default="one-family",
                        help="one-family: train on DCGAN vs MNIST, test on five families (default); "
                             "lofo: leave one of eleven families out, on Fashion-MNIST at 32 px")
    parser.add_argument("--quick", action="store_true", help="1/10 of the steps (lofo: 15 CPU s per "
                                                             "family), fewer images and epochs")
    parser.add_argument("--runs", type=Path, help="cache of trained runs (default runs/forensics-bench/MODE, "
                                                  "lofo: runs/forensics-lofo/MODE)")
    parser.add_argument("--seeds", type=int, default=3, help="detector seeds (default 3)")
    parser.add_argument("--figure", type=Path, help=f"spectra figure (default {FIGURE.relative_to(REPO)}, "
                                                     f"lofo: {LOFO_FIGURE.relative_to(REPO)}, for a full "
                                                     "run; none for --quick)")
    parser.add_argument("--budget", type=float, help=f"lofo: CPU seconds of training per family (default "
                                                     f"{LOFO_SETTINGS['full']['budget']:g}, --quick "
                                                     f"{LOFO_SETTINGS['quick']['budget']:g})")
    parser.add_argument("--jobs", type=int, default=2, help="lofo: processes at a time, one thread each "
                                                            "(default 2)")
    args = parser.parse_args(argv)
    if args.protocol == "one-family" and args.budget is not None:
        parser.error("--budget applies to --protocol lofo")
    if args.budget is not None and args.budget <= 0:
        parser.error("--budget must be positive")
    if args.jobs < 1 or args.seeds < 1:
        parser.error("--jobs and --seeds must be at least 1")
    torch.set_num_threads(1)
    if args.protocol == "lofo":
        return lofo(args)
    return one_family(args)


def one_family(args: argparse.Namespace) -> int:
    """The one-family protocol (train on DCGAN vs MNIST, test on five families)."""
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
    }
    return write_payload("forensics_quick" if args.quick else "forensics", payload, rows, spectra, figure)


if __name__ == "__main__":
    sys.exit(main())
