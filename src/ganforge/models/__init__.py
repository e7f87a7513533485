"""GAN model families, each registered by name in :data:`MODELS`.

* ``mlp`` — fully connected G and D for 2D points or flattened images (:mod:`.mlp`).
* ``dcgan`` — the DCGAN convolutional pair for square images, side divisible by 4 (:mod:`.dcgan`).
* ``stackgan`` — StackGAN's two text-conditioned stages and matching-aware discriminators
  (:mod:`.stackgan`; trained by the ``stackgan`` algorithm).

``build({"name": "dcgan", "width": 32}, (1, 28, 28))`` returns ``(generator, discriminator)``.
"""

from ganforge.models import (  # noqa: F401  (registers the built-in families)
    bagan,
    biggan,
    charrnn,
    copula,
    ctgan,
    cyclegan,
    dcgan,
    mlp,
    molgan,
    music,
    pix2pix,
    progan,
    srgan,
    stackgan,
    stylegan,
    stylegan2,
    tvae,
    vae,
    video,
)
from ganforge.models.base import MODELS, Discriminator, Generator, register_model
from ganforge.models.compose import build

__all__ = ["MODELS", "Discriminator", "Generator", "build", "register_model"]
