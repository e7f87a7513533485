"""``ganforge detect train|score``: "is this image generated?"

``detect train`` fits a real-vs-generated detector (``spectrum``: logistic regression on the 1-D
power spectrum, Durall et al. 2020; ``cnn``: a small CNN with blur + JPEG augmentation, Wang et
al. 2020; ``combined``: both, their probabilities averaged, the CNN also trained with random
resizing) on real images against samples of one or more trained runs, holds out 20% of each
class to measure it, and saves it (plain tensors + JSON, no pickle) with its provenance. Every
image, real or generated, is rounded to 8-bit levels first (as a saved PNG is), in training and
in scoring alike.
``detect score`` applies a saved detector to an ``.npz``, a folder of images or a run's samples.

Wiring into the main CLI is two calls: ``add_detect_parser(sub)`` in ``build_parser`` and
``"detect": cmd_detect`` in the command table. Every user mistake raises
:class:`~ganforge.errors.GanforgeError` before any file is written, and files are written
atomically.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ganforge._io import check_output_dir, check_output_file
from ganforge._subcommand import run_alone
from ganforge.errors import GanforgeError

DEFAULT_N = 2000
DEFAULT_SCORE_N = 1000
MIN_N = 10
#: the fakes for training are drawn with sample seeds TRAIN_SEED_BASE + 1000 * --seed + run index,
#: so they differ from ``ganforge sample`` / ``detect score`` samples at small --seed values
TRAIN_SEED_BASE = 1 << 20


def add_detect_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``detect`` command (actions ``train`` and ``score``) to ``subparsers``; returns its
    parser."""
    detect = subparsers.add_parser(
        "detect", help="is this image generated? train and apply real-vs-generated detectors",
        description="Train a detector of generated images on real images vs the samples of trained "
                    "runs (detect train), and score images with it (detect score).")
    actions = detect.add_subparsers(dest="detect_action", metavar="ACTION", required=True)

    train = actions.add_parser(
        "train", help="train a detector: real images vs the samples of runs",
        description="Train a real-vs-generated detector. 20% of each class is held out to measure "
                    "it (AUC, accuracy), and the detector is saved to -o with its provenance.")
    train.add_argument("--real", required=True, metavar="DIR|FILE.npz|DATASET",
                       help="real images: an image folder (resized to the runs' size), an .npz with "
                            "array x in [-1, 1], or a dataset name such as mnist or digits")
    train.add_argument("--fake", required=True, nargs="+", metavar="RUN_DIR",
                       help="runs whose samples are the generated class (split evenly among them)")
    train.add_argument("-o", "--output", required=True, metavar="MODEL_DIR",
                       help="folder for the detector (must not exist, or be empty)")
    train.add_argument("--detector", choices=("spectrum", "cnn", "combined"), default="spectrum",
                       help="spectrum: logistic regression on the 1-D power spectrum (default); "
                            "cnn: a small CNN with blur + JPEG augmentation; combined: both, their "
                            "probabilities averaged (its CNN also with random resizing)")
    train.add_argument("-n", type=int, default=DEFAULT_N,
                       help=f"generated images, and at most as many real ones (default {DEFAULT_N})")
    train.add_argument("--seed", type=int, default=0, help="seed of the split, the samples and the fit")
    train.add_argument("--epochs", type=int, help="cnn, combined: the CNN's passes over the data "
                                                   "(default 10)")
    train.add_argument("--data", action="append", default=[], metavar="KEY=VALUE",
                       help="option of the real dataset or folder, e.g. --data root=DIR --data "
                            "split=test (repeatable)")
    train.add_argument("--ema", action="store_true", help="sample the runs' EMA generators")
    train.add_argument("--checkpoint", default="final", help="final | last | best | FILE.pt")

    score = actions.add_parser(
        "score", help="P(generated) of images: an .npz, an image folder or a run's samples",
        description="Score images with a trained detector: prints the mean probability of "
                    "'generated' and writes per-image scores with -o FILE.csv.")
    score.add_argument("model_dir", metavar="MODEL_DIR", help="folder written by `ganforge detect train`")
    score.add_argument("images", metavar="IMAGES",
                       help="FILE.npz (array x in [-1, 1]), a folder of .png/.jpg images, or a run "
                            "directory (its samples are scored)")
    score.add_argument("-o", "--output", metavar="FILE.csv", help="per-image scores (image, p_generated)")
    score.add_argument("-n", type=int, default=DEFAULT_SCORE_N,
                       help=f"samples to draw when IMAGES is a run (default {DEFAULT_SCORE_N})")
    score.add_argument("--seed", type=int, default=0, help="sample seed when IMAGES is a run (default 0)")
    score.add_argument("--ema", action="store_true", help="sample the run's EMA generator")
    score.add_argument("--checkpoint", default="final", help="final | last | best | FILE.pt (runs)")
    return detect


# --------------------------------------------------------------------------- actions


def _train(args: argparse.Namespace) -> int:
    import torch

    from ganforge import __version__
    from ganforge.config import parse_override
    from ganforge.forensics.detector import HELD_OUT, save_detector, shape_text, train_detector
    from ganforge.forensics.images import (
        load_image_run,
        quantise_8bit,
        real_images,
        run_generator_shape,
        sample_run,
    )

    if args.n < MIN_N:
        raise GanforgeError(f"-n must be at least {MIN_N}, got {args.n}", f"pass e.g. -n {DEFAULT_N}")
    if args.epochs is not None and args.detector not in ("cnn", "combined"):
        raise GanforgeError("--epochs applies to the cnn detector (and the combined one's CNN)",
                            "drop --epochs or pass --detector cnn")
    if args.epochs is not None and args.epochs < 1:
        raise GanforgeError(f"--epochs must be at least 1, got {args.epochs}", "pass e.g. --epochs 10")
    out = check_output_dir(args.output, "detector folder")
    if out.is_dir() and any(out.iterdir()):
        raise GanforgeError(f"detector folder {args.output} exists and is not empty",
                            "choose a new folder, or delete this one first")
    options = dict(parse_override(item) for item in args.data)
    runs = [load_image_run(path, args.checkpoint, args.ema) for path in args.fake]
    shapes = {run_generator_shape(run) for run in runs}
    if len(shapes) > 1:
        listed = ", ".join(f"{path} {shape_text(run_generator_shape(run))}" for path, run in zip(
            args.fake, runs, strict=True))
        raise GanforgeError(f"the runs generate images of different shapes ({listed})",
                            "train one detector per image shape")
    shape = shapes.pop()
    real = real_images(args.real, options, shape)
    if len(real) < MIN_N // 2:
        raise GanforgeError(f"the real data has only {len(real)} images", f"give at least {MIN_N // 2}")

    per_run = [args.n // len(runs) + (k < args.n % len(runs)) for k in range(len(runs))]
    fakes = [sample_run(run, m, TRAIN_SEED_BASE + 1000 * args.seed + k, args.ema)
             for k, (run, m) in enumerate(zip(runs, per_run, strict=True)) if m > 0]
    n_real = min(args.n, len(real))
    pick = torch.randperm(len(real), generator=torch.Generator().manual_seed(args.seed))[:n_real]
    real_x = quantise_8bit(real.x[pick.sort().values])
    fake_x = quantise_8bit(torch.cat([f.x for f in fakes]))
    params = {"epochs": args.epochs} if args.epochs is not None else {}
    start = time.perf_counter()
    detector, report = train_detector(args.detector, real_x, fake_x, seed=args.seed, **params)
    seconds = time.perf_counter() - start
    provenance = {
        "image_shape_text": shape_text(shape), "channels": shape[0], "height": shape[1], "width": shape[2],
        "held_out_auc": report["auc"], "held_out_accuracy": report["accuracy"],
        "training": {"real": {**real.source, "images_used": n_real}, "runs": [f.source for f in fakes],
                     "seed": args.seed, "held_out_fraction": HELD_OUT, "fit_seconds": round(seconds, 2),
                     **{k: report[k] for k in ("train_real", "train_generated", "held_out_real",
                                               "held_out_generated")}},
        "ganforge_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    save_detector(out, detector, provenance)
    print(f"trained the {args.detector} detector on {report['train_real']} real vs "
          f"{report['train_generated']} generated {shape_text(shape)} images from {len(fakes)} run(s) "
          f"in {seconds:.1f} s")
    print(f"held out {report['held_out_real']} + {report['held_out_generated']} images: AUC "
          f"{report['auc']:.3f}, accuracy {report['accuracy']:.1%}")
    print(f"wrote {args.output}  (next: ganforge detect score {args.output} IMAGES -o scores.csv)")
    return 0


def _score(args: argparse.Namespace) -> int:
    import numpy as np

    from ganforge._io import atomic_write_text
    from ganforge.forensics.detector import check_image_shape, load_detector
    from ganforge.forensics.images import (
        is_run_dir,
        load_image_run,
        quantise_8bit,
        read_image_folder,
        read_npz,
        run_generator_shape,
        sample_run,
    )

    out = None
    if args.output is not None:
        out = Path(args.output)
        if out.suffix.lower() != ".csv":
            raise GanforgeError(f"output {out} must end in .csv", "e.g. -o scores.csv")
        check_output_file(out, "scores file")
    if args.n < 1:
        raise GanforgeError(f"-n must be at least 1, got {args.n}", f"pass e.g. -n {DEFAULT_SCORE_N}")
    detector, info = load_detector(args.model_dir)
    expected = tuple(detector.image_shape)
    source = Path(args.images).expanduser()
    if is_run_dir(source):
        run = load_image_run(source, args.checkpoint, args.ema)
        check_image_shape(expected, run_generator_shape(run), f"samples of run {args.images}")
        images = sample_run(run, args.n, args.seed, args.ema)
        what = f"{args.n} samples of run {args.images} (step {run.step}, seed {args.seed})"
    elif source.is_dir():
        images = read_image_folder(source, expected)
        what = f"{len(images)} images in {args.images}"
    elif source.is_file() or source.suffix.lower() == ".npz":
        if not source.is_file():
            raise GanforgeError(f"images file {args.images} does not exist", "check the path")
        images = read_npz(source)
        check_image_shape(expected, images.shape, str(args.images))
        what = f"{len(images)} images in {args.images}"
    else:
        raise GanforgeError(f"{args.images} does not exist",
                            "pass an .npz, a folder of images or a run directory")
    p = detector.predict_proba(quantise_8bit(images.x))
    if out is not None:
        rows = ["image,p_generated", *(f"{_csv_field(name)},{value:.6f}"
                                       for name, value in zip(images.names, p, strict=True))]
        atomic_write_text(out, "\n".join(rows) + "\n")
    auc = info.get("held_out_auc")
    measured = f"held-out AUC {auc:.3f}" if isinstance(auc, float) else "no held-out AUC"
    print(f"{what}: mean P(generated) {float(np.mean(p)):.3f}, {float(np.mean(p > 0.5)):.1%} called "
          f"generated (p > 0.5) by the {info['detector']} detector ({measured})")
    if out is not None:
        print(f"wrote per-image scores to {out}")
    return 0


def _csv_field(text: str) -> str:
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


ACTIONS = {"train": _train, "score": _score}


def cmd_detect(args: argparse.Namespace) -> int:
    """Run the ``detect`` action parsed by :func:`add_detect_parser`; returns the exit status."""
    return ACTIONS[args.detect_action](args)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ganforge.forensics.cli ACTION ...``: the ``detect`` command on its own."""
    return run_alone("detect", add_detect_parser, cmd_detect, "Detect generated images.", argv)


if __name__ == "__main__":
    sys.exit(main())
