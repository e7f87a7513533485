"""Where the detectors' images come from: image folders, ``.npz`` files, datasets and runs.

Every reader returns an :class:`ImageSet`: float32 images (N, C, H, W) in [-1, 1], a name per
image (for the per-image scores file) and a description of the source (for the provenance).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge._io import read_npz_array
from ganforge.data.transforms import uint8_to_unit_range
from ganforge.errors import GanforgeError

#: PIL modes read as one grey channel; every other mode is read as RGB
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})


@dataclass
class ImageSet:
    x: torch.Tensor
    names: list[str]
    source: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])


def quantise_8bit(x: torch.Tensor) -> torch.Tensor:
    """Round images in [-1, 1] to the 256 levels of an 8-bit PNG (k / 127.5 - 1), as a generated
    image is when saved. ``detect train`` and ``detect score`` quantise every image, so a detector
    cannot key on float precision, which real image files never have."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1


def is_run_dir(path: Path) -> bool:
    """A directory written by ``ganforge train`` (it has ``checkpoints/`` or ``config.yaml``)."""
    return path.is_dir() and ((path / "checkpoints").is_dir() or (path / "config.yaml").is_file())


def check_images(x: torch.Tensor, what: str) -> None:
    """Refuse (GanforgeError) anything but images (N, 1 or 3, H, W)."""
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise GanforgeError(f"{what} has shape {tuple(x.shape)}, not images (N, 1 or 3, H, W)",
                            "give grey or RGB images")


def read_npz(path: Path) -> ImageSet:
    """Array ``x`` (else the first array) of an ``.npz``: (N, C, H, W) or grey (N, H, W), float
    in [-1, 1] (as ``ganforge sample -o FILE.npz`` writes) or uint8 0..255."""
    fix = "pass an .npz with images x (N, C, H, W) in [-1, 1], e.g. from `ganforge sample -o FILE.npz`"
    array = read_npz_array(path, fix)
    if array.ndim == 3:
        array = array[:, None]
    if array.dtype == np.uint8:
        x = uint8_to_unit_range(array)
    elif np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer):
        x = torch.from_numpy(array.astype(np.float32))
    else:
        raise GanforgeError(f"the images in {path} have dtype {array.dtype}", fix)
    check_images(x, f"array x of {path}")
    if len(x) == 0:
        raise GanforgeError(f"{path} holds no images", fix)
    if not torch.isfinite(x).all() or float(x.min()) < -1.001 or float(x.max()) > 1.001:
        low, high = float(x.min()), float(x.max())
        raise GanforgeError(f"the pixel values in {path} lie in [{low:.4g}, {high:.4g}], not [-1, 1]",
                            "scale them to [-1, 1] (uint8 0..255 is read as such)")
    return ImageSet(x.clamp(-1, 1), [str(i) for i in range(len(x))],
                    {"kind": "npz", "path": str(path.absolute()), "images": len(x)})


def read_image_folder(root: Path, expected: tuple[int, int, int] | None = None) -> ImageSet:
    """Every ``.png``/``.jpg``/``.jpeg`` under ``root`` (sorted, hidden files skipped) at its own
    size: grey modes as one channel, everything else as RGB. All images must have one shape, and
    ``expected`` (C, H, W) if given (else the one-line ``detector expects ...`` error)."""
    from PIL import Image

    from ganforge.data.folder import find_images, load_image
    from ganforge.forensics.detector import check_image_shape, shape_text

    paths = find_images(root)
    if not paths:
        raise GanforgeError(f"no .png/.jpg/.jpeg images found under {root}",
                            "point at a folder of .png/.jpg images")
    pixels, first = [], None
    for path in paths:
        try:
            with Image.open(path) as im:
                channels = 1 if im.mode in GREY_MODES else 3
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
            raise GanforgeError(f"cannot read image {path}: {err}",
                                f"delete or replace {path.name}") from None
        array = np.asarray(load_image(path, channels), dtype=np.uint8)
        shape = (channels, *array.shape[:2])
        name = path.relative_to(root).as_posix()
        if expected is not None:
            check_image_shape(expected, shape, name)
        elif first is None:
            first = (name, shape)
        elif shape != first[1]:
            raise GanforgeError(f"images of mixed shapes ({first[0]} is {shape_text(first[1])}, {name} is "
                                f"{shape_text(shape)})", "give images of one size and colour mode")
        pixels.append(array[None] if channels == 1 else array.transpose(2, 0, 1))
    x = torch.from_numpy(np.stack(pixels)).float() / 127.5 - 1.0
    return ImageSet(x, [p.relative_to(root).as_posix() for p in paths],
                    {"kind": "folder", "path": str(root.absolute()), "images": len(x)})


def run_generator_shape(run) -> tuple[int, ...]:
    return tuple(int(d) for d in run.generator.out_shape)


def load_image_run(run_dir: str | Path, checkpoint: str = "final", ema: bool = False):
    """``load_run`` plus the check that the run generates images (N, 1 or 3, H, W)."""
    from ganforge.train import load_run

    run = load_run(run_dir, checkpoint, "cpu")
    shape = run_generator_shape(run)
    if len(shape) != 3 or shape[0] not in (1, 3):
        raise GanforgeError(f"run {run_dir} generates samples of shape {shape}, not images",
                            "pass runs trained on grey or RGB images")
    if ema and run.ema_generator is None:
        raise GanforgeError(f"run {run_dir} was trained without EMA", "drop --ema")
    return run


def sample_run(run, n: int, seed: int, ema: bool = False) -> ImageSet:
    """``n`` samples of a loaded run (classes cycled for a conditional run), codes seeded by
    ``seed`` as ``ganforge sample --seed``."""
    x = run.sample(n, ema=ema, seed=seed).float().clamp(-1, 1)
    cfg = run.config
    source = {"kind": "run", "run_dir": str(Path(run.path).absolute()),
              "checkpoint": str(Path(run.checkpoint).absolute()), "step": run.step,
              "algorithm": cfg.algorithm.get("name"), "model": cfg.model.get("name"),
              "loss": run.algorithm.loss_name,
              "ema": ema, "images": n, "sample_seed": seed}
    return ImageSet(x, [str(i) for i in range(n)], source)


def real_images(spec: str, options: Mapping[str, Any], shape: tuple[int, int, int]) -> ImageSet:
    """Real images for training a detector on images of ``shape`` (C, H, W) from ``spec``: an
    image folder (read by the ``folder`` dataset at size H with C channels, resized and
    centre-cropped unless ``resize=false``), an ``.npz`` or a dataset name (e.g. ``mnist``,
    ``digits``), ``options`` completing the folder's or dataset's data section."""
    from ganforge.data import build_dataset
    from ganforge.forensics.detector import shape_text

    path = Path(spec).expanduser()
    if path.is_dir():
        if is_run_dir(path):
            raise GanforgeError(f"--real {spec} is a run directory", "pass real images: a folder, an .npz "
                                                                     "or a dataset name")
        section = {"name": "folder", "root": str(path), "size": shape[1], "channels": shape[0], **options}
        images = build_dataset(section).x
        source = {"kind": "folder", "path": str(path.absolute()), **options}
    elif path.suffix.lower() == ".npz" or path.is_file():
        if options:
            raise GanforgeError("--data applies to a dataset or an image folder, not an .npz file",
                                "drop --data")
        if not path.is_file():
            raise GanforgeError(f"real images file {spec} does not exist", "check the path")
        found = read_npz(path)
        images, source = found.x, found.source
    elif "/" in spec or "\\" in spec or path.suffix:
        raise GanforgeError(f"real images folder {spec} does not exist", "check the path")
    else:
        dataset = build_dataset({"name": spec, **options})
        images = getattr(dataset, "x", None)
        if images is None:
            raise GanforgeError(f"dataset {spec} is sampled on the fly, not a set of images",
                                "pass an image dataset such as mnist or digits")
        source = {"kind": "dataset", "name": spec, **options}
    images = images.float()
    check_images(images, f"the real data ({spec})")
    if tuple(images.shape[1:]) != tuple(shape):
        same_channels = images.shape[1] == shape[0]
        hint = f"pass --data size={shape[1]}" if same_channels else "give real images like the runs'"
        raise GanforgeError(f"the real images are {shape_text(images.shape[1:])} but the runs generate "
                            f"{shape_text(shape)}", hint)
    source = {**source, "images": len(images)}
    return ImageSet(images, [str(i) for i in range(len(images))], source)
