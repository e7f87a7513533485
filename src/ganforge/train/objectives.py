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
