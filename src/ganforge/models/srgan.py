"""SRGAN's networks (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a
Generative Adversarial Network", fig. 4): the SRResNet generator and the SRGAN discriminator.

**SRResNet** G(c) for low-resolution images c (N, C, h, w) to (N, C, r h, r w), r = ``scale`` a
power of 2, with width n = ``width`` and B = ``blocks``::

    h_0 = PReLU(Conv9x9(c))                                              n channels
    h_b = h_{b-1} + BN(Conv3x3(PReLU(BN(Conv3x3(h_{b-1})))))            b = 1..B  (residual blocks)
    h   = h_0 + BN(Conv3x3(h_B))                                         the long skip
    u   = [PReLU(PixelShuffle_2(Conv3x3_{n -> 4n}(.)))] x log2 r         sub-pixel upsampling
    G(c) = Conv9x9_{n -> C}(u)            (+ bicubic(c) when ``bicubic_skip``: G learns a residual,
                                           and the last conv starts at 0, so G starts as bicubic)

PixelShuffle(r) maps (C r^2, H, W) to (C, r H, r W) with out[c, h r + i, w r + j] =
in[c r^2 + i r + j, h, w]. The paper's output is linear (no tanh); so is G's here.

**Discriminator** D(x) for (N, C, H, W), H and W multiples of 16: eight Conv3x3 layers of widths
w, w, 2w, 2w, 4w, 4w, 8w, 8w (w = ``d_width``) with strides 1, 2, 1, 2, ... (BN from the second,
LeakyReLU 0.2), Dense(16 w), LeakyReLU, Dense(1): one logit per image (the sigmoid is in the loss).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.models._checks import IMAGES, flag, positive_int, shaped
from ganforge.models.base import register_model


class ResidualBlock(nn.Module):
    """x + BN(Conv3x3(PReLU(BN(Conv3x3(x)))))."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1), nn.BatchNorm2d(width), nn.PReLU(width),
                                  nn.Conv2d(width, width, 3, 1, 1), nn.BatchNorm2d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """The generator of the module docstring; ``forward(c, generator=None)`` (G has no noise:
    ``generator`` is accepted for the image-to-image contract and ignored)."""

    def __init__(self, in_channels: int, out_channels: int, *, scale: int = 4, width: int = 64,
                 blocks: int = 16, bicubic_skip: bool = False) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.scale = in_channels, out_channels, scale
        self.bicubic_skip = bicubic_skip
        self.head = nn.Sequential(nn.Conv2d(in_channels, width, 9, 1, 4), nn.PReLU(width))
        self.blocks = nn.Sequential(*(ResidualBlock(width) for _ in range(blocks)))
        self.fuse = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1), nn.BatchNorm2d(width))
        ups: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):
            ups += [nn.Conv2d(width, 4 * width, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(width)]
        self.upsample = nn.Sequential(*ups)
        self.tail = nn.Conv2d(width, out_channels, 9, 1, 4)
        if bicubic_skip:  # start as the bicubic upsampling: the residual begins at 0
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    def forward(self, c: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        h0 = self.head(c)
        out = self.tail(self.upsample(h0 + self.fuse(self.blocks(h0))))
        if self.bicubic_skip:
            out = out + F.interpolate(c[:, :self.out_channels], scale_factor=self.scale, mode="bicubic",
                                      align_corners=False)
        return out


class SRDiscriminator(nn.Module):
    """The discriminator of the module docstring: images (N, C, H, W) -> logits (N,)."""

    def __init__(self, in_channels: int, size: tuple[int, int], *, width: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_prev = in_channels
        for i in range(8):
            c = width * 2 ** (i // 2)
            layers.append(nn.Conv2d(c_prev, c, 3, 1 + i % 2, 1))
            if i:
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.LeakyReLU(0.2))
            c_prev = c
        self.features = nn.Sequential(*layers)
        flat = c_prev * (size[0] // 16) * (size[1] // 16)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, 16 * width), nn.LeakyReLU(0.2),
                                  nn.Linear(16 * width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)


@register_model("srgan")
def build_srgan(sample_shape: tuple[int, ...], num_classes: int | None = None, *,
                in_channels: int | None = None, scale: int = 4, width: int = 64, blocks: int = 16,
                d_width: int = 64, bicubic_skip: bool = False) -> tuple[SRResNet, SRDiscriminator]:
    """SRResNet G (``in_channels`` -> C of the HR ``sample_shape`` (C, H, W), upscaling by
    ``scale``) and the SRGAN D on (C, H, W); ``num_classes`` is ignored."""
    c, h, w = shaped(sample_shape, "srgan", IMAGES, "use a paired image dataset, e.g. photo-patches")
    scale = positive_int(scale, "scale", "srgan")
    if scale & (scale - 1):
        raise GanforgeError(f"model 'srgan': scale={scale} is not a power of 2",
                            "set model.scale to 2, 4 or 8 (x2 sub-pixel steps)")
    if h % 16 or w % 16:
        raise GanforgeError(f"model 'srgan': D halves the {h}x{w} images 4 times",
                            "use HR sides that are multiples of 16")
    in_channels = c if in_channels is None else positive_int(in_channels, "in_channels", "srgan")
    G = SRResNet(in_channels, c, scale=scale, width=positive_int(width, "width", "srgan"),
                 blocks=positive_int(blocks, "blocks", "srgan"),
                 bicubic_skip=flag(bicubic_skip, "bicubic_skip", "srgan"))
    D = SRDiscriminator(c, (h, w), width=positive_int(d_width, "d_width", "srgan"))
    return G, D


__all__ = ["ResidualBlock", "SRDiscriminator", "SRResNet", "build_srgan"]
