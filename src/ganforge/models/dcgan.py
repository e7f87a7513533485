"""DCGAN (Radford et al., 2016) for square images whose side S is divisible by 4.

The seed table, for 28 x 28 (w = ``width`` = 64, C = image channels)::

    G: z (100) -> Linear -> 7x7x256, BN, ReLU
       -> ConvTranspose 5x5 s2 -> 14x14x128, BN, ReLU
       -> ConvTranspose 5x5 s2 -> 28x28x64,  BN, ReLU
       -> Conv 5x5 s1 -> 28x28xC, tanh
    D: 28x28xC -> Conv 5x5 s2 -> 14x14x64,  LeakyReLU 0.2
               -> Conv 5x5 s2 -> 7x7x128,   LeakyReLU 0.2
               -> Conv 5x5 s2 -> 4x4x256,   LeakyReLU 0.2
               -> flatten (4096) -> Linear -> 1 logit

The same rule for any S divisible by 4: G projects to (S/4)x(S/4)x4w and doubles the side twice
(4w -> 2w -> w channels); D halves it three times (w, 2w, 4w channels, padding 2 so each conv
maps a side n to ceil(n/2), ending at ceil(S/8)) and reads the flattened map with one Linear.

Convolutions are 5x5 with padding 2; the transposed ones add ``output_padding=1`` so a side n
becomes exactly 2n ("same" padding). The projection's BatchNorm is per channel (applied after
the reshape), as in the paper. Layers followed by BatchNorm have no bias. With ``d_batchnorm``
D gets BatchNorm on its second and third convs (never on the input layer, per the paper).

Weights are initialised by the paper's rule, :func:`dcgan_init_`.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.models._checks import IMAGES, flag, positive_int, shaped
from ganforge.models.base import Discriminator, Generator, register_model
from ganforge.models.layers import MinibatchStdDev

KERNEL, PADDING = 5, 2


def conv_out_side(n: int) -> int:
    """Side after a 5x5 stride-2 conv with padding 2: floor((n + 4 - 5) / 2) + 1 = ceil(n / 2)."""
    return (n + 2 * PADDING - KERNEL) // 2 + 1


def _up(c_in: int, c_out: int) -> nn.Sequential:
    """ConvTranspose 5x5 s2 (side n -> 2n), BatchNorm, ReLU."""
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, KERNEL, stride=2, padding=PADDING, output_padding=1,
                           bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def _down(c_in: int, c_out: int, batchnorm: bool) -> nn.Sequential:
    """Conv 5x5 s2 (side n -> ceil(n/2)), optional BatchNorm, LeakyReLU 0.2."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, KERNEL, stride=2, padding=PADDING,
                                         bias=not batchnorm)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


class DCGANGenerator(Generator):
    """z (N, z_dim) -> images (N, C, S, S) in [-1, 1]. ``net`` holds the stages in order:
    ``project`` (S/4, 4w), ``up1`` (S/2, 2w), ``up2`` (S, w), ``to_image`` (S, C)."""

    def __init__(self, z_dim: int, out_shape: tuple[int, int, int], width: int = 64) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.out_shape = tuple(out_shape)
        channels, side, _ = out_shape
        s0, c0 = side // 4, 4 * width
        self.net = nn.Sequential(OrderedDict(
            project=nn.Sequential(
                nn.Linear(z_dim, c0 * s0 * s0, bias=False),
                nn.Unflatten(1, (c0, s0, s0)),
                nn.BatchNorm2d(c0),
                nn.ReLU(inplace=True),
            ),
            up1=_up(c0, 2 * width),
            up2=_up(2 * width, width),
            to_image=nn.Sequential(
                nn.Conv2d(width, channels, KERNEL, stride=1, padding=PADDING),
                nn.Tanh(),
            ),
        ))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """``y`` is accepted for the conditional interface and ignored."""
        return self.net(z)


class DCGANDiscriminator(Discriminator):
    """Images (N, C, S, S) -> features -> logits (N,). ``net`` holds the feature stages in order:
    ``down1`` (w), ``down2`` (2w), ``down3`` (4w, side ceil(S/8)), optionally ``mbstd``, then
    ``flatten``; ``head`` is the final Linear."""

    def __init__(self, in_shape: tuple[int, int, int], width: int = 64,
                 batchnorm: bool = False, minibatch_std: bool = False) -> None:
        super().__init__()
        self.in_shape = tuple(in_shape)
        channels, side, _ = in_shape
        final = conv_out_side(conv_out_side(conv_out_side(side)))
        stages = OrderedDict(
            down1=_down(channels, width, batchnorm=False),
            down2=_down(width, 2 * width, batchnorm),
            down3=_down(2 * width, 4 * width, batchnorm),
        )
        if minibatch_std:
            stages["mbstd"] = MinibatchStdDev()
        stages["flatten"] = nn.Flatten()
        self.net = nn.Sequential(stages)
        self.feature_dim = (4 * width + int(minibatch_std)) * final * final
        self.head = nn.Linear(self.feature_dim, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@torch.no_grad()
def dcgan_init_(module: nn.Module) -> None:
    """The DCGAN paper's initialisation, in place on every submodule: conv, transposed-conv and
    linear weights ~ N(0, 0.02), BatchNorm scales ~ N(1, 0.02); all biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
        else:
            continue
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def _image_shape(sample_shape: tuple[int, ...]) -> tuple[int, int, int]:
    channels, height, width = shaped(sample_shape, "dcgan", IMAGES, "use model.name=mlp for points")
    if height != width or height % 4 or height < 4:
        raise GanforgeError(
            f"model 'dcgan' needs square images with a side divisible by 4, got {height}x{width}",
            "resize the data, e.g. data.size=32",
        )
    return channels, height, width


@register_model("dcgan")
def build_dcgan(
    sample_shape: tuple[int, ...],
    num_classes: int | None = None,
    *,
    z_dim: int = 100,
    width: int = 64,
    d_batchnorm: bool = False,
    minibatch_std: bool = False,
) -> tuple[DCGANGenerator, DCGANDiscriminator]:
    """Build the DCGAN pair for images ``sample_shape`` = (C, S, S), S divisible by 4, and apply
    :func:`dcgan_init_`. ``width`` is w: G uses 4w, 2w, w channels and D uses w, 2w, 4w.

    ``minibatch_std`` appends the minibatch standard-deviation channel
    (:class:`~ganforge.models.layers.MinibatchStdDev`) before D's final dense layer.

    ``num_classes`` is accepted for the conditional interface and ignored (conditioning is
    applied generically by :mod:`ganforge.models.compose`).
    """
    shape = _image_shape(sample_shape)
    z_dim = positive_int(z_dim, "z_dim", "dcgan")
    width = positive_int(width, "width", "dcgan")
    d_batchnorm = flag(d_batchnorm, "d_batchnorm", "dcgan")
    minibatch_std = flag(minibatch_std, "minibatch_std", "dcgan")
    generator = DCGANGenerator(z_dim, shape, width)
    discriminator = DCGANDiscriminator(shape, width, d_batchnorm, minibatch_std)
    dcgan_init_(generator)
    dcgan_init_(discriminator)
    return generator, discriminator
