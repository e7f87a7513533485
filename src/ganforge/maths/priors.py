"""Latent priors p(z): sampling and log-densities of the product distributions generators draw
their codes from.

    normal      p(z) = prod_i N(z_i; 0, 1)
    uniform     p(z) = prod_i 1/2 on [-1, 1]                     (zero outside)
    student-t   p(z) = prod_i t_nu(z_i),
                t_nu(x) = Gamma((nu+1)/2) / (sqrt(nu pi) Gamma(nu/2)) (1 + x^2/nu)^(-(nu+1)/2)

A Student-t coordinate has a power-law tail P(|z_i| > x) ~ c x^(-nu): its tail index is nu. A
piecewise-linear generator (ReLU/LeakyReLU MLP) maps a direction of z linearly far from the
origin, so its outputs keep that index, whereas a Gaussian code through any Lipschitz network
has tails lighter than every power law (Huster et al. 2021, "Pareto GAN"): choose nu near the
data's tail index (:func:`ganforge.maths.tails.hill_estimator`) to fix a too-light tail.

Codes are drawn on CPU from a ``torch.Generator`` so runs are reproducible across devices; the
Student-t draw is the inverse CDF (``scipy.special.stdtrit``) of uniform draws.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import special

from ganforge.errors import GanforgeError

PRIORS = ("normal", "uniform", "student-t")
#: the smallest / largest uniform draw the Student-t inverse CDF sees (finite codes)
_U_EPS = 1e-12


def check_prior(prior: object, df: object) -> tuple[str, float]:
    """``(prior, df)`` validated: a known prior name and, for ``student-t``, degrees of freedom
    nu > 0 (a one-line error naming the fix otherwise)."""
    if prior not in PRIORS:
        raise GanforgeError(f"model.prior={prior!r} is not a latent prior",
                            f"choose one of: {', '.join(PRIORS)}")
    if isinstance(df, bool) or not isinstance(df, (int, float)) or not math.isfinite(df) or df <= 0:
        raise GanforgeError(f"model.prior_df={df!r} is not a positive number of degrees of freedom",
                            "set model.prior_df to the tail index wanted, e.g. 3 (used by prior=student-t)")
    return str(prior), float(df)


def sample_prior(prior: str, n: int, dim: int, generator: torch.Generator | None = None,
                 df: float = 3.0) -> torch.Tensor:
    """``n`` codes of ``dim`` entries from ``prior`` (float32, CPU)."""
    if prior == "uniform":
        return torch.rand(n, dim, generator=generator) * 2 - 1
    if prior == "student-t":
        u = torch.rand(n, dim, generator=generator, dtype=torch.float64).clamp_(_U_EPS, 1 - _U_EPS)
        return torch.from_numpy(special.stdtrit(df, u.numpy())).float()
    if prior == "normal":
        return torch.randn(n, dim, generator=generator)
    raise GanforgeError(f"unknown latent prior {prior!r}", f"choose one of: {', '.join(PRIORS)}")


def prior_log_prob(prior: str, z: torch.Tensor, df: float = 3.0) -> torch.Tensor:
    """log p(z) per row of ``z`` (N, D), summed over coordinates (-inf outside the support)."""
    z = z.double()
    if prior == "normal":
        return (-0.5 * z.square() - 0.5 * math.log(2 * math.pi)).sum(dim=1)
    if prior == "uniform":
        inside = (z.abs() <= 1).all(dim=1)
        return torch.where(inside, torch.full_like(z[:, 0], -z.shape[1] * math.log(2.0)),
                           torch.full_like(z[:, 0], -math.inf))
    if prior == "student-t":
        const = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
        return (const - (df + 1) / 2 * torch.log1p(z.square() / df)).sum(dim=1)
    raise GanforgeError(f"unknown latent prior {prior!r}", f"choose one of: {', '.join(PRIORS)}")


def from_standard_normal(prior: str, u: torch.Tensor, df: float = 3.0) -> torch.Tensor:
    """The codes z = F^-1(Phi(u)) coordinate by coordinate: u ~ N(0, I) maps to z ~ ``prior``.

    Importance sampling in u-space sees a Gaussian prior whatever the generator's (a Student-t
    tail heavier than every Gaussian proposal, a uniform's bounded support), so Gaussian
    proposals keep bounded weights. Each side of zero is mapped through its own tail
    (z = -F^-1(Phi(-u)) for u > 0), which keeps float64 precision out to |u| ~ 37."""
    if prior == "normal":
        return u.float()
    u64 = u.double().numpy()
    if prior == "uniform":
        return torch.from_numpy(2 * special.ndtr(u64) - 1).float()
    if prior == "student-t":
        lower = special.stdtrit(df, special.ndtr(-np.abs(u64)))
        return torch.from_numpy(np.where(u64 > 0, -lower, lower)).float()
    raise GanforgeError(f"unknown latent prior {prior!r}", f"choose one of: {', '.join(PRIORS)}")


def prior_tail_index(prior: str, df: float = 3.0) -> float:
    """The tail index of one coordinate: nu for Student-t, inf for the light-tailed priors."""
    return float(df) if prior == "student-t" else float(np.inf)
