"""DCGAN against ProGAN, StyleGAN, StyleGAN2 and BigGAN on Fashion-MNIST 32x32, at one wall-clock
budget per run.

Every family trains from its preset (``fashion-dcgan``, ``fashion-progan``, ``fashion-stylegan``,
``fashion-stylegan2``, ``fashion-biggan``; 28 px images centred on a 32x32 background) for the same
budget of training time, with 3 seeds: CPU seconds of the run's one thread (evaluation excluded),
which is its wall-clock time on an idle core and stays so when other work shares the machine. The
number of steps is fitted to the budget from the family's measured step time before the run
starts (ProGAN: each resolution timed), so that the schedules that depend on ``train.steps``
(ProGAN's growth) fit in it; a run also stops at 110% of the budget. Finished runs are kept in
``benchmarks/results/generators_runs/`` and skipped when the script is run again.

Scores, with the in-project Fashion-MNIST LeNet (``lenet_fashion``; samples centre-cropped back to
28 px, real = the test split): FID, precision / recall (k = 3) and density / coverage (k = 5) of
``--n`` samples from the generator the preset samples with (its EMA copy where it keeps one),
class match for the class-conditional BigGAN (the share of samples the LeNet assigns to the class
they were drawn for), training images/s and parameter counts. An EMA generator with BatchNorm
(DCGAN, BigGAN) gets BigGAN's standing statistics before it is scored. FID is also taken at evenly spaced
points of every run (fewer samples) for the FID-against-time curves.

Figures (seed 0, ``docs/figures/``): ProGAN's growth stages, StyleGAN's style-mixing grid and
noise variations, StyleGAN2's truncation strip, BigGAN's class-conditional grid and its
truncation sweep (precision and recall against psi), and the FID-against-time curves.

    python benchmarks/generators.py [--quick] [--budget 300] [--seeds 0,1,2] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, fashion_overrides, print_table, write_result  # noqa: E402
from ganforge import load_config  # noqa: E402
from ganforge.data import build_dataset  # noqa: E402
from ganforge.data.transforms import centre_crop  # noqa: E402
from ganforge.metrics.evaluate import Evaluator  # noqa: E402
from ganforge.train import Trainer  # noqa: E402
from ganforge.train.ema import standing_batchnorm_stats  # noqa: E402

FAMILIES = {"DCGAN": "fashion-dcgan", "ProGAN": "fashion-progan", "StyleGAN": "fashion-stylegan",
            "StyleGAN2": "fashion-stylegan2", "BigGAN": "fashion-biggan"}
QUIET = {"train.log_every": 10**9, "train.sample_every": 10**9, "train.checkpoint_every": 10**9}
FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"
#: --quick: seconds of training per run, samples scored, seeds
QUICK = {"budget": 20.0, "n": 1000, "seeds": (0,)}
#: the documented budget: its runs make the figures and write ``generators.json``; other budgets
#: write ``generators_<budget>s.json`` and their own FID-against-time figure
DEFAULT_BUDGET = 180.0
CURVE_POINTS = 6
#: curve points of runs longer than the documented budget
LONG_CURVE_POINTS = 10
CURVE_SAMPLES = 2000
#: psi of BigGAN's truncation sweep
SWEEP = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


# --------------------------------------------------------------------------- budgets
def measured_step_seconds(cfg: Any, work: Path, warmup: int = 3, timed: int = 8) -> float:
    """Median CPU seconds of one training step of ``cfg`` (after ``warmup`` steps), one thread."""
    trainer = Trainer(cfg, work / "timing", progress=False)
    for _ in range(warmup):
        trainer.train_step()
    times = []
    for _ in range(timed):
        start = time.process_time()
        trainer.train_step()
        times.append(time.process_time() - start)
    return sorted(times)[len(times) // 2]


def fitted_steps(family: str, budget: float, base: dict[str, Any], work: Path) -> tuple[int, dict[str, Any]]:
    """The steps that fill ``budget`` CPU seconds, and the overrides that fit ``family``'s
    schedules to them. ProGAN's steps cost more as it grows: each stage is timed on its own
    (``algorithm.start_resolution``), stages 0..L-2 get T steps and the last stage 2T."""
    preset = FAMILIES[family]
    cfg = load_config(preset, overrides=base)
    if family != "ProGAN":
        steps = max(10, int(budget / measured_step_seconds(cfg, work)))
        return steps, {"train.steps": steps}
    side = cfg.data.get("pad_to") or cfg.data.get("size", 32)
    sides = [4 << k for k in range(int(math.log2(side)) - 1)]
    per_stage = [measured_step_seconds(load_config(preset, overrides={
        **base, "algorithm.start_resolution": r, "algorithm.fade_steps": 0}), work / f"r{r}")
        for r in sides]
    weights = [1.0] * (len(sides) - 1) + [2.0]
    stage_steps = max(2, int(budget / sum(w * t for w, t in zip(weights, per_stage, strict=True))))
    steps = stage_steps * (len(sides) + 1)
    return steps, {"train.steps": steps, "algorithm.stage_steps": stage_steps,
                   "algorithm.fade_steps": stage_steps // 2}


# --------------------------------------------------------------------------- scoring
def evaluators(n: int) -> tuple[Evaluator, Evaluator, Evaluator]:
    """(final metrics, curve FID, conditional final metrics) against the 28 px test split."""
    over = fashion_overrides(None)
    section = {"name": "fashion-mnist", "split": "test", "size": 28,
               "root": over.get("data.root"), "download": "data.root" not in over}
    test = build_dataset(section)
    kw = {"extractor": "lenet_fashion", "seed": 0, "data_name": "fashion-mnist-test",
          "data_section": section}
    return (Evaluator(test, ["fid", "prdc"], num_samples=n, k_pr=3, k_dc=5, **kw),
            Evaluator(test, ["fid"], num_samples=min(CURVE_SAMPLES, n), **kw),
            Evaluator(test, ["fid", "prdc", "class"], num_samples=n, k_pr=3, k_dc=5,
                      conditional=True, **kw))


@torch.no_grad()
def draw(trainer: Trainer, n: int, seed: int, psi: float = 1.0,
         labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` samples (28 px, centre-cropped) of the sampling generator, and their labels."""
    G = trainer.exp.sampling_network()
    if trainer.exp.emas:
        refresh_batchnorm(trainer)
    was = G.training
    G.eval()
    if labels is None:
        labels = trainer.algorithm.labels_for(n)
    x = trainer.algorithm.sample(n, torch.Generator().manual_seed(seed), labels, G, 500,
                                 **({"psi": psi} if psi != 1.0 else {}))
    G.train(was)
    return centre_crop(x.clamp(-1, 1), 28), None if labels is None else labels.cpu()


def refresh_batchnorm(trainer: Trainer) -> None:
    """Standing BatchNorm statistics for the EMA generator (its running statistics are copies of
    the live G's, which belong to other weights; a no-op for generators without BatchNorm)."""
    G, algo = trainer.exp.sampling_network(), trainer.algorithm
    gen = torch.Generator().manual_seed(99)

    def inputs() -> tuple[torch.Tensor, torch.Tensor | None]:
        return G.sample_z(64, gen), algo.labels_for(64, gen)

    standing_batchnorm_stats(G, inputs, batches=20)


def scores(ev: Evaluator, x: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
    out = ev.score(x, labels)
    e = ev.extractor.id
    renamed = {k.removesuffix(f"_{e}"): v for k, v in out.items()}
    return {k: float(v) for k, v in renamed.items()}


def parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------- one run
def run_one(job: tuple[str, int, float, int, bool]) -> dict[str, Any]:
    """Train ``family`` with ``seed`` for ``budget`` seconds; its scores, curve and figures."""
    family, seed, budget, n, figures = job
    torch.set_num_threads(1)
    preset = FAMILIES[family]
    base = {**fashion_overrides(None), **QUIET, "seed": seed, "train.threads": 1}
    final_ev, curve_ev, cond_ev = evaluators(n)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        steps, fitted = fitted_steps(family, budget, base, work)
        cfg = load_config(preset, overrides={**base, **fitted})
        trainer = Trainer(cfg, work / "run", progress=False)
        conditional = trainer.algorithm.conditional is not None
        points = CURVE_POINTS if budget <= DEFAULT_BUDGET else LONG_CURVE_POINTS
        marks = {round(steps * (k + 1) / points) for k in range(points)}
        stage_images: list[torch.Tensor] = []
        fixed_z = None
        curve, train_s = [], 0.0
        limit = 1.1 * budget  # the steps are an estimate: a run also stops 10% over the budget
        while trainer.step < steps and train_s < limit:
            stage = trainer.algorithm.stage_at(trainer.step)
            start = time.process_time()
            trainer.train_step()
            train_s += time.process_time() - start
            if figures and trainer.algorithm.stage_at(trainer.step) != stage or (
                    figures and trainer.step == steps and stage_images):
                fixed_z = stage_snapshot(trainer, stage_images, fixed_z)
            if trainer.step in marks or trainer.step == steps or train_s >= limit:
                x, y = draw(trainer, curve_ev.n, 7)
                curve.append({"step": trainer.step, "seconds": train_s,
                              "fid": scores(curve_ev, x, None)["fid"]})
        x, y = draw(trainer, n, 10_000 + seed)
        result = scores(cond_ev if conditional else final_ev, x, y if conditional else None)
        G, D = trainer.algorithm.generator, trainer.algorithm.networks.get("D")
        out = {"family": family, "preset": preset, "seed": seed, "steps": trainer.step,
               "steps_planned": steps, "train_cpu_seconds": train_s,
               "images_per_s": trainer.step * cfg.train.batch_size / train_s,
               "params_G": parameters(G), "params_D": parameters(D) if D is not None else None,
               "ema": bool(trainer.exp.emas), "n": n, **result, "curve": curve}
        if figures:
            out["figures"] = make_figures(family, trainer, stage_images, n)
    return out


# --------------------------------------------------------------------------- figures
def stage_snapshot(trainer: Trainer, images: list[torch.Tensor], z: torch.Tensor | None
                   ) -> torch.Tensor:
    """Append the sampling generator's images of fixed codes ``z`` at the end of a stage."""
    G = trainer.exp.sampling_network()
    if z is None:
        z = G.sample_z(8, torch.Generator().manual_seed(3))
    was = G.training
    G.eval()
    with torch.no_grad():
        images.append(G(z).cpu().clamp(-1, 1))
    G.train(was)
    return z


def make_figures(family: str, trainer: Trainer, stage_images: list[torch.Tensor], n: int
                 ) -> dict[str, Any]:
    """The family's docs figures; returns what they show (paths, numbers)."""
    maker = FIGURE_MAKERS.get(family)
    return {} if maker is None else maker(trainer, stage_images, n)


def _progan_figure(trainer: Trainer, stage_images: list[torch.Tensor], n: int) -> dict[str, Any]:
    from ganforge.viz import plot_panels

    def caption(stage: int) -> str:  # the Trainer's stages: 2s - 1 while 4 * 2^s px fades in, 2s after
        side = 4 << ((stage + 1) // 2)
        return f"{side} px" + (" faded in" if stage % 2 else (" stable" if stage else ""))

    panels = {caption(i): x for i, x in enumerate(stage_images)}
    path = plot_panels(panels, FIGURES / "progan_growth.png", nrow=1)
    return {"growth": str(path.relative_to(FIGURES.parents[1]))}


def _sampling_G(trainer: Trainer) -> torch.nn.Module:
    return trainer.exp.sampling_network().eval()


def _codes(G: torch.nn.Module, seeds: range) -> torch.Tensor:
    return torch.stack([G.sample_z(1, torch.Generator().manual_seed(s), "cpu")[0] for s in seeds])


def _stylegan_figure(trainer: Trainer, stage_images: list[torch.Tensor], n: int) -> dict[str, Any]:
    from ganforge.latent.output import save_rows
    from ganforge.latent.style import noise_variations, style_mixing_grid
    from ganforge.viz import plot_panels

    G = _sampling_G(trainer)
    rows, cols = _codes(G, range(0, 4)), _codes(G, range(10, 16))
    out = {}
    for layers in ("coarse", "fine"):
        grid = style_mixing_grid(G, rows, cols, layers, generator=torch.Generator().manual_seed(0))
        path = save_rows(grid.clamp(-1, 1), FIGURES / f"stylegan_mixing_{layers}.png")
        out[f"mixing_{layers}"] = str(path.relative_to(FIGURES.parents[1]))
    var = noise_variations(G, cols[0], 8, torch.Generator().manual_seed(1))
    std = var.std / var.std.max().clamp_min(1e-8) * 2 - 1
    path = plot_panels({"one w, 8 noise draws": var.images.clamp(-1, 1),
                        "per-pixel std (scaled)": std[None, None]},
                       FIGURES / "stylegan_noise.png")
    out["noise"] = str(path.relative_to(FIGURES.parents[1]))
    out["noise_std_max"] = float(var.std.max())
    return out


def _stylegan2_figure(trainer: Trainer, stage_images: list[torch.Tensor], n: int) -> dict[str, Any]:
    from ganforge.latent.output import save_rows

    G = _sampling_G(trainer)
    psis = (1.0, 0.8, 0.6, 0.4, 0.2)
    rows = torch.stack([G.sample(10, torch.Generator().manual_seed(5), psi=p) for p in psis])
    path = save_rows(rows.clamp(-1, 1), FIGURES / "stylegan2_truncation.png")
    return {"truncation": str(path.relative_to(FIGURES.parents[1])), "psi_rows": list(psis)}


def _biggan_figure(trainer: Trainer, stage_images: list[torch.Tensor], n: int) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ganforge.latent.output import save_rows

    G = _sampling_G(trainer)
    k = trainer.algorithm.num_classes
    labels = torch.arange(k).repeat_interleave(8)
    grid = G.sample(len(labels), torch.Generator().manual_seed(5), labels).clamp(-1, 1)
    path = save_rows(grid.view(k, 8, *grid.shape[1:]), FIGURES / "biggan_classes.png")
    out: dict[str, Any] = {"classes": str(path.relative_to(FIGURES.parents[1]))}
    ev = evaluators(n)[0]
    sweep = []
    for psi in SWEEP:
        x, _ = draw(trainer, n, 30_000, psi=psi)
        sweep.append({"psi": psi, **scores(ev, x, None)})
    out["truncation_sweep"] = sweep
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for key in ("precision", "recall", "density", "coverage"):
        ax.plot(SWEEP, [r[key] for r in sweep], marker="o", label=key)
    ax.set_xlabel("truncation psi (z resampled into [-2, 2], then scaled by psi)")
    ax.set_ylabel("lenet_fashion")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(FIGURES / "biggan_truncation_sweep.png", dpi=120)
    plt.close(fig)
    out["truncation_sweep_figure"] = "docs/figures/biggan_truncation_sweep.png"
    return out


FIGURE_MAKERS: dict[str, Callable[[Trainer, list[torch.Tensor], int], dict[str, Any]]] = {
    "ProGAN": _progan_figure, "StyleGAN": _stylegan_figure, "StyleGAN2": _stylegan2_figure,
    "BigGAN": _biggan_figure,
}


# --------------------------------------------------------------------------- summary
def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for family in FAMILIES:
        mine = [r for r in runs if r["family"] == family]
        if not mine:
            continue
        row: dict[str, Any] = {"family": family, "seeds": len(mine)}
        for key in ("fid", "precision", "recall", "density", "coverage", "class_match",
                    "images_per_s", "train_cpu_seconds", "steps"):
            values = [r[key] for r in mine if r.get(key) is not None]
            if values:
                mean = sum(values) / len(values)
                sd = (sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)) ** 0.5
                row[key], row[f"{key}_sd"] = mean, sd
        row["params_G"], row["params_D"] = mine[0]["params_G"], mine[0]["params_D"]
        rows.append(row)
    base = next((r["fid"] for r in rows if r["family"] == "DCGAN"), None)
    for row in rows:
        row["beats_dcgan_fid"] = None if base is None or row["family"] == "DCGAN" else row["fid"] < base
    return rows


def plot_curves(runs: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for family in FAMILIES:
        mine = [r for r in runs if r["family"] == family]
        if not mine:
            continue
        points = min(len(r["curve"]) for r in mine)
        t = [sum(r["curve"][k]["seconds"] for r in mine) / len(mine) / 60 for k in range(points)]
        f = [sum(r["curve"][k]["fid"] for r in mine) / len(mine) for k in range(points)]
        ax.plot(t, f, marker="o", label=family)
    ax.set_xlabel("training minutes (one CPU thread)")
    ax.set_ylabel(f"FID (lenet_fashion, {CURVE_SAMPLES} samples)")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| family | FID | precision | recall | density | coverage | class match | images/s | "
             "params G / D | steps |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        def pm(key: str, fmt: str = ".2f", r: dict[str, Any] = r) -> str:
            return "" if key not in r else f"{r[key]:{fmt}} ± {r[key + '_sd']:{fmt}}"
        lines.append(f"| {r['family']} | {pm('fid')} | {pm('precision', '.3f')} | {pm('recall', '.3f')} | "
                     f"{pm('density', '.3f')} | {pm('coverage', '.3f')} | {pm('class_match', '.3f')} | "
                     f"{r['images_per_s']:.0f} | {r['params_G'] / 1e3:.0f}k / "
                     f"{(r['params_D'] or 0) / 1e3:.0f}k | {r['steps']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 s per run, one seed, 1,000 samples")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET,
                        help=f"CPU seconds of training per run, one thread each (default {DEFAULT_BUDGET:g}; "
                             "other budgets write generators_<budget>s.json and make no sample figures)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--n", type=int, default=5000, help="samples scored per run")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (one thread each)")
    args = parser.parse_args()
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        parser.error(f"unknown family {unknown[0]!r}; choose from {', '.join(FAMILIES)}")
    budget = QUICK["budget"] if args.quick else args.budget
    seeds = QUICK["seeds"] if args.quick else tuple(int(s) for s in args.seeds.split(","))
    n = QUICK["n"] if args.quick else args.n
    documented = budget == DEFAULT_BUDGET and not args.quick
    jobs = [(f, s, budget, n, s == seeds[0] and documented) for f in families for s in seeds]
    start = time.perf_counter()
    parts = RESULTS / ("generators_runs" + ("_quick" if args.quick else ""))
    parts.mkdir(parents=True, exist_ok=True)

    def part(job: tuple) -> Path:
        return parts / f"{job[0]}-{job[1]}-{job[2]:g}s-{job[3]}.json"

    todo = [j for j in jobs if not part(j).is_file()]  # finished runs are kept: rerun to resume
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for job, result in zip(todo, pool.map(run_one, todo), strict=True):
            part(job).write_text(json.dumps(result, indent=1) + "\n")
            print(f"  {job[0]} seed {job[1]}: FID {result['fid']:.2f} ({result['steps']} steps)", flush=True)
    runs = [json.loads(part(j).read_text()) for j in jobs]
    rows = summarise(runs)
    print_table(rows, ["family", "seeds", "fid", "fid_sd", "precision", "recall", "density", "coverage",
                       "class_match", "images_per_s", "params_G", "steps", "beats_dcgan_fid"])
    print(markdown_table(rows))
    payload: dict[str, Any] = {"quick": args.quick, "budget_seconds": budget, "seeds": list(seeds),
                               "samples": n, "rows": rows, "runs": runs,
                               "seconds": time.perf_counter() - start}
    name = "generators" + ("_quick" if args.quick else "" if documented else f"_{budget:g}s")
    if not args.quick:
        payload["curve_figure"] = str(plot_curves(runs, FIGURES / f"{name}_fid_time.png"))
    path = write_result(name, payload)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
