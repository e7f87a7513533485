"""Streaming mean and covariance in float64 (Chan et al.'s pairwise update).

For batches B_1, B_2, ... of rows, keeps n, the mean and M2 = sum_i (x_i - mean)(x_i - mean)^T.
Merging a batch with n_b rows, mean m_b and scatter M2_b:

    delta = m_b - m;  m <- m + delta n_b / n';  M2 <- M2 + M2_b + delta delta^T n n_b / n'

with n' = n + n_b. The covariance is M2 / (n - 1), exactly ``np.cov(x, rowvar=False)``; memory is
O(D^2) whatever N, and the result does not depend on how the rows are chunked (up to rounding).
"""

from __future__ import annotations

import numpy as np
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics._base import as_features


class RunningMoments:
    """Streaming mean and unbiased covariance of (N, D) features, accumulated in float64."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self._mean: np.ndarray | None = None
        self._m2: np.ndarray | None = None

    def update(self, x: torch.Tensor | np.ndarray) -> None:
        # numpy's float64 GEMM is ~10x faster than torch's for these tall, skinny blocks on CPU
        x = as_features(x).double().cpu().numpy()
        nb = x.shape[0]
        if nb == 0:
            return
        if self._mean is not None and x.shape[1] != self._mean.shape[0]:
            raise GanforgeError(f"features of dimension {x.shape[1]} after {self._mean.shape[0]}",
                                "feed features from one extractor only")
        mb = x.mean(0)
        centred = x - mb
        m2b = centred.T @ centred
        if self._mean is None:
            self.n, self._mean, self._m2 = nb, mb, m2b
            return
        n = self.n + nb
        delta = mb - self._mean
        self._mean = self._mean + delta * (nb / n)
        self._m2 = self._m2 + m2b + np.outer(delta, delta) * (self.n * nb / n)
        self.n = n

    @property
    def mean(self) -> np.ndarray:
        if self._mean is None:
            raise GanforgeError("no features were given", "call update() first")
        return self._mean.copy()

    @property
    def cov(self) -> np.ndarray:
        if self._m2 is None or self.n < 2:
            raise GanforgeError(f"a covariance needs at least 2 samples, got {self.n}",
                                "feed more samples")
        return self._m2 / (self.n - 1)
