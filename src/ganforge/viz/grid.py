"""Image grids: tile a batch of generated images into one picture."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganforge.errors import GanforgeError
from ganforge.viz._atomic import atomic_write

#: Smallest on-screen cell size ``save_grid`` aims for when ``scale`` is automatic.
MIN_CELL_PX = 32


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Map values in [-1, 1] to uint8 by ``round((x + 1) * 127.5)`` after clipping to [-1, 1].

    Rounding is half-to-even (like Python's ``round``), so -1 -> 0, 0 -> 128, 1 -> 255.
    NaN (a diverged generator) maps to 0 rather than to an undefined cast.
    """
    x = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-1.0)
    return np.rint((np.clip(x, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def _as_batch(images: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(images, torch.Tensor):
        arr = images.detach().cpu().to(torch.float64).numpy()
    else:
        arr = np.asarray(images, dtype=np.float64)
    if arr.ndim != 4:
        raise GanforgeError(
            f"images must have shape (N, C, H, W), got shape {tuple(arr.shape)}",
            "add a batch or channel dimension",
        )
    n, c = arr.shape[:2]
    if n == 0:
        raise GanforgeError("cannot make a grid of zero images", "pass at least one image")
    if c not in (1, 3):
        raise GanforgeError(
            f"images must have 1 (grayscale) or 3 (RGB) channels, got {c}",
            "pass (N, 1, H, W) or (N, 3, H, W) images",
        )
    return arr


def make_grid(
    images: torch.Tensor | np.ndarray,
    nrow: int | None = None,
    padding: int = 2,
    pad_value: float = -1.0,
) -> np.ndarray:
    """Tile ``images`` (N, C, H, W) with values in [-1, 1] into one uint8 array (H', W', C).

    ``nrow`` is the number of images per grid row (torchvision's convention), default
    ``ceil(sqrt(N))``; the grid has ``cols = min(nrow, N)`` columns and ``ceil(N / nrow)`` rows.
    Image ``i`` sits at grid row ``i // nrow``, column ``i % nrow``. Every cell is surrounded by
    ``padding`` pixels of ``pad_value``, so ``H' = rows * (H + padding) + padding`` and
    ``W' = cols * (W + padding) + padding``; unused trailing cells are filled with ``pad_value``.
    Values are mapped with :func:`to_uint8`. C is 1 (grayscale, kept as one channel) or 3 (RGB);
    anything else raises :class:`~ganforge.errors.GanforgeError` (a ``ValueError``).
    """
    arr = _as_batch(images)
    n, c, h, w = arr.shape
    if nrow is None:
        nrow = math.ceil(math.sqrt(n))
    if nrow < 1:
        raise GanforgeError(f"nrow must be at least 1, got {nrow}")
    if padding < 0:
        raise GanforgeError(f"padding must be non-negative, got {padding}")
    cols = min(nrow, n)
    rows = math.ceil(n / nrow)
    step_h, step_w = h + padding, w + padding
    grid = np.full(
        (rows * step_h + padding, cols * step_w + padding, c),
        to_uint8(np.float64(pad_value)),
        dtype=np.uint8,
    )
    cells = to_uint8(arr).transpose(0, 2, 3, 1)  # (N, H, W, C)
    for i, cell in enumerate(cells):
        top = (i // nrow) * step_h + padding
        left = (i % nrow) * step_w + padding
        grid[top : top + h, left : left + w] = cell
    return grid


def save_grid(
    images: torch.Tensor | np.ndarray,
    path: str | os.PathLike[str],
    nrow: int | None = None,
    scale: int | None = None,
    padding: int = 2,
) -> Path:
    """Write :func:`make_grid` of ``images`` as a PNG at ``path`` (atomically) and return it.

    ``scale`` upsamples the whole grid by an integer factor with nearest-neighbour repetition, so
    every output pixel is exactly one grid pixel. ``None`` picks ``max(1, 32 // H)`` so that small
    images (8x8 digits) get cells of about 32 px. Grayscale grids are saved as mode "L", RGB as
    "RGB".
    """
    batch = _as_batch(images)
    if scale is None:
        scale = max(1, MIN_CELL_PX // batch.shape[2])
    if scale < 1:
        raise GanforgeError(f"scale must be at least 1, got {scale}")
    grid = make_grid(batch, nrow=nrow, padding=padding)
    if scale > 1:
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    image = Image.fromarray(grid[..., 0] if grid.shape[2] == 1 else grid)
    return atomic_write(path, lambda fh: image.save(fh, format="PNG"))
