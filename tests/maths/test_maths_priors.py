"""The latent priors (maths/priors.py): draws against scipy's distributions, log-densities
against scipy's logpdf, the checks, and a Student-t MLP generator's heavy-tailed codes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from ganforge.errors import GanforgeError
from ganforge.maths.priors import (
    PRIORS,
    check_prior,
    prior_log_prob,
    prior_tail_index,
    sample_prior,
)
from ganforge.maths.tails import hill_estimator


@pytest.mark.parametrize("df", [1.5, 3.0, 10.0])
def test_student_t_draws_follow_scipys_t(df):
    z = sample_prior("student-t", 20_000, 2, torch.Generator().manual_seed(0), df=df)
    assert z.dtype == torch.float32 and z.shape == (20_000, 2)
    for column in z.double().numpy().T:
        assert stats.kstest(column, stats.t(df).cdf).pvalue > 1e-3


def test_normal_and_uniform_draws_follow_their_distributions():
    g = torch.Generator().manual_seed(1)
    normal = sample_prior("normal", 20_000, 1, g).numpy().ravel()
    uniform = sample_prior("uniform", 20_000, 1, g).numpy().ravel()
    assert stats.kstest(normal, stats.norm.cdf).pvalue > 1e-3
    assert stats.kstest(uniform, stats.uniform(-1, 2).cdf).pvalue > 1e-3


def test_draws_are_reproducible_from_the_seed():
    a = sample_prior("student-t", 100, 4, torch.Generator().manual_seed(7), df=2.0)
    b = sample_prior("student-t", 100, 4, torch.Generator().manual_seed(7), df=2.0)
    assert torch.equal(a, b)


@pytest.mark.parametrize("prior, reference", [
    ("normal", lambda z, df: stats.norm.logpdf(z).sum(1)),
    ("student-t", lambda z, df: stats.t(df).logpdf(z).sum(1)),
    ("uniform", lambda z, df: stats.uniform(-1, 2).logpdf(z).sum(1)),
])
@pytest.mark.parametrize("df", [0.7, 3.0])
def test_log_prob_is_scipys_logpdf_summed_over_coordinates(prior, reference, df):
    z = torch.tensor([[0.0, 0.5, -0.9], [0.99, -0.2, 0.3], [-0.4, 0.8, 0.1]], dtype=torch.float64)
    got = prior_log_prob(prior, z, df=df)
    assert got.dtype == torch.float64 and got.shape == (3,)
    np.testing.assert_allclose(got.numpy(), reference(z.numpy(), df), rtol=1e-10)
    far = torch.tensor([[3.0, -7.5, 20.0]], dtype=torch.float64)
    if prior == "uniform":  # outside [-1, 1]^D the density is zero
        assert prior_log_prob(prior, far, df=df).item() == -math.inf
        assert prior_log_prob(prior, torch.tensor([[0.0, 1.5, 0.0]]), df=df).item() == -math.inf
    else:
        np.testing.assert_allclose(prior_log_prob(prior, far, df=df).numpy(),
                                   reference(far.numpy(), df), rtol=1e-10)


def test_check_prior_accepts_the_priors_and_refuses_the_rest():
    assert check_prior("student-t", 3) == ("student-t", 3.0)
    assert {check_prior(p, 1.0)[0] for p in PRIORS} == set(PRIORS)
    for prior, df, words in [("cauchy", 3.0, "not a latent prior"), ("student-t", 0, "prior_df=0"),
                             ("normal", -1.0, "prior_df=-1.0"), ("student-t", math.inf, "prior_df=inf"),
                             ("student-t", True, "prior_df=True"), ("student-t", "3", "prior_df='3'")]:
        with pytest.raises(GanforgeError) as err:
            check_prior(prior, df)
        assert words in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(GanforgeError, match="unknown latent prior"):
        sample_prior("cauchy", 2, 2)
    with pytest.raises(GanforgeError, match="unknown latent prior"):
        prior_log_prob("cauchy", torch.zeros(2, 2))
    assert prior_tail_index("student-t", 2.5) == 2.5 and prior_tail_index("normal") == math.inf


def test_a_student_t_mlp_draws_heavy_tailed_codes_reproducibly():
    from ganforge.models.compose import build

    G, _ = build({"name": "mlp", "z_dim": 3, "g_hidden": [8], "d_hidden": [8], "prior": "student-t",
                  "prior_df": 2.0}, (1,))
    assert G.prior == "student-t" and G.prior_df == 2.0
    z = G.sample_z(100_000, torch.Generator().manual_seed(0))
    assert torch.equal(z, G.sample_z(100_000, torch.Generator().manual_seed(0)))
    assert hill_estimator(z[:, 0].numpy()) == pytest.approx(2.0, rel=0.2)
    assert hill_estimator(z.abs().max(1).values.numpy()) == pytest.approx(2.0, rel=0.2)
    normal, _ = build({"name": "mlp", "z_dim": 3, "g_hidden": [8], "d_hidden": [8]}, (1,))
    assert hill_estimator(normal.sample_z(100_000, torch.Generator().manual_seed(0))[:, 0].numpy()) > 6
    log_p = G.prior_log_prob(z[:5])
    np.testing.assert_allclose(log_p.numpy(), stats.t(2.0).logpdf(z[:5].double().numpy()).sum(1),
                               rtol=1e-6)
    with pytest.raises(GanforgeError, match="prior_df"):
        build({"name": "mlp", "prior": "student-t", "prior_df": -2}, (1,))


def test_the_ctgan_generator_takes_a_student_t_latent_and_checks_it():
    from ganforge.models.ctgan import build_ctgan

    G, _ = build_ctgan((6,), z_dim=8, prior="student-t", prior_df=2.5, layout=[[2, "tanh"], [4, "softmax"]])
    assert (G.prior, G.prior_df) == ("student-t", 2.5)
    z = G.sample_z(20_000, torch.Generator().manual_seed(0), "cpu")
    assert stats.kstest(z[:, 0].numpy(), stats.t(2.5).cdf).pvalue > 1e-3
    with pytest.raises(GanforgeError, match="prior_df"):
        build_ctgan((6,), prior="student-t", prior_df=0, layout=[[2, "tanh"], [4, "softmax"]])
