"""Molecules on MOSES: MolGAN without and with its reward term (each with plain and valency-aware
decoding) against the CharRNN baseline, at one CPU-time budget per model, with seeds, scored with
the MOSES benchmark's metrics.

* Data: ``data.name=moses`` on ``../shared/data/molecules`` (MOSES' train and test files): a seeded
  sample of ``size`` training molecules (100,000) among those of at most 20 heavy atoms (a third of
  MOSES' 1.58M); the reference set is a seeded sample of 10,000 test molecules of at most 20 atoms;
  novelty is against the whole MOSES training file.
* Models (presets): ``MolGAN`` = ``moses-molgan`` (WGAN-GP, 5 critic steps), ``MolGAN + QED`` =
  ``moses-molgan-qed`` (its reward network predicting QED, lambda 0.5), ``CharRNN`` =
  ``moses-charrnn``. Each trains for ``--budget`` CPU seconds of one thread (the step count
  follows from its speed), seeds 0, 1, 2, ``--jobs`` processes at a time; then draws
  ``--samples`` molecules (30,000 as MOSES does) from its EMA generator (CharRNN: its own
  weights) with seed 10,000 + seed. A MolGAN run's graphs are scored four times: read by argmax
  (MolGAN's) or drawn from G's probabilities, each decoded plainly and with valency-aware decoding.
* Scores (:func:`ganforge.metrics.molecules.moses_metrics`): validity, unique@1k/@10k, novelty,
  IntDiv1/2, FCD/SNN/Frag/Scaf against the reference set, the filters, the property distances;
  beside them the mean QED of the valid molecules and the share of valid molecules in one piece.
  The MOSES paper's rows (Polykovskiy et al. 2020, table 2, its README: 1.58M training molecules,
  every size, models trained for hours on a GPU) are quoted for scale, not as an equal comparison.

    python benchmarks/molecules.py [--quick] [--budget 300] [--seeds 0,1,2] [--jobs 2] [--models MolGAN,...]
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
    budget_parser,
    print_checks,
    print_table,
    train_for_budget,
    write_result,
)
from ganforge.data import build_dataset  # noqa: E402
from ganforge.metrics.molecules import MOSES_KEYS, MOSES_PAPER  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"
SHARED_MOLECULES = ROOT.parent / "shared" / "data" / "molecules"
QUIET = {
    "train.sample_every": 10**9,
    "train.checkpoint_every": 10**9,
    "train.log_every": 50,
    "train.steps": 10**7,
}
PRESETS = {"MolGAN": "moses-molgan", "MolGAN + QED": "moses-molgan-qed", "CharRNN": "moses-charrnn"}
GANS = ("MolGAN", "MolGAN + QED")
#: how a MolGAN run's graphs are scored: (read, decoding)
VARIANTS = (("argmax", "plain"), ("argmax", "valency"), ("sample", "plain"), ("sample", "valency"))
METRICS = (*MOSES_KEYS, "qed_mean", "connected")
DEFAULT = {"budget": 300.0, "samples": 30_000, "seeds": (0, 1, 2), "size": 100_000}
QUICK = {"budget": 15.0, "samples": 1_000, "seeds": (0,), "size": 5_000}
_REFERENCE: dict[str, Any] = {}


def data_section(size: int) -> dict[str, Any]:
    return {"name": "moses", "root": str(SHARED_MOLECULES), "max_atoms": 20, "size": size}


def reference(size: int) -> Any:
    """The MOSES reference of this process (held-out statistics, the training set), built once."""
    from ganforge.metrics.molecules import MosesReference

    if size not in _REFERENCE:
        data = build_dataset({**data_section(size), "split": "train"})
        _REFERENCE[size] = (MosesReference(data.test_smiles, data.train_smiles), data)
    return _REFERENCE[size]


def score(smiles: list[str | None], ref: Any) -> dict[str, float]:
    """MOSES' metrics, the mean QED of the valid molecules and the share of them in one piece."""
    from ganforge.data.chem import mol_from_smiles, property_values
    from ganforge.metrics.molecules import moses_metrics

    report = moses_metrics(smiles, ref)
    valid = [s for s in smiles if s]
    mols = [mol_from_smiles(s) for s in valid]
    qed = property_values([m for m in mols if m is not None], "qed")
    report["qed_mean"] = float(np.mean(qed)) if len(qed) else float("nan")
    report["connected"] = float(np.mean(["." not in s for s in valid])) if valid else float("nan")
    return {k: float(v) for k, v in report.items()}


def run_one(job: tuple[str, int, float, int, int, str]) -> list[dict[str, Any]]:
    """Train model ``label`` with ``seed``; the scores of ``samples`` of its molecules (a MolGAN
    run: one row per read and decoding). Seed 0's first 1,000 valid molecules are kept for the
    figures."""
    label, seed, budget, samples, size, tag = job
    torch.set_num_threads(1)
    ref, _ = reference(size)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        overrides = {
            **QUIET,
            "seed": seed,
            "train.threads": 1,
            "data.root": str(SHARED_MOLECULES),
            "data.size": size,
        }
        trainer, info = train_for_budget(PRESETS[label], overrides, budget, Path(tmp) / "run")
        algorithm = trainer.algorithm
        network = trainer.exp.sampling_network(ema=True)
        for variant in VARIANTS if label in GANS else (None,):
            start = time.perf_counter()
            generator = torch.Generator().manual_seed(10_000 + seed)
            if variant is None:
                _, smiles = algorithm.draw_molecules(samples, generator, network)
            else:
                read, decoding = variant
                _, smiles = algorithm.draw_molecules(
                    samples, generator, network, decoding=decoding, read=read
                )
            name = label if variant is None else f"{label} ({', '.join(variant)})"
            rows.append(
                {
                    "model": name,
                    "preset": PRESETS[label],
                    "seed": seed,
                    **info,
                    **score(smiles, ref),
                    "eval_seconds": time.perf_counter() - start,
                }
            )
            if seed == 0:
                kept = [s for s in smiles if s][:KEPT]
                RESULTS.joinpath("molecule_runs").mkdir(parents=True, exist_ok=True)
                slug = name.lower().replace(" + ", "-").replace(" (", "-").replace(", ", "-").replace(")", "")
                RESULTS.joinpath("molecule_runs", f"{slug}{'_' + tag if tag else ''}.smi").write_text(
                    "\n".join(kept) + "\n"
                )
    return rows


def baseline(size: int, samples: int) -> dict[str, Any]:
    """``samples`` training molecules scored like a model's: our "Train" row."""
    ref, data = reference(size)
    rng = np.random.default_rng(0)
    train = [data.smiles[i] for i in rng.permutation(len(data.smiles))[:samples]]
    return {
        **score(train, ref),
        "molecules": len(train),
        "reference": len(ref.smiles),
        "training_molecules": len(data.smiles),
        "skipped": {k: int(v) for k, v in data.skipped.items()},
    }


def _mean_se(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    se = float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else float("nan")
    return {"mean": float(a.mean()), "se": se}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in dict.fromkeys(r["model"] for r in runs):
        rows = [r for r in runs if r["model"] == name]
        out[name] = {
            "seeds": [r["seed"] for r in rows],
            "steps": [r["steps"] for r in rows],
            **{m: _mean_se([r[m] for r in rows]) for m in METRICS},
        }
    return out


def checks(summary: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets."""
    out: dict[str, Any] = {}
    for gan in GANS:
        for variant in VARIANTS:
            name = f"{gan} ({', '.join(variant)})"
            if name not in summary:
                continue
            s = summary[name]
            out[f"{name}: validity >= 0.9 ({s['valid']['mean']:.3f})"] = s["valid"]["mean"] >= 0.9
            out[f"{name}: unique@10k >= 0.9 ({s['unique@10000']['mean']:.3f})"] = (
                s["unique@10000"]["mean"] >= 0.9
            )
            out[f"{name}: novelty >= 0.9 ({s['novelty']['mean']:.3f})"] = s["novelty"]["mean"] >= 0.9
    for variant in VARIANTS:
        what = ", ".join(variant)
        plain, rewarded = summary.get(f"MolGAN ({what})"), summary.get(f"MolGAN + QED ({what})")
        if plain and rewarded:
            gain = rewarded["qed_mean"]["mean"] - plain["qed_mean"]["mean"]
            se = math.hypot(rewarded["qed_mean"]["se"], plain["qed_mean"]["se"])
            key = f"reward raises mean QED ({what}) by > 2 SE: {gain:+.3f} vs 2 x {se:.3f}"
            out[key] = bool(gain > 2 * se)
    return out


#: the seed-0 sample sets the figures show (file stem in molecule_runs/ -> legend)
FIGURE_SETS = {
    "molgan-sample-valency": "MolGAN (sample, valency)",
    "molgan-qed-sample-valency": "MolGAN + QED (sample, valency)",
    "molgan-argmax-plain": "MolGAN (argmax, plain)",
    "charrnn": "CharRNN",
}
#: valid molecules kept of each seed-0 sample set (the grids draw the first 48)
KEPT = 1000


def figures(tag: str, ref_size: int) -> list[str]:
    """Grids of generated molecules (seed 0) and their property histograms against the held-out
    molecules'."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ganforge.data.chem import mol_from_smiles, property_values
    from ganforge.data.kinds import Samples, get_kind

    written = []
    suffix = f"-{tag}" if tag else ""
    out_dir = FIGURES if not tag else RESULTS / "molecule_runs"
    out_dir.mkdir(parents=True, exist_ok=True)
    kind = get_kind("graph")
    ref, _ = reference(ref_size)
    sets = {"held-out MOSES": ref.smiles[:KEPT]}
    for stem, label in FIGURE_SETS.items():
        path = RESULTS / "molecule_runs" / f"{stem}{'_' + tag if tag else ''}.smi"
        smiles = [s for s in path.read_text().split() if s] if path.exists() else []
        if not smiles:
            continue
        sets[label] = smiles
        samples = Samples(torch.zeros(len(smiles), 0), {"smiles": np.array(smiles)}, title=f"{label}, seed 0")
        written.append(str(kind.writer("x.png").write(samples, out_dir / f"molecules-{stem}{suffix}.png")))
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.5))
    for ax, prop in zip(axes, ("qed", "logp", "sa", "weight"), strict=True):
        for name, smiles in sets.items():
            mols = [m for m in (mol_from_smiles(s) for s in smiles) if m is not None]
            ax.hist(
                property_values(mols, prop),
                bins=25,
                density=True,
                histtype="step",
                label=f"{name} ({len(mols)})",
                linewidth=2.0 if name.startswith("held-out") else 1.2,
            )
        ax.set_title(prop)
    axes[0].legend(fontsize=7)
    fig.suptitle(
        "property distributions: held-out MOSES molecules vs seed 0's valid samples (counts in the legend)"
    )
    path = out_dir / f"molecules-properties{suffix}.png"
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    written.append(str(path))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = budget_parser(
        __doc__.splitlines()[0], "15 s per model, 5,000 molecules, 1,000 samples, seed 0", list(PRESETS)
    )
    parser.add_argument("--samples", type=int, default=None, help="molecules drawn per run (default 30,000)")
    parser.add_argument(
        "--supplement",
        action="store_true",
        help="a longer budget beside the main result: molecules_<budget>s.json, no figures",
    )
    args = parser.parse_args(argv)
    if not (SHARED_MOLECULES / "train.csv.gz").exists():
        print(f"MOSES data not found in {SHARED_MOLECULES}: nothing to measure")
        return 0
    setting = QUICK if args.quick else DEFAULT
    budget = args.budget if args.budget is not None else setting["budget"]
    samples = args.samples or setting["samples"]
    seeds = tuple(int(s) for s in args.seeds.split(",")) if args.seeds else setting["seeds"]
    models = [m for m in args.models.split(",") if m]
    if unknown := [m for m in models if m not in PRESETS]:
        parser.error(f"unknown model {unknown[0]!r}: choose from {', '.join(PRESETS)}")
    tag = "quick" if args.quick else f"{budget:.0f}s" if args.supplement else ""
    start = time.perf_counter()
    reference(setting["size"])  # parse and cache the molecules once, before the workers
    jobs = [(label, seed, budget, samples, setting["size"], tag) for label in models for seed in seeds]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        runs = [row for rows in pool.map(run_one, jobs) for row in rows]
    previous = RESULTS / "molecules.json"
    if set(models) != set(PRESETS) and not tag and previous.exists():  # rerun some models: keep the others
        rerun = {r["model"] for r in runs}
        kept = [r for r in json.loads(previous.read_text())["runs"] if r["model"] not in rerun]
        print(f"kept {len(kept)} runs of the other models from {previous.name}")
        runs = kept + runs
    summary = summarise(runs)
    train_row = baseline(setting["size"], samples)
    payload: dict[str, Any] = {
        "budget_cpu_seconds": budget,
        "seeds": list(seeds),
        "samples": samples,
        "data": data_section(setting["size"]),
        "train_row": train_row,
        "paper": MOSES_PAPER,
        "summary": summary,
        "runs": runs,
    }
    payload["checks"] = checks(summary)
    payload["figures"] = [] if args.supplement else figures(tag, setting["size"])
    payload["wall_seconds"] = time.perf_counter() - start
    rows = [{"model": "training molecules (ours)", **{m: train_row[m] for m in METRICS}}]
    rows += [
        {"model": name, **{m: s[m]["mean"] for m in METRICS}, "steps": float(np.mean(s["steps"]))}
        for name, s in summary.items()
    ]
    rows += [{"model": f"{name} (MOSES paper)", **values} for name, values in MOSES_PAPER.items()]
    print_table(rows, ["model", *METRICS, "steps"])
    print_checks(payload["checks"])
    path = write_result(f"molecules{'_' + tag if tag else ''}", payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
