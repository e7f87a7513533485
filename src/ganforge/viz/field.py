"""2-D pictures: real vs generated points over the discriminator's probability field."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ganforge.errors import GanforgeError
from ganforge.viz._atomic import save_figure

Points = torch.Tensor | np.ndarray
Bounds = tuple[float, float, float, float]

REAL_COLOUR = "tab:blue"
FAKE_COLOUR = "tab:orange"
_MARGIN = 0.1


def _as_points(points: Points | None, name: str) -> np.ndarray:
    """Return ``points`` as a float64 (N, 2) array (N may be 0); ``None`` gives (0, 2)."""
    if points is None:
        return np.empty((0, 2))
    if isinstance(points, torch.Tensor):
        arr = points.detach().cpu().to(torch.float64).numpy()
    else:
        arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise GanforgeError(
            f"{name} must have shape (N, 2), got shape {tuple(arr.shape)}",
            "pass 2-D points, one per row",
        )
    return arr


def _finite(points: np.ndarray) -> np.ndarray:
    return points[np.isfinite(points).all(axis=1)]


def auto_bounds(*clouds: np.ndarray, margin: float = _MARGIN) -> Bounds:
    """``(xmin, xmax, ymin, ymax)`` covering the finite points of all ``clouds`` plus a margin.

    The margin is ``margin`` times each axis' span; a zero span (all points on a line or at one
    spot) is replaced by the other axis' span, or 1, so the box never collapses.
    """
    finite = [_finite(c) for c in clouds]
    pts = np.concatenate(finite) if finite else np.empty((0, 2))
    if len(pts) == 0:
        return (-1.0, 1.0, -1.0, 1.0)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = hi - lo
    span = np.where(span > 0, span, max(float(span.max()), 1.0))
    lo, hi = lo - margin * span, hi + margin * span
    return (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))


def _check_bounds(bounds: Sequence[float]) -> Bounds:
    if len(bounds) != 4:
        raise GanforgeError(f"bounds must be (xmin, xmax, ymin, ymax), got {tuple(bounds)}")
    x0, x1, y0, y1 = (float(b) for b in bounds)
    if not (x0 < x1 and y0 < y1):
        raise GanforgeError(
            f"bounds must satisfy xmin < xmax and ymin < ymax, got {(x0, x1, y0, y1)}"
        )
    return (x0, x1, y0, y1)


def evaluate_field(
    prob_fn: Callable[[torch.Tensor], torch.Tensor],
    bounds: Bounds,
    resolution: int = 200,
    chunk_size: int = 8192,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate ``prob_fn`` on a ``resolution`` x ``resolution`` grid spanning ``bounds``.

    ``prob_fn`` receives float32 CPU tensors of shape (K, 2) with ``K <= chunk_size``, under
    ``torch.no_grad()``, and must return K values (shape (K,) or (K, 1)). Returns ``(xs, ys, p)``
    where ``p[i, j]`` is the probability at ``(xs[j], ys[i])``, clipped to [0, 1].
    """
    if resolution < 2:
        raise GanforgeError(f"resolution must be at least 2, got {resolution}")
    if chunk_size < 1:
        raise GanforgeError(f"chunk_size must be at least 1, got {chunk_size}")
    x0, x1, y0, y1 = bounds
    xs, ys = np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution)
    gx, gy = np.meshgrid(xs, ys)
    grid = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], axis=1)).to(torch.float32)
    out = []
    with torch.no_grad():
        for chunk in grid.split(chunk_size):
            p = torch.as_tensor(prob_fn(chunk)).detach().reshape(-1)
            if p.numel() != len(chunk):
                raise GanforgeError(
                    f"prob_fn returned {p.numel()} values for {len(chunk)} points",
                    "return one probability per input row",
                )
            out.append(p.cpu().to(torch.float64))
    probs = torch.cat(out).numpy().reshape(resolution, resolution)
    return xs, ys, np.clip(probs, 0.0, 1.0)


def plot_2d_field(
    real: Points,
    fake: Points,
    path: str | os.PathLike[str],
    prob_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    title: str = "",
    centers: Points | None = None,
    bounds: Sequence[float] | None = None,
    resolution: int = 200,
    chunk_size: int = 8192,
    field_label: str = "D(x)",
) -> Path:
    """Write a PNG of ``real`` (N, 2) and ``fake`` (M, 2) points, optionally over D(x).

    With ``prob_fn`` the background is a filled contour of ``prob_fn`` evaluated by
    :func:`evaluate_field` (levels 0..1, colour bar labelled "D(x)", dashed line at D = 0.5). With
    another ``field_label`` (a critic's raw values, say) the levels follow the field's range.
    ``bounds`` ``(xmin, xmax, ymin, ymax)`` defaults to :func:`auto_bounds` of real, fake and
    ``centers``; ``centers`` (K, 2) are drawn as black crosses. Non-finite points are skipped.
    The axes have equal aspect. Written atomically; returns ``path`` as a Path.
    """
    real_pts, fake_pts = _as_points(real, "real"), _as_points(fake, "fake")
    centre_pts = _as_points(centers, "centers")
    if bounds is None:
        box = auto_bounds(real_pts, fake_pts, centre_pts)
    else:
        box = _check_bounds(bounds)

    fig = Figure(figsize=(6.4, 5.6))
    ax = fig.add_subplot()
    if prob_fn is not None:
        xs, ys, probs = evaluate_field(prob_fn, box, resolution, chunk_size)
        if field_label == "D(x)":
            filled = ax.contourf(xs, ys, probs, levels=np.linspace(0.0, 1.0, 21), cmap="Greys",
                                 alpha=0.5, vmin=0, vmax=1)
            if np.nanmin(probs) < 0.5 < np.nanmax(probs):
                ax.contour(xs, ys, probs, levels=[0.5], colors="k", linewidths=0.8, linestyles="--")
            bar = fig.colorbar(filled, ax=ax, ticks=np.linspace(0.0, 1.0, 6))
        else:
            filled = ax.contourf(xs, ys, probs, levels=20, cmap="Greys", alpha=0.5)
            bar = fig.colorbar(filled, ax=ax)
        bar.set_label(field_label)
    _scatter(ax, real_pts, fake_pts, centre_pts)
    ax.set_xlim(box[0], box[1])
    ax.set_ylim(box[2], box[3])
    ax.set_aspect("equal")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize="small", framealpha=0.8)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def _scatter(
    ax: Axes, real: np.ndarray, fake: np.ndarray, centers: np.ndarray, size: float = 6
) -> None:
    real, fake, centers = _finite(real), _finite(fake), _finite(centers)
    for points, colour, label in ((real, REAL_COLOUR, "real"), (fake, FAKE_COLOUR, "generated")):
        if len(points):
            ax.scatter(points[:, 0], points[:, 1], s=size, c=colour, alpha=0.6, label=label,
                       linewidths=0, rasterized=True)
    if len(centers):
        # Under the samples (zorder), so a tight real mode is not hidden by its own marker.
        ax.scatter(
            centers[:, 0], centers[:, 1], s=50, c="k", marker="x", label="mode centres", zorder=1.5
        )


def plot_sample_strip(
    snapshots: Sequence[tuple[int, Points]],
    path: str | os.PathLike[str],
    real: Points | None = None,
    centers: Points | None = None,
) -> Path:
    """Write a PNG with one small scatter panel per ``(step, points)`` snapshot, titled "step N".

    All panels share bounds (covering every snapshot, ``real`` and ``centers``) so that a
    generator collapsing onto fewer modes is visible across the row. Written atomically.
    """
    if not snapshots:
        raise GanforgeError("no snapshots to plot", "pass at least one (step, points) pair")
    shots = [(int(step), _as_points(pts, f"snapshot at step {step}")) for step, pts in snapshots]
    real_pts, centre_pts = _as_points(real, "real"), _as_points(centers, "centers")
    x0, x1, y0, y1 = auto_bounds(real_pts, centre_pts, *(pts for _, pts in shots))

    fig = Figure(figsize=(2.2 * len(shots), 2.5))
    axes = fig.subplots(1, len(shots), squeeze=False)[0]
    for ax, (step, pts) in zip(axes, shots, strict=True):
        _scatter(ax, real_pts, pts, centre_pts, size=3)
        ax.set_title(f"step {step}", fontsize="small")
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return save_figure(fig, path)
