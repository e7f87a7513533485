"""Training objectives: the loss phases of one GAN update, chosen by name from the config.

An objective turns the pure equations in :mod:`ganforge.maths` into the two phases of training
(in the spirit of stylegan2-ada's loss/phase split)::

    d_phase(D, real, fake) -> PhaseOutput   # minimised by the discriminator
    g_phase(D, fake)       -> PhaseOutput   # minimised by the generator

Phases take the discriminator itself, not only its logits, so that later objectives (gradient
penalties, R1) can differentiate through D. A new objective is one registered class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ganforge import maths
from ganforge.errors import GanforgeError
from ganforge.registry import Registry

OBJECTIVES: Registry = Registry("loss")
register_objective = OBJECTIVES.register


@dataclass
class PhaseOutput:
    loss: torch.Tensor
    real_logits: torch.Tensor | None = None
    fake_logits: torch.Tensor | None = None


class Objective:
    """Base class; subclasses implement ``d_phase`` and ``g_phase``."""

    name: str = ""

    def d_phase(self, D: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor,
                y_real: torch.Tensor | None = None,
                y_fake: torch.Tensor | None = None) -> PhaseOutput:
        raise TypeError(f"{type(self).__name__} must define d_phase")

    def g_phase(self, D: torch.nn.Module, fake: torch.Tensor,
                y_fake: torch.Tensor | None = None) -> PhaseOutput:
        raise TypeError(f"{type(self).__name__} must define g_phase")

    def after_d_step(self, D: torch.nn.Module) -> None:
        """Runs after each discriminator optimiser step (e.g. WGAN weight clipping)."""


class _StandardGAN(Objective):
    """Goodfellow et al. (2014): D minimises L_D = -E[log D(x)] - E[log(1 - D(G(z)))];
    G minimises the generator loss named by ``generator_loss``."""

    generator_loss: str = ""

    def d_phase(self, D, real, fake, y_real=None, y_fake=None) -> PhaseOutput:
        real_logits, fake_logits = D(real, y_real), D(fake, y_fake)
        loss = maths.discriminator_loss(real_logits, fake_logits)
        return PhaseOutput(loss, real_logits.detach(), fake_logits.detach())

    def g_phase(self, D, fake, y_fake=None) -> PhaseOutput:
        fake_logits = D(fake, y_fake)
        loss = maths.generator_loss(self.generator_loss, fake_logits)
        return PhaseOutput(loss, None, fake_logits.detach())


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
                            f"set loss.{key} to e.g. {OBJECTIVE_EXAMPLES[key]}")
    return float(value)


OBJECTIVE_EXAMPLES = {"clip": 0.01, "gp_weight": 10.0, "gamma": 10.0}


class _PairedLoss(Objective):
    """D and G losses that read D's raw outputs: ``d_loss(real, fake)`` and ``g_loss(fake)``."""

    @staticmethod
    def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        raise TypeError("subclasses define d_loss")

    @staticmethod
    def g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
        raise TypeError("subclasses define g_loss")

    def d_phase(self, D, real, fake, y_real=None, y_fake=None) -> PhaseOutput:
        real_logits, fake_logits = D(real, y_real), D(fake, y_fake)
        loss = self.d_loss(real_logits, fake_logits)
        return PhaseOutput(loss, real_logits.detach(), fake_logits.detach())

    def g_phase(self, D, fake, y_fake=None) -> PhaseOutput:
        fake_logits = D(fake, y_fake)
        return PhaseOutput(self.g_loss(fake_logits), None, fake_logits.detach())


@register_objective("lsgan")
class LeastSquares(_PairedLoss):
    """LSGAN (Mao et al., 2017), a = 0, b = 1, c = 1:
    L_D = 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2],  L_G = 1/2 E[(D(G(z)) - 1)^2]."""

    name = "lsgan"
    d_loss = staticmethod(maths.lsgan_discriminator_loss)
    g_loss = staticmethod(maths.lsgan_generator_loss)


@register_objective("hinge")
class Hinge(_PairedLoss):
    """Hinge loss: L_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))],  L_G = -E[D(G(z))]."""

    name = "hinge"
    d_loss = staticmethod(maths.hinge_discriminator_loss)
    g_loss = staticmethod(maths.hinge_generator_loss)


@register_objective("wgan")
class WassersteinClip(_PairedLoss):
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
class WassersteinGP(_PairedLoss):
    """WGAN-GP (Gulrajani et al., 2017): L_C = E[f(G(z))] - E[f(x)] + gp_weight * GP with
    GP = E[(||grad f(x_hat)||_2 - 1)^2] on per-sample interpolates x_hat;  L_G = -E[f(G(z))]."""

    name = "wgan-gp"
    g_loss = staticmethod(maths.wasserstein_generator_loss)

    def __init__(self, gp_weight: float = 10.0) -> None:
        self.gp_weight = _check_non_negative(gp_weight, "gp_weight", self.name)

    def d_phase(self, D, real, fake, y_real=None, y_fake=None) -> PhaseOutput:
        real_logits, fake_logits = D(real, y_real), D(fake, y_fake)
        loss = maths.wasserstein_critic_loss(real_logits, fake_logits)
        if self.gp_weight:
            loss = loss + self.gp_weight * maths.gradient_penalty(D, real, fake)
        return PhaseOutput(loss, real_logits.detach(), fake_logits.detach())


@register_objective("r1")
class NonSaturatingR1(_PairedLoss):
    """The non-saturating GAN with the R1 penalty (Mescheder et al., 2018):
    L_D = -E[log D(x)] - E[log(1 - D(G(z)))] + gamma / 2 * E[||grad_x l(x)||^2],
    L_G = -E[log D(G(z))]."""

    name = "r1"
    g_loss = staticmethod(maths.generator_loss_non_saturating)

    def __init__(self, gamma: float = 10.0) -> None:
        self.gamma = _check_non_negative(gamma, "gamma", self.name)

    def d_phase(self, D, real, fake, y_real=None, y_fake=None) -> PhaseOutput:
        real_logits, fake_logits = D(real, y_real), D(fake, y_fake)
        loss = maths.discriminator_loss(real_logits, fake_logits)
        if self.gamma:
            loss = loss + 0.5 * self.gamma * maths.r1_penalty(D, real)
        return PhaseOutput(loss, real_logits.detach(), fake_logits.detach())
