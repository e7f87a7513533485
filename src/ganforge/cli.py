"""The ``ganforge`` command line: a thin layer over the Python API.

Every user mistake surfaces as one line on stderr (the problem and the fix) and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from ganforge._io import atomic_write_text, check_output_dir, check_output_file, read_npz_array
from ganforge._subcommand import OneLineParser
from ganforge.augmentation.cli import add_augment_parser, cmd_augment
from ganforge.errors import GanforgeError
from ganforge.forensics.cli import add_detect_parser, cmd_detect
from ganforge.latent.cli import add_latent_parser, cmd_latent
from ganforge.predict import add_predict_parser, cmd_predict
from ganforge.rare.cli import add_rare_parser, cmd_rare
from ganforge.robust.cli import add_robust_parser, cmd_robust
from ganforge.translate import add_translate_parser, cmd_translate
from ganforge.watermark.cli import add_watermark_parser, cmd_watermark
from ganforge.web.cli import add_web_parsers, cmd_board, cmd_play


def build_parser() -> argparse.ArgumentParser:
    from ganforge import __version__

    parser = OneLineParser(prog="ganforge", description="Train, sample and inspect GANs.")
    parser.add_argument("--version", action="version", version=f"ganforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)

    train = sub.add_parser("train", help="train a GAN (default: the digits-projection preset)")
    train.add_argument("preset", nargs="?", help="preset name (see `ganforge presets`)")
    train.add_argument("--config", help="YAML config file (merged over the preset)")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set optim.G.lr=1e-4 (repeatable)")
    train.add_argument("--out", help="run directory (default: runs/PRESET-TIMESTAMP)")
    train.add_argument("--steps", type=int, help="number of generator updates")
    train.add_argument("--seed", type=int, help="random seed")
    train.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a run from checkpoints/last.pt")
    train.add_argument("--force", action="store_true",
                       help="start afresh in an existing --out run directory (deletes what ganforge "
                            "wrote there; anything else there is refused)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--nproc", type=int, metavar="N",
                       help="train on N processes (torch.distributed: gloo on CPU, NCCL on GPU), "
                            "launched with torchrun; train.batch_size is per process")
    train.add_argument("--eval-every", type=int, metavar="N",
                       help="score the generator every N steps (sets eval.every; see eval.* keys)")

    sub.add_parser("presets", help="list the shipped presets")

    sample = sub.add_parser("sample", help="draw samples from a trained run")
    sample.add_argument("run_dir")
    sample.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    sample.add_argument("-o", "--output", required=True,
                        help="FILE.npz (arrays) or FILE.png (a figure), FILE.csv for tables, FILE.gif or "
                             "FILE.mp4 for clips, FILE.mid or FILE.wav for music: the run's data kind "
                             "writes it")
    sample.add_argument("--ema", action="store_true", help="use the EMA generator")
    sample.add_argument("--class", dest="class_", type=int, metavar="K",
                        help="conditional runs: sample only class K (default: every class; a PNG "
                             "then shows one row per class)")
    sample.add_argument("--text", action="append", metavar="CAPTION",
                        help="text-to-image runs: draw -n samples of this caption (repeatable; a PNG "
                             "then shows one row per caption)")
    sample.add_argument("--text-file", metavar="FILE", help="text-to-image runs: one caption per line")
    sample.add_argument("--truncation", type=float, default=1.0, metavar="PSI",
                        help="the truncation trick, psi in (0, 1] (style-based families: in W around "
                             "the tracked mean w; BigGAN: resampled z scaled by psi; default 1 = off)")
    sample.add_argument("--condition", action="append", metavar="COLUMN=VALUE",
                        help="table runs: every row has this category in this discrete column "
                             "(repeatable; e.g. --condition sex=f)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--checkpoint", default="final", help="final | last | FILE.pt")
    sample.add_argument("--device", default="cpu")

    info = sub.add_parser("info", help="show a run's config, step and last metrics")
    info.add_argument("run_dir")

    from ganforge.theory import RESULTS

    add_latent_parser(sub)
    add_rare_parser(sub)
    add_detect_parser(sub)
    add_watermark_parser(sub)
    add_translate_parser(sub)
    add_predict_parser(sub)
    add_augment_parser(sub)
    add_robust_parser(sub)
    add_web_parsers(sub)

    theory = sub.add_parser("theory", help="check a GAN theory result numerically (numbers + PNG)")
    theory.add_argument("result", choices=[*RESULTS, "all"], help="which result, or all")
    theory.add_argument("--out", default="theory", help="folder for the PNGs (default ./theory)")
    theory.add_argument("--seed", type=int, default=0)
    theory.add_argument("--quick", action="store_true", help="faster, less precise (the tests' mode)")

    ev = sub.add_parser("evaluate", help="score a run (or a samples file) against real data")
    ev.add_argument("run_dir", nargs="?", help="run directory written by `ganforge train`")
    ev.add_argument("--samples", help="FILE.npz holding samples as array x, instead of RUN_DIR")
    ev.add_argument("--ref", help="reference dataset for --samples (e.g. mnist, ring8, digits)")
    ev.add_argument("--data", action="append", default=[], metavar="KEY=VALUE",
                    help="reference dataset option, e.g. --data root=DIR --data split=test (repeatable)")
    ev.add_argument("--metrics", help="comma list of metrics: fid,kid,is,prdc,modes,class (samples), "
                                      "elbo,iwae (likelihood models), ppl (style-based), l1,psnr,ssim,"
                                      "ychannel,sharpness,colourfulness,cycle (image-to-image), "
                                      "in_key,pitch_class_distance,parallels... (music) "
                                      "(default: all that apply to the run)")
    ev.add_argument("-n", type=int, default=10_000, help="samples per side (default 10000)")
    ev.add_argument("--ema", action="store_true", help="use the EMA generator")
    ev.add_argument("--seed", type=int, default=0, help="seed of the samples and the real split")
    ev.add_argument("--checkpoint", default="final", help="final | last | best | FILE.pt")
    ev.add_argument("--extractor", default="auto",
                    help="auto | lenet_mnist | lenet_digits | lenet_fashion | raw | inception")
    ev.add_argument("--importance-samples", type=int, default=1000, metavar="K",
                    help="k of the importance-weighted bound (iwae metric; default 1000)")
    ev.add_argument("--inception", help="InceptionV3 weights file (for --extractor inception)")
    ev.add_argument("--cache", help="folder for cached reference statistics "
                                    "(default ~/.cache/ganforge/ref_stats)")
    ev.add_argument("-o", "--output", help="eval.json path (default: RUN_DIR/eval.json, or beside --samples)")
    return parser


# --------------------------------------------------------------------------- commands


def _launch_nproc(args: argparse.Namespace, argv: list[str]) -> int:
    """``ganforge train --nproc N ...`` = ``torchrun --nproc_per_node N -m ganforge train ...``."""
    import subprocess

    if args.nproc < 1:
        raise GanforgeError(f"--nproc must be at least 1, got {args.nproc}", "pass e.g. --nproc 2")
    rest, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            rest.append(item)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(args.nproc),
               "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), "-m", "ganforge", *rest]
    done = subprocess.run(command, stderr=subprocess.PIPE, text=True)
    if done.returncode == 0:
        return 0
    # the ranks' own one-line errors (once each), not torchrun's failure report
    errors = list(dict.fromkeys(line for line in done.stderr.splitlines() if line.startswith("ganforge:")))
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 2 if any(line.startswith("ganforge: error:") for line in errors) else 1
    print(done.stderr, file=sys.stderr, end="")
    return done.returncode


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cmd_train(args: argparse.Namespace) -> int:
    from ganforge.config import DEFAULT_PRESET, load_config
    from ganforge.train import Trainer
    from ganforge.train.rundir import never_checkpointed

    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.eval_every is not None:
        overrides.append(f"eval.every={args.eval_every}")
    if args.resume:
        if args.preset or args.config or args.overrides or args.seed is not None or args.force:
            raise GanforgeError("--resume continues a run with its own config",
                                "pass only --resume RUN_DIR (and optionally --steps, --device)")
        run_dir = Path(args.resume)
        killed_early = never_checkpointed(run_dir) and (run_dir / "config.yaml").is_file()
        if not (run_dir / "checkpoints" / "last.pt").is_file() and not killed_early:
            raise GanforgeError(f"{run_dir} has no checkpoints/last.pt to resume from",
                                "point --resume at a run directory written by `ganforge train`")
        cfg = load_config(config_file=run_dir / "config.yaml", overrides=overrides)
        trainer = Trainer(cfg, run_dir, resume=True, device=args.device, progress=not args.quiet,
                          callbacks=_eval_callbacks(cfg))
    else:
        cfg = load_config(args.preset, args.config, overrides)
        name = args.preset or (Path(args.config).stem if args.config else DEFAULT_PRESET)
        run_dir = Path(args.out or f"runs/{name}-{time.strftime('%Y%m%d-%H%M%S')}")
        if args.force and run_dir.is_dir() and os.environ.get("RANK", "0") == "0":
            from ganforge.train.rundir import clear_run

            clear_run(run_dir)
        trainer = Trainer(cfg, run_dir, device=args.device, progress=not args.quiet,
                          callbacks=_eval_callbacks(cfg))
    if not trainer.world.main:  # the other ranks of a multi-process run train silently
        trainer.fit()
        return 0
    ranks = f" x {trainer.world.size} processes" if trainer.world.distributed else ""
    print(f"training {cfg.model['name']} ({cfg.algorithm['name']}) on {cfg.data['name']} for "
          f"{cfg.train.steps} steps on {trainer.exp.device}{ranks} -> {run_dir}")
    trainer.fit()
    if trainer.step >= cfg.train.steps:
        last = sorted((run_dir / "samples").glob("*.png"))
        print(f"done: step {trainer.step}")
        if last:
            print(f"  samples     {last[-1]}")
        print(f"  plots       {run_dir / 'plots'}")
        print(f"  checkpoint  {run_dir / 'checkpoints' / 'final.pt'}")
        suffix = trainer.exp.algorithm.kind.suggested
        print(f"  next        ganforge sample {run_dir} -n 64 -o samples{suffix}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from ganforge.config import DEFAULT_PRESET, list_presets

    table = Table("preset", "description", box=None, pad_edge=False)
    for name, description in list_presets().items():
        label = f"{name} (default)" if name == DEFAULT_PRESET else name
        table.add_row(label, description)
    Console(width=120).print(table)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """Draw what the run can draw (:meth:`Run.draw`) and write it with its data kind's writer
    for the output's extension (:mod:`ganforge.data.kinds`)."""
    from ganforge.data.kinds import writable_suffixes
    from ganforge.models.base import truncation_psi
    from ganforge.text.prompts import read_prompts
    from ganforge.train import load_run

    output = Path(args.output)
    if output.suffix not in writable_suffixes():
        raise GanforgeError(f"output {output} must end in {' or '.join(writable_suffixes())}",
                            "e.g. -o samples.npz or -o grid.png")
    if args.n < 1:
        raise GanforgeError(f"-n must be at least 1, got {args.n}", "pass e.g. -n 64")
    psi = truncation_psi(args.truncation)
    check_output_file(output, "output")
    prompts = read_prompts(args.text, args.text_file)
    if prompts is not None and args.class_ is not None:
        raise GanforgeError("--class and --text both choose what to draw", "pass one of them")
    conditions = parse_conditions(args.condition)
    run = load_run(args.run_dir, args.checkpoint, args.device)
    writer = run.kind.writer(output)
    samples = run.draw(args.n, seed=args.seed, ema=args.ema, class_=args.class_, prompts=prompts, psi=psi,
                       grouped=writer.grouped, conditions=conditions)
    writer.write(samples, output)
    print(f"wrote {samples.description} to {output}")
    return 0


def parse_conditions(items: list[str] | None) -> dict[str, str] | None:
    """``["sex=f", ...]`` -> {"sex": "f"}; a malformed or repeated column is a one-line error."""
    if not items:
        return None
    out: dict[str, str] = {}
    for item in items:
        column, sep, value = item.partition("=")
        if not sep or not column.strip():
            raise GanforgeError(f"--condition {item!r} is not COLUMN=VALUE", "pass e.g. --condition sex=f")
        if column.strip() in out:
            raise GanforgeError(f"--condition names column {column.strip()!r} twice",
                                "give each column one category")
        out[column.strip()] = value.strip()
    return out


def cmd_info(args: argparse.Namespace) -> int:
    from ganforge.train import load_run
    from ganforge.train.logger import read_last_row

    run = load_run(args.run_dir, "last")
    print(yaml.safe_dump(run.config.to_dict(), sort_keys=False).rstrip())
    print(f"\nstep: {run.step} / {run.config.train.steps}   checkpoint: {run.checkpoint}")
    row = read_last_row(Path(args.run_dir) / "metrics.csv")
    if row:
        print("last metrics: " + "  ".join(f"{k}={v}" for k, v in row.items()))
    return 0


def _eval_callbacks(cfg) -> list:
    if not cfg.eval.every:
        return []
    from ganforge.train.algorithms.base import labels_are_classes
    from ganforge.train.eval_callback import EvalCallback

    # class metrics compare with the dataset's labels, which a self-conditioned G never saw
    return [EvalCallback.from_config(cfg.eval, cfg.data, cfg.seed, conditional=labels_are_classes(cfg))]


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a run or a samples file with the metrics the registry finds for it (one path for
    every kind of run: :mod:`ganforge.metrics.runs`)."""
    import json

    from ganforge.config import parse_override
    from ganforge.metrics.runs import EvalSettings, evaluate_run, evaluate_samples_file, format_result

    if (args.run_dir is None) == (args.samples is None):
        raise GanforgeError("pass either RUN_DIR or --samples FILE.npz --ref DATASET",
                            "e.g. ganforge evaluate runs/x, or --samples s.npz --ref mnist")
    if args.n < 2:
        raise GanforgeError(f"-n must be at least 2, got {args.n}", "pass e.g. -n 10000")
    settings = EvalSettings(n=args.n, seed=args.seed, ema=args.ema, extractor=args.extractor,
                            cache=Path(args.cache) if args.cache else None, inception=args.inception,
                            importance_samples=args.importance_samples,
                            options=dict(parse_override(item) for item in args.data))
    if args.samples is not None:
        if not args.ref:
            raise GanforgeError("--samples needs --ref DATASET", "e.g. --ref mnist --data root=DIR")
        samples_path = Path(args.samples)
        fix = "pass an .npz written by `ganforge sample -o FILE.npz`"
        samples = read_npz_array(samples_path, fix).astype(np.float32)
        try:
            with np.load(samples_path, allow_pickle=False) as f:
                labels = np.asarray(f["y"], dtype=np.int64) if "y" in f.files else None
        except (OSError, ValueError, TypeError) as err:
            raise GanforgeError(f"cannot read the labels y of {samples_path}: {err}", fix) from None
        output = Path(args.output) if args.output else samples_path.parent / "eval.json"
        check_output_file(output, "eval.json path")
        result = evaluate_samples_file(samples, labels, {"name": args.ref, **settings.options}, args.metrics,
                                       settings)
        result.update(samples_file=str(samples_path), samples_in_file=len(samples))
    else:
        from ganforge.train import load_run

        run = load_run(args.run_dir, args.checkpoint, "cpu")
        output = Path(args.output) if args.output else Path(args.run_dir) / "eval.json"
        check_output_file(output, "eval.json path")
        result = evaluate_run(run, args.metrics, settings)
    print(format_result(result))
    atomic_write_text(output, json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {output}")
    return 0


def cmd_theory(args: argparse.Namespace) -> int:
    """Run one theory check (or all), print its numbers and targets; exit 1 if a target fails
    (a reported number, ``passed`` None, never fails)."""
    import torch
    from rich.console import Console
    from rich.table import Table

    from ganforge import theory

    torch.set_num_threads(1)  # many small ops: one thread is as fast and spares the other cores
    names = list(theory.RESULTS) if args.result == "all" else [args.result]
    out, console, failed = check_output_dir(args.out, "theory --out"), Console(width=120), 0
    for name in names:
        res = theory.get(name).run(out, seed=args.seed, quick=args.quick)
        table = Table("check", "value", "target", "", title=f"ganforge theory {name}",
                      title_justify="left", box=None, pad_edge=False)
        for c in res["checks"]:
            failed += c["passed"] is False
            status = {True: "[green]PASS", False: "[red]FAIL", None: "[yellow]reported"}[c["passed"]]
            table.add_row(c["check"], f"{c['value']:.4g}", c["target"], status)
        console.print(table)
        for key, value in res["numbers"].items():
            if isinstance(value, float):
                console.print(f"  {key} = {value:.6g}")
            elif isinstance(value, list) and len(value) <= 8:
                console.print(f"  {key} = " + ", ".join(f"{v:.4g}" for v in value))
        for path in res["figures"]:
            console.print(f"  figure  {path}")
        console.print()
    return 1 if failed else 0


COMMANDS = {"train": cmd_train, "presets": cmd_presets, "sample": cmd_sample, "info": cmd_info,
            "evaluate": cmd_evaluate, "theory": cmd_theory, "latent": cmd_latent, "rare": cmd_rare,
            "play": cmd_play, "board": cmd_board, "detect": cmd_detect, "watermark": cmd_watermark,
            "translate": cmd_translate, "predict": cmd_predict, "augment": cmd_augment, "robust": cmd_robust}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv or ["train"])
        if getattr(args, "nproc", None) is not None and "WORLD_SIZE" not in os.environ:
            return _launch_nproc(args, argv)
        return COMMANDS[args.command or "train"](args)
    except GanforgeError as err:
        print(f"ganforge: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `ganforge info RUN | head`: the reader left; exit 1 quietly, as rich does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
