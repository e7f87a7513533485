"""Importance-sampling proposals q(z) in latent space and their cross-entropy fits.

The cross-entropy method (Rubinstein 1999; Rubinstein and Kroese 2004) picks q from a family by
maximising sum_i w_i log q(z_i) over the elite draws z_i (those above the current level) with
likelihood ratios w_i = p(z_i) / q_prev(z_i): for a Gaussian the weighted mean and covariance,

    mu = sum_i w_i z_i / sum_i w_i,     Sigma = sum_i w_i (z_i - mu)(z_i - mu)^T / sum_i w_i,

smoothed with the previous fit (mu <- a mu + (1 - a) mu_prev, likewise Sigma), and with every
eigenvalue of Sigma raised to at least ``floor`` (1: the variance of the N(0, I) prior). The floor
is what keeps the estimator's variance finite: with Sigma >= I the ratio
p/q = exp(-|z|^2/2 + (z - mu)^T Sigma^-1 (z - mu)/2) / const is bounded, whereas a proposal
narrower than the prior along a direction in which the event is unbounded (a half-space
a.z > t: the CE optimum has variance ~ 1/t^2 there) gives weights that grow without bound in the
tail and an estimate dominated by a few draws. A Gaussian mixture
(for events with several disjoint regions) is fitted by scikit-learn's EM on the elites resampled
in proportion to their weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from ganforge.maths.importance import gaussian_log_prob, mixture_log_prob

#: variance floor of a fitted coordinate (a degenerate elite set must not collapse q)
MIN_VARIANCE = 1e-4


def floor_covariance(cov: torch.Tensor, floor: float) -> torch.Tensor:
    """``cov`` (D,) variances or (D, D) with every variance / eigenvalue raised to at least
    ``floor`` (and ``MIN_VARIANCE``)."""
    floor = max(floor, MIN_VARIANCE)
    if cov.dim() == 1:
        return cov.clamp_min(floor)
    values, vectors = torch.linalg.eigh((cov + cov.T) / 2)
    cov = (vectors * values.clamp_min(floor)) @ vectors.T
    return (cov + cov.T) / 2


class Proposal(Protocol):
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor: ...

    def log_prob(self, z: torch.Tensor) -> torch.Tensor: ...

    def describe(self) -> dict: ...


@dataclass
class GaussianProposal:
    """N(mean, cov): ``cov`` (D,) variances (diagonal) or (D, D)."""

    mean: torch.Tensor
    cov: torch.Tensor

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        eps = torch.randn(n, len(self.mean), generator=generator, dtype=torch.float64)
        if self.cov.dim() == 1:
            return (self.mean + eps * self.cov.sqrt()).float()
        return (self.mean + eps @ torch.linalg.cholesky(self.cov).T).float()

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return gaussian_log_prob(z, self.mean, self.cov)

    def describe(self) -> dict:
        var = self.cov if self.cov.dim() == 1 else self.cov.diagonal()
        return {"family": "gaussian", "mean": self.mean.tolist(), "std": var.sqrt().tolist(),
                **({} if self.cov.dim() == 1 else {"cov": self.cov.tolist()})}

    @staticmethod
    def fit(z: torch.Tensor, weights: torch.Tensor, full: bool, previous: GaussianProposal | None = None,
            smoothing: float = 1.0, floor: float = 1.0) -> GaussianProposal:
        w = (weights / weights.sum()).double()
        z = z.double()
        mean = w @ z
        diff = z - mean
        cov = floor_covariance((diff * w[:, None]).T @ diff if full else w @ diff.square(), floor)
        if previous is not None and smoothing < 1.0:
            prev_cov = previous.cov
            if full and prev_cov.dim() == 1:
                prev_cov = torch.diag(prev_cov)
            mean = smoothing * mean + (1 - smoothing) * previous.mean
            cov = smoothing * cov + (1 - smoothing) * prev_cov
        return GaussianProposal(mean, cov)


@dataclass
class MixtureProposal:
    """sum_k weights_k N(means_k, covs_k)."""

    weights: torch.Tensor
    components: list[GaussianProposal]

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        which = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.empty(n, len(self.components[0].mean))
        for k, component in enumerate(self.components):
            rows = (which == k).nonzero().flatten()
            if len(rows):
                z[rows] = component.sample(len(rows), generator)
        return z

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return mixture_log_prob(z, self.weights, [c.mean for c in self.components],
                                [c.cov for c in self.components])

    def describe(self) -> dict:
        return {"family": "mixture", "weights": self.weights.tolist(),
                "components": [c.describe() for c in self.components]}

    @staticmethod
    def fit(z: torch.Tensor, weights: torch.Tensor, full: bool, components: int,
            generator: torch.Generator, floor: float = 1.0) -> MixtureProposal:
        from sklearn.mixture import GaussianMixture

        n = max(len(z), 50 * components)
        pick = torch.multinomial((weights / weights.sum()).double(), n, replacement=True, generator=generator)
        data = z[pick].double().numpy()
        k = max(1, min(components, len(torch.unique(z, dim=0))))
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        gm = GaussianMixture(k, covariance_type="full" if full else "diag", reg_covar=MIN_VARIANCE,
                             random_state=np.random.RandomState(seed)).fit(data)
        parts = [GaussianProposal(torch.from_numpy(gm.means_[j]).double(),
                                  floor_covariance(torch.from_numpy(gm.covariances_[j]).double(), floor))
                 for j in range(k)]
        return MixtureProposal(torch.from_numpy(gm.weights_).double(), parts)


def log_ratio(prior_log_prob: torch.Tensor, proposal_log_prob: torch.Tensor) -> torch.Tensor:
    """log w = log p(z) - log q(z) (-inf where p is 0)."""
    out = prior_log_prob.double() - proposal_log_prob.double()
    return torch.where(torch.isnan(out), torch.full_like(out, -math.inf), out)
