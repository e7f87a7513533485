"""ganforge.maths.divergences against closed forms, scipy and the GAN optimality theorem."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon as scipy_jensenshannon

from ganforge.errors import GanforgeError
from ganforge.maths import (
    jensen_shannon,
    kl_divergence,
    mixture_density,
    optimal_discriminator,
    value_at_optimum,
)

LOG2, LOG4 = math.log(2.0), math.log(4.0)
GRID = np.linspace(-30.0, 30.0, 120_001)


def gaussian(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    return np.exp(-((x - mu) ** 2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))


def triangle(x: np.ndarray, centre: float) -> np.ndarray:
    """A triangular density of width 2 around ``centre``: piecewise linear, so the trapezoid rule
    integrates it exactly when the grid contains its kinks."""
    return np.maximum(0.0, 1.0 - np.abs(x - centre))


def random_mixture(rng: np.random.Generator):
    k = int(rng.integers(1, 4))
    return mixture_density(rng.uniform(-4, 4, k), rng.uniform(0.3, 2.0, k), rng.uniform(0.1, 1, k))


probability_vectors = st.integers(2, 12).flatmap(
    lambda n: st.tuples(
        st.lists(st.floats(0, 1, allow_subnormal=False), min_size=n, max_size=n),
        st.lists(st.floats(0, 1, allow_subnormal=False), min_size=n, max_size=n),
    )
)


def normalised(weights: list[float]) -> np.ndarray | None:
    w = np.asarray(weights, dtype=np.float64)
    return w / w.sum() if w.sum() > 1e-3 else None


# optimal discriminator


def test_optimal_discriminator_between_two_gaussians_is_a_sigmoid():
    # N(0, 1) vs N(1, 1): p_g / p_data = exp(x - 1/2), so D*(x) = 1 / (1 + exp(x - 1/2)).
    x = np.linspace(-5, 5, 101)
    d_star = optimal_discriminator(gaussian(x, 0, 1), gaussian(x, 1, 1), x)
    np.testing.assert_allclose(d_star, 1 / (1 + np.exp(x - 0.5)), rtol=1e-12)
    assert d_star[np.argmin(np.abs(x - 0.5))] == pytest.approx(0.5)


def test_optimal_discriminator_accepts_callables():
    x = np.linspace(-3, 3, 13)
    p, q = mixture_density([0.0], [1.0]), mixture_density([0.5], [2.0])
    expected = gaussian(x, 0, 1) / (gaussian(x, 0, 1) + gaussian(x, 0.5, 2))
    np.testing.assert_allclose(optimal_discriminator(p, q, x), expected, rtol=1e-12)


def test_optimal_discriminator_discrete_and_zero_mass():
    d_star = optimal_discriminator([0.5, 0.5, 0.0, 0.0], [0.0, 0.25, 0.0, 0.75])
    np.testing.assert_allclose(d_star, [1.0, 2 / 3, 0.5, 0.0])


# KL and JSD


def test_kl_between_gaussians_matches_closed_form():
    m1, s1, m2, s2 = 0.3, 0.8, -1.0, 1.5
    closed = math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    value = kl_divergence(gaussian(GRID, m1, s1), gaussian(GRID, m2, s2), GRID)
    assert value == pytest.approx(closed, abs=1e-8)


def test_kl_discrete_values_zeros_and_infinity():
    assert kl_divergence([0.5, 0.5], [0.25, 0.75]) == pytest.approx(
        0.5 * math.log(2) + 0.5 * math.log(2 / 3)
    )
    assert kl_divergence([1.0, 0.0], [0.5, 0.5]) == pytest.approx(LOG2)  # 0 log 0 = 0
    assert kl_divergence([0.5, 0.5], [1.0, 0.0]) == math.inf


def test_jsd_of_identical_distributions_is_zero():
    p = np.array([0.1, 0.0, 0.6, 0.3])
    assert jensen_shannon(p, p) == pytest.approx(0.0, abs=1e-15)
    density = mixture_density([-1.0, 2.0], [0.5, 1.0], [0.3, 0.7])
    assert jensen_shannon(density, density, GRID) == pytest.approx(0.0, abs=1e-15)


def test_jsd_of_disjoint_supports_is_log2():
    assert jensen_shannon([0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.2, 0.8]) == pytest.approx(LOG2)
    x = np.linspace(-2.0, 5.0, 7001)  # contains the kinks -1, 0, 1 and 2, 3, 4
    assert jensen_shannon(triangle(x, 0.0), triangle(x, 3.0), x) == pytest.approx(LOG2, rel=1e-10)


def test_jsd_partial_overlap_on_grid_matches_discrete_formula():
    # Two unit-width uniform densities overlapping on half their support: on [0, 0.5] and
    # [1, 1.5] one density is 0 (contributes (1/2)(1/2) log 2 each), on [0.5, 1] they are equal.
    expected_discrete = jensen_shannon([0.5, 0.5, 0.0], [0.0, 0.5, 0.5])
    assert expected_discrete == pytest.approx(0.5 * LOG2)
    x = np.linspace(0, 1.5, 300_001)
    p = ((x >= 0) & (x < 1)).astype(float)
    q = ((x >= 0.5) & (x <= 1.5)).astype(float)
    assert jensen_shannon(p, q, x) == pytest.approx(0.5 * LOG2, abs=1e-4)


@given(probability_vectors)
@settings(max_examples=100, deadline=None)
def test_jsd_property_symmetric_bounded_and_matches_scipy(pair):
    p, q = normalised(pair[0]), normalised(pair[1])
    if p is None or q is None:
        return
    jsd = jensen_shannon(p, q)
    assert jsd == pytest.approx(jensen_shannon(q, p), abs=1e-14)
    assert -1e-12 <= jsd <= LOG2 + 1e-12
    assert jsd == pytest.approx(scipy_jensenshannon(p, q) ** 2, abs=1e-12)
    assert kl_divergence(p, q) >= -1e-12


def test_jsd_survives_subnormal_mass():
    # (p + q) / 2 underflows to 0 here; the tiny outcome must contribute ~0, not +inf.
    tiny = 5e-324
    assert jensen_shannon([1.0, 0.0], [1.0 - tiny, tiny]) == pytest.approx(0.0, abs=1e-300)
    assert jensen_shannon([1.0, 0.0], [0.0, 1.0]) == pytest.approx(LOG2)


def test_jsd_is_symmetric_on_a_grid():
    rng = np.random.default_rng(3)
    p, q = random_mixture(rng), random_mixture(rng)
    assert jensen_shannon(p, q, GRID) == pytest.approx(jensen_shannon(q, p, GRID), rel=1e-12)


# value at the optimum: V(D*, G) = -log 4 + 2 JSD(p_data || p_g)


def test_value_at_optimum_is_minus_log4_when_pg_equals_pdata():
    assert value_at_optimum([0.2, 0.0, 0.8], [0.2, 0.0, 0.8]) == pytest.approx(-LOG4)
    density = mixture_density([0.0, 3.0], [1.0, 0.5], [0.6, 0.4])
    assert value_at_optimum(density, density, GRID) == pytest.approx(-LOG4, abs=1e-9)


def test_value_at_optimum_for_disjoint_supports_is_zero():
    # D* is 1 on the data and 0 on the fakes, so both log terms vanish.
    assert value_at_optimum([0.5, 0.5, 0.0], [0.0, 0.0, 1.0]) == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("seed", range(5))
def test_value_at_optimum_identity_for_random_mixtures(seed):
    rng = np.random.default_rng(seed)
    p_data, p_g = random_mixture(rng), random_mixture(rng)
    jsd = jensen_shannon(p_data, p_g, GRID)
    assert jsd > 1e-4  # the identity is checked away from the trivial case
    assert value_at_optimum(p_data, p_g, GRID) == pytest.approx(-LOG4 + 2 * jsd, abs=1e-6)


@given(probability_vectors, st.data())
@settings(max_examples=100, deadline=None)
def test_property_optimum_identity_and_no_discriminator_beats_d_star(pair, data):
    p, q = normalised(pair[0]), normalised(pair[1])
    if p is None or q is None:
        return
    v_star = value_at_optimum(p, q)
    assert v_star == pytest.approx(-LOG4 + 2 * jensen_shannon(p, q), abs=1e-12)
    # V(D, G) = sum p log D + q log(1 - D) <= V(D*, G) for any D with values in (0, 1).
    d = np.array(data.draw(st.lists(st.floats(1e-6, 1 - 1e-6), min_size=len(p), max_size=len(p))))
    v = float(np.sum(p * np.log(d) + q * np.log1p(-d)))
    assert v <= v_star + 1e-12


# mixture density and input checks


def test_mixture_density_integrates_to_one_and_matches_components():
    pdf = mixture_density([-1.0, 2.0], [0.5, 1.5], [1.0, 3.0])  # weights normalised to 1/4, 3/4
    x = np.array([-1.0, 0.0, 2.0])
    expected = 0.25 * gaussian(x, -1, 0.5) + 0.75 * gaussian(x, 2, 1.5)
    np.testing.assert_allclose(pdf(x), expected, rtol=1e-12)
    from scipy.integrate import trapezoid

    assert trapezoid(pdf(GRID), GRID) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(
    "call",
    [
        lambda: mixture_density([0.0, 1.0], [1.0], [0.5, 0.5]),
        lambda: mixture_density([0.0], [-1.0]),
        lambda: mixture_density([0.0], [1.0], [-1.0]),
        lambda: jensen_shannon(mixture_density([0.0], [1.0]), [0.5, 0.5]),  # callable, no grid
        lambda: jensen_shannon([0.5, 0.5], [0.2, 0.3, 0.5]),  # shape mismatch
        lambda: jensen_shannon([0.5, 0.6], [0.5, 0.5]),  # not normalised
        lambda: kl_divergence([1.5, -0.5], [0.5, 0.5]),  # negative
        lambda: kl_divergence(np.ones(3), np.ones(3), np.array([0.0, 2.0, 1.0])),  # unsorted x
        lambda: optimal_discriminator(np.ones(4), np.ones(4), np.linspace(0, 1, 5)),
    ],
)
def test_bad_inputs_raise_ganforge_error(call):
    with pytest.raises(GanforgeError):
        call()
