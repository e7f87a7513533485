"""StyleGAN2's networks: modulated convolution with demodulation against a per-sample reference,
the [1, 3, 3, 1] resampling, the skip generator's structure, noise inputs, the residual
discriminator, and the builder's validation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ganforge.errors import GanforgeError
from ganforge.models import build
from ganforge.models.stylegan2 import (
    ModulatedConv2d,
    ResidualBlock,
    StyleGAN2Discriminator,
    StyleGAN2Generator,
    act,
    downsample_2x,
    upsample_2x,
)

TINY = {"name": "stylegan2", "z_dim": 8, "w_dim": 8, "mapping_layers": 2, "width": 4, "max_width": 8}


def _pair(side: int = 16, **kw) -> tuple[StyleGAN2Generator, StyleGAN2Discriminator]:
    torch.manual_seed(0)
    return build({**TINY, **kw}, (1, side, side))


# --------------------------------------------------------------------------- modulated conv
def _reference_modconv(conv: ModulatedConv2d, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """One F.conv2d per sample with w''_{jik} = s_i w_{jik} / sqrt(sum_{i,k} (s_i w_{jik})^2 + eps)."""
    s = conv.affine(w)
    outs = []
    for n in range(len(x)):
        weight = conv.weight * conv.scale * s[n].view(1, -1, 1, 1)
        if conv.demodulate:
            norm = torch.sqrt((weight ** 2).sum(dim=(1, 2, 3)) + conv.eps)
            weight = weight / norm.view(-1, 1, 1, 1)
        outs.append(F.conv2d(x[n:n + 1], weight, padding=conv.kernel_size // 2))
    return torch.cat(outs)


@pytest.mark.parametrize("demodulate,kernel", [(True, 3), (False, 1), (False, 3)])
def test_grouped_modulated_conv_equals_a_per_sample_loop(demodulate, kernel):
    torch.manual_seed(0)
    conv = ModulatedConv2d(5, 7, kernel, w_dim=6, demodulate=demodulate).double()
    x, w = torch.randn(4, 5, 6, 6, dtype=torch.double), torch.randn(4, 6, dtype=torch.double)
    out = conv(x, w)
    assert out.shape == (4, 7, 6, 6)
    torch.testing.assert_close(out, _reference_modconv(conv, x, w), rtol=1e-10, atol=1e-10)


def test_demodulation_gives_every_output_channel_a_unit_norm_weight():
    torch.manual_seed(0)
    conv = ModulatedConv2d(6, 5, 3, w_dim=4)
    weights = conv.sample_weights(conv.affine(torch.randn(3, 4)) * 7.0)  # any style scale
    norms = weights.square().sum(dim=(2, 3, 4)).sqrt()                  # (N, C_out)
    torch.testing.assert_close(norms, torch.ones(3, 5), rtol=1e-5, atol=1e-5)


def test_unit_variance_input_gives_unit_variance_output():
    """The paper's argument for demodulation: with i.i.d. unit-variance inputs the output's std
    is sqrt(sum w''^2) = 1 whatever the style (interior pixels, away from the zero padding)."""
    torch.manual_seed(0)
    conv = ModulatedConv2d(32, 32, 3, w_dim=16)
    for style_scale in (0.1, 1.0, 10.0):
        with torch.no_grad():
            conv.affine.weight.mul_(style_scale)
            out = conv(torch.randn(16, 32, 16, 16), torch.randn(16, 16))[..., 1:-1, 1:-1]
        assert out.std().item() == pytest.approx(1.0, abs=0.05)
    plain = ModulatedConv2d(32, 32, 3, w_dim=16, demodulate=False)
    with torch.no_grad():
        plain.affine.bias.fill_(5.0)  # without demodulation the style scales the output
        out = plain(torch.randn(16, 32, 16, 16), torch.zeros(16, 16))[..., 1:-1, 1:-1]
    assert out.std().item() == pytest.approx(5.0, rel=0.1)


def test_style_affines_start_at_bias_one():
    conv = ModulatedConv2d(3, 2, 3, w_dim=4)
    torch.testing.assert_close(conv.affine(torch.zeros(1, 4)), torch.ones(1, 3))


# --------------------------------------------------------------------------- resampling
def test_resampling_filters_are_the_1331_fir():
    x = torch.randn(2, 3, 5, 5, dtype=torch.double)
    k = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.double) / 8
    # upsampling: zero insertion, then the 4x4 filter (gain 4), zero padding
    z = torch.zeros(2, 3, 10, 10, dtype=torch.double)
    z[..., ::2, ::2] = x
    kernel = (torch.outer(k, k) * 4).expand(3, 1, 4, 4)
    ref_up = F.conv2d(F.pad(z, (2, 1, 2, 1)), kernel.flip(-1, -2), groups=3)
    torch.testing.assert_close(upsample_2x(x), ref_up)
    # a constant image stays constant away from the borders, in both directions
    ones = torch.ones(1, 2, 8, 8)
    torch.testing.assert_close(upsample_2x(ones)[..., 1:-1, 1:-1], torch.ones(1, 2, 14, 14))
    torch.testing.assert_close(downsample_2x(ones)[..., 1:-1, 1:-1], torch.ones(1, 2, 2, 2))
    assert downsample_2x(torch.randn(1, 1, 16, 16)).shape == (1, 1, 8, 8)


# --------------------------------------------------------------------------- generator
@pytest.mark.parametrize("side", [8, 16, 32])
def test_generator_shapes_styles_and_gradients(side):
    G, _ = _pair(side)
    assert G.num_ws == 2 * int(math.log2(side)) - 2
    assert len(G.to_rgbs) == int(math.log2(side)) - 1
    z = torch.randn(3, 8)
    x = G(z)
    assert x.shape == (3, 1, side, side) and torch.isfinite(x).all()
    x.square().mean().backward()
    assert all(p.grad is not None for p in G.parameters())  # noise strengths too


def test_every_style_input_reaches_the_image():
    G, _ = _pair(16)
    G.eval()
    ws = G.broadcast(G.mapping(torch.randn(2, 8))).clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(G.synthesis(ws).square().sum(), ws)
    assert (grad.abs().sum(dim=(0, 2)) > 0).all()  # each of the num_ws styles matters


def test_skip_generator_image_is_the_sum_of_upsampled_torgb_outputs():
    G, _ = _pair(32)
    G.eval()
    G.noise_mode = "const"
    ws = G.broadcast(G.mapping(torch.randn(2, 8)))
    with torch.no_grad():
        outputs = G.rgb_outputs(ws)
        image = G.synthesis(ws)
    assert [o.shape[-1] for o in outputs] == [4, 8, 16, 32]
    expected = sum(o if o.shape[-1] == 32 else
                   _upsample_times(o, int(math.log2(32 // o.shape[-1]))) for o in outputs)
    torch.testing.assert_close(image, expected)
    # silence the 32 px toRGB: the image is exactly the upsampled 16 px image
    with torch.no_grad():
        G.to_rgbs[-1].conv.weight.zero_()
        G.to_rgbs[-1].bias.zero_()
        low = G.synthesis(ws)
    expected_low = sum(_upsample_times(o, int(math.log2(16 // o.shape[-1]))) if o.shape[-1] < 16
                       else o for o in outputs[:-1])
    torch.testing.assert_close(low, upsample_2x(expected_low))


def _upsample_times(x: torch.Tensor, k: int) -> torch.Tensor:
    for _ in range(k):
        x = upsample_2x(x)
    return x


def test_noise_inputs_start_silent_and_their_modes():
    G, _ = _pair(8)
    G.eval()
    ws = G.broadcast(G.mapping(torch.randn(2, 8)))
    with torch.no_grad():
        G.noise_mode = "none"
        silent = G.synthesis(ws)
        G.noise_mode = "random"
        assert torch.equal(G.synthesis(ws), silent)  # strengths start at 0
        for layer in G.layers:
            layer.noise_strength.fill_(0.5)
        a, b = G.synthesis(ws), G.synthesis(ws)
        G.noise_mode = "const"
        c, d = G.synthesis(ws), G.synthesis(ws)
    assert not torch.equal(a, b) and torch.equal(c, d) and not torch.equal(c, silent)
    with torch.no_grad():
        G.noise_mode = "auto"  # eval: the fixed maps, so samples are a function of z
        assert torch.equal(G.synthesis(ws), c)
        G.train()
        assert not torch.equal(G.synthesis(ws), G.synthesis(ws))
        maps = G.make_noise(1, torch.Generator().manual_seed(0))  # explicit maps win
        assert [m.shape[-1] for m in maps] == [4, 8, 8]
        assert torch.equal(G.synthesis(ws, maps), G.synthesis(ws, maps))


def test_truncation_and_mixing_come_from_the_style_base():
    G, _ = _pair(8)
    assert G.truncation == "w" and G.mixing_prob == 0.9
    G.train()
    G(torch.randn(4, 8))
    assert G.w_avg.abs().sum() > 0  # tracked in training
    G.eval()
    x = G.sample(3, torch.Generator().manual_seed(0), psi=0.5)
    assert x.shape == (3, 1, 8, 8)
    with pytest.raises(GanforgeError, match="psi"):
        G.sample(3, psi=1.5)


# --------------------------------------------------------------------------- discriminator
def test_residual_block_is_the_scaled_sum_of_its_two_paths():
    torch.manual_seed(0)
    block = ResidualBlock(3, 5)
    x = torch.randn(2, 3, 8, 8)
    main = act(block.conv1(downsample_2x(act(block.conv0(x)))))
    skip = F.conv2d(downsample_2x(x), block.skip.effective_weight())
    torch.testing.assert_close(block(x), (main + skip) / math.sqrt(2))
    assert block(x).shape == (2, 5, 4, 4)


@pytest.mark.parametrize("side", [8, 32])
def test_discriminator_shapes_and_gradients(side):
    _, D = _pair(side)
    x = torch.randn(4, 1, side, side, requires_grad=True)
    out = D.evaluate(x)
    assert out.logits.shape == (4,) and out.features.shape == (4, D.feature_dim)
    assert len(D.blocks) == int(math.log2(side)) - 2
    out.logits.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in D.parameters())
    # R1 needs the gradient of the input gradient (double backward through the FIR filters)
    x2 = torch.randn(4, 1, side, side, requires_grad=True)
    (g,) = torch.autograd.grad(D(x2).sum(), x2, create_graph=True)
    g.square().sum().backward()
    assert D.from_rgb.weight.grad is not None


def test_minibatch_std_sees_a_collapsed_batch():
    _, D = _pair(8)
    same = torch.randn(1, 1, 8, 8).expand(4, -1, -1, -1)
    feats = D.blocks(act(D.from_rgb(same)))
    assert torch.allclose(D.mbstd(feats)[:, -1], torch.full((4, 4, 4), 1e-4), atol=1e-4)


# --------------------------------------------------------------------------- builder
@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 24, 24), (1, 4, 4), (1, 16, 8), (2,)])
def test_builder_refuses_sizes_it_cannot_grow_to(shape):
    with pytest.raises(GanforgeError, match="stylegan2"):
        build({"name": "stylegan2"}, shape)


@pytest.mark.parametrize("key,value", [("width", 0), ("w_dim", 1.5), ("mapping_layers", True),
                                       ("mixing_prob", 1.5), ("d_width", -1), ("nope", 1)])
def test_builder_refuses_bad_options(key, value):
    with pytest.raises(GanforgeError):
        build({**TINY, key: value}, (1, 8, 8))


def test_widths_double_per_halving_up_to_the_cap():
    G, D = build({**TINY, "width": 4, "max_width": 12, "d_width": 2}, (1, 32, 32))
    assert [layer.conv.out_channels for layer in G.layers] == [12, 12, 12, 8, 8, 4, 4]
    assert D.from_rgb.out_channels == 2 and D.feature_dim == 12
