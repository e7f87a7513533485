"""ProGAN (Karras et al. 2018, "Progressive Growing of GANs") for square images of side S = 2^k >= 4.

Every block is built up front (parameter shapes never change); growth is two buffers of each
network, ``level`` (the block that currently makes the output: resolution r = 4 * 2^level) and
``alpha`` (the fade-in weight of that block). With c(r) = min(max_width, width * S / r)::

    G: z -> PixelNorm -> EqualLinear -> 4x4xc(4), LReLU, PN -> Conv3x3, LReLU, PN      (level 0)
         -> [Upsample2 (nearest) -> Conv3x3, LReLU, PN -> Conv3x3, LReLU, PN]          (levels 1..)
       image_r = toRGB_r(h_r)                       toRGB: 1x1 EqualConv, linear (no tanh)
    D: x_r -> fromRGB_r (1x1, LReLU)
         -> [Conv3x3, LReLU -> Conv3x3, LReLU -> AvgPool2]                          (levels .. 1)
         -> MinibatchStdDev -> Conv3x3, LReLU -> Conv4x4 valid (a dense layer), LReLU  (level 0)
         -> head: EqualLinear -> 1

During the fade of level l (0 < alpha < 1) the new block is blended with the old output path:

    G(z)  = (1 - alpha) * upsample2(toRGB_{l-1}(h_{l-1})) + alpha * toRGB_l(block_l(h_{l-1}))
    D(x)  = D_{<l}((1 - alpha) * fromRGB_{l-1}(avgpool2(x)) + alpha * block_l(fromRGB_l(x)))

At alpha = 0 both equal the networks of level l - 1 (exactly: the new path is multiplied by 0).

Every conv and linear layer has an equalised learning rate (:mod:`ganforge.models.equalized`),
activations are LeakyReLU 0.2 and G normalises every conv's features (and z) with PixelNorm.

Resolution-agnostic interface: ``G(z)`` always returns (N, C, S, S) images (the level's
r x r image nearest-upsampled) and ``D(x)`` always takes (N, C, S, S) images (avg-pooled to
r x r), so sampling, metrics, EMA copies and the plain ``gan`` algorithm work at any level.
:meth:`ProGANGenerator.synthesize` and :meth:`ProGANDiscriminator.score` work at r x r itself
(the ``progan`` algorithm trains there). A freshly built pair sits at its last level, alpha 1:
the full network, no growth.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.models._checks import flag, positive_int, square_power_of_two
from ganforge.models.base import Discriminator, Generator, register_model
from ganforge.models.equalized import HE_GAIN, EqualConv2d, EqualLinear, PixelNorm
from ganforge.models.layers import MinibatchStdDev

SLOPE = 0.2


def resolution_levels(side: int) -> int:
    """Number of levels (resolutions 4, 8, ..., side) for a power-of-two ``side`` >= 4."""
    return int(math.log2(side)) - 1


def is_growable(side: int) -> bool:
    return side >= 4 and side & (side - 1) == 0


def upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Nearest-neighbour upsampling by an integer factor (each pixel becomes a factor^2 block)."""
    if factor == 1:
        return x
    return x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)


def downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Average pooling over factor x factor blocks."""
    return x if factor == 1 else F.avg_pool2d(x, factor)


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, SLOPE)


class _ConvAct(nn.Module):
    """EqualConv2d 3x3 (same padding), LeakyReLU 0.2, then PixelNorm when ``norm``."""

    def __init__(self, c_in: int, c_out: int, norm: bool) -> None:
        super().__init__()
        self.conv = EqualConv2d(c_in, c_out, 3, padding=1)
        self.norm = PixelNorm() if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(_act(self.conv(x)))


class GInput(nn.Module):
    """Level 0 of G: z -> PixelNorm -> 4x4 map -> LReLU, PN -> Conv3x3, LReLU, PN.

    The paper's first layer is a 4x4 conv over z seen as a 1x1 map with 4x4 zero padding; that
    is a dense layer whose He constant uses fan_in = 16 z_dim, hence gain sqrt(2) / 4 here."""

    def __init__(self, z_dim: int, channels: int, norm: bool) -> None:
        super().__init__()
        self.channels = channels
        self.norm = PixelNorm() if norm else nn.Identity()
        self.dense = EqualLinear(z_dim, channels * 16, gain=HE_GAIN / 4)
        self.conv = _ConvAct(channels, channels, norm)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = _act(self.dense(self.norm(z))).view(len(z), self.channels, 4, 4)
        return self.conv(self.norm(h))


class GBlock(nn.Module):
    """Levels >= 1 of G: nearest upsample x2 -> (Conv3x3, LReLU, PN) twice."""

    def __init__(self, c_in: int, c_out: int, norm: bool) -> None:
        super().__init__()
        self.conv1 = _ConvAct(c_in, c_out, norm)
        self.conv2 = _ConvAct(c_out, c_out, norm)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(upsample(h, 2)))


class DBlock(nn.Module):
    """Levels >= 1 of D: (Conv3x3, LReLU) c_in -> c_in, (Conv3x3, LReLU) c_in -> c_out, AvgPool2."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = EqualConv2d(c_in, c_in, 3, padding=1)
        self.conv2 = EqualConv2d(c_in, c_out, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return downsample(_act(self.conv2(_act(self.conv1(h)))), 2)


class DOutput(nn.Module):
    """Level 0 of D: MinibatchStdDev, Conv3x3 (c + 1 -> c), LReLU, Conv4x4 valid (c -> c; a dense
    layer over the 4x4 map), LReLU -> features (N, c); the head reads them."""

    def __init__(self, channels: int, minibatch_std: bool) -> None:
        super().__init__()
        self.mbstd = MinibatchStdDev(group_size=4) if minibatch_std else None
        self.conv = EqualConv2d(channels + int(minibatch_std), channels, 3, padding=1)
        self.dense = EqualLinear(channels * 16, channels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.mbstd is not None:
            h = self.mbstd(h)
        return _act(self.dense(_act(self.conv(h)).flatten(1)))


class _Growing(nn.Module):
    """The growth state shared by G and D: buffers ``level`` (long) and ``alpha`` (float)."""

    levels: int
    side: int

    def _init_growth(self, side: int) -> None:
        self.side = side
        self.levels = resolution_levels(side)
        self.register_buffer("level", torch.tensor(self.levels - 1))
        self.register_buffer("alpha", torch.tensor(1.0))

    def set_growth(self, level: int, alpha: float = 1.0) -> None:
        """Make level ``level`` (resolution 4 * 2^level) the output, faded in with weight ``alpha``."""
        if not 0 <= level < self.levels:
            raise GanforgeError(f"growth level {level} is outside 0..{self.levels - 1}",
                                f"pick a level for resolutions 4..{self.side}")
        if not 0.0 <= alpha <= 1.0:
            raise GanforgeError(f"fade-in alpha {alpha} is outside [0, 1]", "pass alpha in [0, 1]")
        self.level.fill_(level)
        self.alpha.fill_(alpha)

    @property
    def growth(self) -> tuple[int, float]:
        return int(self.level), float(self.alpha)

    @property
    def resolution(self) -> int:
        """r = 4 * 2^level, the side the networks work at now."""
        return 4 << int(self.level)


def channel_schedule(side: int, width: int, max_width: int) -> list[int]:
    """c(r) for r = 4, 8, ..., side: ``width`` at r = side, doubling as r halves, capped at
    ``max_width``."""
    return [min(max_width, width * side // (4 << level)) for level in range(resolution_levels(side))]


class ProGANGenerator(Generator, _Growing):
    """z (N, z_dim) -> images (N, C, S, S), unbounded (linear toRGB); see the module docstring."""

    def __init__(self, z_dim: int, out_shape: tuple[int, int, int], width: int = 16,
                 max_width: int = 64, pixel_norm: bool = True) -> None:
        super().__init__()
        self.z_dim, self.out_shape = z_dim, tuple(out_shape)
        channels, side, _ = out_shape
        self._init_growth(side)
        cs = channel_schedule(side, width, max_width)
        self.blocks = nn.ModuleList([GInput(z_dim, cs[0], pixel_norm)] + [
            GBlock(cs[i - 1], cs[i], pixel_norm) for i in range(1, self.levels)])
        self.to_rgb = nn.ModuleList([EqualConv2d(c, channels, 1, gain=1.0) for c in cs])

    def synthesize(self, z: torch.Tensor) -> torch.Tensor:
        """Images (N, C, r, r) at the current resolution r, with the fade of the current level."""
        level, alpha = self.growth
        h = self.blocks[0](z)
        for i in range(1, level):
            h = self.blocks[i](h)
        if level == 0:
            return self.to_rgb[0](h)
        new = self.to_rgb[level](self.blocks[level](h))
        if alpha >= 1.0:
            return new
        old = upsample(self.to_rgb[level - 1](h), 2)
        return (1.0 - alpha) * old + alpha * new

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Full-size images: :meth:`synthesize` nearest-upsampled to S x S. ``y`` is ignored."""
        return upsample(self.synthesize(z), self.side // self.resolution)


class ProGANDiscriminator(Discriminator, _Growing):
    """Images (N, C, S, S) -> features (N, c(4)) -> logits (N,); see the module docstring."""

    def __init__(self, in_shape: tuple[int, int, int], width: int = 16, max_width: int = 64,
                 minibatch_std: bool = True) -> None:
        super().__init__()
        self.in_shape = tuple(in_shape)
        channels, side, _ = in_shape
        self._init_growth(side)
        cs = channel_schedule(side, width, max_width)
        self.from_rgb = nn.ModuleList([EqualConv2d(channels, c, 1) for c in cs])
        self.blocks = nn.ModuleList([DOutput(cs[0], minibatch_std)] + [
            DBlock(cs[i], cs[i - 1]) for i in range(1, self.levels)])
        self.feature_dim = cs[0]
        self.head = EqualLinear(cs[0], 1, gain=1.0)

    def features_at(self, x: torch.Tensor) -> torch.Tensor:
        """Features of images (N, C, r, r) at the current resolution r, with the fade."""
        level, alpha = self.growth
        h = _act(self.from_rgb[level](x))
        if level > 0:
            h = self.blocks[level](h)
            if alpha < 1.0:
                old = _act(self.from_rgb[level - 1](downsample(x, 2)))
                h = (1.0 - alpha) * old + alpha * h
            for i in range(level - 1, 0, -1):
                h = self.blocks[i](h)
        return self.blocks[0](h)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Critic values (N,) of images at the current resolution r (what the algorithm trains)."""
        return self.head(self.features_at(x)).squeeze(1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Features of full-size images (N, C, S, S), avg-pooled to the current resolution."""
        return self.features_at(downsample(x, self.side // self.resolution))


@register_model("progan")
def build_progan(
    sample_shape: tuple[int, ...],
    num_classes: int | None = None,
    *,
    z_dim: int = 128,
    width: int = 16,
    max_width: int = 64,
    pixel_norm: bool = True,
    minibatch_std: bool = True,
) -> tuple[ProGANGenerator, ProGANDiscriminator]:
    """The ProGAN pair for images ``sample_shape`` = (C, S, S), S a power of two >= 4.

    ``width`` is the channel count at S x S, doubled at every halving of the resolution up to
    ``max_width`` (the paper: 512 everywhere up to 32x32, halving above). ``pixel_norm`` and
    ``minibatch_std`` switch those mechanisms off for ablations. ``num_classes`` is ignored."""
    shape = square_power_of_two(sample_shape, 'progan', 4)
    z_dim = positive_int(z_dim, "z_dim", "progan")
    width = positive_int(width, "width", "progan")
    max_width = positive_int(max_width, "max_width", "progan")
    pixel_norm = flag(pixel_norm, "pixel_norm", "progan")
    minibatch_std = flag(minibatch_std, "minibatch_std", "progan")
    return (ProGANGenerator(z_dim, shape, width, max_width, pixel_norm),
            ProGANDiscriminator(shape, width, max_width, minibatch_std))


@torch.no_grad()
def progan_growth_strip(G: ProGANGenerator, z: torch.Tensor) -> list[torch.Tensor]:
    """G's images of the same codes ``z`` at every level 0..L-1 (alpha 1), each (N, C, S, S):
    what the network draws at 4x4, 8x8, ... with its current weights (the docs' growth figure).
    G's own level and alpha are restored afterwards."""
    saved = G.growth
    try:
        strips = []
        for level in range(G.levels):
            G.set_growth(level, 1.0)
            strips.append(G(z).cpu())
        return strips
    finally:
        G.set_growth(*saved)
