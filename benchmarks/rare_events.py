"""Rare events in latent space: the cross-entropy method + importance sampling against naive
Monte Carlo, where the truth is known.

Cases (each an event whose probability p is about 1e-3, 1e-5 and 1e-7):

* ``linear``  a fixed linear generator x = a.z, z ~ N(0, I_8), |a| = 1: p = 1 - Phi(t) exactly.
* ``gan-2d``  an MLP GAN trained on the ring of 8 Gaussians (preset ring8-mlp, 3,000 steps,
              seed 0; z_dim 2), event ``distance(0, 0) > r``: samples thrown far outside the
              ring, which come from several latent directions (the mixture proposal's case too;
              a coordinate such as ``x > t`` is capped near the outer mode's edge by this
              generator, so its small probabilities do not exist); truth from 10^8 naive
              samples (computed once, stored in results/rare_events_truth.json with the
              checkpoint's sha256).
* ``image``   an MLP GAN trained on 8x8 digits (z_dim 16, 4,000 steps, seed 0), event
              ``class(0) > 0.99 & mean > t`` (the shipped digits classifier is sure the image
              is a 0 and its mean intensity is above a high quantile); truth from 10^8 naive
              samples.

Thresholds are set once (bisection on a long CE-IS run) so that p is near the level, and stored
with the truth. Every estimator (CE-IS, subset simulation, naive MC; the Gaussian-mixture CE on
the ring) gets the same budget of generator calls (--budget, default 100,000) over --seeds
seeds. Checks, per CE-IS and subset simulation: at p ~ 1e-5, the relative error <= 10%, naive MC
would need >= 100x the calls for that error, and the estimate lies within 2 standard errors of
the truth in >= 9 of 10 seeds (the truth's own standard error added in quadrature where it is a
Monte Carlo estimate).

Usage: python benchmarks/rare_events.py [--quick] [--seeds 10] [--budget 100000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from scipy.stats import norm

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from _common import RESULTS, print_table, write_result  # noqa: E402
from ganforge import load_config  # noqa: E402
from ganforge.config import ExperimentConfig, merge  # noqa: E402
from ganforge.rare import FunctionSimulator, RunSimulator, estimate_rare_event, parse_event  # noqa: E402
from ganforge.train import Trainer  # noqa: E402
from ganforge.train.run import load_run  # noqa: E402

RUNS = RESULTS / "rare_events_runs"
TRUTH = RESULTS / "rare_events_truth.json"
LEVELS = (1e-3, 1e-5, 1e-7)
DIGITS8 = {
    "description": "MLP GAN on 8x8 digits (the rare-event benchmark's image run)",
    "seed": 0,
    "algorithm": {"name": "gan", "loss": {"name": "non-saturating"}},
    "data": {"name": "digits", "size": 8},
    "model": {"name": "mlp", "z_dim": 16, "g_hidden": [128, 256], "d_hidden": [256, 128]},
    "optim": {
        "G": {"name": "adam", "lr": 2.0e-4, "betas": [0.5, 0.999]},
        "D": {"name": "adam", "lr": 2.0e-4, "betas": [0.5, 0.999]},
    },
    "train": {
        "steps": 4000,
        "batch_size": 64,
        "log_every": 100,
        "sample_every": 4000,
        "checkpoint_every": 4000,
    },
}


# ----------------------------------------------------------------------------- the runs
def trained_run(name: str) -> Path:
    """The benchmark's stored run ``name`` (trained once with a fixed seed on one thread)."""
    run_dir = RUNS / name
    if (run_dir / "checkpoints" / "final.pt").is_file():
        return run_dir
    if name == "ring8":
        cfg = load_config(
            "ring8-mlp",
            overrides={"train.steps": 3000, "train.sample_every": 3000, "train.checkpoint_every": 3000},
        )
    else:
        cfg = ExperimentConfig.from_dict(merge(ExperimentConfig().to_dict(), DIGITS8))
    print(f"training the {name} run into {run_dir} ...", flush=True)
    Trainer(cfg, run_dir, progress=False).fit()
    for extra in run_dir.glob("checkpoints/*.pt"):  # keep the final checkpoint only (small repo)
        if extra.name != "final.pt":
            extra.unlink()
    return run_dir


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- events and truths
def linear_case() -> dict[str, Any]:
    a = torch.ones(8, 1) / math.sqrt(8)
    sim = FunctionSimulator(lambda z: z @ a, 8, kind="vectors", sample_shape=(1,))
    events = [
        {
            "level": p,
            "event": f"value(0) > {norm.isf(p):.6f}",
            "truth": float(norm.sf(float(f"{norm.isf(p):.6f}"))),
            "truth_se": 0.0,
            "truth_source": "closed form 1 - Phi(t)",
        }
        for p in LEVELS
    ]
    return {"case": "linear", "simulator": sim, "events": events}


def _threshold(sim: Any, template: str, level: float, low: float, high: float, steps: int = 11) -> float:
    """t with P(template.format(t)) ~ level, by bisection on CE-IS estimates (budget 100k)."""
    for _ in range(steps):
        mid = (low + high) / 2
        p = estimate_rare_event(
            sim, parse_event(template.format(t=mid), sim.context), budget=100_000, seed=999
        ).p
        low, high = (mid, high) if p > level else (low, mid)
    return round((low + high) / 2, 5)


@torch.no_grad()
def naive_truth(
    sim: RunSimulator,
    events: list[str],
    n: int,
    batch: int = 200_000,
    prefilter: tuple[int, float] | None = None,
) -> list[tuple[int, int]]:
    """(hits, n) of each event over ``n`` prior draws (seed 12345, a stream no estimator uses);
    ``prefilter`` (term index, threshold) skips the full statistic on samples whose mean
    intensity is below the threshold (the image events' cheap first term)."""
    parsed = [parse_event(e, sim.context) for e in events]
    gen = torch.Generator().manual_seed(12345)
    hits = [0] * len(events)
    t0 = time.time()
    for start in range(0, n, batch):
        m = min(batch, n - start)
        x = sim(sim.sample_prior(m, gen), gen)
        if prefilter is not None:
            keep = ((x.double() + 1) / 2).flatten(1).mean(dim=1) > prefilter[1]
            x = x[keep]
        for i, event in enumerate(parsed):
            if len(x):
                hits[i] += int(event.evaluate(x, len(x))[1].sum())
        if start // batch % 50 == 0:
            print(f"  truth: {start + m:,} of {n:,} draws ({time.time() - t0:.0f} s)", flush=True)
    return [(h, n) for h in hits]


def run_cases(truth_n: int, image_truth_n: int) -> list[dict[str, Any]]:
    stored = json.loads(TRUTH.read_text()) if TRUTH.is_file() else {}
    cases = [linear_case()]
    for name, stat_template, lows, extra in (
        ("ring8", "distance(0, 0) > {t}", (2.0, 12.0), []),
        ("digits8", "class(0) > 0.99 & mean > {t}", (0.3, 0.7), []),
    ):
        run_dir = trained_run(name)
        digest = sha256(run_dir / "checkpoints" / "final.pt")
        sim = RunSimulator(load_run(run_dir))
        key = f"{name}:{digest[:16]}"
        record = stored.get(key)
        wanted = [(stat_template, p, lows) for p in LEVELS] + extra
        n_truth = truth_n if name == "ring8" else image_truth_n
        if record is None or record.get("n", 0) < n_truth:
            print(f"[{name}] thresholds and a {n_truth:.0e}-draw naive truth (once) ...", flush=True)
            events = [
                template.format(t=_threshold(sim, template, p, *bounds)) for template, p, bounds in wanted
            ]
            prefilter = None
            if name == "digits8":  # 'mean > t' first: the classifier only sees the few bright samples
                prefilter = (1, min(float(e.rsplit(">", 1)[1]) for e in events))
            counts = naive_truth(sim, events, n_truth, prefilter=prefilter)
            record = {
                "n": n_truth,
                "sha256": digest,
                "events": [
                    {"level": p, "event": e, "hits": h, "truth": h / n, "truth_se": math.sqrt(h) / n}
                    for (_, p, _), e, (h, n) in zip(wanted, events, counts, strict=True)
                ],
            }
            stored[key] = record
            TRUTH.write_text(json.dumps(stored, indent=2) + "\n")
        events = [
            {**e, "truth_source": f"{record['n']:.0e} naive draws ({e['hits']} hits)"}
            for e in record["events"]
        ]
        cases.append(
            {
                "case": "gan-2d" if name == "ring8" else "image",
                "simulator": sim,
                "events": events,
                "run": str(run_dir.relative_to(RESULTS.parent.parent)),
                "sha256": digest,
            }
        )
    return cases


# ----------------------------------------------------------------------------- the comparison
def compare(cases: list[dict[str, Any]], seeds: int, budget: int) -> list[dict[str, Any]]:
    rows = []
    for case in cases:
        sim = case["simulator"]
        for spec in case["events"]:
            methods = ["ce-is", "subset", "mc"] + (["ce-mixture"] if case["case"] == "gan-2d" else [])
            for method in methods:
                runs = []
                for seed in range(seeds):
                    t0 = time.perf_counter()
                    r = estimate_rare_event(
                        sim,
                        parse_event(spec["event"], sim.context),
                        method=method,
                        budget=budget,
                        seed=seed,
                        components=8,
                    )
                    s = r.summary()
                    se_pure = r.estimate.std_error
                    se_both = math.hypot(se_pure, spec["truth_se"])
                    runs.append(
                        {
                            "seed": seed,
                            "p": r.p,
                            "std_error": se_pure,
                            "relative_error": s["relative_error"],
                            "hits": r.estimate.hits,
                            "ess": r.estimate.ess,
                            "calls": r.calls,
                            "levels": len(r.levels),
                            "naive_calls_same_error": s["naive_calls_same_error"],
                            "within_2se": bool(abs(r.p - spec["truth"]) <= 2 * se_pure) if r.p > 0 else False,
                            "within_2se_with_truth_se": bool(abs(r.p - spec["truth"]) <= 2 * se_both)
                            if r.p > 0
                            else False,
                            "seconds": time.perf_counter() - t0,
                            "warning": r.warning,
                        }
                    )
                rels = [x["relative_error"] for x in runs if x["relative_error"] is not None]
                needs = [x["naive_calls_same_error"] for x in runs if x["naive_calls_same_error"] is not None]
                rows.append(
                    {
                        "case": case["case"],
                        "event": spec["event"],
                        "level": spec["level"],
                        "truth": spec["truth"],
                        "truth_se": spec["truth_se"],
                        "truth_source": spec["truth_source"],
                        "method": method,
                        "budget": budget,
                        "seeds": seeds,
                        "mean_estimate": sum(x["p"] for x in runs) / seeds,
                        "median_relative_error": sorted(rels)[len(rels) // 2] if rels else None,
                        "max_relative_error": max(rels) if rels else None,
                        "min_calls_saved": min(needs) / budget if len(needs) == seeds else None,
                        "observed_relative_spread": statistics.stdev(x["p"] for x in runs) / spec["truth"]
                        if seeds > 1 and spec["truth"] > 0
                        else None,
                        "within_2se": sum(x["within_2se"] for x in runs),
                        "within_2se_with_truth_se": sum(x["within_2se_with_truth_se"] for x in runs),
                        "zero_hit_seeds": sum(x["hits"] == 0 for x in runs),
                        "mean_seconds": sum(x["seconds"] for x in runs) / seeds,
                        "runs": runs,
                    }
                )
                row = rows[-1]
                print(
                    f"  {case['case']:7s} p~{spec['level']:.0e} {method:10s} est {row['mean_estimate']:.3g} "
                    f"(truth {spec['truth']:.3g}) median rel {row['median_relative_error']}",
                    flush=True,
                )
    return rows


def checks(rows: list[dict[str, Any]], seeds: int) -> dict[str, bool]:
    out = {}
    need = math.ceil(0.9 * seeds)
    names = {"ce-is": "CE-IS", "ce-mixture": "CE-IS with the mixture proposal", "subset": "subset simulation"}
    for row in rows:
        if row["method"] not in names or row["level"] != 1e-5:
            continue
        name = f"{row['case']}, {names[row['method']]}"
        out[f"{name}: relative error <= 10% at p~1e-5 (every seed)"] = (
            row["max_relative_error"] is not None and row["max_relative_error"] <= 0.10
        )
        out[f"{name}: naive MC needs >= 100x the calls for that error (every seed)"] = (
            row["min_calls_saved"] is not None and row["min_calls_saved"] >= 100
        )
        covered = row["within_2se"] if row["truth_se"] == 0 else row["within_2se_with_truth_se"]
        out[f"{name}: within 2 SE of the truth in >= {need} of {seeds} seeds"] = covered >= need
    return out


def figures(cases: list[dict[str, Any]], budget: int) -> None:
    """The CE iterations in the 2-D latent of the ring GAN, and the image event's scenarios."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patches import Ellipse

    from ganforge.data.kinds import Samples, get_kind

    matplotlib.use("Agg")
    docs = RESULTS.parent.parent / "docs" / "figures"
    gan = next(c for c in cases if c["case"] == "gan-2d")
    spec = next(e for e in gan["events"] if e["level"] == 1e-5)
    sim = gan["simulator"]
    result = estimate_rare_event(sim, parse_event(spec["event"], sim.context), budget=budget, seed=0)
    grid = torch.linspace(-6, 6, 301)
    zz = torch.cartesian_prod(grid, grid)
    _, inside = parse_event(spec["event"], sim.context).evaluate(sim(zz, torch.Generator()), len(zz))
    fig = Figure(figsize=(6, 6))
    ax = fig.subplots()
    ax.contourf(grid, grid, inside.reshape(301, 301).T.float(), levels=[0.5, 1.5], colors=["#f4a582"])
    colours = matplotlib.colormaps["viridis"]
    for i, level in enumerate(result.levels):
        c = colours(i / max(1, len(result.levels) - 1))
        ax.scatter(level.codes[:150, 0], level.codes[:150, 1], s=3, color=c, alpha=0.5)
        d = level.proposal.describe()
        cov = torch.tensor(d.get("cov", [[d["std"][0] ** 2, 0], [0, d["std"][1] ** 2]]))
        vals, vecs = torch.linalg.eigh(cov)
        angle = math.degrees(math.atan2(vecs[1, 1], vecs[0, 1]))
        ax.add_patch(
            Ellipse(
                d["mean"],
                4 * math.sqrt(vals[1]),
                4 * math.sqrt(vals[0]),
                angle=angle,
                fill=False,
                color=c,
                lw=2,
                label=f"iteration {level.iteration}: level {level.level:.2f}",
            )
        )
    ax.set_xlim(-6, 6)
    ax.set_ylim(-6, 6)
    ax.set_aspect("equal")
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_title(
        f"cross-entropy proposals (2 sd) moving to the event\n{spec['event']} (shaded; p = {result.p:.2g})"
    )
    ax.legend(loc="lower left", fontsize=7)
    fig.savefig(docs / "rare-ce-iterations.png", dpi=110, bbox_inches="tight")
    image = next(c for c in cases if c["case"] == "image")
    spec = next(e for e in image["events"] if e["level"] == 1e-5)
    sim = image["simulator"]
    result = estimate_rare_event(
        sim, parse_event(spec["event"], sim.context), method="subset", budget=budget, seed=0, keep=64
    )
    get_kind("image").writer("x.png").write(Samples(result.scenarios, nrow=8), docs / "rare-scenarios.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="3 seeds, 20k calls, a 1e6-draw truth if none stored"
    )
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=100_000)
    parser.add_argument("--truth-n", type=int, default=100_000_000, help="naive draws of the 2-D GAN's truth")
    parser.add_argument(
        "--image-truth-n",
        type=int,
        default=30_000_000,
        help="naive draws of the image run's truth (each costs a generator call)",
    )
    parser.add_argument("--figures", action="store_true", help="also write docs/figures/rare-*.png")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds, budget = (3, 20_000) if args.quick else (args.seeds, args.budget)
    truth_n, image_truth_n = (1_000_000, 1_000_000) if args.quick else (args.truth_n, args.image_truth_n)
    t0 = time.time()
    cases = run_cases(truth_n, image_truth_n)
    rows = compare(cases, seeds, budget)
    table = [
        {
            k: r[k]
            for k in (
                "case",
                "level",
                "method",
                "truth",
                "mean_estimate",
                "median_relative_error",
                "min_calls_saved",
                "within_2se",
                "within_2se_with_truth_se",
                "zero_hit_seeds",
            )
        }
        for r in rows
    ]
    print_table(table, list(table[0]))
    results = checks(rows, seeds)
    for name, ok in results.items():
        print(f"  {name}: {'yes' if ok else 'NO'}")
    if args.figures:
        figures(cases, budget)
    payload = {
        "quick": args.quick,
        "seeds": seeds,
        "budget_calls": budget,
        "truth_draws": {"gan-2d": truth_n, "image": image_truth_n},
        "torch_threads": 1,
        "seconds": time.time() - t0,
        "runs": {c["case"]: {"run": c.get("run"), "sha256": c.get("sha256")} for c in cases},
        "checks": results,
        "rows": rows,
    }
    path = write_result("rare_events_quick" if args.quick else "rare_events", payload)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
