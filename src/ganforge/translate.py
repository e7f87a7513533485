"""``ganforge translate RUN_DIR --input FILE|DIR|.npz -o OUT``: apply an image-to-image run's G to
your own images. ``ganforge sample`` writes such runs through the ``paired`` data kind
(:mod:`ganforge.data.kinds`) and ``ganforge evaluate`` scores them through the metric registry
(:mod:`ganforge.metrics.runs`).

Inputs: one PNG/JPEG, a folder of them (sorted, recursively), or an ``.npz`` whose array ``x``
(else its first array) holds images (N, C, H, W) in [-1, 1] (or uint8 0..255). Images are
converted to the channels G takes (grey <-> RGB; any other count must match exactly), and every
side must be a multiple of 2^depth (the U-Net halves it depth times). Outputs: ``OUT.npz``
(``x`` the outputs, ``cond`` the inputs, float32 in [-1, 1]), ``OUT.png`` (an input | output
grid) or a folder (absent or empty) of one PNG per input, named after it. Every mistake is one
line and exit status 2 before anything is written; files are written atomically, a folder whole.

Wiring into the main CLI is two calls: ``add_translate_parser(sub)`` in ``build_parser`` and
``"translate": cmd_translate`` in the command table.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge._subcommand import run_alone
from ganforge.errors import GanforgeError

OUTPUT_SUFFIXES = (".npz", ".png")


def add_translate_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``translate`` command to ``subparsers``."""
    p = subparsers.add_parser(
        "translate", help="apply an image-to-image run (pix2pix...) to your own images",
        description="Translate images with a trained image-to-image run's generator "
                    "(see docs/image-to-image.md).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="an image-to-image run written by `ganforge train`")
    p.add_argument("--input", required=True, metavar="FILE|DIR|NPZ",
                   help="a PNG/JPEG, a folder of them, or an .npz with images x (N, C, H, W) in [-1, 1]")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="OUT.npz (arrays x, cond), OUT.png (input | output grid) or a folder of PNGs")
    p.add_argument("--checkpoint", default="final", help="final | last | best | FILE.pt")
    p.add_argument("--ema", action="store_true", help="use the EMA generator")
    p.add_argument("--seed", type=int, default=0, help="seed of G's noise (its dropout)")
    p.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default 256)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | mps (default cpu)")
    return p


# --------------------------------------------------------------------------- inputs
def _convert_channels(x: torch.Tensor, channels: int, source: str) -> torch.Tensor:
    """(N, C, H, W) to ``channels``: grey -> RGB repeats, RGB -> grey by ITU-R 601 luma; any
    other mismatch is an error."""
    c = x.shape[1]
    if c == channels:
        return x
    if c == 1 and channels == 3:
        return x.repeat(1, 3, 1, 1)
    if c == 3 and channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(1, 3, 1, 1)
        return (x * weights).sum(dim=1, keepdim=True)
    raise GanforgeError(f"{source} holds {c}-channel images, and this run's generator takes {channels} "
                        "channel(s)", f"pass images with {channels} channel(s)")


def load_inputs(path: str | Path, channels: int) -> tuple[torch.Tensor, list[str]]:
    """Images (N, channels, H, W) in [-1, 1] and a name per image from ``path``; see the module
    docstring."""
    from ganforge._io import read_npz_array
    from ganforge.data.folder import IMAGE_SUFFIXES, find_images

    path = Path(path)
    if not path.exists():
        raise GanforgeError(f"input {path} does not exist", "pass a PNG/JPEG, a folder of them, or an .npz")
    if path.is_file() and path.suffix.lower() == ".npz":
        a = read_npz_array(path, "pass an .npz with images x (N, C, H, W) in [-1, 1]")
        if a.ndim == 3:
            a = a[:, None]
        if a.ndim != 4 or len(a) == 0:
            raise GanforgeError(f"{path} holds an array of shape {a.shape}, not images (N, C, H, W)",
                                "save the images as x with shape (N, C, H, W)")
        if a.dtype == np.uint8:
            x = torch.from_numpy(a).float() / 127.5 - 1
        else:
            x = torch.from_numpy(np.asarray(a, dtype=np.float32))
            if not torch.isfinite(x).all() or x.min() < -1.001 or x.max() > 1.001:
                raise GanforgeError(f"{path} holds values outside [-1, 1] (or NaN)",
                                    "scale the images to [-1, 1] (or store uint8 0..255)")
        names = [f"{i:06d}" for i in range(len(x))]
        return _convert_channels(x, channels, str(path)), names
    if path.is_file():
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise GanforgeError(f"input {path} is not a .png/.jpg/.jpeg or .npz file",
                                "pass a PNG/JPEG, a folder of them, or an .npz")
        files, root = [path], path.parent
    else:
        files, root = find_images(path), path
        if not files:
            raise GanforgeError(f"no .png/.jpg/.jpeg images found under {path}", "pass a folder of images")
    if channels not in (1, 3):
        raise GanforgeError(f"this run's generator takes {channels}-channel inputs, which image files "
                            "cannot hold", "pass them as an .npz array x (N, C, H, W)")
    from ganforge.data.folder import load_image

    arrays, first = [], None
    for f in files:
        a = np.asarray(load_image(f, channels), dtype=np.uint8)
        a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
        if first is None:
            first = (f, a.shape)
        elif a.shape != first[1]:
            raise GanforgeError(f"input images of mixed sizes ({first[0].relative_to(root)} is "
                                f"{first[1][2]}x{first[1][1]}, {f.relative_to(root)} is "
                                f"{a.shape[2]}x{a.shape[1]})",
                                "translate one size at a time")
        arrays.append(a)
    x = torch.from_numpy(np.stack(arrays)).float() / 127.5 - 1
    return x, [f.relative_to(root).with_suffix("").as_posix() for f in files]


def check_inputs(G: Any, x: torch.Tensor, source: str, multiple: int = 1) -> None:
    """One-line error unless G accepts images of ``x``'s size (and channels): every side a
    multiple of ``multiple`` (the algorithm's :meth:`~Translates.input_multiple` of G)."""
    from ganforge.models.pix2pix import accepted_sides

    if x.shape[1] != G.in_channels:
        raise GanforgeError(f"{source} holds {x.shape[1]}-channel images, and this run's generator takes "
                            f"{G.in_channels}", f"pass images with {G.in_channels} channel(s)")
    h, w = x.shape[-2:]
    if h % multiple or w % multiple:
        raise GanforgeError(f"{source} holds {w}x{h} images, and this run's generator takes sides of "
                            f"{accepted_sides(G)}", "resize or pad the images to an accepted size")


# --------------------------------------------------------------------------- outputs
def _output_kind(output: Path) -> str:
    from ganforge._io import check_output_dir, check_output_file

    if output.suffix.lower() in OUTPUT_SUFFIXES:
        check_output_file(output, "output")
        return output.suffix.lower()
    if output.suffix:
        raise GanforgeError(f"output {output} must be a .npz, a .png or a folder",
                            "e.g. -o out.npz, -o grid.png or -o translated/")
    check_output_dir(output, "output folder")
    if output.exists() and any(output.iterdir()):
        raise GanforgeError(f"output folder {output} exists and is not empty",
                            "choose a new folder, or empty it first")
    return "folder"


def write_outputs(output: Path, kind: str, cond: torch.Tensor, out: torch.Tensor, names: list[str]) -> None:
    """``out`` (and the inputs ``cond``) as ``kind`` (.npz, .png or folder), written whole."""
    from ganforge._io import folder_written_whole
    from ganforge.data.kinds import Samples
    from ganforge.data.writers import write_npz, write_panels
    from ganforge.train.algorithms.image_to_image import displayable
    from ganforge.viz import save_grid

    if kind == ".npz":
        write_npz(Samples(out, {"cond": cond}), output)
    elif kind == ".png":
        write_panels(Samples(out, panels={"input": displayable(cond), "output": out}), output)
    else:
        with folder_written_whole(output) as tmp:
            for name, image in zip(names, out, strict=True):
                target = tmp / f"{name}.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                save_grid(image[None], target, scale=1, padding=0)


def _load_image_to_image_run(run_dir: str, checkpoint: str, device: str, ema: bool):
    """The run, its algorithm (which :class:`Translates`) and the generator to translate with."""
    from ganforge.train import load_run
    from ganforge.train.algorithms.base import Translates, require

    run = load_run(run_dir, checkpoint, device)
    algorithm = require(run, Translates, "translate images")
    return run, algorithm, run.pick_generator(ema)


def cmd_translate(args: argparse.Namespace) -> int:
    """Run ``ganforge translate`` (see the module docstring); returns the exit status."""
    if args.batch_size < 1:
        raise GanforgeError(f"--batch-size must be at least 1, got {args.batch_size}",
                            "pass e.g. --batch-size 256")
    output = Path(args.output)
    kind = _output_kind(output)
    run, algorithm, G = _load_image_to_image_run(args.run_dir, args.checkpoint, args.device, args.ema)
    images, names = load_inputs(args.input, algorithm.user_channels(G))
    from ganforge._io import check_allocation

    check_allocation(2 * len(images), tuple(images.shape[1:]), f"{len(images)} images",
                     "translate fewer at a time")
    x = algorithm.prepare_inputs(images)
    check_inputs(G, x, str(args.input), algorithm.input_multiple(G))
    out = algorithm.translate(x, G, torch.Generator().manual_seed(args.seed), args.batch_size)
    if not torch.isfinite(out).all():
        raise GanforgeError(f"the generator of {run.path} outputs NaN or inf", "use an earlier checkpoint")
    write_outputs(output, kind, images, algorithm.output_images(x, out), names)
    print(f"translated {len(x)} image{'s' * (len(x) != 1)} with {run.path} (step {run.step}) -> {output}")
    return 0


# --------------------------------------------------------------------------- sample
def write_samples(run: Any, n: int, output: Path, *, seed: int = 0, ema: bool = False) -> int:
    """``ganforge sample`` on an image-to-image run: the run's fixed pairs cycled to ``n``,
    translated; ``.png``: an input | output | target figure; ``.npz``: ``x`` (outputs), ``cond``
    (inputs), ``target``."""
    from ganforge._io import atomic_write
    from ganforge.viz import plot_panels

    G = run.pick_generator(ema)
    panels = run.algorithm.panels(n, G, torch.Generator().manual_seed(seed))
    if output.suffix == ".npz":
        cond, target = run.algorithm.fixed_pairs(n)
        arrays = {"x": panels["output"].numpy().astype(np.float32),
                  "cond": cond.numpy().astype(np.float32), "target": target.numpy().astype(np.float32)}
        atomic_write(output, lambda fh: np.savez(fh, **arrays))
    else:
        plot_panels(panels, output, title=f"{run.path.name}, step {run.step}")
    print(f"wrote {n} input | output | target triples of step {run.step} to {output}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ganforge.translate ...``: the ``translate`` command on its own."""
    return run_alone("translate", add_translate_parser, cmd_translate, "Image-to-image translation.", argv)


if __name__ == "__main__":
    sys.exit(main())
