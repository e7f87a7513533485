"""StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN") for
square images whose side S is a power of two >= 8: config F's skip generator and residual
discriminator, every mechanism at full fidelity, the widths a parameter.

Generator (a :class:`~ganforge.models.style.StyleGenerator`: mapping z -> w, w_avg, mixing,
truncation in W)::

    const 4x4 -> [modconv 3x3] -> toRGB -+
    for r in 8, 16, ..., S:              |  upsample
      up 2x -> [modconv 3x3] -> [modconv 3x3] -> toRGB -> + ... -> image

    [modconv] = modulated 3x3 conv with weight demodulation (:class:`ModulatedConv2d`), + noise
                (learned per-layer scale, init 0), + bias, leaky ReLU 0.2 (gain sqrt 2)
    toRGB     = modulated 1x1 conv *without* demodulation, + bias (no activation)

Every modulated layer has its own style affine A (an equalised dense layer w -> s, bias init 1).
Layer i reads style ws[:, i]; the toRGB of a resolution reads the style of the next layer (the
paper's indexing), so num_ws = 2 log2(S) - 2 (8 at 32 px).

Discriminator (residual, equalised learning rate)::

    fromRGB 1x1 -> for r in S, S/2, ..., 8:  x <- (skip(x) + main(x)) / sqrt 2
                   main = conv 3x3, act, downsample, conv 3x3, act;  skip = downsample, conv 1x1
                -> minibatch std (group 4) -> conv 3x3, act -> dense, act  (= features)
                -> head: dense -> 1 logit

Resampling uses the paper's [1, 3, 3, 1] FIR filter (:func:`upsample_2x`, :func:`downsample_2x`).
Channels at resolution r are ``min(max_width, width * S / r)`` (``width`` at full resolution).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.models._checks import positive_int, square_power_of_two
from ganforge.models.base import Discriminator, register_model
from ganforge.models.equalized import EqualConv2d, EqualLinear
from ganforge.models.layers import MinibatchStdDev
from ganforge.models.style import MappingNetwork, StyleGenerator, channels_at

#: leaky ReLU slope and the gain that restores unit second moment after it (StyleGAN2's def_gain)
SLOPE, ACT_GAIN = 0.2, math.sqrt(2.0)
NOISE_MODES = ("auto", "random", "const", "none")


def act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, SLOPE) * ACT_GAIN


def _fir_kernel(x: torch.Tensor, gain: float) -> torch.Tensor:
    """The separable [1, 3, 3, 1] filter, normalised to sum ``gain``, one copy per channel."""
    k = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=x.dtype, device=x.device)
    k2 = torch.outer(k, k)
    k2 = k2 / k2.sum() * gain
    return k2.expand(x.shape[1], 1, 4, 4)


def upsample_2x(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, 2H, 2W): zero insertion and the [1, 3, 3, 1] filter (each output
    pixel gets weights summing to 1), as a depthwise transposed convolution."""
    return F.conv_transpose2d(x, _fir_kernel(x, 4.0), stride=2, padding=1, groups=x.shape[1])


def downsample_2x(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H/2, W/2): the [1, 3, 3, 1] low-pass filter, then every 2nd pixel."""
    return F.conv2d(x, _fir_kernel(x, 1.0), stride=2, padding=1, groups=x.shape[1])


class ModulatedConv2d(nn.Module):
    """StyleGAN2's modulated convolution (sec. 2.2). With the style s = A(w) (N, C_in):

        w'_{ijk}  = s_i w_{ijk}                                   (modulation)
        w''_{ijk} = w'_{ijk} / sqrt(sum_{i,k} w'_{ijk}^2 + eps)   (demodulation, output channel j)

    One weight per sample, applied as a single grouped convolution over the batch (groups = N).
    For inputs of unit variance, demodulation keeps each output channel at unit variance.
    ``w`` is stored as N(0, 1) and scaled by 1/sqrt(C_in k^2) (equalised lr; the scale cancels
    in demodulation but sets toRGB's gain)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int,
                 demodulate: bool = True, eps: float = 1e-8) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.demodulate, self.eps = demodulate, eps
        self.affine = EqualLinear(w_dim, in_channels, gain=1.0, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)

    def sample_weights(self, style: torch.Tensor) -> torch.Tensor:
        """The per-sample weights (N, C_out, C_in, k, k) for styles s (N, C_in)."""
        weight = self.weight[None] * self.scale * style[:, None, :, None, None]
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.square().sum(dim=(2, 3, 4), keepdim=True) + self.eps)
        return weight

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n, _, h, wd = x.shape
        weight = self.sample_weights(self.affine(w))
        out = F.conv2d(x.reshape(1, n * self.in_channels, h, wd),
                       weight.reshape(n * self.out_channels, self.in_channels, *weight.shape[3:]),
                       padding=self.kernel_size // 2, groups=n)
        return out.reshape(n, self.out_channels, *out.shape[2:])

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"demodulate={self.demodulate}")


class SynthesisLayer(nn.Module):
    """[upsample 2x], modulated 3x3 conv, + noise * strength (per-layer scalar, init 0), + bias,
    leaky ReLU (gain sqrt 2). Noise is one N(0, 1) map per sample shared by the channels."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 up: bool = False) -> None:
        super().__init__()
        self.up = up
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        #: the fixed noise map of ``noise_mode="const"`` (PPL and reproducible pictures)
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None = None,
                noise_mode: str = "random") -> torch.Tensor:
        """``noise`` (N or 1, 1, r, r) when given, else by ``noise_mode`` (random/const/none)."""
        if self.up:
            x = upsample_2x(x)
        x = self.conv(x, w)
        if noise is not None:
            x = x + self.noise_strength * noise
        elif noise_mode == "random":
            x = x + self.noise_strength * torch.randn(len(x), 1, *x.shape[2:], device=x.device,
                                                      dtype=x.dtype)
        elif noise_mode == "const":
            x = x + self.noise_strength * self.noise_const
        return act(x + self.bias[None, :, None, None])


class ToRGB(nn.Module):
    """Modulated 1x1 conv without demodulation, + bias: features -> image channels."""

    def __init__(self, in_channels: int, image_channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, image_channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(image_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]


class StyleGAN2Generator(StyleGenerator):
    """z (N, z_dim) -> images (N, C, S, S). ``layers`` holds the synthesis layers in style order
    (const-res conv, then up-conv and conv per resolution); ``to_rgbs`` one toRGB per resolution.
    ``noise_mode``: ``auto`` (fresh noise from the global RNG in training, each layer's fixed map
    in eval mode, so samples are a function of z as in the official generation scripts),
    ``random``, ``const`` or ``none``; explicit maps (:meth:`make_noise`) override it."""

    #: measured 10% slower in channels-last layout on CPU (grouped convolutions over reshaped
    #: weights), see :mod:`ganforge.train.memory_format`
    prefers_channels_last = False

    def __init__(self, out_shape: tuple[int, int, int], *, z_dim: int, w_dim: int,
                 mapping_layers: int, width: int, max_width: int, mixing_prob: float) -> None:
        super().__init__(w_dim, mixing_prob)
        channels, side, _ = out_shape
        self.z_dim, self.w_dim, self.out_shape = z_dim, w_dim, tuple(out_shape)
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers)
        self.noise_mode = "auto"
        resolutions = [2 ** i for i in range(2, int(math.log2(side)) + 1)]
        c4 = channels_at(4, side, width, max_width)
        self.const = nn.Parameter(torch.randn(c4, 4, 4))
        layers = [SynthesisLayer(c4, c4, w_dim, 4)]
        to_rgbs = [ToRGB(c4, channels, w_dim)]
        for r in resolutions[1:]:
            c_in, c_out = channels_at(r // 2, side, width, max_width), channels_at(r, side, width, max_width)
            layers += [SynthesisLayer(c_in, c_out, w_dim, r, up=True), SynthesisLayer(c_out, c_out, w_dim, r)]
            to_rgbs.append(ToRGB(c_out, channels, w_dim))
        self.layers, self.to_rgbs = nn.ModuleList(layers), nn.ModuleList(to_rgbs)
        self.num_ws = len(layers) + 1

    def make_noise(self, n: int = 1, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """One noise map (n, 1, r, r) per synthesis layer, drawn on CPU from ``generator`` and
        moved to the model's device; pass them to :meth:`synthesis` (n = 1 broadcasts)."""
        return [torch.randn(n, 1, *layer.noise_const.shape[2:], generator=generator).to(self.const)
                for layer in self.layers]

    def rgb_outputs(self, ws: torch.Tensor, noise: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """Each resolution's toRGB output (4x4 first); the image is their upsampled sum."""
        mode = self.noise_mode
        if mode not in NOISE_MODES:
            raise GanforgeError(f"unknown noise_mode {mode!r}", f"use one of: {', '.join(NOISE_MODES)}")
        if mode == "auto":
            mode = "random" if self.training else "const"
        maps = noise if noise is not None else [None] * len(self.layers)
        x = self.const[None].expand(len(ws), -1, -1, -1)
        x = self.layers[0](x, ws[:, 0], maps[0], mode)
        outputs = [self.to_rgbs[0](x, ws[:, 1])]
        for b, to_rgb in enumerate(self.to_rgbs[1:]):
            i = 1 + 2 * b
            x = self.layers[i](x, ws[:, i], maps[i], mode)
            x = self.layers[i + 1](x, ws[:, i + 1], maps[i + 1], mode)
            outputs.append(to_rgb(x, ws[:, i + 2]))
        return outputs

    def synthesis(self, ws: torch.Tensor, noise: list[torch.Tensor] | None = None) -> torch.Tensor:
        """The skip generator: img_4 = toRGB_4; img_r = upsample(img_{r/2}) + toRGB_r. ``noise``:
        one map per layer (:meth:`make_noise`), else by ``noise_mode``."""
        outputs = self.rgb_outputs(ws, noise)
        img = outputs[0]
        for rgb in outputs[1:]:
            img = upsample_2x(img) + rgb
        return img


class ResidualBlock(nn.Module):
    """(skip(x) + main(x)) / sqrt(2), both halving the side: main = conv 3x3 (C_in), act,
    downsample, conv 3x3 (C_out), act; skip = downsample, 1x1 conv (no bias, gain 1)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3, padding=1)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, padding=1)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.skip(downsample_2x(x))
        x = act(self.conv1(downsample_2x(act(self.conv0(x)))))
        return (x + y) * math.sqrt(0.5)


class StyleGAN2Discriminator(Discriminator):
    """Images (N, C, S, S) -> features (N, C_4) -> logit (N,); see the module docstring."""

    def __init__(self, in_shape: tuple[int, int, int], *, width: int, max_width: int,
                 mbstd_group: int) -> None:
        super().__init__()
        self.in_shape = tuple(in_shape)
        channels, side, _ = in_shape
        self.from_rgb = EqualConv2d(channels, channels_at(side, side, width, max_width), 1)
        blocks, r = [], side
        while r > 4:
            blocks.append(ResidualBlock(channels_at(r, side, width, max_width),
                                        channels_at(r // 2, side, width, max_width)))
            r //= 2
        self.blocks = nn.Sequential(*blocks)
        c4 = channels_at(4, side, width, max_width)
        self.mbstd = MinibatchStdDev(mbstd_group)
        self.conv = EqualConv2d(c4 + 1, c4, 3, padding=1)
        self.fc = EqualLinear(c4 * 16, c4)
        self.feature_dim = c4
        self.head = EqualLinear(c4, 1, gain=1.0)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(act(self.from_rgb(x)))
        x = act(self.conv(self.mbstd(x)))
        return act(self.fc(x.flatten(1)))


@register_model("stylegan2")
def build_stylegan2(sample_shape: tuple[int, ...], num_classes: int | None = None, *,
                    z_dim: int = 128, w_dim: int = 128, mapping_layers: int = 8, width: int = 32,
                    max_width: int = 128, d_width: int | None = None, mixing_prob: float = 0.9,
                    mbstd_group: int = 4) -> tuple[StyleGAN2Generator, StyleGAN2Discriminator]:
    """The StyleGAN2 pair for images (C, S, S), S a power of two >= 8. ``width``: G's channels at
    full resolution, doubling per halving up to ``max_width``; ``d_width`` the same for D
    (default ``width``). ``mixing_prob``: style-mixing regularisation (0.9 in the paper).
    ``num_classes`` is accepted for the conditional interface and ignored."""
    shape = square_power_of_two(sample_shape, 'stylegan2', 8)
    for key, value in (("z_dim", z_dim), ("w_dim", w_dim), ("mapping_layers", mapping_layers),
                       ("width", width), ("max_width", max_width), ("mbstd_group", mbstd_group)):
        positive_int(value, key, "stylegan2")
    d_width = width if d_width is None else positive_int(d_width, "d_width", "stylegan2")
    G = StyleGAN2Generator(shape, z_dim=z_dim, w_dim=w_dim, mapping_layers=mapping_layers,
                           width=width, max_width=max_width, mixing_prob=mixing_prob)
    D = StyleGAN2Discriminator(shape, width=d_width, max_width=max_width, mbstd_group=mbstd_group)
    return G, D
