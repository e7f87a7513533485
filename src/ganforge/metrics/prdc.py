"""Improved precision and recall (Kynkaanniemi et al. 2019) and density and coverage (Naeem et
al. 2020) from k-nearest-neighbour balls, computed blockwise: never an N x N matrix.

With NND_k(x) the distance from x to its k-th nearest neighbour within its own set (the point
itself excluded; as in the ``prdc`` package it is the (k+1)-th smallest distance including the
zero self-distance), real features X (N) and generated Y (M), and strict inequalities:

    precision = 1/M sum_j  1[ exists i: ||y_j - x_i|| < NND_kpr(x_i) ]
    recall    = 1/N sum_i  1[ exists j: ||x_i - y_j|| < NND_kpr(y_j) ]
    density   = 1/(k_dc M) sum_j sum_i 1[ ||y_j - x_i|| < NND_kdc(x_i) ]
    coverage  = 1/N sum_i  1[ min_j ||x_i - y_j|| < NND_kdc(x_i) ]

Defaults k_pr = 3 (the precision/recall paper) and k_dc = 5 (the density/coverage paper); the
``prdc`` package uses one k for all four, so ``compute_prdc(X, Y, 3)`` gives our precision and
recall and ``compute_prdc(X, Y, 5)`` our density and coverage.

Distances are compared squared, computed in tiles of ``block_size`` rows as
||a||^2 + ||b||^2 - 2 a.b in float64 (``dtype``; float32 is about twice as fast but may flip
comparisons that are within float32 rounding of a tie). The within-set k-NN pass visits only tiles
on or above the diagonal and uses each tile for both its rows and its columns. Peak extra memory
is a few ``block_size`` x ``block_size`` tiles; time O((N^2 + M^2/2 + NM/2 ...) d), i.e. about
two N x M distance matrices' worth of multiply-adds instead of the reference's three.
"""

from __future__ import annotations

import numpy as np
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics._base import StoredFeaturesMetric

DEFAULT_BLOCK = 2048


def _sq_dist(a: torch.Tensor, an: torch.Tensor, b: torch.Tensor, bn: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances between the rows of a and b, given their squared norms."""
    d = torch.addmm(an[:, None], a, b.T, beta=1.0, alpha=-2.0)
    d += bn[None, :]
    return d.clamp_(min=0.0)


def _tile(x: torch.Tensor, start: int, stop: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    t = x[start:stop].to(dtype)
    return t, (t * t).sum(1)


def _merge_smallest(best: torch.Tensor, new: torch.Tensor, k: int) -> torch.Tensor:
    kk = min(k, new.shape[1])
    part = new.topk(kk, dim=1, largest=False, sorted=False).values
    both = torch.cat([best, part], dim=1)
    return both.topk(k, dim=1, largest=False, sorted=True).values


def knn_sq_radii(x: torch.Tensor, k: int, block_size: int = DEFAULT_BLOCK,
                 dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(N, k+1) sorted smallest squared distances from each row of x to the rows of x (itself
    included, so column 0 is ~0 and column k is the squared k-th neighbour distance)."""
    n = len(x)
    if n <= k:
        raise GanforgeError(f"k-NN with k={k} needs more than {k} samples, got {n}", "feed more samples")
    kk = k + 1
    best = torch.full((n, kk), float("inf"), dtype=dtype, device=x.device)
    for i0 in range(0, n, block_size):
        i1 = min(i0 + block_size, n)
        a, an = _tile(x, i0, i1, dtype)
        for j0 in range(i0, n, block_size):
            j1 = min(j0 + block_size, n)
            b, bn = (a, an) if j0 == i0 else _tile(x, j0, j1, dtype)
            d = _sq_dist(a, an, b, bn)
            if j0 == i0:
                d.fill_diagonal_(0.0)
            best[i0:i1] = _merge_smallest(best[i0:i1], d, kk)
            if j0 != i0:
                best[j0:j1] = _merge_smallest(best[j0:j1], d.T, kk)
    return best


def prdc(real: torch.Tensor | np.ndarray, fake: torch.Tensor | np.ndarray, k_pr: int = 3,
         k_dc: int = 5, block_size: int = DEFAULT_BLOCK,
         dtype: torch.dtype = torch.float64) -> dict[str, float]:
    """Precision, recall (k = ``k_pr``), density and coverage (k = ``k_dc``) of ``fake`` against
    ``real`` (both (N, D) features)."""
    x, y = torch.as_tensor(real), torch.as_tensor(fake)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise GanforgeError(f"real features {tuple(x.shape)} and generated {tuple(y.shape)} must be "
                            "(N, D) with one D", "use one extractor for both")
    if block_size < 1:
        raise GanforgeError(f"block_size must be positive, got {block_size}", "use e.g. 2048")
    kmax = max(k_pr, k_dc)
    real_knn = knn_sq_radii(x, kmax, block_size, dtype)
    r_pr, r_dc = real_knn[:, k_pr], real_knn[:, k_dc]
    f_pr = knn_sq_radii(y, k_pr, block_size, dtype)[:, k_pr]
    n, m = len(x), len(y)
    fake_in = torch.zeros(m, dtype=torch.bool, device=y.device)
    fake_count = torch.zeros(m, dtype=torch.int64, device=y.device)
    real_in = torch.zeros(n, dtype=torch.bool, device=x.device)
    real_min = torch.full((n,), float("inf"), dtype=dtype, device=x.device)
    for j0 in range(0, m, block_size):
        j1 = min(j0 + block_size, m)
        b, bn = _tile(y, j0, j1, dtype)
        fr = f_pr[j0:j1, None]
        for i0 in range(0, n, block_size):
            i1 = min(i0 + block_size, n)
            a, an = _tile(x, i0, i1, dtype)
            d = _sq_dist(a, an, b, bn)  # (real tile, fake tile)
            fake_in[j0:j1] |= (d < r_pr[i0:i1, None]).any(0)
            fake_count[j0:j1] += (d < r_dc[i0:i1, None]).sum(0)
            real_in[i0:i1] |= (d < fr.T).any(1)
            torch.minimum(real_min[i0:i1], d.min(1).values, out=real_min[i0:i1])
    return {
        "precision": float(fake_in.double().mean()),
        "recall": float(real_in.double().mean()),
        "density": float(fake_count.double().mean() / k_dc),
        "coverage": float((real_min < r_dc).double().mean()),
    }


class PrecisionRecallDensityCoverage(StoredFeaturesMetric):
    """Streaming PRDC: keeps the features (O(N d)); ``compute()`` runs :func:`prdc`."""

    def __init__(self, k_pr: int = 3, k_dc: int = 5, block_size: int = DEFAULT_BLOCK,
                 dtype: torch.dtype = torch.float64) -> None:
        self.k_pr, self.k_dc, self.block_size, self.dtype = k_pr, k_dc, block_size, dtype
        super().__init__()

    def compute(self) -> dict[str, float]:
        return prdc(self.store.get(True), self.store.get(False), self.k_pr, self.k_dc,
                    self.block_size, self.dtype)
