"""StackGAN's networks: shapes and gradients of every module, the conditioning augmentation's KL
against the closed form and torch.distributions, the builder's one-line errors."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from ganforge.errors import GanforgeError
from ganforge.models.base import MODELS
from ganforge.models.stackgan import (
    ConditioningAugmentation,
    MatchingDiscriminator,
    ResidualBlock,
    StackGenerator,
    Stage1Generator,
    Stage2Generator,
    build_stackgan,
)

E = 12


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def _nets(**kw):
    sizes = dict(text_dim=E, z_dim=8, c_dim=6, code_dim=5, g1_width=8, d1_width=8, g2_width=8,
                 d2_width=8, residual_blocks=1)
    sizes.update(kw)
    return build_stackgan((1, 32, 32), **sizes)


def _grads_everywhere(module: torch.nn.Module) -> None:
    for name, p in module.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_conditioning_augmentation_shapes_noise_and_gradients():
    ca = ConditioningAugmentation(E, 4)
    assert abs(ca.fc.weight.std().item() - 0.5) < 0.15  # the text visible from the start
    e = torch.randn(5, E)
    c, mu, logvar = ca(e, torch.Generator().manual_seed(1))
    assert c.shape == mu.shape == logvar.shape == (5, 4)
    again, _, _ = ca(e, torch.Generator().manual_seed(1))
    assert torch.equal(c, again)  # eps comes from the passed generator
    mean_only, _, _ = ca(e, sample=False)
    assert torch.equal(mean_only, mu)
    eps = (c - mu) / torch.exp(0.5 * logvar)  # c = mu + sigma * eps
    expected = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(eps, expected, atol=1e-5)
    (c.sum() + ca.kl(mu, logvar).sum()).backward()
    _grads_everywhere(ca)


def test_ca_kl_matches_the_closed_form_and_torch_distributions():
    mu, logvar = torch.randn(7, 4, dtype=torch.float64), torch.randn(7, 4, dtype=torch.float64)
    kl = ConditioningAugmentation.kl(mu, logvar)
    sigma2 = logvar.exp()
    closed = 0.5 * (mu ** 2 + sigma2 - 1 - torch.log(sigma2)).sum(1)
    reference = kl_divergence(Normal(mu, sigma2.sqrt()), Normal(torch.zeros_like(mu),
                                                                 torch.ones_like(mu))).sum(1)
    assert torch.allclose(kl, closed) and torch.allclose(kl, reference)
    assert torch.allclose(ConditioningAugmentation.kl(torch.zeros(3, 4), torch.zeros(3, 4)), torch.zeros(3))


def test_stage_generators_and_discriminators_shapes_and_gradients():
    G, D1, D2 = _nets()
    z, e = torch.randn(4, 8), torch.randn(4, E)
    low, mu, logvar = G.stage1(z, e)
    assert low.shape == (4, 1, 16, 16) and mu.shape == logvar.shape == (4, 6)
    assert low.abs().max() <= 1
    high, mu2, _ = G.stage2(low, e)
    assert high.shape == (4, 1, 32, 32) and mu2.shape == (4, 6)
    s1, s2 = D1(low, e), D2(high, e)
    assert s1.shape == s2.shape == (4,)
    (s1.sum() + s2.sum() + mu.sum() + logvar.sum() + mu2.sum()).backward()
    for net in (G.stage1, G.stage2, D1, D2):
        _grads_everywhere(net)


def test_discriminator_reads_the_text():
    D = MatchingDiscriminator((1, 16, 16), E, 5, 8).eval()
    x = torch.randn(3, 1, 16, 16)
    assert not torch.allclose(D(x, torch.randn(3, E)), D(x, torch.randn(3, E)))
    assert D.features(x).shape == (3, D.feature_dim, 4, 4)


def test_residual_block_keeps_shape_and_passes_gradient():
    block = ResidualBlock(6)
    x = torch.randn(2, 6, 8, 8, requires_grad=True)
    out = block(x)
    assert out.shape == x.shape and (out >= 0).all()
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_stack_generator_outputs_full_size_before_and_after_stage_two():
    G, _, _ = _nets()
    G.eval()
    e = torch.randn(5, E)
    before = G.sample(5, torch.Generator().manual_seed(0), e, batch_size=2)
    low, _ = G.stages(G.sample_z(5, torch.Generator().manual_seed(0)), e,
                      torch.Generator().manual_seed(0).manual_seed(0))
    assert before.shape == (5, 1, 32, 32)
    # before stage II: stage I up-sampled by nearest neighbour (every 2x2 block constant)
    assert torch.equal(before[..., ::2, ::2], before[..., 1::2, 1::2])
    G.stage2_active.fill_(True)
    after = G.sample(5, torch.Generator().manual_seed(0), e, batch_size=5)
    assert after.shape == (5, 1, 32, 32) and not torch.equal(after[..., ::2, ::2], after[..., 1::2, 1::2])
    assert "stage2_active" in G.state_dict()
    assert low.shape == (5, 1, 16, 16)
    with pytest.raises(GanforgeError, match="text embeddings"):
        G.sample(5, None, torch.arange(5))


def test_registered_builder_and_errors():
    G, D1, D2 = MODELS.build({"name": "stackgan", "text_dim": E, "g1_width": 4}, (1, 32, 32), 10)
    assert isinstance(G, StackGenerator) and isinstance(G.stage1, Stage1Generator)
    assert isinstance(G.stage2, Stage2Generator) and D1.in_shape == (1, 16, 16) and D2.in_shape == (1, 32, 32)
    G28, D1_28, D2_28 = build_stackgan((1, 28, 28), g1_width=4, d1_width=4, g2_width=4, d2_width=4)
    e = torch.randn(2, 64)
    low, high = G28.stages(torch.randn(2, 64), e)
    assert low.shape == (2, 1, 14, 14) and high.shape == (2, 1, 28, 28)
    assert D1_28(low, e).shape == D2_28(high, e).shape == (2,)
    with pytest.raises(GanforgeError, match="divisible by 4"):
        build_stackgan((1, 30, 30))
    with pytest.raises(GanforgeError, match="square images"):
        build_stackgan((2,))
    with pytest.raises(GanforgeError, match="g2_width"):
        build_stackgan((1, 32, 32), g2_width=0)
    with pytest.raises(GanforgeError, match="residual_blocks"):
        build_stackgan((1, 32, 32), residual_blocks=-1)
    with pytest.raises(GanforgeError, match="unknown key"):
        MODELS.build({"name": "stackgan", "widht": 3}, (1, 32, 32), 10)


def test_every_layer_conditioning_projection_and_class_head():
    G, D1, D2 = MODELS.build({"name": "stackgan", "text_dim": 12, "z_dim": 8, "c_dim": 6, "code_dim": 6,
                              "g1_width": 8, "d1_width": 8, "g2_width": 8, "d2_width": 8,
                              "condition_every_layer": True, "projection": True, "class_head": True},
                             (1, 32, 32), 10)
    gen = torch.Generator().manual_seed(0)
    z, text = torch.randn(4, 8, generator=gen), torch.randn(4, 12, generator=gen)
    G.eval()
    low = G.stage1(z, text, torch.Generator().manual_seed(1))[0]
    other = G.stage1(z, -text, torch.Generator().manual_seed(1))[0]
    assert low.shape == (4, 1, 16, 16) and not torch.allclose(low, other)
    # every up-sampling block reads the code: its first conv has c_dim extra input channels
    assert all(up[1].in_channels % 2 == 0 and up[1].in_channels - 6 in (8, 16, 32) for up in G.stage1.ups)
    logit, classes = D1.scores(low, text)
    assert logit.shape == (4,) and classes.shape == (4, 10)
    assert torch.equal(D1(low, text), logit)
    # the projection term is <pooled features, W e>: zeroing W removes exactly that term
    h = D1.features(low).sum(dim=(2, 3))
    projection = (h * D1.embed(text)).sum(dim=1)
    with torch.no_grad():
        D1.embed.weight.zero_()
    assert torch.allclose(D1(low, text), logit - projection, atol=1e-5)
    (logit.sum() + classes.sum()).backward()
    assert D1.classify.weight.grad is not None and D1.trunk[0][0].weight.grad.abs().sum() > 0


def test_class_head_needs_classes():
    with pytest.raises(GanforgeError, match="class_head"):
        MODELS.build({"name": "stackgan", "class_head": True}, (1, 32, 32), None)
