"""Divergences and the optimal discriminator, for checking the GAN theory numerically.

A distribution is given in one of two ways:

* ``x`` is ``None``: ``p`` is a discrete probability vector (non-negative, summing to 1) and
  integrals are sums.
* ``x`` is a 1D increasing grid: ``p`` is a density, either an array of its values on ``x`` or a
  callable evaluated on ``x``, and integrals use the trapezoid rule on ``x``.

Logarithms are natural, so JSD lies in [0, log 2] (up to integration error on a grid). Zeros
follow the convention 0 log 0 = 0 (via ``scipy.special.xlogy`` / ``rel_entr``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.integrate import trapezoid
from scipy.special import rel_entr, xlogy
from scipy.stats import norm

from ganforge.errors import GanforgeError

Density = ArrayLike | Callable[[NDArray[np.float64]], ArrayLike]


def _grid(x: ArrayLike | None) -> NDArray[np.float64] | None:
    if x is None:
        return None
    grid = np.asarray(x, dtype=np.float64)
    if grid.ndim != 1 or grid.size < 2:
        raise GanforgeError(
            f"the grid x must be 1D with at least 2 points, got shape {grid.shape}",
            "pass e.g. x = np.linspace(-10, 10, 10001)",
        )
    if not np.all(np.diff(grid) > 0):
        raise GanforgeError("the grid x is not strictly increasing", "sort x and drop duplicates")
    return grid


def _values(p: Density, x: NDArray[np.float64] | None, what: str) -> NDArray[np.float64]:
    """``p`` as a float64 array: evaluated on ``x`` if callable, checked for shape and sign."""
    if callable(p):
        if x is None:
            raise GanforgeError(
                f"{what} is a callable density but no grid x was given",
                "pass x, or pass a discrete probability vector instead",
            )
        p = p(x)
    values = np.asarray(p, dtype=np.float64)
    if x is not None and values.shape != x.shape:
        raise GanforgeError(
            f"{what} has shape {values.shape} but the grid x has shape {x.shape}",
            "evaluate the density on x",
        )
    if x is None and values.ndim != 1:
        raise GanforgeError(
            f"{what} must be a 1D probability vector, got shape {values.shape}",
            "flatten it or pass a grid x",
        )
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise GanforgeError(f"{what} has negative or non-finite values", "pass a valid density")
    if x is None and not np.isclose(values.sum(), 1.0, rtol=0.0, atol=1e-5):
        raise GanforgeError(
            f"the probability vector {what} sums to {values.sum():.6g}, not 1", "normalise it"
        )
    return values


def _pair(
    p: Density, q: Density, x: ArrayLike | None, names: tuple[str, str]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64] | None]:
    grid = _grid(x)
    pv, qv = _values(p, grid, names[0]), _values(q, grid, names[1])
    if pv.shape != qv.shape:
        raise GanforgeError(
            f"{names[0]} has shape {pv.shape} but {names[1]} has shape {qv.shape}",
            "give both on the same support",
        )
    return pv, qv, grid


def _integrate(values: NDArray[np.float64], x: NDArray[np.float64] | None) -> float:
    """sum(values) for discrete distributions, trapezoid integral over ``x`` for densities."""
    return float(values.sum() if x is None else trapezoid(values, x))


def optimal_discriminator(
    p_data: Density, p_g: Density, x: ArrayLike | None = None
) -> NDArray[np.float64]:
    """The discriminator maximising V(D, G) for a fixed G (Goodfellow et al., 2014, Prop. 1).

    D*(x) = p_data(x) / (p_data(x) + p_g(x))

    Returned pointwise on ``x`` (or per outcome for discrete vectors). Where both densities are 0,
    D* is undetermined (any value is optimal, the point has no mass); 0.5 is returned there.
    """
    pd, pg, _ = _pair(p_data, p_g, x, ("p_data", "p_g"))
    total = pd + pg
    return np.divide(pd, total, out=np.full_like(total, 0.5), where=total > 0)


def kl_divergence(p: Density, q: Density, x: ArrayLike | None = None) -> float:
    """Kullback-Leibler divergence, natural log.

    KL(P || Q) = integral p(x) log(p(x) / q(x)) dx   (a sum for discrete vectors)

    with 0 log(0 / q) = 0; it is +inf where p > 0 and q = 0.
    """
    pv, qv, grid = _pair(p, q, x, ("p", "q"))
    return _integrate(rel_entr(pv, qv), grid)


def jensen_shannon(p: Density, q: Density, x: ArrayLike | None = None) -> float:
    """Jensen-Shannon divergence, natural log.

    JSD(P || Q) = 1/2 KL(P || M) + 1/2 KL(Q || M),  M = (P + Q) / 2

    Symmetric, 0 iff P = Q, and log 2 for disjoint supports. Equal to
    ``scipy.spatial.distance.jensenshannon(p, q) ** 2`` for discrete vectors.
    """
    pv, qv, grid = _pair(p, q, x, ("p", "q"))
    # p log(p / m) is evaluated as p log(2 p / (p + q)): m = (p + q) / 2 itself can underflow to 0
    # for subnormal p + q, which would turn a term that is ~0 into +inf.
    total = pv + qv
    safe = np.where(total > 0, total, 1.0)
    kl_p_m, kl_q_m = xlogy(pv, 2 * (pv / safe)), xlogy(qv, 2 * (qv / safe))
    return _integrate(0.5 * kl_p_m + 0.5 * kl_q_m, grid)


def value_at_optimum(p_data: Density, p_g: Density, x: ArrayLike | None = None) -> float:
    """The value function at the optimal discriminator, integrated directly.

    V(D*, G) = integral p_data(x) log D*(x) + p_g(x) log(1 - D*(x)) dx

    with D* = p_data / (p_data + p_g) and 1 - D* = p_g / (p_data + p_g). It is computed without
    going through JSD, so the identity V(D*, G) = -log 4 + 2 JSD(p_data || p_g) (Goodfellow et al.,
    2014, Thm. 1) can be checked against :func:`jensen_shannon`.
    """
    pd, pg, grid = _pair(p_data, p_g, x, ("p_data", "p_g"))
    total = pd + pg
    # 1 - D* is formed as p_g / total rather than by subtraction, which would round to 0 where
    # p_g << p_data; xlogy makes points where a density is 0 contribute exactly 0.
    safe = np.where(total > 0, total, 1.0)
    integrand = xlogy(pd, pd / safe) + xlogy(pg, pg / safe)
    return _integrate(integrand, grid)


def mixture_density(
    means: Sequence[float] | ArrayLike,
    stds: Sequence[float] | ArrayLike,
    weights: Sequence[float] | ArrayLike | None = None,
) -> Callable[[ArrayLike], NDArray[np.float64]]:
    """A 1D Gaussian-mixture density function.

    p(x) = sum_k w_k N(x; mu_k, sigma_k^2),  sum_k w_k = 1

    ``weights`` default to uniform and are normalised to sum to 1. Returns ``pdf(x)``, which
    evaluates the density elementwise on an array ``x``.
    """
    mu = np.atleast_1d(np.asarray(means, dtype=np.float64))
    sigma = np.atleast_1d(np.asarray(stds, dtype=np.float64))
    w = np.ones_like(mu) if weights is None else np.atleast_1d(np.asarray(weights, np.float64))
    if mu.ndim != 1 or not mu.size or mu.shape != sigma.shape or mu.shape != w.shape:
        raise GanforgeError(
            f"mixture means, stds and weights must be 1D of equal length, got shapes "
            f"{mu.shape}, {sigma.shape}, {w.shape}",
            "give one mean, std and weight per component",
        )
    if np.any(sigma <= 0) or np.any(w < 0) or w.sum() <= 0:
        raise GanforgeError(
            "mixture stds must be positive and weights non-negative with a positive sum",
            "fix the mixture parameters",
        )
    w = w / w.sum()

    def pdf(x: ArrayLike) -> NDArray[np.float64]:
        points = np.asarray(x, dtype=np.float64)[..., None]
        return (w * norm.pdf(points, loc=mu, scale=sigma)).sum(axis=-1)

    return pdf
