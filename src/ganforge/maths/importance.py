"""Rare-event probabilities by Monte Carlo and importance sampling, as pure functions.

For an event A = {z : s(z) >= 0} under a density p (a generator's latent prior):

    naive Monte Carlo      p_hat = (1/N) sum_i 1{s(z_i) >= 0},            z_i ~ p
                           se = sqrt(p_hat (1 - p_hat) / N)
    importance sampling    p_hat = (1/N) sum_i w(z_i) 1{s(z_i) >= 0},     z_i ~ q,
                           w(z) = p(z) / q(z)   (the likelihood ratio)
                           se = sd_i(w_i 1_i) / sqrt(N)
    effective sample size  ESS = (sum_i w_i 1_i)^2 / sum_i (w_i 1_i)^2   (Kong 1992, over the hits)

Naive Monte Carlo's relative error is sqrt((1 - p) / (N p)), so reaching relative error r needs
N = (1 - p) / (p r^2) draws (about 100/p at r = 10%): :func:`naive_calls_for`.

Proposals q are Gaussians N(mu, Sigma) (diagonal or full Sigma) or mixtures of them;
:func:`gaussian_log_prob` and :func:`mixture_log_prob` are their log-densities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ganforge.errors import GanforgeError


@dataclass(frozen=True)
class Estimate:
    """A probability estimate: ``p`` and its standard error; ``hits`` samples in the event among
    ``n`` draws; ``ess`` the hits' effective sample size (their count for naive MC)."""

    p: float
    std_error: float
    n: int
    hits: int
    ess: float

    @property
    def relative_error(self) -> float:
        """se / p (inf when p is 0)."""
        return self.std_error / self.p if self.p > 0 else math.inf


def naive_estimate(hit: torch.Tensor) -> Estimate:
    """Naive Monte Carlo from the event indicators ``hit`` (N,) of draws from the prior."""
    n = int(hit.numel())
    if n == 0:
        raise GanforgeError("no draws to estimate a probability from", "draw at least one sample")
    k = int(hit.sum())
    p = k / n
    return Estimate(p, math.sqrt(p * (1 - p) / n), n, k, float(k))


def importance_estimate(hit: torch.Tensor, log_weight: torch.Tensor) -> Estimate:
    """Importance sampling from indicators ``hit`` (N,) and log likelihood ratios
    ``log_weight`` = log p(z) - log q(z) (N,) of draws from the proposal q."""
    n = int(hit.numel())
    if n == 0 or log_weight.shape != hit.shape:
        raise GanforgeError(f"importance sampling needs one log weight per draw, got "
                            f"{tuple(log_weight.shape)} for {tuple(hit.shape)} draws",
                            "pass matching tensors")
    w = torch.where(hit.bool(), log_weight.double().exp(), torch.zeros((), dtype=torch.float64))
    p = float(w.mean())
    sd = float(w.std(unbiased=True)) if n > 1 else math.inf
    total, squares = float(w.sum()), float(w.square().sum())
    ess = total * total / squares if squares > 0 else 0.0
    return Estimate(p, sd / math.sqrt(n), n, int(hit.sum()), ess)


def naive_calls_for(p: float, relative_error: float) -> float:
    """Draws naive Monte Carlo needs for relative error ``relative_error`` at probability ``p``:
    (1 - p) / (p r^2)."""
    if not 0 < p < 1 or not relative_error > 0:
        return math.inf
    return (1 - p) / (p * relative_error ** 2)


def gaussian_log_prob(z: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, cov) per row of ``z`` (N, D); ``cov`` is (D,) variances (diagonal) or a
    (D, D) positive-definite matrix."""
    z, mean, cov = z.double(), mean.double(), cov.double()
    d = z.shape[1]
    diff = z - mean
    if cov.dim() == 1:
        maha = (diff.square() / cov).sum(dim=1)
        logdet = cov.log().sum()
    else:
        chol = torch.linalg.cholesky(cov)
        solved = torch.linalg.solve_triangular(chol, diff.T, upper=False)
        maha = solved.square().sum(dim=0)
        logdet = 2 * chol.diagonal().log().sum()
    return -0.5 * (maha + logdet + d * math.log(2 * math.pi))


def mixture_log_prob(z: torch.Tensor, weights: torch.Tensor, means: torch.Tensor,
                     covs: list[torch.Tensor]) -> torch.Tensor:
    """log sum_k pi_k N(z; mu_k, Sigma_k) per row of ``z``."""
    parts = torch.stack([gaussian_log_prob(z, m, c) for m, c in zip(means, covs, strict=True)], dim=1)
    return torch.logsumexp(parts + weights.double().log(), dim=1)
