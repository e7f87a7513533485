"""The importance-sampling maths against scipy and closed forms; the estimators on generators
whose rare-event probabilities are known exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from ganforge.errors import GanforgeError
from ganforge.maths.importance import (
    gaussian_log_prob,
    importance_estimate,
    mixture_log_prob,
    naive_calls_for,
    naive_estimate,
)
from ganforge.maths.priors import prior_log_prob
from ganforge.rare import FunctionSimulator, estimate_rare_event, parse_event
from ganforge.rare.proposals import GaussianProposal, log_ratio


def _linear(dim: int = 4, prior: str = "normal", df: float = 3.0) -> FunctionSimulator:
    a = torch.ones(dim, 1) / math.sqrt(dim)
    return FunctionSimulator(lambda z: z @ a, dim, prior=prior, df=df)


def test_gaussian_log_prob_equals_scipy_full_and_diagonal():
    rng = np.random.default_rng(0)
    z = torch.from_numpy(rng.normal(size=(50, 3)))
    mean = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    m = rng.normal(size=(3, 3))
    cov = torch.from_numpy(m @ m.T + 0.5 * np.eye(3))
    expected = stats.multivariate_normal(mean.numpy(), cov.numpy()).logpdf(z.numpy())
    assert np.allclose(gaussian_log_prob(z, mean, cov).numpy(), expected, atol=1e-10)
    var = torch.tensor([0.3, 2.0, 1.5], dtype=torch.float64)
    expected = stats.norm(mean.numpy(), var.sqrt().numpy()).logpdf(z.numpy()).sum(axis=1)
    assert np.allclose(gaussian_log_prob(z, mean, var).numpy(), expected, atol=1e-10)


def test_mixture_log_prob_equals_the_weighted_sum_of_scipy_densities():
    z = torch.randn(40, 2, dtype=torch.float64)
    w = torch.tensor([0.3, 0.7], dtype=torch.float64)
    means = [torch.tensor([1.0, 0.0]), torch.tensor([-2.0, 1.0])]
    covs = [torch.tensor([1.0, 2.0]), torch.tensor([[1.0, 0.3], [0.3, 0.5]])]
    dens = 0.3 * stats.multivariate_normal(means[0].numpy(), np.diag(covs[0].numpy())).pdf(
        z.numpy()
    ) + 0.7 * stats.multivariate_normal(means[1].numpy(), covs[1].numpy()).pdf(z.numpy())
    assert np.allclose(mixture_log_prob(z, w, means, covs).numpy(), np.log(dens), atol=1e-10)


def test_the_likelihood_ratio_is_the_prior_over_the_proposal_density_of_scipy():
    z = torch.randn(30, 2, dtype=torch.float64) * 2 + 1
    q = GaussianProposal(
        torch.tensor([1.0, 1.0], dtype=torch.float64), torch.tensor([4.0, 4.0], dtype=torch.float64)
    )
    got = log_ratio(prior_log_prob("normal", z), q.log_prob(z))
    expected = stats.norm.logpdf(z.numpy()).sum(1) - stats.norm(1, 2).logpdf(z.numpy()).sum(1)
    assert np.allclose(got.numpy(), expected, atol=1e-10)
    t = prior_log_prob("student-t", z, 2.5)
    assert np.allclose(t.numpy(), stats.t(2.5).logpdf(z.numpy()).sum(1), atol=1e-10)


def test_estimates_follow_their_formulas():
    hit = torch.tensor([True, False, True, False])
    est = naive_estimate(hit)
    assert est.p == 0.5 and math.isclose(est.std_error, math.sqrt(0.25 / 4))
    log_w = torch.log(torch.tensor([0.5, 3.0, 0.25, 1.0], dtype=torch.float64))
    est = importance_estimate(hit, log_w)
    values = np.array([0.5, 0.0, 0.25, 0.0])
    assert math.isclose(est.p, values.mean())
    assert math.isclose(est.std_error, values.std(ddof=1) / 2)
    assert math.isclose(est.ess, 0.75**2 / (0.25 + 0.0625))
    assert math.isclose(naive_calls_for(1e-5, 0.1), (1 - 1e-5) / (1e-5 * 0.01))
    with pytest.raises(GanforgeError, match="one log weight per draw"):
        importance_estimate(hit, log_w[:3])


def test_importance_sampling_is_unbiased_on_the_closed_form_case_across_seeds():
    sim, t = _linear(), 3.719  # p = 1e-4
    truth = stats.norm.sf(t)
    event = f"value(0) > {t}"
    estimates = [
        estimate_rare_event(sim, parse_event(event, sim.context), budget=6_000, seed=s, ce_samples=1000)
        for s in range(30)
    ]
    values = np.array([e.p for e in estimates])
    se_of_mean = values.std(ddof=1) / math.sqrt(len(values))
    assert abs(values.mean() - truth) < 3 * se_of_mean
    covered = sum(abs(e.p - truth) <= 2 * e.estimate.std_error for e in estimates)
    assert covered >= 24  # ~95% nominal


@pytest.mark.parametrize("p", [1e-5, 1e-7])
def test_cross_entropy_reaches_small_probabilities_that_naive_mc_misses(p):
    sim = _linear(8)
    t = stats.norm.isf(p)
    event = parse_event(f"value(0) > {t}", sim.context)
    ce = estimate_rare_event(sim, event, budget=50_000, seed=0)
    assert ce.levels and ce.levels[-1].level >= 0
    assert ce.estimate.relative_error < 0.05
    assert abs(ce.p - p) < 3 * ce.estimate.std_error
    assert ce.naive_calls / ce.calls > 1000
    mc = estimate_rare_event(sim, event, method="mc", budget=50_000, seed=0)
    assert mc.estimate.hits == 0 and mc.p == 0
    assert mc.upper_bound == pytest.approx(1 - 0.05 ** (1 / 50_000)) and "no sample reached" in mc.warning


def test_a_two_sided_event_is_sampled_better_by_the_mixture_proposal():
    sim = _linear(2)
    t = 4.0
    truth = 2 * stats.norm.sf(t)
    extra = {"abs": lambda x: x[:, 0].abs()}
    event = parse_event(f"abs > {t}", sim.context, extra)
    mix = estimate_rare_event(sim, event, method="ce-mixture", components=2, budget=40_000, seed=0)
    assert abs(mix.p - truth) < 3 * mix.estimate.std_error
    signs = torch.sign(sim(mix.codes, torch.Generator())[:, 0])
    assert (signs > 0).any() and (signs < 0).any()  # the scenarios come from both regions
    # one Gaussian (its variance floored at the prior's) straddles both regions: still unbiased,
    # but it spends most draws between them
    one = estimate_rare_event(sim, parse_event(f"abs > {t}", sim.context, extra), budget=40_000, seed=0)
    assert abs(one.p - truth) < 3 * one.estimate.std_error
    assert mix.estimate.relative_error < 0.7 * one.estimate.relative_error
    assert mix.estimate.ess > 2 * one.estimate.ess


@pytest.mark.parametrize("prior", ["student-t", "uniform"])
def test_other_priors_are_sampled_in_standard_normal_coordinates_and_stay_unbiased(prior):
    sim = _linear(1, prior=prior, df=3.0)
    t = stats.t(3).isf(1e-5) if prior == "student-t" else 1 - 2e-5  # P(U(-1, 1) > t) = 1e-5
    results = [
        estimate_rare_event(sim, parse_event(f"value(0) > {t}", sim.context), budget=20_000, seed=s)
        for s in range(5)
    ]
    for r in results:
        assert abs(r.p - 1e-5) < 3 * r.estimate.std_error and r.estimate.relative_error < 0.05
    u = torch.linspace(-8, 8, 33)[:, None]
    z = sim.codes(u)
    # scipy's t.isf near 1 loses digits: compare each side through its own tail
    expected = (
        np.sign(u.numpy()) * stats.t(3).isf(stats.norm.sf(np.abs(u.numpy())))
        if prior == "student-t"
        else 2 * stats.norm.cdf(u) - 1
    )
    assert np.allclose(z.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_the_defensive_share_bounds_the_weights():
    sim = _linear(2)
    r = estimate_rare_event(
        sim, parse_event("value(0) > 3.7", sim.context), budget=20_000, seed=0, defensive=0.2
    )
    assert float(r.weights.max()) * r.estimate.n <= 1 / 0.2 + 1e-9  # weights are w_i / N
    assert abs(r.p - stats.norm.sf(3.7)) < 3 * r.estimate.std_error


def test_bad_options_are_one_line_errors():
    sim = _linear()
    event = parse_event("value(0) > 3", sim.context)
    for kwargs, match in [
        ({"budget": 0}, "--budget must be a positive"),
        ({"method": "magic"}, "unknown rare-event"),
        ({"rho": 1.5}, "--rho must be"),
        ({"covariance": "odd"}, "unknown covariance"),
        ({"budget": 100}, "too small for the cross-entropy"),
        ({"variance_floor": -1.0}, "--variance-floor"),
        ({"method": "subset", "replicates": 0}, "--replicates must be a positive"),
    ]:
        with pytest.raises(GanforgeError, match=match):
            estimate_rare_event(sim, event, **kwargs)


def test_subset_simulation_is_close_to_unbiased_and_its_error_honest_on_the_closed_form_case():
    sim, p = _linear(8), 1e-5
    event = parse_event(f"value(0) > {stats.norm.isf(p)}", sim.context)
    results = [estimate_rare_event(sim, event, method="subset", budget=40_000, seed=s) for s in range(12)]
    values = np.array([r.p for r in results])
    assert abs(values.mean() - p) < 3 * values.std(ddof=1) / math.sqrt(len(values))
    reported = np.mean([r.estimate.relative_error for r in results])
    observed = values.std(ddof=1) / p
    assert 0.5 * observed < reported < 2.0 * observed  # Au and Beck's error, chains' correlation included
    assert all(r.calls <= 40_000 for r in results) and all(r.levels[-1].level >= 0 for r in results)
    assert all(r.levels[-1].note["family"] == "pcn" for r in results)


def test_one_subset_run_reports_au_and_becks_error_and_replicates_pool_their_runs():
    sim = _linear(4)
    event = parse_event(f"value(0) > {stats.norm.isf(1e-4)}", sim.context)
    one = estimate_rare_event(sim, event, method="subset", budget=20_000, seed=0, replicates=1)
    assert one.estimate.std_error > 0 and one.calls <= 20_000
    pooled = estimate_rare_event(sim, event, method="subset", budget=20_000, seed=0, replicates=4, keep=8)
    assert pooled.calls <= 20_000 and len(pooled.weights) == 8
    assert abs(pooled.p - 1e-4) < 3 * pooled.estimate.std_error


@pytest.mark.parametrize("method", ["mc", "ce-is", "subset"])
def test_the_scenarios_weights_are_probability_masses_that_sum_to_the_estimate(method):
    sim = _linear(2)
    event = parse_event("value(0) > 2.5", sim.context)
    r = estimate_rare_event(sim, event, method=method, budget=20_000, seed=1, keep=10**6, replicates=2)
    assert len(r.weights) == r.estimate.hits
    assert float(r.weights.sum()) == pytest.approx(r.p, rel=1e-9)


def test_the_correlation_factor_follows_au_and_beck():
    from ganforge.rare.subset import _correlation_factor

    independent = torch.rand(2000, 5, generator=torch.Generator().manual_seed(0)) < 0.3
    assert _correlation_factor(independent, 0.3) < 0.1
    frozen = (torch.rand(2000, 1, generator=torch.Generator().manual_seed(1)) < 0.3).repeat(1, 5)
    # fully correlated chains of length 5: gamma = 2 sum_{k=1}^{4} (1 - k/5) = 4
    assert _correlation_factor(frozen, float(frozen.double().mean())) == pytest.approx(4.0, abs=1e-9)
