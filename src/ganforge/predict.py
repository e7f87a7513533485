"""``ganforge predict RUN_DIR --input FRAMES_DIR|GIF|MP4|NPZ -o OUT.gif|OUT.mp4|OUT.npz|OUT.png``:
continue your own clip with a frame-prediction run (:class:`~ganforge.train.algorithms.base.PredictsFrames`).

The input is one clip (a GIF, a video file, a folder of frame images, or an ``.npz`` holding
frames (T, H, W), (T, C, H, W) or (T, H, W, C)), or an ``.npz`` of several clips (N, T, C, H, W);
its last ``observed`` frames (the run's) are read and ``--horizon`` frames (default: the run's)
are predicted. The output is written by the ``sequence`` data kind: the observed frames followed
by the predicted ones (``.gif``, ``.mp4``, a ``.png`` strip), or ``.npz`` with ``x`` (observed +
predicted), ``prediction`` and ``observed``. Every mistake (a clip shorter than the run observes,
frames of another size than the run's, an extension the kind cannot write) is one line and exit
status 2 before anything is written.

Wiring into the main CLI is two calls: ``add_predict_parser(sub)`` in ``build_parser`` and
``"predict": cmd_predict`` in the command table.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ganforge._subcommand import run_alone
from ganforge.errors import GanforgeError


def add_predict_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``predict`` command to ``subparsers``."""
    p = subparsers.add_parser(
        "predict",
        help="continue your own clip with a frame-prediction run",
        description="Predict the frames that follow a clip with a trained frame predictor "
        "(see docs/video.md).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a frame-prediction run written by `ganforge train`")
    p.add_argument(
        "--input",
        required=True,
        metavar="FRAMES_DIR|GIF|MP4|NPZ",
        help="a folder of frame images, a .gif/.mp4, or an .npz of frames or clips",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="OUT.gif, OUT.mp4, OUT.png (a strip) or OUT.npz (x, prediction, observed)",
    )
    p.add_argument("--horizon", type=int, default=None, help="frames to predict (default: the run's)")
    p.add_argument("--checkpoint", default="final", help="final | last | best | FILE.pt")
    p.add_argument("--ema", action="store_true", help="use the EMA predictor")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | mps (default cpu)")
    return p


def load_clips(path: str | Path, channels: int) -> torch.Tensor:
    """Clips (N, T, channels, H, W) in [-1, 1] from ``path`` (see the module docstring)."""
    from ganforge._io import read_npz_array
    from ganforge.data.sequence import clip_to_tensor, read_clip

    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".npz":
        a = read_npz_array(path, "pass an .npz with frames x (T, H, W) or clips x (N, T, C, H, W)")
        if a.ndim == 5:
            x = (
                torch.from_numpy(a).float() / 127.5 - 1
                if a.dtype == np.uint8
                else torch.from_numpy(np.asarray(a, dtype=np.float32))
            )
            if not torch.isfinite(x).all() or x.min() < -1.001 or x.max() > 1.001:
                raise GanforgeError(
                    f"{path} holds values outside [-1, 1] (or NaN)",
                    "scale the frames to [-1, 1] (or store uint8 0..255)",
                )
            if x.shape[2] != channels:
                raise GanforgeError(
                    f"{path} holds {x.shape[2]}-channel clips, and this run predicts "
                    f"{channels}-channel frames",
                    f"pass clips with {channels} channel(s)",
                )
            return x
    return clip_to_tensor(read_clip(path), channels)[None]


def cmd_predict(args: argparse.Namespace) -> int:
    """Run ``ganforge predict`` (see the module docstring); returns the exit status."""
    from ganforge._io import check_output_file
    from ganforge.data.kinds import Samples, get_kind
    from ganforge.train import load_run
    from ganforge.train.algorithms.base import PredictsFrames, require

    output = Path(args.output)
    writer = get_kind("sequence").writer(output)
    check_output_file(output, "output")
    if args.horizon is not None and args.horizon < 1:
        raise GanforgeError(f"--horizon must be at least 1, got {args.horizon}", "pass e.g. --horizon 10")
    run = load_run(args.run_dir, args.checkpoint, args.device)
    algorithm = require(run, PredictsFrames, "predict frames")
    G = run.pick_generator(args.ema)
    t, c, h, w = algorithm.sample_shape
    clips = load_clips(args.input, c)
    if clips.shape[1] < algorithm.observed:
        raise GanforgeError(
            f"{args.input} holds {clips.shape[1]} frames, and this run reads "
            f"{algorithm.observed} before predicting",
            f"pass a clip of at least {algorithm.observed} frames",
        )
    if tuple(clips.shape[-2:]) != (h, w):
        raise GanforgeError(
            f"{args.input} holds {clips.shape[-1]}x{clips.shape[-2]} frames, and this run "
            f"was trained on {w}x{h}",
            f"resize the frames to {w}x{h}",
        )
    observed = clips[:, -algorithm.observed :]
    predicted = algorithm.predict(observed, args.horizon, G)
    if not torch.isfinite(predicted).all():
        raise GanforgeError(f"the predictor of {run.path} outputs NaN or inf", "use an earlier checkpoint")
    whole = torch.cat([observed, predicted], dim=1)
    writer.write(
        Samples(
            whole,
            {"prediction": predicted, "observed": np.int64(algorithm.observed)},
            title=f"{algorithm.observed} observed + {predicted.shape[1]} predicted frames",
        ),
        output,
    )
    print(
        f"predicted {predicted.shape[1]} frames after {algorithm.observed} observed ones of "
        f"{len(clips)} clip{'s' * (len(clips) != 1)} with {run.path} (step {run.step}) -> {output}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ganforge.predict ...``: the ``predict`` command on its own."""
    return run_alone("predict", add_predict_parser, cmd_predict, "Frame prediction.", argv)


if __name__ == "__main__":
    sys.exit(main())
