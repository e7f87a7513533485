"""Mode coverage of a 2D Gaussian mixture, the protocol of VEEGAN / PacGAN (Lin et al., 2018).

Given generated samples x_1..x_N, the K true mode centres c_1..c_K and the modes' common std
sigma, each sample is assigned to its nearest centre k(i) = argmin_k ||x_i - c_k||_2, and is
*high quality* when ||x_i - c_{k(i)}||_2 <= threshold * sigma (threshold 3 in PacGAN).

* ``high_quality`` = #{high-quality samples} / N
* ``mode_histogram``: n_k = #{high-quality samples with k(i) = k}, for k = 1..K
* ``modes`` = #{k : n_k >= 1}
* ``reverse_kl`` = KL(p_gen || p_true) = sum_k p_k log(p_k / (1 / K)) = sum_k p_k log(K p_k),
  with p_k = n_k / sum_j n_j over the high-quality samples only and p_true uniform (the mixtures
  are equal-weight). Empty bins contribute 0 (0 log 0 = 0); this is what keeps the *reverse*
  direction finite when modes are missed: covering a single mode gives log K, all modes evenly
  gives 0. With no high-quality sample at all p_gen is undefined and ``reverse_kl`` is NaN.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy.special import xlogy

from ganforge.errors import GanforgeError


def _points(values: Any, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().to(torch.float64).numpy()
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise GanforgeError(f"{name} must have shape (N, 2), got {tuple(arr.shape)}",
                            "pass 2D points, one per row")
    return arr


def mode_metrics(samples: torch.Tensor | np.ndarray, centers: torch.Tensor | np.ndarray,
                 std: float, threshold: float = 3.0) -> dict[str, Any]:
    """Modes covered, high-quality fraction, reverse KL and the per-mode histogram (see module).

    Returns ``{"modes": int, "high_quality": float, "reverse_kl": float,
    "mode_histogram": list[int]}``. Non-finite samples count as low quality.
    """
    x, c = _points(samples, "samples"), _points(centers, "centers")
    if len(c) == 0:
        raise GanforgeError("no mode centres given", "pass the dataset's centers (K, 2), K >= 1")
    if len(x) == 0:
        raise GanforgeError("no samples given", "pass at least one generated sample")
    if not (math.isfinite(std) and std > 0 and math.isfinite(threshold) and threshold > 0):
        raise GanforgeError(f"std={std!r} and threshold={threshold!r} must be positive and finite",
                            "pass the dataset's std, e.g. 0.01 for the PacGAN ring")
    dist = np.linalg.norm(x[:, None, :] - c[None, :, :], axis=2)  # (N, K)
    finite = np.isfinite(dist).all(axis=1)
    dist = np.where(finite[:, None], dist, np.inf)
    nearest = dist.argmin(axis=1)
    hq = finite & (dist[np.arange(len(x)), nearest] <= threshold * std)
    hist = np.bincount(nearest[hq], minlength=len(c))
    total = int(hist.sum())
    if total:
        p = hist / total
        reverse_kl = float(xlogy(p, p * len(c)).sum())
    else:
        reverse_kl = float("nan")
    return {
        "modes": int((hist > 0).sum()),
        "high_quality": total / len(x),
        "reverse_kl": reverse_kl,
        "mode_histogram": [int(n) for n in hist],
    }
