"""``ganforge rare RUN --event EVENT | --tail STATISTIC``: rare-event probabilities and
scenarios in a run's latent space, and the tail index of a statistic on samples and data.

Wiring into the main CLI is ``add_rare_parser(sub)`` and ``"rare": cmd_rare``. Every user
mistake raises :class:`~ganforge.errors.GanforgeError` before any file is written. An event no
draw reaches is not an error: the estimate is 0 with an upper bound and a warning on stderr,
exit status 0, and no scenario file (there are no scenarios to write).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ganforge._io import atomic_write_text, check_output_file
from ganforge._subcommand import run_alone
from ganforge.errors import GanforgeError

TAIL_SUFFIXES = (".png",)


def add_rare_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``rare`` command to ``subparsers``; returns its parser."""
    p = subparsers.add_parser(
        "rare", help="rare events in latent space: P(event) by MC or cross-entropy IS; tail indices",
        description="Estimate p = P_z(event(G(z))) by naive Monte Carlo or the cross-entropy method and "
                    "importance sampling in latent space, and write the rare samples with their weights "
                    "(--event); or compare the Hill tail index of a statistic on samples and data (--tail). "
                    "See docs/rare-events.md.")
    p.add_argument("run_dir", metavar="RUN", help="run directory written by `ganforge train`")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--event", help="e.g. 'distance(0, 0) > 3.5', 'class(3) > 0.99 & mean > 0.3', "
                                      "'column(Income) > 500' (terms joined by &)")
    what.add_argument("--tail", metavar="STATISTIC",
                      help="Hill tail index of a statistic, e.g. x or value(0)")
    p.add_argument("--method", default="ce-is", help="mc | ce-is | ce-mixture | subset (default ce-is)")
    p.add_argument("--budget", type=int, default=100_000, help="generator calls in all (default 100000)")
    p.add_argument("--seed", type=int, default=0, help="seed of every draw (default 0)")
    p.add_argument("--ce-samples", type=int, help="draws per level (default: budget/20 within 500-5000 for "
                                                  "the cross-entropy method, budget/8 for subset)")
    p.add_argument("--rho", type=float, help="elite share of each level (default 0.1; 0.25 for subset)")
    p.add_argument("--covariance", default="auto",
                   help="auto | full | diag (auto: full up to 10 latent dims)")
    p.add_argument("--components", type=int, default=2, help="mixture components of ce-mixture (default 2)")
    p.add_argument("--replicates", type=int, default=5,
                   help="subset: independent runs whose spread gives the error (default 5)")
    p.add_argument("--variance-floor", type=float, default=1.0,
                   help="smallest proposal variance in any direction (default 1, the N(0, I) prior's)")
    p.add_argument("--defensive", type=float, default=0.0,
                   help="share of the proposal's draws taken from the prior, bounding weights by "
                        "1/share (default 0)")
    p.add_argument("--class", dest="label", type=int, metavar="K", help="conditional runs: only class K")
    p.add_argument("-o", "--output", help="--event: the rare samples (the kind's .png/.npz, .csv for "
                                          "tables); --tail: a tail QQ figure .png")
    p.add_argument("--keep", type=int, default=64, help="rare samples written by -o (default 64)")
    p.add_argument("--json", help="write the numbers as JSON to this file")
    p.add_argument("-n", type=int, default=100_000, help="--tail: generated samples (default 100000)")
    p.add_argument("-k", type=int, help="--tail: upper order statistics of the data (default sqrt(n))")
    p.add_argument("--data", action="append", default=[], metavar="KEY=VALUE",
                   help="--tail: override the run's data section, e.g. --data path=FILE (repeatable)")
    p.add_argument("--no-data", action="store_true",
                   help="--tail: samples only (the data need not be present)")
    p.add_argument("--ema", action="store_true", help="use the EMA generator")
    p.add_argument("--checkpoint", default="final", help="final | last | best | FILE.pt")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | mps (default cpu)")
    return p


def _outputs(args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    out = check_output_file(args.output, "output file") if args.output else None
    js = check_output_file(args.json, "JSON file") if args.json else None
    if js is not None and js.suffix != ".json":
        raise GanforgeError(f"--json {args.json} is not a .json file", "pass e.g. --json result.json")
    return out, js


def _print_estimate(summary: dict[str, Any]) -> None:
    rel = summary["relative_error"]
    print(f"event       {summary['event']}")
    print(f"method      {summary['method']}")
    print(f"p           {summary['p']:.4g} +- {summary['std_error']:.2g} (standard error)"
          + (f", relative error {rel:.1%}" if rel is not None else ""))
    print(f"hits        {summary['hits']} of {summary['final_draws']} final draws, ESS {summary['ess']:.1f}")
    print(f"calls       {summary['calls']} generator calls"
          + (f" ({len(summary['levels'])} {summary['method']} levels)" if summary["levels"] else ""))
    if summary["naive_calls_same_error"] is not None:
        print(f"naive MC    {summary['naive_calls_same_error']:.3g} calls for the same relative error "
              f"({summary['calls_saved']:.3g}x more)")


def _event(args: argparse.Namespace, run: Any, out: Path | None, js: Path | None) -> int:
    from ganforge.rare import rare_event

    writer = None
    if out is not None:
        writer = run.kind.writer(out)  # a wrong suffix fails here, before the work
    result = rare_event(run, args.event, ema=args.ema, class_=args.label, method=args.method,
                        budget=args.budget, seed=args.seed, ce_samples=args.ce_samples, rho=args.rho,
                        covariance=args.covariance,
                        components=args.components, variance_floor=args.variance_floor,
                        defensive=args.defensive, keep=args.keep if out is not None else 0,
                        replicates=args.replicates)
    summary = result.summary()
    _print_estimate(summary)
    if result.warning:
        print(f"ganforge: warning: {result.warning}", file=sys.stderr)
    if out is not None and result.scenarios is not None and writer is not None:
        writer.write(_scenario_samples(run, result), out)
        print(f"wrote {len(result.weights)} rare samples with their weights to {out}")
    if js is not None:
        _write_json(js, summary)
    return 0


def _write_json(path: Path, numbers: dict[str, Any]) -> None:
    """``numbers`` (the results' summaries, non-finite values already None) as JSON, atomically;
    a value JSON has no type for is written as its text."""
    atomic_write_text(path, json.dumps(numbers, indent=2, default=str) + "\n")


def _scenario_samples(run: Any, result: Any) -> Any:
    from ganforge.data.kinds import Samples

    weights = result.weights.numpy()
    what = f"{len(weights)} samples of {result.event}"
    if isinstance(result.scenarios, torch.Tensor):
        return Samples(result.scenarios, {"weight": weights, "z": result.codes.numpy()}, title=what,
                       description=what)
    rows = result.scenarios.copy()
    rows["importance_weight"] = weights
    types = {**run.algorithm.schema.types, "importance_weight": "continuous"}
    return Samples(torch.zeros(len(rows), 0), table=rows, types=types, title=what,
                   description=what)


def _tail(args: argparse.Namespace, run: Any, out: Path | None, js: Path | None) -> int:
    from ganforge.rare.tails import tail_report

    if out is not None and out.suffix not in TAIL_SUFFIXES:
        raise GanforgeError(f"--tail writes a .png QQ figure, not {out}", "pass e.g. -o tail.png")
    data = None if args.no_data else _real_data(run, args)
    report = tail_report(run, args.tail, n=args.n, k=args.k, seed=args.seed, data=data, ema=args.ema)
    s = report.summary()
    print(f"statistic   {s['statistic']}")
    print(f"samples     Hill tail index {s['alpha_samples']:.3g} ({s['n_samples']} samples)")
    if "alpha_data" in s:
        print(f"data        Hill tail index {s['alpha_data']:.3g} ({s['n_data']} values, k = {s['k']})")
        print(f"ratio       {s['ratio']:.3g} (samples / data; well above 1: the generator's tail "
              "is too light)")
    if out is not None:
        report.plot(out)
        print(f"wrote the tail QQ figure to {out}")
    if js is not None:
        _write_json(js, s)
    return 0


def _real_data(run: Any, args: argparse.Namespace) -> Any:
    """The run's training data as the kind's batch (a table's rows, a tensor of samples)."""
    from ganforge.config import parse_override
    from ganforge.data import build_dataset
    from ganforge.data.base import StreamDataset
    from ganforge.data.table import TableDataset

    options = dict(parse_override(item) for item in args.data)
    dataset = build_dataset({**run.config.data, **options})
    if isinstance(dataset, TableDataset):
        return dataset.frame
    if isinstance(dataset, StreamDataset):
        return dataset.materialise(args.n, seed=args.seed).x
    return dataset.x


def cmd_rare(args: argparse.Namespace) -> int:
    from ganforge.train.run import load_run

    out, js = _outputs(args)
    run = load_run(args.run_dir, args.checkpoint, args.device)
    if args.event is not None:
        return _event(args, run, out, js)
    return _tail(args, run, out, js)


def main(argv: Sequence[str] | None = None) -> int:
    return run_alone("rare", add_rare_parser, cmd_rare, "Rare events in latent space.", argv)


if __name__ == "__main__":
    raise SystemExit(main())
