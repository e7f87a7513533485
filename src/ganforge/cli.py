"""The ``ganforge`` command line: a thin layer over the Python API.

Every user mistake surfaces as one line on stderr (the problem and the fix) and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from ganforge.errors import GanforgeError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage + line)
        raise GanforgeError(message, f"see `{self.prog} --help`")


def build_parser() -> argparse.ArgumentParser:
    from ganforge import __version__

    parser = _Parser(prog="ganforge", description="Train, sample and inspect GANs.")
    parser.add_argument("--version", action="version", version=f"ganforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = sub.add_parser("train", help="train a GAN (default: the digits-dcgan preset)")
    train.add_argument("preset", nargs="?", help="preset name (see `ganforge presets`)")
    train.add_argument("--config", help="YAML config file (merged over the preset)")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set train.lr_g=1e-4 (repeatable)")
    train.add_argument("--out", help="run directory (default: runs/PRESET-TIMESTAMP)")
    train.add_argument("--steps", type=int, help="number of generator updates")
    train.add_argument("--seed", type=int, help="random seed")
    train.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a run from checkpoints/last.pt")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    sub.add_parser("presets", help="list the shipped presets")

    sample = sub.add_parser("sample", help="draw samples from a trained run")
    sample.add_argument("run_dir")
    sample.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    sample.add_argument("-o", "--output", required=True, help="FILE.npz (arrays) or FILE.png (grid)")
    sample.add_argument("--ema", action="store_true", help="use the EMA generator")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--checkpoint", default="final", help="final | last | FILE.pt")
    sample.add_argument("--device", default="cpu")

    info = sub.add_parser("info", help="show a run's config, step and last metrics")
    info.add_argument("run_dir")
    return parser


# --------------------------------------------------------------------------- commands


def cmd_train(args: argparse.Namespace) -> int:
    from ganforge.config import DEFAULT_PRESET, ExperimentConfig, load_config
    from ganforge.train import Trainer

    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.resume:
        if args.preset or args.config or args.overrides or args.seed is not None:
            raise GanforgeError("--resume continues a run with its own config",
                                "pass only --resume RUN_DIR (and optionally --steps, --device)")
        run_dir = Path(args.resume)
        if not (run_dir / "checkpoints" / "last.pt").is_file():
            raise GanforgeError(f"{run_dir} has no checkpoints/last.pt to resume from",
                                "point --resume at a run directory written by `ganforge train`")
        cfg = load_config(config_file=run_dir / "config.yaml", overrides=overrides)
        cfg = ExperimentConfig.from_dict(cfg.to_dict())
        trainer = Trainer(cfg, run_dir, resume=True, device=args.device, progress=not args.quiet)
    else:
        cfg = load_config(args.preset, args.config, overrides)
        name = args.preset or (Path(args.config).stem if args.config else DEFAULT_PRESET)
        run_dir = Path(args.out or f"runs/{name}-{time.strftime('%Y%m%d-%H%M%S')}")
        trainer = Trainer(cfg, run_dir, device=args.device, progress=not args.quiet)
    print(f"training {cfg.model['name']} on {cfg.data['name']} for {cfg.train.steps} steps "
          f"on {trainer.exp.device} -> {run_dir}")
    trainer.fit()
    if trainer.step >= cfg.train.steps:
        last = sorted((run_dir / "samples").glob("*.png"))
        print(f"done: step {trainer.step}")
        if last:
            print(f"  samples     {last[-1]}")
        print(f"  plots       {run_dir / 'plots'}")
        print(f"  checkpoint  {run_dir / 'checkpoints' / 'final.pt'}")
        print(f"  next        ganforge sample {run_dir} -n 64 -o samples.png")
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
    from ganforge.train import load_run

    output = Path(args.output)
    if output.suffix not in (".npz", ".png"):
        raise GanforgeError(f"output {output} must end in .npz or .png",
                            "e.g. -o samples.npz or -o grid.png")
    if args.n < 1:
        raise GanforgeError(f"-n must be at least 1, got {args.n}", "pass e.g. -n 64")
    if not output.parent.is_dir():
        raise GanforgeError(f"directory {output.parent} does not exist", "create it first")
    run = load_run(args.run_dir, args.checkpoint, args.device)
    x = run.sample(args.n, ema=args.ema, seed=args.seed)
    if output.suffix == ".npz":
        _atomic_savez(output, x=x.numpy().astype(np.float32))
    elif x.dim() == 4:
        from ganforge.viz import save_grid

        save_grid(x, output)
    else:
        from ganforge.viz import plot_2d_field

        plot_2d_field(x[:0], x, output, title=f"{args.n} samples, step {run.step}")
    print(f"wrote {args.n} samples from step {run.step} to {output}")
    return 0


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


def _atomic_savez(path: Path, **arrays: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


COMMANDS = {"train": cmd_train, "presets": cmd_presets, "sample": cmd_sample, "info": cmd_info}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv or ["train"])
        return COMMANDS[args.command or "train"](args)
    except GanforgeError as err:
        print(f"ganforge: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
