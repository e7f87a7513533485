"""The fully connected GAN (Goodfellow et al., 2014) for 2D points and flattened images.

Architecture (``slope`` = LeakyReLU negative slope, 0.2 by default)::

    G: z (z_dim) -> [Linear -> (BatchNorm1d) -> LeakyReLU] per g_hidden -> Linear -> prod(shape)
       -> tanh for images (C, H, W), identity for points (D,) -> reshape to sample_shape
    D: x flattened -> [Linear -> LeakyReLU -> (Dropout)] per d_hidden (the features h)
       -> Linear (the head) -> 1 logit

Spectral norm, PacGAN packing and minibatch layers are generic ``stabilisers`` options
(:mod:`ganforge.models.compose`), not keys of this family.

Reference preset, the seed's MNIST GAN (1 x 28 x 28)::

    model: {name: mlp, z_dim: 100, g_hidden: [256, 512, 1024], d_hidden: [1024, 512, 256],
            d_dropout: 0.3}

    G: 100 -> 256 -> 512 -> 1024 -> 784, tanh;  D: 784 -> 1024 -> 512 -> 256 -> 1;
    LeakyReLU 0.2 throughout, dropout 0.3 after each hidden activation of D.

Layers keep PyTorch's default initialisation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.models._checks import (
    flag,
    non_negative,
    positive_int,
    positive_ints,
    probability,
)
from ganforge.models.base import Discriminator, Generator, register_model


def _hidden_stack(in_dim: int, widths: Sequence[int], *, slope: float, batchnorm: bool = False,
                  dropout: float = 0.0) -> tuple[nn.Sequential, int]:
    """``[Linear -> (BN) -> LeakyReLU -> (Dropout)]`` per width; returns (stack, output dim)."""
    layers: list[nn.Module] = []
    for width in widths:
        # A bias before BatchNorm is cancelled by its mean subtraction.
        layers.append(nn.Linear(in_dim, width, bias=not batchnorm))
        if batchnorm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.LeakyReLU(slope))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_dim = width
    return nn.Sequential(*layers), in_dim


class MLPGenerator(Generator):
    """z (N, z_dim) -> samples (N, *out_shape); tanh output for images, linear for points."""

    def __init__(self, z_dim: int, out_shape: tuple[int, ...], hidden: Sequence[int], *,
                 slope: float = 0.2, batchnorm: bool = False) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.out_shape = tuple(out_shape)
        self.hidden, width = _hidden_stack(z_dim, hidden, slope=slope, batchnorm=batchnorm)
        self.out = nn.Linear(width, math.prod(self.out_shape))
        self.squash: nn.Module = nn.Tanh() if len(self.out_shape) == 3 else nn.Identity()

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """``y`` is accepted for the conditional interface and ignored."""
        return self.squash(self.out(self.hidden(z))).unflatten(1, self.out_shape)


class MLPDiscriminator(Discriminator):
    """Samples (N, *in_shape), flattened -> features (N, d_hidden[-1]) -> real-vs-fake logits (N,)."""

    flat_input = True  # reads x.flatten(1): generic options append to the flat vector

    def __init__(self, in_shape: tuple[int, ...], hidden: Sequence[int], *, slope: float = 0.2,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.hidden, self.feature_dim = _hidden_stack(math.prod(self.in_shape), hidden, slope=slope,
                                                      dropout=dropout)
        self.head = nn.Linear(self.feature_dim, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden(x.flatten(1))


@register_model("mlp")
def build_mlp(
    sample_shape: tuple[int, ...],
    num_classes: int | None = None,
    *,
    z_dim: int = 64,
    g_hidden: Sequence[int] = (256, 256),
    d_hidden: Sequence[int] = (256, 256),
    slope: float = 0.2,
    d_dropout: float = 0.0,
    g_batchnorm: bool = False,
    prior: str = "normal",
    prior_df: float = 3.0,
) -> tuple[MLPGenerator, MLPDiscriminator]:
    """Build the fully connected G and D for ``sample_shape`` (points (D,) or images (C, H, W)).

    ``num_classes`` is accepted for the conditional interface and ignored (conditioning is
    applied generically by :mod:`ganforge.models.compose`). ``prior``: the latent distribution,
    ``normal`` N(0, I), ``uniform`` U(-1, 1)^z_dim or ``student-t`` (independent coordinates with
    ``prior_df`` degrees of freedom: a heavy-tailed latent whose outputs keep tail index
    ``prior_df``, :mod:`ganforge.maths.priors`).
    """
    shape = tuple(sample_shape)
    if len(shape) not in (1, 3) or any(not isinstance(d, int) or d < 1 for d in shape):
        raise GanforgeError(f"model 'mlp' cannot generate samples of shape {shape}",
                            "use points (D,) or images (C, H, W)")
    z_dim = positive_int(z_dim, "z_dim", "mlp")
    g_hidden = positive_ints(g_hidden, "g_hidden", "mlp")
    d_hidden = positive_ints(d_hidden, "d_hidden", "mlp")
    slope = non_negative(slope, "slope", "mlp")
    d_dropout = probability(d_dropout, "d_dropout", "mlp")
    g_batchnorm = flag(g_batchnorm, "g_batchnorm", "mlp")
    generator = MLPGenerator(z_dim, shape, g_hidden, slope=slope, batchnorm=g_batchnorm)
    generator.set_prior(prior, prior_df)
    discriminator = MLPDiscriminator(shape, d_hidden, slope=slope, dropout=d_dropout)
    return generator, discriminator
