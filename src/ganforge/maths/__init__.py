"""Pure functions mirroring the GAN equations: the value function, losses and divergences.

Losses (:mod:`ganforge.maths.losses`) take discriminator logits as torch tensors and return
differentiable scalar tensors. Divergences (:mod:`ganforge.maths.divergences`) take densities on
a 1D grid, or discrete probability vectors, as numpy arrays and return floats.
"""

from ganforge.maths.divergences import (
    jensen_shannon,
    kl_divergence,
    mixture_density,
    optimal_discriminator,
    value_at_optimum,
)
from ganforge.maths.losses import (
    GENERATOR_LOSSES,
    binary_cross_entropy,
    discriminator_loss,
    generator_loss,
    generator_loss_non_saturating,
    generator_loss_saturating,
    value_function,
)

__all__ = [
    "GENERATOR_LOSSES",
    "binary_cross_entropy",
    "discriminator_loss",
    "generator_loss",
    "generator_loss_non_saturating",
    "generator_loss_saturating",
    "jensen_shannon",
    "kl_divergence",
    "mixture_density",
    "optimal_discriminator",
    "value_at_optimum",
    "value_function",
]
