"""Heavy tails of a 1-D statistic: the Hill estimator of the tail index, the Hill plot and the
points of a Pareto QQ plot.

A distribution has a power-law (Pareto-type) upper tail of index alpha > 0 when
P(X > x) = x^(-alpha) L(x) with L slowly varying: Student-t with nu degrees of freedom has
alpha = nu, a Pareto(alpha) has alpha, a Gaussian or any distribution with a lighter tail has
alpha = inf (its Hill estimates grow without bound as n grows).

With the positive values of a sample in decreasing order X_(1) >= X_(2) >= ... >= X_(n), the
Hill (1975) estimator from the top ``k`` order statistics is

    alpha_hat(k) = [ (1/k) sum_{i=1..k} log X_(i) - log X_(k+1) ]^(-1),

the maximum-likelihood estimate of alpha for a Pareto tail above the threshold u = X_(k+1)
(given u, the ratios X_(i)/u of the top k are i.i.d. Pareto(alpha) with scale 1, and
log(X_(i)/u) are i.i.d. Exponential(alpha)). It is scale-free: alpha_hat(c X) = alpha_hat(X)
for every c > 0. Only the *upper* tail of the *positive* values is used: for a lower or a
two-sided tail pass ``-x`` or ``abs(x)``. The default ``k = floor(sqrt(n))`` (n: the number of
positive values) is a common rule that grows with n while k/n -> 0, as consistency needs.

The Pareto QQ plot of the top k draws, for i = 1..k, the exponential quantile -log(i/(k+1))
against log X_(i) - log X_(k+1): on a Pareto tail the points lie on a line through the origin
of slope 1/alpha (a light tail bends down, the log-excesses growing slower than the quantiles).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ganforge.errors import GanforgeError

#: the fewest positive values a tail estimate is computed from
MIN_POSITIVE = 10


def _upper_order_statistics(x: object) -> np.ndarray:
    """The positive values of ``x`` in decreasing order (float64), after the input checks."""
    try:
        values = np.asarray(x, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise GanforgeError("the tail estimate needs an array of numbers",
                            "pass a 1-D array of real values") from None
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise GanforgeError(f"the values hold {bad} non-finite entries (nan or inf)",
                            "drop them before estimating the tail, e.g. x[np.isfinite(x)]")
    positive = values[values > 0]
    if len(positive) < MIN_POSITIVE:
        raise GanforgeError(f"the tail estimate needs at least {MIN_POSITIVE} positive values, "
                            f"got {len(positive)} of {len(values)}",
                            "pass more samples (or abs(x) / -x for a lower or two-sided tail)")
    return np.sort(positive)[::-1]


def default_k(n_positive: int) -> int:
    """The default number of upper order statistics: ``floor(sqrt(n_positive))``."""
    return max(1, math.isqrt(int(n_positive)))


def _check_k(k: object, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) <= n - 1:
        raise GanforgeError(f"k={k!r} is not a whole number of order statistics in 1..{n - 1} "
                            f"(the sample has {n} positive values)",
                            f"leave k unset for floor(sqrt(n)) = {default_k(n)}, or pick one in range")
    return int(k)


def _log_excesses(order: np.ndarray, k: int) -> np.ndarray:
    """log X_(i) - log X_(k+1) for i = 1..k."""
    return np.log(order[:k]) - math.log(order[k])


def hill_estimator(x: object, k: int | None = None) -> float:
    """Hill's tail index alpha_hat(k) of the upper tail of ``x`` (module docstring): the inverse
    mean log-excess of the top ``k`` positive values over X_(k+1); ``k`` defaults to
    ``floor(sqrt(n))`` with n the number of positive values. Returns ``inf`` when the top k+1
    values are all equal (no tail to measure). Raises a one-line :class:`GanforgeError` for
    non-finite input, fewer than :data:`MIN_POSITIVE` positive values or k outside 1..n-1."""
    order = _upper_order_statistics(x)
    k = default_k(len(order)) if k is None else _check_k(k, len(order))
    mean = float(_log_excesses(order, k).mean())
    return math.inf if mean <= 0 else 1.0 / mean


def hill_curve(x: object, ks: Iterable[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The Hill plot: ``(ks, alpha_hat(k) for each k)`` (int64, float64 arrays). ``ks`` default:
    about 50 values spaced evenly in log between 10 (or 1) and n/2. A flat stretch of the curve
    is a power-law tail; a curve that keeps rising as k falls is a light tail."""
    order = _upper_order_statistics(x)
    n = len(order)
    if ks is None:
        ks_arr = np.unique(np.geomspace(min(10, n // 2), max(n // 2, 2), 50).astype(np.int64))
        ks_arr = ks_arr[(ks_arr >= 1) & (ks_arr <= n - 1)]
    else:
        ks_arr = np.asarray([_check_k(k, n) for k in ks], dtype=np.int64)
    # mean_{i<=k} log X_(i) - log X_(k+1) from one cumulative sum of the logs
    logs = np.log(order)
    cumulative = np.cumsum(logs)
    means = cumulative[ks_arr - 1] / ks_arr - logs[ks_arr]
    with np.errstate(divide="ignore"):
        alphas = np.where(means > 0, 1.0 / np.where(means > 0, means, 1.0), np.inf)
    return ks_arr, alphas.astype(np.float64)


def pareto_qq(x: object, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The points of the Pareto QQ plot of the top ``k`` positive values (``k`` as in
    :func:`hill_estimator`): ``(q, e)`` with q_i = -log(i / (k+1)) the standard exponential
    quantiles and e_i = log X_(i) - log X_(k+1) the log-excesses, i = 1..k (largest first).
    On a Pareto tail of index alpha, e ~ q / alpha."""
    order = _upper_order_statistics(x)
    k = default_k(len(order)) if k is None else _check_k(k, len(order))
    i = np.arange(1, k + 1, dtype=np.float64)
    return -np.log(i / (k + 1)), _log_excesses(order, k)
