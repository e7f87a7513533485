"""Side-by-side titled image grids: samples per setting, or input | output | target."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from ganforge.errors import GanforgeError
from ganforge.viz._atomic import save_figure
from ganforge.viz.grid import make_grid


def plot_panels(
    panels: Mapping[str, torch.Tensor | np.ndarray],
    path: str | os.PathLike[str],
    nrow: int | None = None,
    title: str | None = None,
    panel_inches: float = 3.0,
) -> Path:
    """Save one PNG with a titled :func:`~ganforge.viz.grid.make_grid` per entry of ``panels``.

    ``panels`` maps a caption to a batch (N, C, H, W) in [-1, 1]; panels sit left to right in
    mapping order, each ``panel_inches`` wide. Every panel must hold images of one channel count
    (grayscale panels are drawn with a grey colour map). An empty mapping raises
    :class:`~ganforge.errors.GanforgeError`.
    """
    if not panels:
        raise GanforgeError("plot_panels needs at least one panel", "pass {caption: images}")
    grids = {name: make_grid(images, nrow=nrow) for name, images in panels.items()}
    height = max(g.shape[0] / g.shape[1] for g in grids.values()) * panel_inches
    fig = Figure(figsize=(panel_inches * len(grids), height + (0.9 if title else 0.5)))
    axes = fig.subplots(1, len(grids), squeeze=False)[0]
    for ax, (name, grid) in zip(axes, grids.items(), strict=True):
        if grid.shape[2] == 1:
            ax.imshow(grid[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            ax.imshow(grid, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
