"""Writers for latent-space pictures: PNG strips and grids, animated GIFs, 2-D point plots.

Images are (N, C, H, W) tensors in [-1, 1] (C = 1 or 3), tiled with :func:`ganforge.viz.make_grid`
(so strips, grids and GIF frames share its padding, value mapping and automatic upscaling);
2-D points are (N, 2). Every file is written atomically (:func:`ganforge._io.atomic_write`):
on any error nothing, not even a partial file, is left at the target path.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from ganforge._io import atomic_write
from ganforge.errors import GanforgeError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# ganforge.viz (and so matplotlib) is imported inside the writers: `import ganforge.latent`, which
# the CLI does on every call, stays light.

Points = torch.Tensor | np.ndarray

#: Colours of real and generated points (those of :mod:`ganforge.viz.field`).
REAL_COLOUR = "tab:blue"
FAKE_COLOUR = "tab:orange"

#: Colour of the background cloud of generated samples in 2-D plots.
CLOUD_COLOUR = "0.75"


def _grid():
    from ganforge.viz import grid

    return grid


def _plotting():
    """matplotlib's Figure, the atomic figure writer and the 2-D point helpers of ganforge.viz."""
    from matplotlib.figure import Figure

    from ganforge.viz._atomic import save_figure
    from ganforge.viz.field import _as_points, auto_bounds

    return Figure, save_figure, _as_points, auto_bounds


def _images(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
    if x.dim() != 4 or len(x) == 0:
        raise GanforgeError(f"images must have shape (N, C, H, W) with N >= 1, got {tuple(x.shape)}",
                            "pass a batch of images")
    return x.detach().cpu()


def _auto_scale(height: int, scale: int | None) -> int:
    scale = max(1, _grid().MIN_CELL_PX // height) if scale is None else scale
    if scale < 1:
        raise GanforgeError(f"scale must be at least 1, got {scale}")
    return scale


def save_strip(images: torch.Tensor | np.ndarray, path: str | os.PathLike[str],
               scale: int | None = None, padding: int = 2) -> Path:
    """Write the N images as one row (a PNG of ``N (W + padding) + padding`` by ``H + 2 padding``
    grid pixels, times ``scale``, which defaults to ``max(1, 32 // H)``). Atomic."""
    x = _images(images)
    return _grid().save_grid(x, path, nrow=len(x), scale=scale, padding=padding)


def save_rows(rows: torch.Tensor | np.ndarray, path: str | os.PathLike[str],
              scale: int | None = None, padding: int = 2) -> Path:
    """Write an (R, n, C, H, W) tensor as a PNG grid of R rows of n images each. Atomic."""
    x = torch.as_tensor(np.asarray(rows)) if not isinstance(rows, torch.Tensor) else rows
    if x.dim() != 5 or x.shape[0] == 0 or x.shape[1] == 0:
        raise GanforgeError(f"rows must have shape (R, n, C, H, W), got {tuple(x.shape)}",
                            "pass at least one row of images")
    return _grid().save_grid(x.flatten(0, 1), path, nrow=x.shape[1], scale=scale, padding=padding)


def gif_frames(images: torch.Tensor | np.ndarray, scale: int | None = None, padding: int = 2,
               progress_bar: bool = True) -> list[Image.Image]:
    """One PIL frame per entry of ``images``: (T, C, H, W) gives one image per frame, (T, P, C, H, W)
    a row of P images per frame (e.g. the same code rendered for every class).

    A frame is its image(s) tiled like :func:`make_grid` (one row), upscaled by ``scale`` (default
    ``max(1, 32 // H)``) and, with ``progress_bar``, a bar of ``max(2, scale)`` pixel rows
    underneath whose white part grows from empty (first frame) to full (last frame). The bar also
    keeps frames distinct: the GIF writer merges identical consecutive frames, which it still does
    past one frame per pixel of bar width."""
    x = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
    if x.dim() == 4:
        x = x[:, None]
    if x.dim() != 5 or x.shape[0] == 0 or x.shape[1] == 0:
        raise GanforgeError(f"GIF frames must have shape (T, C, H, W) or (T, P, C, H, W), got "
                            f"{tuple(x.shape)}", "pass at least one frame")
    x = x.detach().cpu()
    scale = _auto_scale(x.shape[3], scale)
    frames = []
    for i, batch in enumerate(x):
        cell = _grid().make_grid(batch, nrow=len(batch), padding=padding)
        cell = cell.repeat(scale, axis=0).repeat(scale, axis=1)
        if progress_bar:
            bar = np.zeros((max(2, scale), cell.shape[1], cell.shape[2]), dtype=np.uint8)
            filled = round(cell.shape[1] * i / (len(x) - 1)) if len(x) > 1 else cell.shape[1]
            bar[:, :filled] = 255
            cell = np.concatenate([cell, bar])
        frames.append(Image.fromarray(cell[..., 0] if cell.shape[2] == 1 else cell))
    return frames


def _write_gif(frames: Sequence[Image.Image], path: str | os.PathLike[str], duration: int) -> Path:
    if isinstance(duration, bool) or not isinstance(duration, int) or duration < 1:
        raise GanforgeError(f"the frame duration must be a positive number of milliseconds, "
                            f"got {duration!r}", "pass e.g. 100")
    if not frames:
        raise GanforgeError("no frames to write", "pass at least one image")
    first, rest = frames[0], list(frames[1:])
    return atomic_write(path, lambda fh: first.save(fh, format="GIF", save_all=True, append_images=rest,
                                                    duration=duration, loop=0))


def save_gif(images: torch.Tensor | np.ndarray, path: str | os.PathLike[str], duration: int = 100,
             scale: int | None = None, progress_bar: bool = True) -> Path:
    """Write ``images`` (T, C, H, W), or (T, P, C, H, W) for P images side by side, as an animated
    GIF that loops forever, ``duration`` ms per frame (frames from :func:`gif_frames`). Atomic."""
    return _write_gif(gif_frames(images, scale, progress_bar=progress_bar), path, duration)


# --------------------------------------------------------------------------- 2-D points


def _setup(ax, box, title: str = "") -> None:
    ax.set_xlim(box[0], box[1])
    ax.set_ylim(box[2], box[3])
    ax.set_aspect("equal")
    if title:
        ax.set_title(title, fontsize="small")


def _cloud(ax, cloud: np.ndarray, label: str | None = "generated samples") -> None:
    if len(cloud):
        ax.scatter(cloud[:, 0], cloud[:, 1], s=3, c=CLOUD_COLOUR, linewidths=0, label=label,
                   rasterized=True, zorder=1)


def _paths(points: Points) -> np.ndarray:
    """(T, 2) or (P, T, 2) points as a float64 (P, T, 2) array."""
    arr = points.detach().cpu().double().numpy() if isinstance(points, torch.Tensor) else (
        np.asarray(points, dtype=np.float64))
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[2] != 2 or arr.shape[1] == 0:
        raise GanforgeError(f"a 2-D path must have shape (T, 2) or (P, T, 2), got {arr.shape}",
                            "pass 2-D points, one per row")
    return arr


def _path_labels(n: int, labels: Sequence[str] | None) -> list[str | None]:
    if labels is not None and len(labels) != n:
        raise GanforgeError(f"{n} paths but {len(labels)} labels", "pass one label per path")
    return list(labels) if labels is not None else [None] * n


def plot_path_2d(points: Points, path: str | os.PathLike[str], background: Points | None = None,
                 keyframes: Sequence[int] = (), title: str = "",
                 labels: Sequence[str] | None = None) -> Path:
    """Write a PNG of a path of generated 2-D points ``G(z(t))`` in data space: the points joined
    in order and coloured by t (viridis, colour bar), ``keyframes`` (indices along the path)
    ringed in red, over an optional grey ``background`` cloud (e.g. 1000 ordinary samples).

    ``points`` is (T, 2), or (P, T, 2) for P paths (e.g. one per class, named by ``labels``,
    written next to each path's start). Atomic."""
    Figure, save_figure, as_points, auto_bounds = _plotting()
    paths, cloud = _paths(points), as_points(background, "background")
    names = _path_labels(len(paths), labels)
    box = auto_bounds(cloud, *paths)
    fig = Figure(figsize=(6.0, 5.2))
    ax = fig.add_subplot()
    _cloud(ax, cloud)
    t = np.linspace(0.0, 1.0, paths.shape[1])
    sc = None
    for p, (pts, name) in enumerate(zip(paths, names, strict=True)):
        ax.plot(pts[:, 0], pts[:, 1], "-", c="k", lw=0.8, alpha=0.6, zorder=2)
        sc = ax.scatter(pts[:, 0], pts[:, 1], c=t, cmap="viridis", vmin=0, vmax=1, s=18, zorder=3,
                        label="path G(z(t))" if p == 0 else None)
        keys = [k for k in keyframes if 0 <= k < len(pts)]
        if keys:
            ax.scatter(pts[keys, 0], pts[keys, 1], s=80, facecolors="none", edgecolors="tab:red",
                       linewidths=1.5, zorder=4, label="keyframes" if p == 0 else None)
        if name:
            ax.annotate(name, pts[0], xytext=(4, 4), textcoords="offset points", fontsize="small")
    _setup(ax, box)
    fig.colorbar(sc, ax=ax).set_label("t along the path")
    ax.legend(loc="best", fontsize="small", framealpha=0.8)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def _figure_image(fig: Figure, dpi: int) -> Image.Image:
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        fig.clear()
    buf.seek(0)
    with Image.open(buf) as im:
        return im.convert("RGB")


def save_path_gif_2d(points: Points, path: str | os.PathLike[str], background: Points | None = None,
                     duration: int = 100, dpi: int = 60) -> Path:
    """Write an animated GIF of a 2-D path, (T, 2), or of P paths moving together, (P, T, 2):
    every frame shows the whole path(s) faintly, the part travelled in red and the current points
    ``G(z(t_i))`` as large red dots, on axes fixed across frames. Atomic."""
    Figure, save_figure, as_points, auto_bounds = _plotting()
    paths, cloud = _paths(points), as_points(background, "background")
    box = auto_bounds(cloud, *paths)
    frames = []
    steps = paths.shape[1]
    for i in range(steps):
        fig = Figure(figsize=(4.0, 4.0))
        ax = fig.add_subplot()
        _cloud(ax, cloud, None)
        for pts in paths:
            ax.plot(pts[:, 0], pts[:, 1], "-", c="k", lw=0.6, alpha=0.4)
            ax.plot(pts[: i + 1, 0], pts[: i + 1, 1], "-", c="tab:red", lw=1.2)
        ax.scatter(paths[:, i, 0], paths[:, i, 1], s=60, c="tab:red", zorder=3)
        _setup(ax, box, f"frame {i + 1}/{steps}")
        fig.tight_layout()
        frames.append(_figure_image(fig, dpi))
    return _write_gif(frames, path, duration)


def plot_panels_2d(panels: Sequence[tuple[str, Points]], path: str | os.PathLike[str],
                   background: Points | None = None) -> Path:
    """Write a PNG with one scatter panel per ``(title, points)`` (e.g. one per truncation
    setting), all on shared axes, over an optional grey ``background`` cloud. Atomic."""
    Figure, save_figure, as_points, auto_bounds = _plotting()
    if not panels:
        raise GanforgeError("no panels to plot", "pass at least one (title, points) pair")
    shots = [(title, as_points(pts, title)) for title, pts in panels]
    cloud = as_points(background, "background")
    box = auto_bounds(cloud, *(pts for _, pts in shots))
    fig = Figure(figsize=(2.4 * len(shots), 2.7))
    axes = fig.subplots(1, len(shots), squeeze=False)[0]
    for ax, (title, pts) in zip(axes, shots, strict=True):
        _cloud(ax, cloud, None)
        ax.scatter(pts[:, 0], pts[:, 1], s=4, c=FAKE_COLOUR, linewidths=0, rasterized=True, zorder=2)
        _setup(ax, box, title)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return save_figure(fig, path)


def plot_arithmetic_2d(samples: dict[str, Points], mean_samples: dict[str, Points],
                       result_sample: Points, variation_samples: Points | None,
                       path: str | os.PathLike[str], background: Points | None = None) -> Path:
    """Write a PNG of ``a - b + c`` for a 2-D generator: the samples of groups a, b, c (small
    dots), the samples of their mean codes (large dots), ``G(result)`` (star) and its variations
    (small stars), over an optional grey ``background`` cloud. Atomic."""
    Figure, save_figure, as_points, auto_bounds = _plotting()
    colours = {"a": "tab:blue", "b": "tab:orange", "c": "tab:green"}
    groups = {k: as_points(samples[k], f"group {k}") for k in colours}
    means = {k: as_points(mean_samples[k], f"mean {k}") for k in colours}
    res = as_points(result_sample, "result")
    var = as_points(variation_samples, "variations")
    cloud = as_points(background, "background")
    box = auto_bounds(cloud, res, var, *groups.values(), *means.values())
    fig = Figure(figsize=(6.0, 5.2))
    ax = fig.add_subplot()
    _cloud(ax, cloud)
    for k, colour in colours.items():
        ax.scatter(groups[k][:, 0], groups[k][:, 1], s=14, c=colour, alpha=0.6, zorder=2)
        ax.scatter(means[k][:, 0], means[k][:, 1], s=90, c=colour, edgecolors="k", zorder=3,
                   label=f"G(mean {k})")
    if len(var):
        ax.scatter(var[:, 0], var[:, 1], s=30, marker="*", c="tab:red", alpha=0.5, zorder=3)
    ax.scatter(res[:, 0], res[:, 1], s=220, marker="*", c="tab:red", edgecolors="k", zorder=4,
               label="G(mean a - mean b + mean c)")
    _setup(ax, box, "latent arithmetic a - b + c")
    ax.legend(loc="best", fontsize="small", framealpha=0.8)
    return save_figure(fig, path)


def plot_neighbours_2d(fake: Points, real: Points, indices: torch.Tensor | np.ndarray,
                       path: str | os.PathLike[str], title: str = "") -> Path:
    """Write a PNG of generated points (orange) joined by grey lines to their nearest real points
    (``indices`` (n, k) into ``real``), over the real cloud (blue). Atomic."""
    Figure, save_figure, as_points, auto_bounds = _plotting()
    f, r = as_points(fake, "fake"), as_points(real, "real")
    idx = np.asarray(indices).reshape(len(f), -1)
    box = auto_bounds(f, r)
    fig = Figure(figsize=(6.0, 5.2))
    ax = fig.add_subplot()
    ax.scatter(r[:, 0], r[:, 1], s=3, c=REAL_COLOUR, alpha=0.4, linewidths=0, rasterized=True,
               label="real", zorder=1)
    for i, row in enumerate(idx):
        for j in row:
            ax.plot([f[i, 0], r[j, 0]], [f[i, 1], r[j, 1]], "-", c="0.3", lw=0.7, zorder=2)
    ax.scatter(r[idx.reshape(-1), 0], r[idx.reshape(-1), 1], s=14, c=REAL_COLOUR, edgecolors="k",
               linewidths=0.5, zorder=3, label="nearest real")
    ax.scatter(f[:, 0], f[:, 1], s=20, c=FAKE_COLOUR, edgecolors="k", linewidths=0.5, zorder=4,
               label="generated")
    _setup(ax, box, title or "generated samples and their nearest real points")
    ax.legend(loc="best", fontsize="small", framealpha=0.8)
    return save_figure(fig, path)
