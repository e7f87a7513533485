"""BAGAN-GP's generator (Huang & Jafari 2021, "Enhanced balancing GAN: minority-class image
generation"): the DCGAN decoder read through a learned class embedding,

    G(z, y) = decoder(z * e_y),     z ~ N(0, I),  e_y = embedding(y) in R^{z_dim}

(elementwise product), so every class shares one decoder and differs only in a per-dimension
scale of the code: what the rare class lacks in images it borrows from the decoder the
majority classes trained (Mariani et al.'s BAGAN, 2018, with the class prior replaced by the
embedding). The decoder, the embedding and the discriminator's trunk are first trained as a
class-conditional autoencoder, ``decoder(E(x) * e_y) ~ x`` (the ``bagan-gp`` algorithm, whose
encoder is D's feature trunk and a linear head). The discriminator is DCGAN's; with
``model.conditional: projection`` the composer gives it the projection head
``D(x, y) = psi(h) + <w_y, h>``, which is BAGAN-GP's ``Dense(h * e'_y)`` plus an unconditional
term ``psi``.

``model: {name: bagan, z_dim, width}``; ``num_classes`` None (an unconditional run) leaves
G = decoder(z).
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.models.base import Generator, register_model
from ganforge.models.compose import _check_labels
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator, build_dcgan


class BAGANGenerator(Generator):
    """decoder(z * embedding(y)); see the module docstring."""

    conditions_itself = True

    def __init__(self, decoder: DCGANGenerator, num_classes: int | None) -> None:
        super().__init__()
        self.decoder = decoder
        self.z_dim = decoder.z_dim
        self.out_shape = decoder.out_shape
        self.num_classes = num_classes
        self.embedding = None if num_classes is None else nn.Embedding(num_classes, self.z_dim)
        if self.embedding is not None:
            nn.init.normal_(self.embedding.weight, 0.0, 1.0)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embedding is None:
            return self.decoder(z)
        y = _check_labels(y, self.num_classes, len(z), "BAGAN generator")
        return self.decoder(z * self.embedding(y))


@register_model("bagan")
def build_bagan(
    sample_shape: tuple[int, ...], num_classes: int | None = None, *, z_dim: int = 128, width: int = 32
) -> tuple[BAGANGenerator, DCGANDiscriminator]:
    """BAGAN-GP's pair for square images (C, S, S), S divisible by 4: the DCGAN decoder and
    discriminator of ``width`` (:func:`~ganforge.models.dcgan.build_dcgan`) with the class
    embedding in front of the decoder."""
    decoder, discriminator = build_dcgan(sample_shape, num_classes, z_dim=z_dim, width=width)
    return BAGANGenerator(decoder, num_classes), discriminator
