"""Video on Moving MNIST: next-frame prediction (MSE vs Mathieu et al.'s adversarial training) and
MoCoGAN clip generation, at one CPU-time budget per model, with seeds.

* Data: Moving MNIST made by ``data.name=moving-mnist`` (two digits bouncing in 64x64 frames,
  20 frames: 10 observed, 10 to predict). Training sequences are drawn fresh from the training
  digits; the fixed test set (10,000 sequences; ``--quick``: 200) is built from held-out digits
  (here the MNIST test split's last 2,000 images when its training split is absent; the dataset
  says which).
* Models (presets): ``MSE`` = ``moving-mnist-convlstm`` (ConvLSTM, MSE only), ``adversarial`` =
  ``moving-mnist-adversarial`` (the same network, MSE + gradient difference loss + a 2-scale D,
  weights 1 / 1 / 0.05), ``MoCoGAN`` = ``moving-mnist-mocogan`` (10-frame clips). Each trains for
  ``--budget`` CPU seconds of one thread (the step count follows from its speed), seeds 0, 1, 2,
  ``--jobs`` processes at a time.
* Scores: per predicted frame (horizon 1..10) on the test set: MSE (sum of squared errors per
  frame, pixels in [0, 1], the PredRNN table's convention), PSNR, SSIM, the gradient energy ratio
  (1 = as sharp as the truth) and Mathieu's sharpness difference; two trivial baselines (copy the
  last observed frame, the mean observed frame) and a blank frame (background only, which
  shows what an error of ~180 means). MoCoGAN: the Frechet distance of per-frame LeNet
  features (``fd_lenet_frames``) and the temporal gaps (frame change, identity drift) against
  held-out clips, beside real-vs-real and frozen-real-clip references.
* Published rows (Moving MNIST, 10 -> 10, MSE per frame; PredRNN paper, Wang et al. 2017, table 1):
  ConvLSTM 103.3, PredRNN 56.8; trained for days of GPU time, here minutes of one CPU thread.

Figures (full run): docs/figures/video-strips.png (observed | truth | MSE | adversarial),
docs/figures/video-horizon.png (MSE and sharpness against horizon), docs/figures/video-*.gif.

    python benchmarks/video.py [--quick] [--budget 600] [--seeds 0,1,2] [--jobs 2] [--models MSE,...]

``--models`` reruns some models; the others' runs are kept from ``video.json``. ``--supplement``
(e.g. ``--budget 1800 --models MoCoGAN --seeds 0``) writes ``video_<budget>s.json`` beside it.
"""

from __future__ import annotations

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
from _common import (  # noqa: E402
    RESULTS,
    SHARED_MNIST,
    budget_parser,
    print_checks,
    print_table,
    train_for_budget,
    write_result,
)
from ganforge.data import build_dataset  # noqa: E402
from ganforge.data.sequence import held_out_clips  # noqa: E402
from ganforge.metrics.video import frame_features_fd, prediction_report, temporal_gap  # noqa: E402
from ganforge.train import Trainer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"
RUNS = RESULTS / "video_runs"
QUIET = {
    "train.sample_every": 10**9,
    "train.checkpoint_every": 10**9,
    "train.log_every": 50,
    "train.steps": 10**7,
}
PRESETS = {
    "MSE": "moving-mnist-convlstm",
    "adversarial": "moving-mnist-adversarial",
    "MoCoGAN": "moving-mnist-mocogan",
}
PREDICTORS = ("MSE", "adversarial")
DEFAULT = {"budget": 600.0, "test": 10_000, "clips": 1000, "seeds": (0, 1, 2)}
QUICK = {"budget": 20.0, "test": 200, "clips": 100, "seeds": (0,)}
#: published Moving MNIST rows (10 -> 10 frames, per-frame MSE): Wang et al. 2017 (PredRNN), table 1
PUBLISHED = {"ConvLSTM (Shi et al. 2015)": 103.3, "PredRNN (Wang et al. 2017)": 56.8}
TOLERANCE = {"adversarial_mse": 1.15, "published": 2.0}


def data_section(split: str, frames: int = 20, test: int = DEFAULT["test"]) -> dict[str, Any]:
    section = {
        "name": "moving-mnist",
        "split": split,
        "frames": frames,
        "size": 64,
        "num_digits": 2,
        "test_sequences": test,
    }
    if SHARED_MNIST.is_dir():
        section.update(root=str(SHARED_MNIST), download=False)
    return section


def overrides(seed: int) -> dict[str, Any]:
    over = {**QUIET, "seed": seed, "train.threads": 1}
    if SHARED_MNIST.is_dir():
        over.update({"data.root": str(SHARED_MNIST), "data.download": False})
    return over


# --------------------------------------------------------------------------- one run
def train_for(preset: str, seed: int, budget: float, run_dir: Path) -> tuple[Trainer, dict[str, Any]]:
    """Train ``preset`` for ``budget`` CPU seconds of this (one-thread) process."""
    trainer, info = train_for_budget(preset, overrides(seed), budget, run_dir)
    info["clips_per_cpu_second"] = trainer.step * trainer.cfg.train.batch_size / info["train_cpu_seconds"]
    return trainer, info


def runs_dir(tag: str) -> Path:
    """Where seed 0's predictions and clips are kept for the figures: the documented run's in
    ``video_runs``, a ``--quick`` or ``--supplement`` run's (``tag``) in a folder of its own."""
    return RUNS / tag if tag else RUNS


def run_one(job: tuple[str, int, float, int, int, str]) -> dict[str, Any]:
    """Train model ``label`` with ``seed``; its scores on the fixed test set."""
    label, seed, budget, n_test, n_clips, tag = job
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        trainer, info = train_for(PRESETS[label], seed, budget, Path(tmp) / "run")
        algorithm, G = trainer.algorithm, trainer.algorithm.generator
        out: dict[str, Any] = {"model": label, "preset": PRESETS[label], "seed": seed, **info}
        start = time.perf_counter()
        if label in PREDICTORS:
            test = build_dataset(data_section("test", test=n_test))
            report = prediction_report(
                lambda obs: algorithm.predict(obs, network=G),
                held_out_clips(test)[0],
                algorithm.observed,
                n=n_test,
                baselines=False,
            )
            out.update(per_horizon=report["metrics"], mean=report["mean"])
            observed = algorithm.observed
            real = test.fixed(min(n_clips, n_test))
            pred = algorithm.predict(real[:, :observed], network=G)
            out["fd_lenet_frames"] = frame_features_fd(real[:, observed:], pred)
            out.update(temporal_gap(pred, real[:, observed:]))
            if seed == 0:
                torch.save(
                    {"predicted": pred[:8].clone(), "observed": observed},
                    runs_dir(tag) / f"{label}_seed0_predictions.pt",
                )
        else:
            test = build_dataset(data_section("test", frames=algorithm.sample_shape[0], test=n_test))
            m = min(n_clips, n_test)
            clips = algorithm.sample_clips(m, torch.Generator().manual_seed(10_000 + seed), G)
            real = test.fixed(m)
            out["fd_lenet_frames"] = frame_features_fd(real, clips)
            out.update(temporal_gap(clips, real))
            if seed == 0:
                torch.save({"clips": clips[:16].clone()}, runs_dir(tag) / f"{label}_seed0_clips.pt")
        out["eval_seconds"] = time.perf_counter() - start
        return out


# --------------------------------------------------------------------------- references
def references(n_test: int, n_clips: int) -> dict[str, Any]:
    """The trivial predictors' per-horizon scores and the clip references (real vs real, frozen)."""
    torch.set_num_threads(1)
    test = build_dataset(data_section("test", test=n_test))
    clips = held_out_clips(test)[0]
    report = prediction_report(lambda obs: obs[:, -1:].expand(-1, 10, -1, -1, -1), clips, 10, n=n_test)
    blank = prediction_report(lambda obs: torch.full_like(obs[:, -1:], -1.0).expand(-1, 10, -1, -1, -1),
                              clips, 10, n=n_test, baselines=False)
    report["baselines"]["blank"] = {"metrics": blank["metrics"], "mean": blank["mean"]}
    m = min(n_clips, n_test // 2)
    clip_test = build_dataset(data_section("test", frames=10, test=n_test))
    a, b = clip_test.fixed(m), clip_test.fixed(m, start=n_test - m)
    frozen = b[:, :1].expand_as(b).contiguous()
    clip_refs = {
        "real vs real": {"fd_lenet_frames": frame_features_fd(a, b), **temporal_gap(b, a)},
        "frozen real clips": {"fd_lenet_frames": frame_features_fd(a, frozen), **temporal_gap(frozen, a)},
    }
    return {
        "baselines": report["baselines"],
        "digit_source": test.digit_source,
        "clip_references": clip_refs,
    }


def summarise(runs: list[dict[str, Any]], refs: dict[str, Any]) -> dict[str, Any]:
    """Per model: mean and standard error over seeds of every score, per horizon too."""
    out: dict[str, Any] = {}
    for label in PRESETS:
        rows = [r for r in runs if r["model"] == label]
        if not rows:
            continue
        entry: dict[str, Any] = {
            "seeds": [r["seed"] for r in rows],
            "steps": [r["steps"] for r in rows],
            "train_cpu_seconds": [r["train_cpu_seconds"] for r in rows],
        }
        scalars = [k for k, v in rows[0].items() if isinstance(v, float) and k not in entry]
        for key in scalars:
            entry[key] = _mean_se([r[key] for r in rows])
        if label in PREDICTORS:
            entry["mean"] = {k: _mean_se([r["mean"][k] for r in rows]) for k in rows[0]["mean"]}
            entry["per_horizon"] = {
                k: [
                    _mean_se([r["per_horizon"][k][h] for r in rows])
                    for h in range(len(rows[0]["per_horizon"][k]))
                ]
                for k in rows[0]["per_horizon"]
            }
        out[label] = entry
    return out


def _mean_se(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    se = float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else float("nan")
    return {"mean": float(a.mean()), "se": se}


def checks(summary: dict[str, Any], refs: dict[str, Any]) -> dict[str, bool]:
    """The issue's targets."""
    copy_last = refs["baselines"]["copy_last"]["metrics"]["mse"]
    blank = refs["baselines"]["blank"]["metrics"]["mse"]
    out: dict[str, bool] = {}
    for label in PREDICTORS:
        if label in summary:
            mse = [h["mean"] for h in summary[label]["per_horizon"]["mse"]]
            out[f"{label} beats copy-last MSE at every horizon"] = all(
                m < c for m, c in zip(mse, copy_last, strict=True)
            )
            out[f"{label} within 2x of ConvLSTM's published MSE (103.3)"] = (
                summary[label]["mean"]["mse"]["mean"]
                <= TOLERANCE["published"] * PUBLISHED["ConvLSTM (Shi et al. 2015)"]
            )
            out[f"{label} below the blank frame's MSE at every horizon (not a target)"] = all(
                m < b for m, b in zip(mse, blank, strict=True))
    if all(label in summary for label in PREDICTORS):
        mse, adv = (summary[label]["per_horizon"]["gradient_energy_ratio"] for label in PREDICTORS)
        out["adversarial sharper (gradient energy ratio nearer 1) at every horizon"] = all(
            abs(a["mean"] - 1) < abs(m["mean"] - 1) for m, a in zip(mse, adv, strict=True)
        )
        out["adversarial MSE within 15% of the MSE predictor's"] = (
            summary["adversarial"]["mean"]["mse"]["mean"]
            <= TOLERANCE["adversarial_mse"] * summary["MSE"]["mean"]["mse"]["mean"]
        )
    return out


# --------------------------------------------------------------------------- figures
def figures(refs: dict[str, Any], summary: dict[str, Any], n_test: int, tag: str) -> list[str]:
    """The strips, GIFs and horizon curves (docs/figures; a tagged run's: benchmarks/results, suffixed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ganforge.data.kinds import Samples, get_kind

    written = []
    kind = get_kind("sequence")
    where, suffix, runs = (RESULTS, f"_{tag}", runs_dir(tag)) if tag else (FIGURES, "", RUNS)
    test = build_dataset(data_section("test", test=n_test))
    truth = test.fixed(8)
    panels = {"truth": truth}
    for label in PREDICTORS:
        saved = runs / f"{label}_seed0_predictions.pt"
        if saved.exists():
            blob = torch.load(saved, weights_only=True)
            panels[label] = torch.cat([truth[:, : blob["observed"]], blob["predicted"]], dim=1)
    if len(panels) > 1:
        samples = Samples(truth, {"observed": np.int64(10)}, panels=panels, title="observed | predicted")
        for ext in (".png", ".gif"):
            path = where / f"video-strips{suffix}{ext}"
            kind.writer(path).write(samples, path)
            written.append(str(path))
    saved = runs / "MoCoGAN_seed0_clips.pt"
    if saved.exists():
        path = where / f"video-mocogan{suffix}.gif"
        kind.writer(path).write(Samples(torch.load(saved, weights_only=True)["clips"], nrow=4), path)
        written.append(str(path))
    if any(label in summary for label in PREDICTORS):
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        horizons = np.arange(1, 11)
        for key, ax, title in (
            ("mse", axes[0], "MSE per frame (lower is better)"),
            ("gradient_energy_ratio", axes[1], "gradient energy / truth's (1 = as sharp)"),
        ):
            for name, values in refs["baselines"].items():
                ax.plot(horizons, values["metrics"][key], "--", label=name.replace("_", " "))
            for label in PREDICTORS:
                if label in summary:
                    m = np.array([h["mean"] for h in summary[label]["per_horizon"][key]])
                    se = np.nan_to_num(np.array([h["se"] for h in summary[label]["per_horizon"][key]]))
                    ax.errorbar(horizons, m, yerr=2 * se, marker="o", ms=3, capsize=2, label=label)
            if key == "mse":
                ax.axhline(
                    PUBLISHED["ConvLSTM (Shi et al. 2015)"],
                    color="grey",
                    lw=0.8,
                    ls=":",
                    label="ConvLSTM, published (mean)",
                )
            else:
                ax.axhline(1.0, color="grey", lw=0.8, ls=":")
            ax.set_xlabel("predicted frame (horizon)")
            ax.set_title(title, fontsize=10)
            ax.legend(fontsize=7)
        fig.tight_layout()
        path = where / f"video-horizon{suffix}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))
    return written


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = budget_parser(__doc__.splitlines()[0], "20 s per model, 200 test sequences, seed 0",
                           list(PRESETS))
    parser.add_argument("--supplement", action="store_true",
                        help="a run beside the documented one: video_<budget>s.json, its figures in "
                             "benchmarks/results, the references of video.json")
    args = parser.parse_args(argv)
    setting = QUICK if args.quick else DEFAULT
    budget = args.budget if args.budget is not None else setting["budget"]
    tag = "quick" if args.quick else f"{budget:.0f}s" if args.supplement else ""
    seeds = tuple(int(s) for s in args.seeds.split(",")) if args.seeds else setting["seeds"]
    models = [m for m in args.models.split(",") if m]
    if unknown := [m for m in models if m not in PRESETS]:
        parser.error(f"unknown model {unknown[0]!r}: choose from {', '.join(PRESETS)}")
    runs_dir(tag).mkdir(parents=True, exist_ok=True)
    FIGURES.mkdir(parents=True, exist_ok=True)
    jobs = [(label, seed, budget, setting["test"], setting["clips"], tag)
            for label in models for seed in seeds]
    previous = RESULTS / "video.json"
    merge = set(models) != set(PRESETS) and not tag and previous.exists()
    reuse = merge or (args.supplement and previous.exists())
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        refs_future = None if reuse else pool.submit(references, setting["test"], setting["clips"])
        runs = list(pool.map(run_one, jobs))
    if reuse:  # the references (and, merging, the other models' runs) as measured before
        before = json.loads(previous.read_text())
        refs = before["references"]
        if merge:
            kept = [r for r in before["runs"] if r["model"] not in models]
            print(f"kept the references and {len(kept)} runs of the other models from {previous.name}")
            runs = kept + runs
    else:
        refs = refs_future.result()
    summary = summarise(runs, refs)
    suffix = f"_{tag}" if tag else ""
    payload = {
        "budget_cpu_seconds": budget,
        "seeds": list(seeds),
        "test_sequences": setting["test"],
        "feature_clips": setting["clips"],
        "published_mse": PUBLISHED,
        "references": refs,
        "summary": summary,
        "runs": runs,
        "wall_seconds": time.perf_counter() - start,
    }
    payload["checks"] = checks(summary, refs)
    payload["figures"] = figures(refs, summary, setting["test"], tag)
    rows: list[dict[str, Any]] = []
    for name, values in refs["baselines"].items():
        rows.append({"model": name.replace("_", " "), **{k: values["mean"][k] for k in values["mean"]}})
    for label in PREDICTORS:
        if label in summary:
            rows.append(
                {
                    "model": label,
                    **{k: v["mean"] for k, v in summary[label]["mean"].items()},
                    "fd_lenet_frames": summary[label]["fd_lenet_frames"]["mean"],
                    "steps": sum(summary[label]["steps"]) / len(summary[label]["steps"]),
                }
            )
    print_table(
        rows,
        [
            "model",
            "mse",
            "psnr",
            "ssim",
            "gradient_energy_ratio",
            "sharpness_difference",
            "fd_lenet_frames",
            "steps",
        ],
    )
    if "MoCoGAN" in summary:
        clip_rows = [{"clips": name, **values} for name, values in refs["clip_references"].items()]
        clip_rows.append(
            {
                "clips": "MoCoGAN",
                **{
                    k: v["mean"] for k, v in summary["MoCoGAN"].items() if isinstance(v, dict) and "mean" in v
                },
            }
        )
        print_table(clip_rows, ["clips", "fd_lenet_frames", "frame_change_ratio", "identity_drift_ratio"])
    print_checks(payload["checks"])
    path = write_result(f"video{suffix}", payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
