"""Equalised learning rate (Karras et al. 2018, "Progressive Growing of GANs", sec. 4.1).

Weights are stored as w_hat ~ N(0, 1/lr_mul^2) and used at run time as

    w = w_hat * c * lr_mul,      c = gain / sqrt(fan_in)      (He's constant, gain = sqrt(2))

so every layer's *effective* weight has std ``gain / sqrt(fan_in)`` at initialisation whatever
its shape, and Adam's scale-invariant updates move every layer at the same relative speed.
``lr_mul`` (StyleGAN's mapping network uses 0.01) divides the stored scale and multiplies the
run-time one: the effective weight is unchanged but its gradient step is ``lr_mul`` times
smaller. Biases are stored divided by ``lr_mul`` and used times ``lr_mul`` for the same reason.

Shared by ProGAN, StyleGAN and StyleGAN2.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: He's gain for (leaky) ReLU networks
HE_GAIN = math.sqrt(2.0)


def he_constant(fan_in: int, gain: float = HE_GAIN) -> float:
    """c = gain / sqrt(fan_in): the std He et al. (2015) initialise a layer's weights with."""
    return gain / math.sqrt(fan_in)


class EqualLinear(nn.Module):
    """y = x (w_hat c lr_mul)^T + b_hat lr_mul, with w_hat ~ N(0, 1/lr_mul^2), b_hat = bias_init / lr_mul."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 gain: float = HE_GAIN, lr_mul: float = 1.0, bias_init: float = 0.0) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_mul)) if bias else None
        self.lr_mul = lr_mul
        self.scale = he_constant(in_features, gain) * lr_mul

    def effective_weight(self) -> torch.Tensor:
        return self.weight * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        return F.linear(x, self.effective_weight(), bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, lr_mul={self.lr_mul}"


class EqualConv2d(nn.Module):
    """A 2-d convolution whose weight is w_hat ~ N(0, 1) times c = gain / sqrt(C_in k^2) at run time."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True, *, gain: float = HE_GAIN) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = he_constant(in_channels * kernel_size * kernel_size, gain)

    def effective_weight(self) -> torch.Tensor:
        return self.weight * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.effective_weight(), self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")


class PixelNorm(nn.Module):
    """Pixel-wise feature normalisation (Karras et al. 2018, sec. 4.2), over dim 1:

    b_{x,y} = a_{x,y} / sqrt(mean_j (a^j_{x,y})^2 + eps)

    For (N, C) inputs (StyleGAN's z) it normalises each vector to RMS 1."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)
