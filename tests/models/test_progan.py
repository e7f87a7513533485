"""ProGAN's networks: shapes at every level, the fade-in equations (alpha = 0 is exactly the old
network), equalised lr on every layer, pixel norm after every G conv, minibatch stddev in D,
gradients, the growth strip and the one-line errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.models import build
from ganforge.models.equalized import EqualConv2d, EqualLinear, PixelNorm
from ganforge.models.layers import MinibatchStdDev
from ganforge.models.progan import (
    ProGANDiscriminator,
    ProGANGenerator,
    _ConvAct,
    channel_schedule,
    progan_growth_strip,
)

SHAPE = (1, 32, 32)


@pytest.fixture
def pair() -> tuple[ProGANGenerator, ProGANDiscriminator]:
    G, D = build({"name": "progan", "z_dim": 8, "width": 4, "max_width": 8}, SHAPE)
    return G, D


def up(x: torch.Tensor, factor: int) -> torch.Tensor:
    """An independent nearest upsampling (torch's interpolate)."""
    return F.interpolate(x, scale_factor=factor, mode="nearest")


def test_channel_schedule_doubles_as_the_resolution_halves_up_to_the_cap():
    assert channel_schedule(32, 4, 8) == [8, 8, 8, 4]  # 4, 8, 16, 32 px
    assert channel_schedule(32, 16, 1000) == [128, 64, 32, 16]
    assert channel_schedule(4, 3, 8) == [3]


def test_shapes_at_every_level_and_alpha(pair):
    G, D = pair
    assert (G.levels, G.growth, D.growth) == (4, (3, 1.0), (3, 1.0))  # built at full size
    z = torch.randn(4, 8)
    for level in range(4):
        for alpha in (0.0, 0.4, 1.0):
            G.set_growth(level, alpha)
            D.set_growth(level, alpha)
            r = 4 << level
            assert G.resolution == D.resolution == r
            assert G.synthesize(z).shape == (4, 1, r, r)
            x = G(z)
            assert x.shape == (4, *SHAPE)
            assert torch.equal(x, up(G.synthesize(z), 32 // r))  # full size = nearest-upsampled
            out = D.evaluate(x)
            assert out.logits.shape == (4,) and out.features.shape == (4, D.feature_dim)
            torch.testing.assert_close(out.logits, D.score(F.avg_pool2d(x, 32 // r)))


@pytest.mark.parametrize("level", [1, 2, 3])
def test_g_at_alpha_0_equals_the_upsampled_old_output(pair, level):
    G, _ = pair
    z = torch.randn(5, 8)
    G.set_growth(level - 1, 1.0)
    old = G.synthesize(z)
    G.set_growth(level, 0.0)
    assert torch.equal(G.synthesize(z), up(old, 2))
    assert torch.equal(G(z), up(old, 2 ** (4 - level)))


def test_g_fade_blends_upsampled_old_rgb_and_new_block(pair):
    G, _ = pair
    z = torch.randn(3, 8)
    G.set_growth(2, 0.3)
    with torch.no_grad():
        h = G.blocks[1](G.blocks[0](z))
        old = up(G.to_rgb[1](h), 2)
        new = G.to_rgb[2](G.blocks[2](h))
        torch.testing.assert_close(G.synthesize(z), 0.7 * old + 0.3 * new)
        G.set_growth(2, 1.0)
        torch.testing.assert_close(G.synthesize(z), new)


@pytest.mark.parametrize("level", [1, 2, 3])
def test_d_at_alpha_0_equals_the_old_d_on_the_pooled_input(pair, level):
    _, D = pair
    r = 4 << level
    x = torch.randn(8, 1, r, r)
    D.set_growth(level - 1, 1.0)
    old = D.score(F.avg_pool2d(x, 2))
    D.set_growth(level, 0.0)
    assert torch.equal(D.score(x), old)


def test_d_fade_blends_old_from_rgb_of_pooled_input_and_new_block(pair):
    _, D = pair
    x = torch.randn(4, 1, 16, 16)
    D.set_growth(2, 0.25)
    with torch.no_grad():
        old = F.leaky_relu(D.from_rgb[1](F.avg_pool2d(x, 2)), 0.2)
        new = D.blocks[2](F.leaky_relu(D.from_rgb[2](x), 0.2))
        h = D.blocks[0](D.blocks[1](0.75 * old + 0.25 * new))
        torch.testing.assert_close(D.score(x), D.head(h).squeeze(1))


def test_every_weight_layer_has_an_equalised_learning_rate(pair):
    for net in pair:
        layers = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
        assert layers == []
        assert sum(isinstance(m, (EqualConv2d, EqualLinear)) for m in net.modules()) > 0
        assert not any(isinstance(m, (nn.BatchNorm2d, nn.Tanh)) for m in net.modules())
    G, D = pair
    # toRGB is linear (gain 1, no activation); D's head likewise
    assert all(m.kernel_size == 1 and m.scale == pytest.approx(1 / m.in_channels ** 0.5) for m in G.to_rgb)
    assert D.head.scale == pytest.approx(1 / D.feature_dim ** 0.5)


def test_pixel_norm_after_every_g_conv_and_on_z(pair):
    G, _ = pair
    rms = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: rms.append(out.pow(2).mean(1).sqrt()))
             for m in G.modules() if isinstance(m, _ConvAct)]
    G(torch.randn(3, 8) * 5)
    for hook in hooks:
        hook.remove()
    assert len(rms) == 1 + 2 * 3  # the 4x4 conv and two per later block
    for r in rms:
        torch.testing.assert_close(r, torch.ones_like(r), atol=1e-4, rtol=0)
    # z is normalised: its scale does not matter
    z = torch.randn(3, 8)
    torch.testing.assert_close(G(z), G(7 * z), atol=1e-5, rtol=1e-4)
    G2, _ = build({"name": "progan", "z_dim": 8, "width": 4, "max_width": 8, "pixel_norm": False}, SHAPE)
    assert not any(isinstance(m, PixelNorm) for m in G2.modules())


def test_outputs_are_unbounded(pair):
    G, _ = pair
    with torch.no_grad():
        for m in G.to_rgb:
            m.bias.fill_(3.0)
    assert G(torch.randn(2, 8)).min() > 1.0


def test_minibatch_stddev_sits_before_ds_last_block(pair):
    _, D = pair
    assert isinstance(D.blocks[0].mbstd, MinibatchStdDev) and D.blocks[0].mbstd.group_size == 4
    assert D.blocks[0].conv.in_channels == D.feature_dim + 1
    x = torch.randn(4, *SHAPE)
    changed = x.clone()
    changed[3] += 1.0
    # the batch statistic couples the samples of a group: sample 0's score moves with sample 3
    assert not torch.allclose(D(x)[0], D(changed)[0])
    _, plain = build({"name": "progan", "z_dim": 8, "width": 4, "max_width": 8,
                      "minibatch_std": False}, SHAPE)
    assert plain.blocks[0].mbstd is None and torch.equal(plain(x)[0], plain(changed)[0])


def test_gradients_reach_the_active_blocks_only(pair):
    """Fading in level 2: blocks 0..2 and the RGB layers of levels 1 and 2 learn, nothing else."""
    G, D = pair
    z = torch.randn(4, 8)
    G.set_growth(2, 0.5)
    D.set_growth(2, 0.5)
    D(G(z)).sum().backward()
    active = ("blocks.0.", "blocks.1.", "blocks.2.", "to_rgb.1.", "to_rgb.2.", "from_rgb.1.",
              "from_rgb.2.", "head.")
    for net in (G, D):
        for name, p in net.named_parameters():
            if name.startswith(active):
                assert p.grad is not None and torch.isfinite(p.grad).all(), name
                assert p.grad.abs().sum() > 0, name
            else:
                assert p.grad is None, name
    G.zero_grad(set_to_none=True)
    G.set_growth(2, 1.0)
    G(z).sum().backward()
    assert G.to_rgb[1].weight.grad is None  # the faded-out toRGB is off the graph when stable


def test_growth_strip_renders_every_level_and_restores_the_growth(pair):
    G, _ = pair
    G.set_growth(2, 0.5)
    z = torch.randn(3, 8)
    strip = progan_growth_strip(G, z)
    assert len(strip) == 4 and all(s.shape == (3, *SHAPE) for s in strip)
    assert torch.equal(strip[0], up(_level_image(G, z, 0), 8))
    assert G.growth == (2, 0.5)


def _level_image(G, z, level):
    saved = G.growth
    G.set_growth(level, 1.0)
    with torch.no_grad():
        out = G.synthesize(z)
    G.set_growth(*saved)
    return out


def test_growth_state_is_in_the_state_dict_and_copies_with_the_network(pair):
    G, _ = pair
    G.set_growth(1, 0.25)
    state = G.state_dict()
    assert int(state["level"]) == 1 and float(state["alpha"]) == 0.25
    G2, _ = build({"name": "progan", "z_dim": 8, "width": 4, "max_width": 8}, SHAPE)
    G2.load_state_dict(state)
    assert G2.growth == (1, 0.25)
    z = torch.randn(2, 8)
    assert torch.equal(G(z), G2(z))


@pytest.mark.parametrize("shape, fragment", [
    ((1, 28, 28), "data.pad_to=32"),
    ((1, 24, 24), "data.pad_to=32"),
    ((1, 2, 2), "data.pad_to=4"),
    ((1, 16, 32), "power of two"),
    ((2,), "needs images"),
])
def test_a_resolution_growth_cannot_reach_is_a_one_line_error(shape, fragment):
    with pytest.raises(GanforgeError, match=fragment) as err:
        build("progan", shape)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("key, value", [("width", 0), ("max_width", -1), ("z_dim", 1.5),
                                        ("pixel_norm", "yes"), ("minibatch_std", 1)])
def test_bad_model_options_are_one_line_errors(key, value):
    with pytest.raises(GanforgeError, match=f"{key}="):
        build({"name": "progan", key: value}, SHAPE)


def test_set_growth_refuses_levels_and_alphas_out_of_range(pair):
    G, _ = pair
    with pytest.raises(GanforgeError, match="level 4"):
        G.set_growth(4)
    with pytest.raises(GanforgeError, match="alpha 1.5"):
        G.set_growth(1, 1.5)
