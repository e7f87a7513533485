"""Equalised learning rate and pixel norm (Karras et al. 2018, sec. 4.1-4.2): the effective
weights' std is He's constant, forwards match plain layers with the scaled weights, lr_mul only
rescales the gradient step, and PixelNorm gives unit RMS per pixel."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ganforge.models.equalized import HE_GAIN, EqualConv2d, EqualLinear, PixelNorm, he_constant


def test_he_constant_is_gain_over_root_fan_in():
    assert he_constant(50) == pytest.approx(math.sqrt(2.0) / math.sqrt(50))
    assert he_constant(9 * 16, gain=1.0) == pytest.approx(1.0 / 12.0)
    assert HE_GAIN == pytest.approx(math.sqrt(2.0))


@pytest.mark.parametrize("lr_mul", [1.0, 0.01])
def test_equal_linear_effective_weight_std_is_he_constant(lr_mul):
    layer = EqualLinear(400, 500, lr_mul=lr_mul)  # 200k draws: the sample std is within 1 %
    std = layer.effective_weight().std().item()
    assert std == pytest.approx(he_constant(400), rel=0.01)
    # the stored weight is N(0, 1 / lr_mul^2): the scale lives in the forward pass
    assert layer.weight.std().item() == pytest.approx(1.0 / lr_mul, rel=0.01)


@pytest.mark.parametrize("c_in, k", [(32, 3), (64, 1), (8, 4)])
def test_equal_conv_effective_weight_std_is_he_constant(c_in, k):
    layer = EqualConv2d(c_in, 2000 // k, k)
    std = layer.effective_weight().std().item()
    assert std == pytest.approx(he_constant(c_in * k * k), rel=0.02)
    assert layer.weight.std().item() == pytest.approx(1.0, rel=0.02)


def test_equal_layers_compute_the_plain_layer_with_the_scaled_weights():
    x = torch.randn(5, 6)
    lin = EqualLinear(6, 3, lr_mul=0.1, bias_init=0.5, gain=1.0)
    expected = F.linear(x, lin.weight * lin.lr_mul / math.sqrt(6), lin.bias * lin.lr_mul)
    torch.testing.assert_close(lin(x), expected)
    assert torch.allclose(lin.bias * lin.lr_mul, torch.full((3,), 0.5))
    img = torch.randn(2, 4, 7, 7)
    conv = EqualConv2d(4, 5, 3, stride=2, padding=1)
    with torch.no_grad():
        conv.bias.normal_()
    expected = F.conv2d(img, conv.weight * math.sqrt(2.0 / 36), conv.bias, 2, 1)
    torch.testing.assert_close(conv(img), expected)
    assert conv(img).shape == (2, 5, 4, 4)


def test_lr_mul_scales_the_gradient_of_the_stored_weight_not_the_output():
    """d out / d w_hat = c lr_mul x: with lr_mul = 0.01 the stored weight's gradient is 100 times
    smaller than with lr_mul = 1 for the same effective weight and input."""
    torch.manual_seed(0)
    fast, slow = EqualLinear(8, 4), EqualLinear(8, 4, lr_mul=0.01)
    with torch.no_grad():
        slow.weight.copy_(fast.weight / 0.01)
    x = torch.randn(3, 8)
    torch.testing.assert_close(fast(x), slow(x))
    fast(x).sum().backward()
    slow(x).sum().backward()
    torch.testing.assert_close(slow.weight.grad, fast.weight.grad * 0.01)
    # Adam's step is scale-free in the gradient, so the effective weight moves lr_mul times slower
    torch.testing.assert_close(fast.weight.grad, x.sum(0).expand(4, 8) * fast.scale)


def test_pixel_norm_gives_unit_rms_per_pixel():
    x = torch.randn(3, 16, 5, 5) * torch.rand(3, 1, 5, 5) * 10
    out = PixelNorm()(x)
    rms = out.pow(2).mean(dim=1).sqrt()
    torch.testing.assert_close(rms, torch.ones(3, 5, 5), atol=1e-5, rtol=0)
    # each pixel's feature vector keeps its direction
    cos = F.cosine_similarity(out, x, dim=1)
    torch.testing.assert_close(cos, torch.ones_like(cos))
    z = torch.randn(4, 7) * 3
    torch.testing.assert_close(PixelNorm()(z).pow(2).mean(1), torch.ones(4), atol=1e-5, rtol=0)
    assert torch.equal(PixelNorm()(torch.zeros(2, 3)), torch.zeros(2, 3))  # eps: no 0 / 0
