"""Frechet distance between Gaussians fitted to features (Heusel et al. 2017, "FID").

    d^2 = ||mu_1 - mu_2||^2 + Tr(S_1) + Tr(S_2) - 2 Tr((S_1 S_2)^{1/2})

with means and unbiased covariances (``np.cov``) in float64. Two ways to the trace term:

* ``method="eigh"`` (default): Tr((S_1 S_2)^{1/2}) = Tr((A S_2 A)^{1/2}) with A = S_1^{1/2}
  (S_1 S_2 is similar to A S_2 A, which is symmetric PSD), i.e. the sum of the square roots of the
  eigenvalues of A S_2 A. Two symmetric eigendecompositions: stable and fast, no complex numbers.
* ``method="sqrtm"``: exactly pytorch-fid's ``calculate_frechet_distance``: scipy's ``sqrtm`` of
  S_1 S_2; if that is not finite, retry with ``eps`` added to both diagonals; a complex result
  whose diagonal has an imaginary part above 1e-3 is an error, otherwise the real part is kept.

Both retry with ``eps`` on the diagonals when the first attempt is not finite, and both raise if
the trace term has a significant imaginary/negative part (a symptom of broken features).

"FID" proper means InceptionV3 pool3 features; the metric objects here take features from any
extractor, and ganforge names results after it (``fid_lenet_mnist``, ``fid_inception``...).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
import torch

from ganforge._io import atomic_write
from ganforge.errors import GanforgeError
from ganforge.metrics.stats import RunningMoments


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def _trace_sqrt_product(s1: np.ndarray, s2: np.ndarray, method: str) -> float:
    """Tr((S_1 S_2)^{1/2}), or NaN if the computation is not finite."""
    if method == "eigh":
        a = _sqrt_psd(s1)
        m = a @ s2 @ a
        w = np.linalg.eigvalsh((m + m.T) / 2)
        if not np.all(np.isfinite(w)):
            return float("nan")
        scale = max(float(np.abs(w).max()), 1e-300)
        if w.min() < -1e-3 * scale and w.min() < -1e-6:
            raise ValueError(f"Imaginary component: eigenvalue {w.min():.3g} of S1^1/2 S2 S1^1/2")
        return float(np.sqrt(np.clip(w, 0.0, None)).sum())
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    if isinstance(covmean, tuple):  # scipy < 1.12 with disp=False
        covmean = covmean[0]
    if not np.isfinite(covmean).all():
        return float("nan")
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return float(np.trace(covmean))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6, method: str = "eigh") -> float:
    """The Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (float64)."""
    if method not in ("eigh", "sqrtm"):
        raise GanforgeError(f"unknown FID method {method!r}", "use eigh or sqrtm")
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise GanforgeError(f"statistics of different shapes: mu {mu1.shape} vs {mu2.shape}, "
                            f"sigma {s1.shape} vs {s2.shape}", "compare features of one extractor")
    diff = mu1 - mu2
    tr = _trace_sqrt_product(s1, s2, method)
    if not np.isfinite(tr):
        offset = np.eye(s1.shape[0]) * eps
        tr = _trace_sqrt_product(s1 + offset, s2 + offset, method)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr)


@dataclass
class FeatureStats:
    """Gaussian statistics of a feature set and what they were measured on (cached as ``.npz``)."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int
    extractor: str = ""
    dataset: str = ""
    image_size: str = ""

    def save(self, path: str | Path) -> Path:
        return atomic_write(path, lambda fh: np.savez(
            fh, mu=self.mu, sigma=self.sigma, n=self.n, extractor=self.extractor,
            dataset=self.dataset, image_size=self.image_size))

    @classmethod
    def load(cls, path: str | Path, extractor: str | None = None) -> FeatureStats:
        """Read stats written by :meth:`save`; ``extractor`` given, a mismatch is an error."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as f:
                stats = cls(f["mu"], f["sigma"], int(f["n"]), str(f["extractor"]), str(f["dataset"]),
                            str(f["image_size"]))
        except (OSError, KeyError, ValueError) as err:
            raise GanforgeError(f"cannot read reference statistics {path}: {err}",
                                "delete the file so it is recomputed") from None
        if extractor is not None and stats.extractor != extractor:
            raise GanforgeError(f"reference statistics {path} were computed with extractor "
                                f"{stats.extractor!r}, not {extractor!r}",
                                "delete the file or use the matching extractor")
        return stats

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "extractor": self.extractor, "dataset": self.dataset,
                "image_size": self.image_size}


class FrechetDistance:
    """Streaming FID: ``update(features, real=bool)`` feeds float64 running moments; memory is
    O(D^2). ``set_reference(stats)`` replaces the real side with cached statistics."""

    def __init__(self, eps: float = 1e-6, method: str = "eigh") -> None:
        self.eps, self.method = eps, method
        self.reset()

    def reset(self) -> None:
        self.real, self.fake = RunningMoments(), RunningMoments()
        self._reference: FeatureStats | None = None

    def update(self, x: torch.Tensor | np.ndarray, real: bool) -> None:
        (self.real if real else self.fake).update(x)

    def set_reference(self, stats: FeatureStats) -> None:
        self._reference = stats

    def real_stats(self) -> tuple[np.ndarray, np.ndarray]:
        if self._reference is not None:
            return self._reference.mu, self._reference.sigma
        return self.real.mean, self.real.cov

    def compute(self) -> float:
        mu1, s1 = self.real_stats()
        return frechet_distance(mu1, s1, self.fake.mean, self.fake.cov, self.eps, self.method)


def fid_from_features(real: torch.Tensor | np.ndarray, fake: torch.Tensor | np.ndarray,
                      eps: float = 1e-6, method: str = "eigh", chunk_size: int | None = None) -> float:
    """One call: the Frechet distance between Gaussians fitted to two (N, D) feature sets.

    ``chunk_size`` rows are accumulated at a time; by default about 32 MB of float64 per block
    (at least 4,096 rows), so low-dimensional features go in one pass and 2048-d ones stay small.
    """
    metric = FrechetDistance(eps, method)
    for which, x in ((True, real), (False, fake)):
        x = torch.as_tensor(x)
        rows = chunk_size or max(4096, (32 << 20) // (8 * max(1, x.shape[-1])))
        for i in range(0, len(x), rows):
            metric.update(x[i:i + rows], real=which)
    return metric.compute()
