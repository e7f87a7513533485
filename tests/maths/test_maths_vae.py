"""ganforge.maths.vae against torch.distributions, scipy, Monte Carlo and a linear-Gaussian model
whose exact log p(x) is known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from torch.distributions import Bernoulli, Normal, kl_divergence

from ganforge.errors import GanforgeError
from ganforge.maths import (
    bernoulli_log_likelihood,
    gaussian_log_likelihood,
    iwae_bound,
    kl_standard_normal,
    kl_warmup_weight,
    log_normal_diag,
    log_normal_standard,
    reparameterise,
)

DT = torch.float64


def gaussian_params(*shape: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=DT), 0.8 * torch.randn(*shape, generator=g, dtype=DT)


# --------------------------------------------------------------------------- reparameterise


def test_reparameterised_samples_have_the_posterior_mean_and_std():
    mu = torch.tensor([[0.5, -2.0, 3.0]], dtype=DT)
    logvar = torch.tensor([[0.0, -1.5, 1.2]], dtype=DT)
    n = 100_000
    z = reparameterise(mu, logvar, torch.Generator().manual_seed(1), samples=n)
    assert z.shape == (n, 1, 3) and z.dtype == DT
    std = torch.exp(logvar / 2)
    standard_error = std / math.sqrt(n)
    assert torch.all((z.mean(0) - mu).abs() < 4 * standard_error)
    # the sample std of a normal has standard error ~ sigma / sqrt(2n)
    assert torch.all((z.std(0) - std).abs() < 4 * std / math.sqrt(2 * n))


def test_reparameterise_is_mu_plus_sigma_times_cpu_noise_from_the_generator():
    mu, logvar = gaussian_params(4, 3)
    z = reparameterise(mu, logvar, torch.Generator().manual_seed(7))
    eps = torch.randn(4, 3, generator=torch.Generator().manual_seed(7), dtype=DT)
    torch.testing.assert_close(z, mu + torch.exp(logvar / 2) * eps)
    z2 = reparameterise(mu.float(), logvar.float(), torch.Generator().manual_seed(7), samples=2)
    eps2 = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(7))
    assert z2.dtype == torch.float32
    torch.testing.assert_close(z2, mu.float() + torch.exp(logvar.float() / 2) * eps2)


def test_the_same_seed_gives_the_same_codes_and_another_seed_others():
    mu, logvar = gaussian_params(5, 2)
    a = reparameterise(mu, logvar, torch.Generator().manual_seed(3), samples=4)
    b = reparameterise(mu, logvar, torch.Generator().manual_seed(3), samples=4)
    c = reparameterise(mu, logvar, torch.Generator().manual_seed(4), samples=4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a[0], a[1])  # the k draws are independent


def test_gradients_flow_to_mu_and_logvar():
    mu, logvar = (t.requires_grad_() for t in gaussian_params(3, 2))
    z = reparameterise(mu, logvar, torch.Generator().manual_seed(5), samples=6)
    z.sum().backward()
    eps = torch.randn(6, 3, 2, generator=torch.Generator().manual_seed(5), dtype=DT)
    torch.testing.assert_close(mu.grad, torch.full_like(mu, 6.0))  # dz/dmu = 1 per draw
    torch.testing.assert_close(logvar.grad, (0.5 * torch.exp(logvar / 2) * eps).sum(0).detach())


def test_reparameterise_rejects_bad_arguments():
    mu, logvar = gaussian_params(3, 2)
    with pytest.raises(GanforgeError, match="samples"):
        reparameterise(mu, logvar, samples=0)
    with pytest.raises(GanforgeError, match="differ in shape"):
        reparameterise(mu, logvar[:, :1])


# --------------------------------------------------------------------------- KL and log-densities


def test_kl_matches_torch_distributions():
    mu, logvar = gaussian_params(6, 5)
    q, p = Normal(mu, torch.exp(logvar / 2)), Normal(torch.zeros_like(mu), torch.ones_like(mu))
    kl = kl_standard_normal(mu, logvar)
    assert kl.shape == (6,)
    torch.testing.assert_close(kl, kl_divergence(q, p).sum(-1), rtol=0, atol=1e-5)
    assert torch.all(kl >= 0)
    assert kl_standard_normal(torch.zeros(2, 4), torch.zeros(2, 4)).abs().max() == 0


def test_kl_matches_a_monte_carlo_estimate():
    mu = torch.tensor([0.7, -1.2, 0.1], dtype=DT)
    logvar = torch.tensor([-0.5, 0.6, -1.5], dtype=DT)
    q, p = Normal(mu, torch.exp(logvar / 2)), Normal(0.0, 1.0)
    z = q.sample((200_000,))
    log_ratio = (q.log_prob(z) - p.log_prob(z)).sum(-1)
    standard_error = log_ratio.std() / math.sqrt(len(log_ratio))
    assert abs(kl_standard_normal(mu, logvar).item() - log_ratio.mean().item()) < 4 * standard_error


def test_log_normal_standard_matches_scipy():
    z = torch.randn(7, 4, dtype=DT)
    expected = multivariate_normal(np.zeros(4), np.eye(4)).logpdf(z.numpy())
    np.testing.assert_allclose(log_normal_standard(z).numpy(), expected, rtol=1e-12)


def test_log_normal_diag_matches_scipy_and_broadcasts_over_samples():
    mu, logvar = gaussian_params(3, 4)
    z = torch.randn(5, 3, 4, dtype=DT)  # 5 samples for each of 3 rows
    got = log_normal_diag(z, mu, logvar)
    assert got.shape == (5, 3)
    for i in range(3):
        ref = multivariate_normal(mu[i].numpy(), np.diag(torch.exp(logvar[i]).numpy()))
        np.testing.assert_allclose(got[:, i].numpy(), ref.logpdf(z[:, i].numpy()), rtol=1e-12)
    torch.testing.assert_close(log_normal_diag(z, torch.zeros(4, dtype=DT), torch.zeros(4, dtype=DT)),
                               log_normal_standard(z))


# --------------------------------------------------------------------------- data likelihoods


def test_bernoulli_log_likelihood_matches_torch_distributions():
    logits = 3 * torch.randn(4, 1, 5, 5, dtype=DT)
    x = torch.bernoulli(torch.full((4, 1, 5, 5), 0.5, dtype=DT))
    expected = Bernoulli(logits=logits).log_prob(x).sum((1, 2, 3))
    got = bernoulli_log_likelihood(logits, x)
    assert got.shape == (4,)
    torch.testing.assert_close(got, expected)


def test_bernoulli_log_likelihood_broadcasts_over_a_leading_sample_axis():
    logits = torch.randn(3, 4, 2, 6, dtype=DT)
    x = torch.bernoulli(torch.full((4, 2, 6), 0.3, dtype=DT))
    got = bernoulli_log_likelihood(logits, x)
    assert got.shape == (3, 4)
    torch.testing.assert_close(got, Bernoulli(logits=logits).log_prob(x.expand_as(logits)).sum((2, 3)))


def test_bernoulli_log_likelihood_is_stable_for_extreme_logits():
    logits = torch.tensor([[200.0, -200.0, 200.0]])
    x = torch.tensor([[1.0, 0.0, 0.0]])
    got = bernoulli_log_likelihood(logits, x)
    assert torch.isfinite(got).all()
    assert got.item() == pytest.approx(-200.0)  # only the wrong pixel costs log(1 - sigmoid(200))


def test_bernoulli_log_likelihood_refuses_data_outside_unit_interval_and_bad_shapes():
    with pytest.raises(GanforgeError, match=r"\(x \+ 1\) / 2"):
        bernoulli_log_likelihood(torch.zeros(2, 3), torch.tensor([[-1.0, 1.0, 1.0]] * 2))
    with pytest.raises(GanforgeError, match="do not match"):
        bernoulli_log_likelihood(torch.zeros(2, 3, 1), torch.ones(2, 3, 4))


def test_gaussian_log_likelihood_matches_torch_distributions_with_per_pixel_logvar():
    x = torch.randn(4, 2, 3, 3, dtype=DT)
    mean = torch.randn(4, 2, 3, 3, dtype=DT)
    logvar = torch.randn(2, 3, 3, dtype=DT)  # one learned log-variance per pixel
    got = gaussian_log_likelihood(x, mean, logvar)
    assert got.shape == (4,)
    torch.testing.assert_close(got, Normal(mean, torch.exp(logvar / 2)).log_prob(x).sum((1, 2, 3)))


def test_gaussian_log_likelihood_broadcasts_over_a_leading_sample_axis():
    x = torch.randn(4, 6, dtype=DT)
    mean = torch.randn(5, 4, 6, dtype=DT)
    logvar = torch.randn(6, dtype=DT)
    got = gaussian_log_likelihood(x, mean, logvar)
    assert got.shape == (5, 4)
    torch.testing.assert_close(got, Normal(mean, torch.exp(logvar / 2)).log_prob(x).sum(-1))
    with pytest.raises(GanforgeError, match="do not match"):
        gaussian_log_likelihood(x, mean[..., :1], logvar)


# --------------------------------------------------------------------------- the IWAE bound


def test_iwae_bound_is_log_mean_exp_in_float64():
    log_w = torch.randn(7, 5, dtype=DT) * 300 - 1000  # far outside exp's range
    expected = logsumexp(log_w.numpy(), axis=0) - np.log(7)
    got = iwae_bound(log_w)
    assert got.shape == (5,)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    torch.testing.assert_close(iwae_bound(log_w[:1]), log_w[0])  # k = 1: the single log weight
    with pytest.raises(GanforgeError, match="sample axis"):
        iwae_bound(torch.empty(0, 3))


# A linear-Gaussian model: z ~ N(0, 1), x|z ~ N(z, S^2), so p(x) = N(0, 1 + S^2) and the exact
# posterior is N(x / (1 + S^2), S^2 / (1 + S^2)). q deliberately shifts and widens it.
S = 0.5
X = torch.tensor([-1.5, -0.3, 0.4, 1.1, 2.0], dtype=DT).unsqueeze(1)  # (N, 1)
POST_MEAN, POST_VAR = X / (1 + S**2), torch.full_like(X, S**2 / (1 + S**2))
Q_MU, Q_LOGVAR = POST_MEAN + 0.3, torch.log(POST_VAR * 1.6)
LOG_PX = Normal(0.0, math.sqrt(1 + S**2)).log_prob(X.squeeze(1))
# ELBO = log p(x) - KL(q || posterior), in closed form
ELBO = LOG_PX - kl_divergence(Normal(Q_MU, torch.exp(Q_LOGVAR / 2)),
                              Normal(POST_MEAN, POST_VAR.sqrt())).squeeze(1)


def toy_log_weights(k: int, repeats: int, seed: int) -> torch.Tensor:
    """log w = log p(x|z) + log p(z) - log q(z|x) for z ~ q, shape (k, repeats, N)."""
    mu, logvar = Q_MU.expand(repeats, -1, -1), Q_LOGVAR.expand(repeats, -1, -1)  # (R, N, 1)
    z = reparameterise(mu.reshape(-1, 1), logvar.reshape(-1, 1), torch.Generator().manual_seed(seed),
                       samples=k)  # (k, R * N, 1)
    x = X.repeat(repeats, 1)
    log_w = (gaussian_log_likelihood(x, z, torch.tensor(2 * math.log(S), dtype=DT))
             + log_normal_standard(z) - log_normal_diag(z, mu.reshape(-1, 1), logvar.reshape(-1, 1)))
    return log_w.reshape(k, repeats, -1)


def test_toy_log_weights_average_to_the_closed_form_elbo():
    log_w = toy_log_weights(1, 40_000, seed=0).squeeze(0)  # (R, N)
    standard_error = log_w.std(0) / math.sqrt(log_w.shape[0])
    assert torch.all((log_w.mean(0) - ELBO).abs() < 4 * standard_error)
    assert torch.all(ELBO < LOG_PX - 0.05)  # q is visibly imperfect


def test_iwae_tightens_from_the_elbo_towards_log_px_as_k_grows():
    repeats, means, errors = 2000, {}, {}
    for k in (1, 5, 50):
        log_w = toy_log_weights(k, repeats, seed=k).flatten(1)  # (k, R * N)
        bound = iwae_bound(log_w)
        # with the same samples, log-mean-exp >= the mean of the logs (Jensen), draw by draw
        assert torch.all(bound >= log_w.mean(0) - 1e-12)
        bound = bound.reshape(repeats, -1)  # (R, N)
        means[k], errors[k] = bound.mean(0), bound.std(0) / math.sqrt(repeats)
    assert torch.all((means[1] - ELBO).abs() < 4 * errors[1])  # E[L_1] is the ELBO
    assert means[1].mean() < means[5].mean() < means[50].mean()  # on average over x and draws
    assert torch.all(means[5] > means[1]) and torch.all(means[5] < LOG_PX)
    assert torch.all(means[50] < LOG_PX + 4 * errors[50])
    assert torch.all(means[50] - ELBO > 0.9 * (LOG_PX - ELBO))  # closes most of the gap


def test_iwae_with_many_samples_reaches_log_px():
    repeats = 16
    bound = iwae_bound(toy_log_weights(5000, repeats, seed=11).flatten(1)).reshape(repeats, -1)
    assert torch.all((bound.mean(0) - LOG_PX).abs() < 0.01)


# --------------------------------------------------------------------------- KL warm-up


def test_kl_warmup_weight_rises_linearly_to_one():
    assert [kl_warmup_weight(t, 4) for t in (0, 1, 2, 4, 10)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    assert kl_warmup_weight(0, 0) == 1.0 and kl_warmup_weight(7, 0) == 1.0
    assert kl_warmup_weight(np.int64(3), np.int64(6)) == 0.5


@pytest.mark.parametrize("step, warmup", [(-1, 10), (1.5, 10), (True, 10), (0, -3), (0, 2.0)])
def test_kl_warmup_weight_rejects_bad_arguments(step, warmup):
    with pytest.raises(GanforgeError):
        kl_warmup_weight(step, warmup)
