"""The VAE family: shapes, the decoder's scales and likelihoods against torch.distributions,
gradients through the ELBO, argument checks, the Generator interface and a small learning check."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Bernoulli, Normal

from ganforge.errors import GanforgeError
from ganforge.maths import (
    iwae_bound,
    kl_standard_normal,
    log_normal_diag,
    log_normal_standard,
    reparameterise,
)
from ganforge.models import MODELS, Generator
from ganforge.models.vae import MIN_LOGVAR, Decoder, Encoder

FAMILIES = ("vae-mlp", "vae-conv")
SMALL = {"vae-mlp": {"hidden": [32, 16]}, "vae-conv": {"hidden": [4, 8]}}


def build(name: str, shape: tuple[int, ...], **kwargs) -> tuple[Encoder, Decoder]:
    return MODELS.get(name)(shape, **kwargs)


def binary_images(n: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Data in {0, 1}, as the Bernoulli likelihood reads it."""
    return torch.bernoulli(torch.full((n, *shape), 0.4))


def elbo(encoder: Encoder, decoder: Decoder, x01: torch.Tensor, x_in: torch.Tensor) -> torch.Tensor:
    """One-sample ELBO per datum, log p(x|z) - KL(q(z|x) || N(0, I)); x_in is the encoder's input."""
    mu, logvar = encoder(x_in)
    z = reparameterise(mu, logvar, torch.Generator().manual_seed(0))
    return decoder.log_likelihood(x01, z) - kl_standard_normal(mu, logvar)


def test_both_families_are_registered():
    for name in FAMILIES:
        assert callable(MODELS.get(name))
    assert {"vae-mlp", "vae-conv"} <= set(MODELS.names())


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 32, 32), (3, 32, 32)])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_shapes(name, shape, likelihood):
    encoder, decoder = build(name, shape, z_dim=6, likelihood=likelihood, **SMALL[name])
    assert isinstance(encoder, Encoder) and isinstance(decoder, Decoder) and isinstance(decoder, Generator)
    assert encoder.z_dim == decoder.z_dim == 6 and decoder.out_shape == shape
    assert decoder.likelihood == likelihood
    x = torch.rand(5, *shape)
    mu, logvar = encoder(2 * x - 1)
    assert mu.shape == logvar.shape == (5, 6)
    assert decoder(mu).shape == (5, *shape)
    z = torch.randn(3, 5, 6)  # k = 3 codes per datum
    params = decoder.params(z)
    if likelihood == "bernoulli":
        assert set(params) == {"logits"} and params["logits"].shape == (3, 5, *shape)
        x = x.round()
    else:
        assert set(params) == {"mean", "logvar"} and params["mean"].shape == (3, 5, *shape)
        assert params["logvar"].shape == shape
        x = 2 * x - 1
    assert decoder.log_likelihood(x, mu).shape == (5,)
    assert decoder.log_likelihood(x, z).shape == (3, 5)


def test_default_architectures():
    encoder, decoder = build("vae-mlp", (1, 28, 28))
    dims = [(m.in_features, m.out_features) for m in [*encoder.modules(), *decoder.modules()]
            if isinstance(m, nn.Linear)]
    assert dims == [(784, 512), (512, 256), (256, 32), (256, 32), (32, 256), (256, 512), (512, 784)]
    encoder, decoder = build("vae-conv", (1, 28, 28))
    convs = [(m.in_channels, m.out_channels) for m in encoder.modules() if isinstance(m, nn.Conv2d)]
    deconvs = [(m.in_channels, m.out_channels) for m in decoder.modules()
               if isinstance(m, nn.ConvTranspose2d)]
    assert convs == [(1, 32), (32, 64)] and deconvs == [(64, 32), (32, 1)]
    assert encoder.mu_head.in_features == 64 * 7 * 7


def test_three_conv_stages_need_a_side_divisible_by_8():
    encoder, decoder = build("vae-conv", (2, 32, 32), z_dim=3, hidden=[4, 4, 8])
    assert decoder(encoder(torch.randn(2, 2, 32, 32))[0]).shape == (2, 2, 32, 32)
    with pytest.raises(GanforgeError, match="divisible by 8"):
        build("vae-conv", (1, 28, 28), hidden=[4, 4, 8])


def test_mlp_models_points():
    encoder, decoder = build("vae-mlp", (2,), z_dim=2, hidden=[8], likelihood="gaussian")
    with torch.no_grad():
        decoder.body[-2].bias.fill_(5.0)  # the last Linear; points are not clamped to [-1, 1]
    assert decoder(torch.randn(4, 2)).min() > 1
    assert decoder.log_likelihood(torch.randn(4, 2), encoder(torch.randn(4, 2))[0]).shape == (4,)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_decoder_forward_is_the_mean_image_in_minus_one_one(name, likelihood):
    _, decoder = build(name, (1, 28, 28), z_dim=4, likelihood=likelihood, **SMALL[name])
    z = 50 * torch.randn(16, 4)  # push the raw outputs far past the range
    with torch.no_grad():
        x = decoder(z)
        params = decoder.params(z)
    assert x.min() >= -1 and x.max() <= 1 and x.abs().max() > 0.99
    if likelihood == "bernoulli":
        torch.testing.assert_close(x, 2 * torch.sigmoid(params["logits"]) - 1)
    else:
        torch.testing.assert_close(x, params["mean"].clamp(-1, 1))


def test_bernoulli_log_likelihood_matches_torch_distributions():
    _, decoder = build("vae-conv", (1, 28, 28), z_dim=4, **SMALL["vae-conv"])
    x, z = binary_images(5, (1, 28, 28)), torch.randn(2, 5, 4)
    logits = decoder.params(z)["logits"]
    expected = Bernoulli(logits=logits).log_prob(x.expand_as(logits)).sum((2, 3, 4))
    torch.testing.assert_close(decoder.log_likelihood(x, z), expected)
    torch.testing.assert_close(decoder.log_likelihood(x, {"logits": logits}), expected)


def test_gaussian_log_likelihood_matches_torch_distributions_on_the_minus_one_one_scale():
    _, decoder = build("vae-mlp", (1, 8, 8), z_dim=3, likelihood="gaussian", **SMALL["vae-mlp"])
    with torch.no_grad():
        decoder.logvar_raw.add_(torch.randn(1, 8, 8))  # a different variance per pixel
    x, z = 2 * torch.rand(4, 1, 8, 8) - 1, torch.randn(4, 3)
    p = decoder.params(z)
    expected = Normal(p["mean"], torch.exp(p["logvar"] / 2)).log_prob(x).sum((1, 2, 3))
    torch.testing.assert_close(decoder.log_likelihood(x, z), expected)


def test_gaussian_logvar_starts_at_zero_and_is_bounded_below():
    _, decoder = build("vae-mlp", (3, 4, 4), likelihood="gaussian", **SMALL["vae-mlp"])
    assert isinstance(decoder.logvar_raw, nn.Parameter) and decoder.logvar_raw.shape == (3, 4, 4)
    torch.testing.assert_close(decoder.logvar, torch.zeros(3, 4, 4))
    with torch.no_grad():
        decoder.logvar_raw.fill_(-1e4)
    logvar = decoder.logvar
    assert torch.all(logvar >= MIN_LOGVAR) and torch.all(logvar < MIN_LOGVAR + 1e-3)
    with torch.no_grad():
        decoder.logvar_raw.fill_(3.0)
    torch.testing.assert_close(decoder.logvar, torch.full((3, 4, 4), 3.0), atol=1e-3, rtol=0)
    x = 2 * torch.rand(2, 3, 4, 4) - 1
    assert torch.isfinite(decoder.log_likelihood(x, torch.randn(2, 32))).all()


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_gradients_reach_every_parameter_through_the_elbo(name, likelihood):
    encoder, decoder = build(name, (1, 28, 28), z_dim=4, likelihood=likelihood, **SMALL[name])
    x01 = binary_images(6, (1, 28, 28))
    x_model = 2 * x01 - 1
    target = x01 if likelihood == "bernoulli" else x_model
    (-elbo(encoder, decoder, target, x_model).mean()).backward()
    for module in (encoder, decoder):
        for pname, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, pname


def test_decoder_works_as_a_ganforge_generator():
    _, decoder = build("vae-mlp", (1, 8, 8), z_dim=3, **SMALL["vae-mlp"])
    z = decoder.sample_z(5, torch.Generator().manual_seed(1), "cpu")
    torch.testing.assert_close(z, torch.randn(5, 3, generator=torch.Generator().manual_seed(1)))
    samples = decoder.sample(7, torch.Generator().manual_seed(2), batch_size=3)
    assert samples.shape == (7, 1, 8, 8) and samples.abs().max() <= 1
    assert torch.equal(samples, decoder.sample(7, torch.Generator().manual_seed(2), batch_size=3))
    assert not torch.equal(samples, decoder.sample(7, torch.Generator().manual_seed(3), batch_size=3))


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("kwargs, match", [
    ({"z_dim": 0}, "z_dim"),
    ({"z_dim": True}, "z_dim"),
    ({"hidden": "64"}, "hidden"),
    ({"hidden": [32, -1]}, "hidden"),
    ({"likelihood": "poisson"}, "likelihood"),
])
def test_bad_arguments_are_one_line_errors(name, kwargs, match):
    with pytest.raises(GanforgeError, match=match) as err:
        build(name, (1, 28, 28), **kwargs)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name, shape, match", [
    ("vae-conv", (1, 30, 30), "divisible by 4"),
    ("vae-conv", (1, 28, 32), "square"),
    ("vae-conv", (2,), "images"),
    ("vae-mlp", (1, 28), "shape"),
    ("vae-mlp", (0, 28, 28), "shape"),
])
def test_unsupported_sample_shapes_are_one_line_errors(name, shape, match):
    with pytest.raises(GanforgeError, match=match) as err:
        build(name, shape)
    assert "\n" not in str(err.value)


def test_a_conv_vae_needs_at_least_one_conv_layer():
    with pytest.raises(GanforgeError, match="conv layers"):
        build("vae-conv", (1, 28, 28), hidden=[])


def test_log_likelihood_refuses_data_of_the_wrong_shape_or_scale():
    _, decoder = build("vae-mlp", (1, 8, 8), z_dim=3, **SMALL["vae-mlp"])
    with pytest.raises(GanforgeError, match="does not fit"):
        decoder.log_likelihood(torch.zeros(4, 64), torch.randn(4, 3))
    with pytest.raises(GanforgeError, match=r"\[0, 1\]"):  # images on [-1, 1] given to Bernoulli
        decoder.log_likelihood(2 * binary_images(4, (1, 8, 8)) - 1, torch.randn(4, 3))


def test_a_small_vae_learns_four_binary_patterns():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        patterns = torch.zeros(4, 1, 8, 8)
        patterns[0, :, :4] = 1                       # top half
        patterns[1, :, :, :4] = 1                    # left half
        patterns[2, :, ::2] = 1                      # stripes
        patterns[3] = (torch.arange(8)[:, None] + torch.arange(8)) % 2 == 0  # checkerboard
        data = patterns.repeat(16, 1, 1, 1)          # 64 images in {0, 1}
        encoder, decoder = build("vae-mlp", (1, 8, 8), z_dim=2, hidden=[64, 32])
        optimiser = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=3e-3)

        def loss(generator: torch.Generator) -> torch.Tensor:
            mu, logvar = encoder(2 * data - 1)
            z = reparameterise(mu, logvar, generator)
            return -(decoder.log_likelihood(data, z) - kl_standard_normal(mu, logvar)).mean()

        with torch.no_grad():
            before = loss(torch.Generator().manual_seed(1)).item()
        g = torch.Generator().manual_seed(2)
        for _ in range(300):
            optimiser.zero_grad()
            loss(g).backward()
            optimiser.step()
        with torch.no_grad():
            after = loss(torch.Generator().manual_seed(1)).item()
            recon = decoder(encoder(2 * patterns - 1)[0])  # the means of the codes
        assert before > 40  # ~ 64 log 2 at initialisation
        assert after < 0.25 * before, (before, after)
        # -ELBO >= -log p(x) on average, and the mean of -log p(x) over 4 equally likely patterns
        # is at least their entropy log 4: a learning check that beats it is measuring a bug
        assert after > math.log(4), (before, after)
        assert F.mse_loss(recon, 2 * patterns - 1) < 0.05  # each pattern is reconstructed
    finally:
        torch.set_num_threads(threads)


def test_importance_weights_assemble_from_the_decoder_and_encoder():
    encoder, decoder = build("vae-conv", (1, 28, 28), z_dim=4, **SMALL["vae-conv"])
    x = binary_images(3, (1, 28, 28))
    mu, logvar = encoder(2 * x - 1)
    z = reparameterise(mu, logvar, torch.Generator().manual_seed(0), samples=10)  # (k, N, z_dim)
    log_w = decoder.log_likelihood(x, z) + log_normal_standard(z) - log_normal_diag(z, mu, logvar)
    assert log_w.shape == (10, 3)
    bound = iwae_bound(log_w)
    assert bound.shape == (3,) and torch.all(bound >= log_w.mean(0))
    # the k weights' mean is an unbiased estimate of the ELBO: one draw's per-sample terms agree
    q = Normal(mu, torch.exp(logvar / 2))
    expected = (decoder.log_likelihood(x, z[0]) + Normal(0.0, 1.0).log_prob(z[0]).sum(-1)
                - q.log_prob(z[0]).sum(-1))
    torch.testing.assert_close(log_w[0], expected)
