"""Ways of training, one file each, registered by name in :data:`ALGORITHMS`.

* ``gan`` — a generator against a discriminator: every loss, stabiliser and conditioning mode
  (:mod:`.gan`).
* ``vae`` — the variational autoencoder, trained on the ELBO (:mod:`.vae`).
* ``dp-gan`` — a GAN whose discriminator trains with DP-SGD (Opacus, ``pip install -e ".[privacy]"``;
  its ``algorithm.privacy`` option) (:mod:`.dpgan`).
* ``ctgan`` / ``tvae`` / ``copula`` — synthetic table rows: the conditional tabular GAN, the
  tabular VAE and the Gaussian copula baseline (:mod:`.ctgan`, :mod:`.tvae`, :mod:`.copula`,
  sharing :mod:`.tabular`).
* ``pianoroll-gan`` / ``pianoroll-lm`` — music: MuseGAN or C-RNN-GAN phrases, and the LSTM
  language-model baseline (:mod:`.music`).
* ``molgan`` / ``smiles-lm`` — molecules: MolGAN's graphs with its reward network, and the
  CharRNN SMILES language model (MOSES' baseline) (:mod:`.molecules`).
* ``bagan-gp`` — a class-conditional GAN for imbalanced data, initialised by a class-conditional
  autoencoder, with class-balanced real batches (:mod:`.bagan`).
* ``stackgan`` — text-to-image StackGAN: stage I then stage II, matching-aware discriminators
  (:mod:`.stackgan`).

Configs choose one with ``algorithm: {name: ..., <its options>}`` (each algorithm's ``Options``
dataclass); see :mod:`.base` for the contract.
"""

from ganforge.train.algorithms import (  # noqa: F401  (registers the built-in algorithms)
    bagan,
    biggan,
    colorize,
    copula,
    ctgan,
    cyclegan,
    dpgan,
    gan,
    inpaint,
    molecules,
    music,
    pix2pix,
    progan,
    srgan,
    stackgan,
    stylegan2,
    tvae,
    vae,
    video,
)
from ganforge.train.algorithms.base import (
    ALGORITHMS,
    Algorithm,
    OptimizerSpec,
    Phase,
    build_algorithm,
    register_algorithm,
)

__all__ = ["ALGORITHMS", "Algorithm", "OptimizerSpec", "Phase", "build_algorithm", "register_algorithm"]
