"""Training objectives: the loss phases of one GAN update, chosen by name from the config.

An objective turns the pure equations in :mod:`ganforge.maths` into the two phases of training
(in the spirit of stylegan2-ada's loss/phase split)::

    d_loss(real_logits, fake_logits) + d_penalty(D, real, fake)   # minimised by D
    g_loss(fake_logits)                                           # minimised by G

The trainer evaluates D once per batch and hands the logits to ``d_loss``/``g_loss``, so
stabilisers (label smoothing, feature matching, AC-GAN terms) can reuse the same forward pass.
``d_phase``/``g_phase`` run a whole phase from D and the batches, for scripts and tests.
A new objective is one registered class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ganforge import maths
from ganforge.errors import GanforgeError
from ganforge.registry import Registry

OBJECTIVES: Registry = Registry("loss", section="algorithm.loss")
register_objective = OBJECTIVES.register

DiscriminatorFn = Callable[..., torch.Tensor]


@dataclass
class PhaseOutput:
    loss: torch.Tensor
    real_logits: torch.Tensor | None = None
    fake_logits: torch.Tensor | None = None


class Objective:
    """Base class; subclasses define ``d_loss`` and ``g_loss`` (and optionally ``d_penalty``).

    ``cross_entropy`` marks objectives whose D loss is the binary cross-entropy of
    Goodfellow et al., the ones one-sided label smoothing applies to.
    """

    name: str = ""
    cross_entropy: bool = False

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        raise TypeError(f"{type(self).__name__} must define d_loss")

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        raise TypeError(f"{type(self).__name__} must define g_loss")

    def d_penalty(self, D: DiscriminatorFn, real: torch.Tensor,
                  fake: torch.Tensor) -> torch.Tensor | None:
        """An extra term of D's loss that differentiates through D (gradient penalties);
        ``D`` is a callable of one batch (labels, if any, already bound)."""
        return None

    def after_d_step(self, D: torch.nn.Module) -> None:
        """Runs after each discriminator optimiser step (e.g. WGAN weight clipping)."""

    def d_phase(self, D: DiscriminatorFn, real: torch.Tensor, fake: torch.Tensor,
                y_real: torch.Tensor | None = None,
                y_fake: torch.Tensor | None = None) -> PhaseOutput:
        """The whole discriminator phase: ``d_loss`` on D's logits plus ``d_penalty``."""
        real_logits, fake_logits = D(real, y_real), D(fake, y_fake)
        loss = self.d_loss(real_logits, fake_logits)
        penalty = self.d_penalty(lambda x: D(x, y_real), real, fake)
        if penalty is not None:
            loss = loss + penalty
        return PhaseOutput(loss, real_logits.detach(), fake_logits.detach())

    def g_phase(self, D: DiscriminatorFn, fake: torch.Tensor,
                y_fake: torch.Tensor | None = None) -> PhaseOutput:
        fake_logits = D(fake, y_fake)
        return PhaseOutput(self.g_loss(fake_logits), None, fake_logits.detach())


class _StandardGAN(Objective):
    """Goodfellow et al. (2014): D minimises L_D = -E[log D(x)] - E[log(1 - D(G(z)))];
    G minimises the generator loss named by ``generator_loss``."""

    generator_loss: str = ""
    cross_entropy = True

    def d_loss(self, real_logits, fake_logits):
        return maths.discriminator_loss(real_logits, fake_logits)

    def g_loss(self, fake_logits):
        return maths.generator_loss(self.generator_loss, fake_logits)


@register_objective("non-saturating")
class NonSaturating(_StandardGAN):
    """The non-saturating GAN: G minimises -E[log D(G(z))] (strong gradients when D rejects G)."""

    name = generator_loss = "non-saturating"


@register_objective("saturating")
class Saturating(_StandardGAN):
    """The original minimax GAN: G minimises E[log(1 - D(G(z)))] (saturates when D wins)."""

    name = generator_loss = "saturating"


OBJECTIVES.register("minimax")(Saturating)


def build_objective(section: Mapping[str, Any]) -> Objective:
    return OBJECTIVES.build(section)


# --------------------------------------------------------------------------- the loss family


def _check_non_negative(value: Any, key: str, objective: str, *, strict: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
        value > 0 if strict else value >= 0) and value < float("inf")
    if not ok:
        bound = "> 0" if strict else ">= 0"
        raise GanforgeError(f"loss {objective!r}: {key}={value!r} is not a finite number {bound}",
                            f"set algorithm.loss.{key} to e.g. {OBJECTIVE_EXAMPLES[key]}")
    return float(value)


OBJECTIVE_EXAMPLES = {"clip": 0.01, "gp_weight": 10.0, "gamma": 10.0}


@register_objective("lsgan")
class LeastSquares(Objective):
    """LSGAN (Mao et al., 2017), a = 0, b = 1, c = 1:
    L_D = 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2],  L_G = 1/2 E[(D(G(z)) - 1)^2]."""

    name = "lsgan"
    d_loss = staticmethod(maths.lsgan_discriminator_loss)
    g_loss = staticmethod(maths.lsgan_generator_loss)


@register_objective("hinge")
class Hinge(Objective):
    """Hinge loss: L_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))],  L_G = -E[D(G(z))]."""

    name = "hinge"
    d_loss = staticmethod(maths.hinge_discriminator_loss)
    g_loss = staticmethod(maths.hinge_generator_loss)


@register_objective("wgan")
class WassersteinClip(Objective):
    """WGAN (Arjovsky et al., 2017): L_C = E[f(G(z))] - E[f(x)],  L_G = -E[f(G(z))], with every
    critic parameter clipped to [-clip, clip] after each critic step (a crude Lipschitz bound)."""

    name = "wgan"
    d_loss = staticmethod(maths.wasserstein_critic_loss)
    g_loss = staticmethod(maths.wasserstein_generator_loss)

    def __init__(self, clip: float = 0.01) -> None:
        self.clip = _check_non_negative(clip, "clip", self.name, strict=True)

    @torch.no_grad()
    def after_d_step(self, D: torch.nn.Module) -> None:
        for p in D.parameters():
            p.clamp_(-self.clip, self.clip)


@register_objective("wgan-gp")
class WassersteinGP(Objective):
    """WGAN-GP (Gulrajani et al., 2017): L_C = E[f(G(z))] - E[f(x)] + gp_weight * GP with
    GP = E[(||grad f(x_hat)||_2 - 1)^2] on per-sample interpolates x_hat;  L_G = -E[f(G(z))]."""

    name = "wgan-gp"
    d_loss = staticmethod(maths.wasserstein_critic_loss)
    g_loss = staticmethod(maths.wasserstein_generator_loss)

    def __init__(self, gp_weight: float = 10.0) -> None:
        self.gp_weight = _check_non_negative(gp_weight, "gp_weight", self.name)

    def d_penalty(self, D, real, fake):
        return self.gp_weight * maths.gradient_penalty(D, real, fake) if self.gp_weight else None


@register_objective("r1")
class NonSaturatingR1(Objective):
    """The non-saturating GAN with the R1 penalty (Mescheder et al., 2018):
    L_D = -E[log D(x)] - E[log(1 - D(G(z)))] + gamma / 2 * E[||grad_x l(x)||^2],
    L_G = -E[log D(G(z))]."""

    name = "r1"
    cross_entropy = True
    d_loss = staticmethod(maths.discriminator_loss)
    g_loss = staticmethod(maths.generator_loss_non_saturating)

    def __init__(self, gamma: float = 10.0) -> None:
        self.gamma = _check_non_negative(gamma, "gamma", self.name)

    def d_penalty(self, D, real, fake):
        return 0.5 * self.gamma * maths.r1_penalty(D, real) if self.gamma else None
