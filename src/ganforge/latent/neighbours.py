"""Nearest real neighbours of generated samples: a direct look for memorisation.

A generator that memorised its training set produces near-copies of training images. For each
generated sample x, :func:`nearest_real` finds the k real samples r minimising the Euclidean
distance in pixel (or point) space::

    d(x, r) = ||x - r||_2 = sqrt(sum_j (x_j - r_j)^2)      over all C * H * W pixel values

A copy has d = 0; :func:`real_neighbour_baseline` gives the scale to compare with: the median
distance from a real sample to its nearest *other* real sample. Generated samples much closer to
a real one than that are suspects. Pixel distance is a blunt instrument (a shifted copy is far
away), so treat it as the sanity check of Radford et al. (2016) and Brock et al. (2019), not as
proof of generalisation.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ganforge.errors import GanforgeError
from ganforge.latent.output import plot_neighbours_2d

# scikit-learn and ganforge.viz (matplotlib) are imported on first use, so that importing
# ganforge.latent (which the CLI does on every call) stays light.

__all__ = ["nearest_real", "plot_neighbours", "plot_neighbours_2d", "real_neighbour_baseline",
           "save_neighbours"]


def _flat(x: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim < 2 or len(arr) == 0:
        raise GanforgeError(f"{name} must be a non-empty batch (N, ...), got shape {arr.shape}",
                            "pass at least one sample")
    return np.ascontiguousarray(arr.reshape(len(arr), -1), dtype=np.float32)


def nearest_real(fake: torch.Tensor | np.ndarray, real: torch.Tensor | np.ndarray,
                 k: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest real samples (L2 on flattened values) of every generated sample.

    ``fake`` is (n, ...) and ``real`` (N, ...) with the same per-sample shape. Returns
    ``(indices, distances)``, each (n, k), nearest first: int64 indices into ``real`` and float64
    distances. The search is scikit-learn's exact :class:`~sklearn.neighbors.NearestNeighbors`;
    the distances of the neighbours found are then recomputed directly as ``||x - r||_2`` in
    float64, so an exact copy of a real sample reports exactly 0.
    """
    f, r = _flat(fake, "generated samples"), _flat(real, "real samples")
    if f.shape[1] != r.shape[1]:
        raise GanforgeError(f"generated samples have {f.shape[1]} values each but real samples have "
                            f"{r.shape[1]}", "compare samples of the same shape")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(r):
        raise GanforgeError(f"k must lie in 1..{len(r)} (the number of real samples), got {k!r}",
                            "pass a smaller k")
    from sklearn.neighbors import NearestNeighbors

    search = NearestNeighbors(n_neighbors=k, metric="euclidean").fit(r)
    idx = search.kneighbors(f, return_distance=False)
    diff = f[:, None, :].astype(np.float64) - r[idx].astype(np.float64)
    dist = np.sqrt(np.einsum("nkd,nkd->nk", diff, diff))
    order = np.argsort(dist, axis=1, kind="stable")  # exact distances may reorder near-ties
    idx, dist = np.take_along_axis(idx, order, 1), np.take_along_axis(dist, order, 1)
    return torch.from_numpy(idx.astype(np.int64)), torch.from_numpy(dist)


def real_neighbour_baseline(real: torch.Tensor | np.ndarray, n: int = 500, seed: int = 0) -> float:
    """The median distance from a real sample to its nearest *other* real sample, over ``n``
    real samples drawn without replacement (all if fewer); the yardstick for
    :func:`nearest_real` distances. Duplicates in the real data count as distance 0."""
    r = _flat(real, "real samples")
    if len(r) < 2:
        raise GanforgeError("the baseline needs at least 2 real samples", "pass more real data")
    rng = np.random.default_rng(seed)
    query = rng.choice(len(r), size=min(n, len(r)), replace=False)
    from sklearn.neighbors import NearestNeighbors

    search = NearestNeighbors(n_neighbors=2, metric="euclidean").fit(r)
    idx = search.kneighbors(r[query], return_distance=False)
    # Column 0 is normally the point itself; with duplicates it may be a twin. Take the nearest
    # neighbour that is not the query row.
    other = np.where(idx[:, 0] == query, idx[:, 1], idx[:, 0])
    diff = r[query].astype(np.float64) - r[other].astype(np.float64)
    return float(np.median(np.sqrt((diff * diff).sum(1))))


def plot_neighbours(fake: torch.Tensor, real: torch.Tensor, indices: torch.Tensor,
                    path: str | os.PathLike[str], scale: int | None = None) -> Path:
    """Write a PNG grid with one row per generated image: the image, then its k nearest real
    images (``indices`` (n, k) into ``real``), nearest first. Atomic."""
    from ganforge.viz import save_grid

    fake, real = torch.as_tensor(fake).cpu(), torch.as_tensor(real).cpu()
    idx = torch.as_tensor(indices).reshape(len(fake), -1)
    rows = torch.cat([fake[:, None].float(), real[idx].float()], dim=1)  # (n, 1 + k, C, H, W)
    return save_grid(rows.flatten(0, 1), path, nrow=rows.shape[1], scale=scale)


def save_neighbours(fake: torch.Tensor, real: torch.Tensor, indices: torch.Tensor,
                    path: str | os.PathLike[str]) -> Path:
    """:func:`plot_neighbours` for images (N, C, H, W), :func:`plot_neighbours_2d` for 2-D points."""
    if torch.as_tensor(fake).dim() == 4:
        return plot_neighbours(fake, real, indices, path)
    return plot_neighbours_2d(fake, real, indices, path)
