"""``ganforge augment RUN_DIR``: synthetic training images of chosen classes from a trained
class-conditional run.

    ganforge augment RUN --class 6 -n 500 -o shirts/          # out/6/00000.png ...
    ganforge augment RUN --class 6 --class 2 -n 200 -o more.npz
    ganforge augment RUN --balance -o topup/                  # every class up to the largest
    ganforge augment RUN --class 6 -n 500 --filter 0.9 -o sure.npz   # AC head p(6|x) >= 0.9

An output ending in ``.npz`` holds ``x`` (float32 in [-1, 1], or uint8 in 0..255 with ``--dtype
uint8``; N x C x H x W) and ``y`` (int64 class indices); any other output is a folder of PNGs,
``OUT/<class index>/00000.png``, the layout ganforge's ``folder`` dataset (``labels: true``)
and torchvision's ``ImageFolder`` read (class folders are zero-padded so they sort in index
order). Both are written whole (a temporary sibling renamed into place) after every check has
passed. ``--filter CONF`` keeps only samples a judge assigns to their class with probability >=
CONF: the run's AC-GAN class head by default, or ``--judge lenet_fashion`` (lenet_mnist,
lenet_digits: the shipped classifiers). Every user mistake is one ``ganforge: error:`` line,
exit status 2, nothing written. Wiring into the main CLI: ``add_augment_parser(sub)`` in
``build_parser`` and ``"augment": cmd_augment`` in the command table.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ganforge._subcommand import run_alone
from ganforge.errors import GanforgeError

JUDGES = ("ac", "lenet_fashion", "lenet_mnist", "lenet_digits")


def add_augment_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``augment`` command to ``subparsers``."""
    p = subparsers.add_parser(
        "augment", help="write synthetic images of chosen classes from a conditional run (for imbalance)",
        description="Sample a class-conditional run's generator for chosen classes and write the "
                    "images as an .npz or an image folder (see docs/augmentation.md).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a class-conditional run written by `ganforge train`")
    p.add_argument("--class", dest="classes", type=int, action="append", metavar="K",
                   help="class index to generate (repeatable)")
    p.add_argument("--balance", action="store_true",
                   help="top every class of the run's training data up to the largest class (or up "
                        "to -n per class); reads the training data")
    p.add_argument("-n", type=int, help="samples per class (with --balance: the target per class)")
    p.add_argument("-o", "--output", required=True,
                   help="OUT.npz, or a folder (absent or empty) for OUT/<class>/00000.png")
    p.add_argument("--ema", action="store_true", help="use the EMA generator")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent codes (default 0)")
    p.add_argument("--filter", type=float, metavar="CONF",
                   help="keep only samples the judge assigns to their class with probability >= CONF")
    p.add_argument("--judge", choices=JUDGES,
                   help="who judges --filter: ac (the run's AC-GAN class head; default) or a shipped "
                        "classifier")
    p.add_argument("--dtype", choices=("float32", "uint8"), default="float32",
                   help=".npz only: x as float32 in [-1, 1] (default) or uint8 in 0..255")
    p.add_argument("--checkpoint", default="final", help="final | last | best | FILE.pt")
    p.add_argument("--device", default="cpu")
    return p


def _check_args(args: argparse.Namespace) -> tuple[Path, bool]:
    """The output path and whether it is an .npz; every check that needs no run."""
    from ganforge._io import check_output_dir, check_output_file

    if args.balance == bool(args.classes):
        raise GanforgeError("pass either --class K (repeatable) or --balance",
                            "e.g. --class 6 -n 500, or --balance")
    if args.classes and args.n is None:
        raise GanforgeError("--class needs -n, the number of samples per class", "e.g. -n 500")
    if args.n is not None and args.n < 1:
        raise GanforgeError(f"-n must be at least 1, got {args.n}", "pass e.g. -n 500")
    if args.classes and len(set(args.classes)) != len(args.classes):
        raise GanforgeError(f"--class repeats a class ({args.classes})", "name each class once")
    if args.filter is not None and not 0 < args.filter <= 1:
        raise GanforgeError(f"--filter must lie in (0, 1], got {args.filter}", "pass e.g. --filter 0.9")
    if args.judge is not None and args.filter is None:
        raise GanforgeError("--judge only matters with --filter", "add --filter CONF or drop --judge")
    output = Path(args.output)
    if output.suffix.lower() == ".npz":
        check_output_file(output, "output")
        return output, True
    if args.dtype != "float32":
        raise GanforgeError("--dtype applies to .npz outputs only", "drop --dtype or write OUT.npz")
    path = check_output_dir(output, "output folder")
    if path.is_dir() and any(path.iterdir()):
        raise GanforgeError(f"output folder {output} exists and is not empty",
                            "choose a new folder (or empty this one)")
    return output, False


def _judge(run, name: str | None):
    from ganforge.augmentation.remedies import ac_head_judge, classifier_judge

    name = name or "ac"
    if name == "ac":
        if run.algorithm.conditional != "acgan":
            raise GanforgeError(f"run {run.path} has no AC-GAN class head to judge --filter with "
                                f"(model.conditional={run.algorithm.conditional})",
                                "pass --judge lenet_fashion (or lenet_mnist, lenet_digits)")
        return ac_head_judge(run.algorithm.networks["D"])
    from ganforge.metrics.classifier import load_classifier

    model, _ = load_classifier(name.removeprefix("lenet_"))
    shape = tuple(run.generator.out_shape)
    want = (1, model.native_size, model.native_size)
    if shape != want:
        raise GanforgeError(f"--judge {name} reads {want[1]}x{want[2]} grayscale images, this run makes "
                            f"{'x'.join(map(str, shape))} images", "pick the judge of the run's data")
    return classifier_judge(model)


def _targets(args: argparse.Namespace, run) -> dict[int, int]:
    """class -> number of samples to write."""
    k = run.num_classes
    if args.classes:
        for c in args.classes:
            if not 0 <= c < k:
                raise GanforgeError(f"class {c} is not one of this run's {k} classes",
                                    f"choose a class from 0 to {k - 1}")
        return {c: args.n for c in args.classes}
    from ganforge.data import build_dataset
    from ganforge.data.imbalanced import class_counts

    data = build_dataset(run.config.data)
    if getattr(data, "y", None) is None:
        raise GanforgeError("--balance needs the run's labelled training data",
                            "pass --class K -n N instead")
    counts = class_counts(data.y, k)
    goal = args.n if args.n is not None else max(counts)
    need = {c: goal - n for c, n in enumerate(counts) if goal > n}
    if not need:
        raise GanforgeError(f"every class already has >= {goal} images ({counts})",
                            "pass a larger -n, or --class K -n N")
    return need


def _write_folder(output: Path, x: np.ndarray, y: np.ndarray, num_classes: int) -> None:
    from PIL import Image

    from ganforge._io import folder_written_whole
    from ganforge.viz.grid import to_uint8

    width = len(str(num_classes - 1))
    pixels = to_uint8(x).transpose(0, 2, 3, 1)  # (N, H, W, C)
    with folder_written_whole(output) as tmp:
        for c in np.unique(y):
            folder = tmp / f"{int(c):0{width}d}"
            folder.mkdir()
            for i, img in enumerate(pixels[y == c]):
                Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(folder / f"{i:05d}.png")


def cmd_augment(args: argparse.Namespace) -> int:
    """Run the ``augment`` command parsed by :func:`add_augment_parser`; returns the exit status."""
    import torch

    from ganforge._io import atomic_write, check_allocation
    from ganforge.augmentation.remedies import sample_class
    from ganforge.train import load_run
    from ganforge.train.algorithms.base import ClassConditioned, require

    output, npz = _check_args(args)
    run = load_run(args.run_dir, args.checkpoint, args.device)
    require(run, ClassConditioned, "generate samples of chosen classes",
            "train with model.conditional=acgan or projection")
    if run.experiment.sample_shape and len(run.experiment.sample_shape) != 3:
        raise GanforgeError(f"run {run.path} makes points, not images", "augment an image run")
    run.pick_generator(args.ema)  # one-line error when there is no EMA copy
    judge = _judge(run, args.judge) if args.filter is not None else None
    targets = _targets(args, run)
    total = sum(targets.values())
    check_allocation(total, tuple(run.generator.out_shape), f"{total} samples", "ask for fewer samples")

    def sampler(k: int, n: int, seed: int) -> torch.Tensor:
        return run.sample(n, ema=args.ema, seed=seed, labels=torch.full((n,), k, dtype=torch.long))

    xs, ys, notes = [], [], []
    for c, n in targets.items():
        x, stats = sample_class(sampler, c, n, seed=args.seed + 1000 * c, judge=judge,
                                threshold=args.filter or 0.0)
        if len(x) < n:
            raise GanforgeError(f"only {len(x)} of {n} samples of class {c} reached confidence "
                                f"{args.filter} ({stats['drawn']} drawn)",
                                "lower --filter, or ask for fewer with -n")
        xs.append(x.clamp(-1, 1))
        ys.append(torch.full((n,), c, dtype=torch.long))
        if judge is not None:
            notes.append(f"class {c}: {stats['acceptance']:.1%} of {stats['drawn']} drawn passed")
    x = torch.cat(xs).numpy().astype(np.float32)
    y = torch.cat(ys).numpy().astype(np.int64)
    if npz:
        from ganforge.viz.grid import to_uint8

        arrays = {"x": to_uint8(x) if args.dtype == "uint8" else x, "y": y}
        atomic_write(output, lambda fh: np.savez(fh, **arrays))
    else:
        _write_folder(output, x, y, run.num_classes)
    per = ", ".join(f"{n} of class {c}" for c, n in targets.items())
    print(f"wrote {len(y)} samples ({per}) from step {run.step} to {output}")
    for note in notes:
        print(f"  filter  {note} (judge {args.judge or 'ac'}, confidence >= {args.filter})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ganforge.augmentation.cli ...``: the ``augment`` command on its own."""
    return run_alone("augment", add_augment_parser, cmd_augment, "GAN data augmentation.", argv)


if __name__ == "__main__":
    sys.exit(main())
