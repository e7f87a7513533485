"""A directory of PNG/JPEG images as an in-memory dataset, optionally one sub-folder per class."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganforge.data.base import ArrayDataset, register_dataset
from ganforge.data.transforms import uint8_to_unit_range
from ganforge.errors import GanforgeError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
_RESAMPLE = getattr(Image, "Resampling", Image).BICUBIC


def find_images(root: Path) -> list[Path]:
    """Image files (by suffix, case-insensitive) under ``root``, recursively, skipping hidden
    files and folders, sorted by their path relative to ``root`` so the order is deterministic."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(Path(dirpath, f) for f in filenames
                     if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def load_image(path: Path, channels: int) -> Image.Image:
    """Open and fully decode ``path`` as RGB (channels=3) or grayscale (channels=1)."""
    try:
        with Image.open(path) as im:
            return im.convert("RGB" if channels == 3 else "L")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise GanforgeError(f"cannot read image {path}: {err}",
                            f"delete or replace {path.name}") from err


def resize_center_crop(im: Image.Image, size: int) -> Image.Image:
    """Scale so the shorter side is ``size`` (bicubic), then crop the central size x size square."""
    w, h = im.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        im = im.resize((nw, nh), _RESAMPLE)
    left, top = (nw - size) // 2, (nh - size) // 2
    return im.crop((left, top, left + size, top + size))


def _class_labels(root: Path, paths: list[Path], labels: bool | None
                  ) -> tuple[torch.Tensor | None, tuple[str, ...]]:
    rel = [p.relative_to(root) for p in paths]
    loose = [r for r in rel if len(r.parts) < 2]
    if labels is False or (labels is None and loose):
        return None, ()
    if loose:
        raise GanforgeError(
            f"{loose[0]} sits directly in {root}, "
            "but data.labels=true needs one sub-folder per class",
            "move every image into a class folder or set data.labels=false",
        )
    classes = tuple(sorted({r.parts[0] for r in rel}))
    index = {c: i for i, c in enumerate(classes)}
    return torch.tensor([index[r.parts[0]] for r in rel], dtype=torch.int64), classes


@register_dataset("folder")
def folder(root: str, size: int = 32, channels: int = 3, labels: bool | None = None,
           resize: bool = True) -> ArrayDataset:
    """Every ``.png``/``.jpg``/``.jpeg`` under ``root`` as float32 (N, channels, size, size) in
    [-1, 1], RGB (channels=3) or grayscale (channels=1), in sorted path order.

    ``resize=True`` scales each image so its shorter side is ``size`` and centre-crops it to a
    square, so mixed sizes are fine. ``resize=False`` uses the pixels as they are: every image
    must then be exactly size x size.

    ``labels``: ``True`` labels each image by its first-level sub-folder (classes in sorted name
    order, exposed as ``dataset.classes``); ``False`` gives no labels; ``None`` (default) uses
    sub-folders as classes exactly when no image sits directly in ``root``.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise GanforgeError(f"data.size must be a positive int, got {size!r}",
                            "set data.size to e.g. 32")
    if channels not in (1, 3) or isinstance(channels, bool):
        raise GanforgeError(f"data.channels must be 1 or 3, got {channels!r}",
                            "set data.channels=3 for RGB or data.channels=1 for grayscale")
    if labels not in (True, False, None) or not isinstance(resize, bool):
        raise GanforgeError("data.labels must be true, false or null and data.resize true or false",
                            "fix the value in the config")
    base = Path(root).expanduser()
    if not base.is_dir():
        raise GanforgeError(f"image folder {base} does not exist or is not a directory",
                            "point data.root at a folder of .png/.jpg images")
    paths = find_images(base)
    if not paths:
        raise GanforgeError(f"no .png/.jpg/.jpeg images found under {base}",
                            "point data.root at a folder of .png/.jpg images")
    y, classes = _class_labels(base, paths, labels)

    pixels: list[np.ndarray] = []
    first: tuple[Path, tuple[int, int]] | None = None
    for path in paths:
        im = load_image(path, channels)
        if resize:
            im = resize_center_crop(im, size)
        elif first is None:
            first = (path, im.size)
        elif im.size != first[1]:
            (w0, h0), (w, h) = first[1], im.size
            raise GanforgeError(
                f"images of mixed sizes ({first[0].relative_to(base)} is {w0}x{h0}, "
                f"{path.relative_to(base)} is {w}x{h})",
                "set data.resize=true or make them all one size",
            )
        pixels.append(np.asarray(im, dtype=np.uint8))
    if first is not None and first[1] != (size, size):
        w, h = first[1]
        fix = f"set data.size={w} or data.resize=true" if w == h else "set data.resize=true"
        raise GanforgeError(f"the images are {w}x{h} but data.size is {size}", fix)

    array = torch.from_numpy(np.stack(pixels))
    array = array.unsqueeze(1) if channels == 1 else array.permute(0, 3, 1, 2)
    dataset = ArrayDataset(uint8_to_unit_range(array), y, name="folder",
                           num_classes=len(classes) if y is not None else None)
    dataset.classes = classes
    return dataset
