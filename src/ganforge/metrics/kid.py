"""Kernel Inception Distance style score (Binkowski et al. 2018): unbiased MMD^2 with the cubic
polynomial kernel k(x, y) = (x . y / d + 1)^3, averaged over random subsets.

For each of ``num_subsets`` subsets, m = min(``subset_size``, N_real, N_fake) rows are drawn
without replacement from each side and

    MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m-1)) + sum_{i != j} k(y_i, y_j) / (m (m-1))
              - 2 sum_{i, j} k(x_i, y_j) / m^2

Result: mean and (population, ddof=0) std over subsets, as torch-fidelity reports them.
Subsets come from ``np.random.default_rng(seed)``: per subset, ``rng.choice(N_real, m,
replace=False)`` then ``rng.choice(N_fake, m, replace=False)``. Kernel sums run in float64.
"""

from __future__ import annotations

import numpy as np
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics._base import StoredFeaturesMetric


def subset_indices(n_real: int, n_fake: int, num_subsets: int, subset_size: int,
                   seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    m = min(subset_size, n_real, n_fake)
    rng = np.random.default_rng(seed)
    return [(rng.choice(n_real, m, replace=False), rng.choice(n_fake, m, replace=False))
            for _ in range(num_subsets)]


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD^2 between two equal-size samples with the cubic polynomial kernel."""
    x, y = x.double(), y.double()
    m, d = x.shape
    if m < 2:
        raise GanforgeError("KID needs at least 2 samples per side", "feed more samples")
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(sxx + syy - 2 * kxy.sum() / (m * m))


def kid_from_features(real: torch.Tensor | np.ndarray, fake: torch.Tensor | np.ndarray,
                      num_subsets: int = 100, subset_size: int = 1000,
                      seed: int = 0) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD^2 over ``num_subsets`` random subsets."""
    real, fake = torch.as_tensor(real), torch.as_tensor(fake)
    if real.shape[1:] != fake.shape[1:]:
        raise GanforgeError(f"real features {tuple(real.shape)} and generated {tuple(fake.shape)} "
                            "differ in dimension", "use one extractor for both")
    values = [mmd2_unbiased(real[torch.from_numpy(i)], fake[torch.from_numpy(j)])
              for i, j in subset_indices(len(real), len(fake), num_subsets, subset_size, seed)]
    return float(np.mean(values)), float(np.std(values))


class KernelDistance(StoredFeaturesMetric):
    """Streaming KID: keeps the features (O(N d)), computes per-subset MMD^2 at the end."""

    def __init__(self, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> None:
        if num_subsets < 1 or subset_size < 2:
            raise GanforgeError("KID needs num_subsets >= 1 and subset_size >= 2",
                                "use e.g. 100 subsets of 1000")
        self.num_subsets, self.subset_size, self.seed = num_subsets, subset_size, seed
        super().__init__()

    def compute(self) -> tuple[float, float]:
        return kid_from_features(self.store.get(True), self.store.get(False), self.num_subsets,
                                 self.subset_size, self.seed)
