"""Pure functions mirroring the GAN equations: the value function, losses and divergences.

Losses (:mod:`ganforge.maths.losses`) take discriminator logits as torch tensors and return
differentiable scalar tensors; gradient penalties (:mod:`ganforge.maths.penalties`) take the
discriminator itself. Divergences (:mod:`ganforge.maths.divergences`) take densities on
a 1D grid, or discrete probability vectors, as numpy arrays and return floats. Tail indices
(:mod:`ganforge.maths.tails`: Hill's estimator, the Hill plot, Pareto QQ points) take samples
as numpy arrays.
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
    hinge_discriminator_loss,
    hinge_generator_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    value_function,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)
from ganforge.maths.penalties import gradient_penalty, r1_penalty
from ganforge.maths.regularisers import (
    HistoricalAverage,
    ema_decay_at,
    feature_matching_loss,
    historical_averaging_penalty,
    instance_noise_std,
    label_smoothing_term,
    orthogonal_regularisation,
)
from ganforge.maths.tails import hill_curve, hill_estimator, pareto_qq
from ganforge.maths.vae import (
    bernoulli_log_likelihood,
    gaussian_log_likelihood,
    iwae_bound,
    kl_standard_normal,
    kl_warmup_weight,
    log_normal_diag,
    log_normal_standard,
    reparameterise,
)

__all__ = [
    "GENERATOR_LOSSES",
    "binary_cross_entropy",
    "discriminator_loss",
    "generator_loss",
    "generator_loss_non_saturating",
    "generator_loss_saturating",
    "gradient_penalty",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "jensen_shannon",
    "kl_divergence",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "mixture_density",
    "optimal_discriminator",
    "r1_penalty",
    "value_at_optimum",
    "value_function",
    "wasserstein_critic_loss",
    "wasserstein_generator_loss",
    "HistoricalAverage",
    "ema_decay_at",
    "feature_matching_loss",
    "historical_averaging_penalty",
    "instance_noise_std",
    "label_smoothing_term",
    "orthogonal_regularisation",
    "hill_curve",
    "hill_estimator",
    "pareto_qq",
    "bernoulli_log_likelihood",
    "gaussian_log_likelihood",
    "iwae_bound",
    "kl_standard_normal",
    "kl_warmup_weight",
    "log_normal_diag",
    "log_normal_standard",
    "reparameterise",
]
