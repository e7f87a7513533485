"""CycleGAN's networks (Zhu et al. 2017, appendix 7.2): two ResNet generators and two PatchGANs.

**ResNet generator** G: (N, C_in, H, W) -> (N, C_out, H, W) in [-1, 1], H and W multiples of 4.
With ``width`` w and ``n_blocks`` n, in the paper's notation (c7s1-k: 7x7 conv, stride 1, k
filters, instance norm, ReLU; dk: 3x3 conv stride 2; Rk: a residual block of two 3x3 convs;
uk: 3x3 fractionally strided conv, stride 1/2)::

    c7s1-w, d2w, d4w, R4w x n, u2w, uw, c7s1-C_out (tanh, no norm)

Reflection padding before every 7x7 and 3x3 stride-1 conv (as the paper does to reduce
artefacts), instance norm (no affine parameters) after every other conv; a residual block is
h + Norm(Conv(ReLU(Norm(Conv(h))))). The paper uses w = 64 and n = 6 (128x128) or 9 (256x256);
for 32x32 images a few blocks of a narrow net suffice (defaults w = 16, n = 3). G has no noise:
``forward(x, generator)`` accepts and ignores a generator so the image-to-image tools can call
every family alike.

**Discriminators** D_A, D_B: pix2pix's PatchGAN (:class:`~ganforge.models.pix2pix.PatchDiscriminator`)
on *one* image (CycleGAN's D is unconditional: it judges whether an image belongs to its domain),
one logit per ``receptive_field`` patch; instance norm as in the paper.

``build_cyclegan`` returns ``(G_AB, G_BA, D_A, D_B)``: G_AB maps domain A (the inputs, ``cond``)
to domain B (the targets, ``x``), D_B judges domain B; G_BA and D_A the other way.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.models._checks import IMAGES, positive_int, shaped
from ganforge.models.base import register_model
from ganforge.models.pix2pix import NORMS, RECEPTIVE_FIELDS, PatchDiscriminator, pix2pix_init_

#: the ResNet generator halves the sides twice
MULTIPLE = 4


def _norm(kind: str, channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels) if kind == "instance" else nn.BatchNorm2d(channels)


class ResidualBlock(nn.Module):
    """h + Norm(Conv3x3(ReLU(Norm(Conv3x3(h))))), reflection padding, ``channels`` throughout."""

    def __init__(self, channels: int, norm: str = "instance") -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(norm, channels), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(norm, channels))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.body(h)


class ResnetGenerator(nn.Module):
    """The ResNet generator of the module docstring (c7s1-w, d2w, d4w, R4w x n, u2w, uw, c7s1-C)."""

    multiple = MULTIPLE
    depth = 2

    def __init__(self, in_channels: int, out_shape: tuple[int, int, int], *, width: int = 16,
                 n_blocks: int = 3, norm: str = "instance") -> None:
        super().__init__()
        self.in_channels, self.out_shape = in_channels, tuple(out_shape)
        self.out_channels = out_shape[0]
        w = width
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, w, 7),
                                   _norm(norm, w), nn.ReLU()]
        for k in (1, 2):  # d2w, d4w
            layers += [nn.Conv2d(w * 2 ** (k - 1), w * 2 ** k, 3, 2, 1), _norm(norm, w * 2 ** k), nn.ReLU()]
        layers += [ResidualBlock(4 * w, norm) for _ in range(n_blocks)]
        for k in (2, 1):  # u2w, uw
            layers += [nn.ConvTranspose2d(w * 2 ** k, w * 2 ** (k - 1), 3, 2, 1, output_padding=1),
                       _norm(norm, w * 2 ** (k - 1)), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(w, self.out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise GanforgeError(f"the generator takes images with {self.in_channels} channel(s), got "
                                f"shape {tuple(x.shape)}", f"give (N, {self.in_channels}, H, W) inputs")
        h, w = x.shape[-2:]
        if h % MULTIPLE or w % MULTIPLE:
            raise GanforgeError(f"the ResNet generator takes sides that are multiples of {MULTIPLE}, "
                                f"got {h}x{w}", "resize or pad the images, e.g. to 32x32")
        return self.net(x)


class ImageDiscriminator(nn.Module):
    """An unconditional PatchGAN: D(x) -> logits (N, 1, H', W'), pix2pix's
    :class:`PatchDiscriminator` with no input image beside ``x``."""

    def __init__(self, channels: int, *, receptive_field: int = 70, width: int = 64,
                 norm: str = "instance") -> None:
        super().__init__()
        self.receptive_field = receptive_field
        self.patch = PatchDiscriminator(0, channels, receptive_field=receptive_field, width=width, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.patch.net(x)


@register_model("cyclegan")
def build_cyclegan(sample_shape: tuple[int, ...], num_classes: int | None = None, *,
                   in_channels: int | None = None, width: int = 16, n_blocks: int = 3,
                   d_width: int | None = None, receptive_field: int = 70, norm: str = "instance",
                   ) -> tuple[ResnetGenerator, ResnetGenerator, ImageDiscriminator, ImageDiscriminator]:
    """(G_AB, G_BA, D_A, D_B) for domain B images ``sample_shape`` (C_B, H, W) and domain A
    images of ``in_channels`` channels (default C_B; the algorithm passes its data's), the same
    H x W. ``d_width`` defaults to ``width``. Weights ~ N(0, 0.02) as in the paper. ``num_classes``
    is ignored."""
    c_b, h, w = shaped(sample_shape, "cyclegan", IMAGES, "use an unpaired image dataset")
    if h % MULTIPLE or w % MULTIPLE:
        raise GanforgeError(f"model 'cyclegan' halves the sides twice, and the images are {h}x{w}",
                            f"use sides that are multiples of {MULTIPLE}, e.g. 32x32")
    c_a = c_b if in_channels is None else positive_int(in_channels, "in_channels", "cyclegan")
    width = positive_int(width, "width", "cyclegan")
    d_width = width if d_width is None else positive_int(d_width, "d_width", "cyclegan")
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 0:
        raise GanforgeError(f"model 'cyclegan': n_blocks={n_blocks!r} is not a count >= 0",
                            "set model.n_blocks to e.g. 3 (32x32), 6 or 9 (the paper's)")
    if receptive_field not in RECEPTIVE_FIELDS or isinstance(receptive_field, bool):
        raise GanforgeError(f"model 'cyclegan': receptive_field={receptive_field!r} is not one of "
                            f"{', '.join(map(str, RECEPTIVE_FIELDS))}",
                            "set model.receptive_field=70 (the paper's), 34, 16 or 1")
    if norm not in NORMS:
        raise GanforgeError(f"model 'cyclegan': unknown norm {norm!r}", f"choose one of: {', '.join(NORMS)}")
    nets = (ResnetGenerator(c_a, (c_b, h, w), width=width, n_blocks=n_blocks, norm=norm),
            ResnetGenerator(c_b, (c_a, h, w), width=width, n_blocks=n_blocks, norm=norm),
            ImageDiscriminator(c_a, receptive_field=receptive_field, width=d_width, norm=norm),
            ImageDiscriminator(c_b, receptive_field=receptive_field, width=d_width, norm=norm))
    for net in nets:
        pix2pix_init_(net)
    return nets


__all__ = ["ImageDiscriminator", "ResidualBlock", "ResnetGenerator", "build_cyclegan"]
