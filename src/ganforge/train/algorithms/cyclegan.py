"""CycleGAN (Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks"): two generators G = G_AB: A -> B and F = G_BA: B -> A, trained on
*unpaired* images a ~ A (the batches' ``cond``) and b ~ B (the batches' ``x``), with a
discriminator per domain, D_A and D_B.

Networks (``model: {name: cyclegan}``, :mod:`ganforge.models.cyclegan`). With the least-squares
GAN losses (Mao et al. 2017), each a mean over every patch logit::

    L_D(D, real, fake) = 1/2 [ (D(real) - 1)^2 + D(fake)^2 ]        fake drawn from the image pool
    L_GAN(D, fake)     = (D(fake) - 1)^2
    L_cyc  = mean |F(G(a)) - a| + mean |G(F(b)) - b|
    L_idt  = mean |G(b) - b| + mean |F(a) - a|
    L_G    = L_GAN(D_B, G(a)) + L_GAN(D_A, F(b)) + lambda_cyc L_cyc + lambda_idt lambda_cyc L_idt

``lambda_cycle`` = 10 and ``lambda_identity`` = 0.5 (the paper's; the identity term is weighted
relative to the cycle term, so 0.5 means 5). Phases: ``G`` (one optimiser over both generators),
then ``D`` (the optimisers ``D_A`` and ``D_B``, each on its own L_D: they share no parameters, so
one phase on the sum is the two updates). As in the reference implementation, D's phase reuses
the reals and fakes of the G phase of the same step (``uses_data`` false): the fakes pass
through an :class:`~ganforge.train.image_pool.ImagePool` of ``pool_size`` (50) images per
discriminator, whose coin flips come from the algorithm's generator (seed + 4); both pools and
the generator are checkpointed, so a resumed run is bit-identical.

The paper's learning-rate schedule (constant for the first half, then linear to 0) is the
Trainer's ``train.lr_schedule: linear`` with ``train.lr_decay_start`` = steps / 2 (the presets
set it). Logged: ``loss_G``, ``loss_D``, ``loss_G_adv``, ``cycle``, ``identity`` (unweighted),
``loss_D_A``, ``loss_D_B``, ``D_A_real``, ``D_A_fake``, ``D_B_real``, ``D_B_fake`` (mean patch
outputs, LSGAN targets 1 and 0), the gradient norms.

``translate`` (and so ``ganforge translate`` / ``sample`` / ``evaluate``) applies G_AB.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ganforge.config import ExperimentConfig
from ganforge.data.base import AnyDataset
from ganforge.errors import GanforgeError
from ganforge.train.algorithms.base import OptimizerSpec, Phase, option_weight, register_algorithm
from ganforge.train.algorithms.image_to_image import ImageToImage, ImageToImageOptions, displayable
from ganforge.train.image_pool import ImagePool

ADAM_CYCLEGAN = {"name": "adam", "lr": 2e-4, "betas": (0.5, 0.999)}


def lsgan_d_loss(real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
    """L_D = 1/2 [mean (D(real) - 1)^2 + mean D(fake)^2]."""
    return 0.5 * ((real_out - 1).pow(2).mean() + fake_out.pow(2).mean())


def lsgan_g_loss(fake_out: torch.Tensor) -> torch.Tensor:
    """L_GAN = mean (D(G(x)) - 1)^2."""
    return (fake_out - 1).pow(2).mean()


def cycle_loss(a: torch.Tensor, a_rec: torch.Tensor, b: torch.Tensor, b_rec: torch.Tensor) -> torch.Tensor:
    """L_cyc = mean |F(G(a)) - a| + mean |G(F(b)) - b| (``a_rec`` = F(G(a)), ``b_rec`` = G(F(b)))."""
    return (a_rec - a).abs().mean() + (b_rec - b).abs().mean()


def identity_loss(a: torch.Tensor, f_a: torch.Tensor, b: torch.Tensor, g_b: torch.Tensor) -> torch.Tensor:
    """L_idt = mean |G(b) - b| + mean |F(a) - a| (``g_b`` = G(b), ``f_a`` = F(a))."""
    return (g_b - b).abs().mean() + (f_a - a).abs().mean()


@register_algorithm("cyclegan")
class CycleGAN(ImageToImage):
    """CycleGAN; see the module docstring. Options (``algorithm: {name: cyclegan, ...}``):
    ``lambda_cycle`` (10), ``lambda_identity`` (0.5, relative to lambda_cycle), ``pool_size``
    (50), ``cond_shape`` (recorded by the run; leave it unset)."""

    name = "cyclegan"
    data_kind = "unpaired"
    generator_name = "G_AB"
    ema_networks = ("G_AB",)
    columns = ("loss_G", "loss_D", "loss_G_adv", "cycle", "identity", "loss_D_A", "loss_D_B",
               "D_A_real", "D_A_fake", "D_B_real", "D_B_fake", "grad_norm_G", "grad_norm_D_A",
               "grad_norm_D_B")

    @dataclass
    class Options(ImageToImageOptions):
        lambda_cycle: float = 10.0
        lambda_identity: float = 0.5
        pool_size: int = 50

        def __post_init__(self) -> None:
            option_weight(self.lambda_cycle, "lambda_cycle", "set algorithm.lambda_cycle=10 (the paper's)")
            option_weight(self.lambda_identity, "lambda_identity",
                          "set algorithm.lambda_identity=0.5 (the paper's) or 0")

    def __init__(self, cfg: ExperimentConfig, dataset: AnyDataset | None, *,
                 sample_shape: tuple[int, ...], num_classes: int | None, device: torch.device,
                 restoring: bool = False) -> None:
        super().__init__(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes,
                         device=device)
        self.lambda_cycle, self.lambda_identity = self.options.lambda_cycle, self.options.lambda_identity
        pool_size = self.options.pool_size
        c_a, h_a, w_a = self.cond_shape
        c_b, h_b, w_b = self.sample_shape
        if (h_a, w_a) != (h_b, w_b):
            raise GanforgeError(f"CycleGAN maps images of one size, and domain A is {h_a}x{w_a} but "
                                f"domain B {h_b}x{w_b}", "resize both domains to one size")
        if c_a != c_b and self.lambda_identity > 0:
            raise GanforgeError(f"the identity loss feeds B images to G_AB, and domain A has {c_a} "
                                f"channel(s) but domain B {c_b}", "set algorithm.lambda_identity=0")
        nets = self.build_networks(cfg, num_classes, "domain A has")
        if not (isinstance(nets, tuple) and len(nets) == 4):
            raise GanforgeError(f"model {cfg.model['name']!r} does not build CycleGAN's four networks",
                                "use model.name=cyclegan with algorithm cyclegan")
        self.G_AB, self.G_BA, self.D_A, self.D_B = (net.to(device) for net in nets)
        self.G = self.G_AB
        self.networks = {"G_AB": self.G_AB, "G_BA": self.G_BA, "D_A": self.D_A, "D_B": self.D_B}
        self.pool_rng = torch.Generator().manual_seed(cfg.seed + 4)
        self.pool_A, self.pool_B = ImagePool(pool_size), ImagePool(pool_size)
        self._cache: tuple[int, dict[str, torch.Tensor]] | None = None   # (step, G phase's images)

    # ------------------------------------------------------------------ the Trainer's contract
    def optimizers(self) -> dict[str, OptimizerSpec]:
        both = nn.ModuleDict({"G_AB": self.G_AB, "G_BA": self.G_BA})
        return {"G": OptimizerSpec(both, dict(ADAM_CYCLEGAN)),
                "D_A": OptimizerSpec(self.D_A, dict(ADAM_CYCLEGAN)),
                "D_B": OptimizerSpec(self.D_B, dict(ADAM_CYCLEGAN))}

    def phases(self) -> list[Phase]:
        return [Phase("G", ("G",), loss=self.g_loss),
                Phase("D", ("D_A", "D_B"), uses_data=False, loss=self.d_loss)]

    def g_loss(self, batch: dict[str, torch.Tensor],
               step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The G phase: both generators' adversarial, cycle and identity terms; keeps the reals
        and fakes for the D phase of the same step."""
        loss, stats, cache = self._g_loss(batch["cond"].to(self.device), batch["x"].to(self.device))
        self._cache = (step, cache)
        return loss, stats

    def d_loss(self, batch: None, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The D phase: both discriminators' LSGAN losses on the G phase's reals and (pooled)
        fakes."""
        if self._cache is None or self._cache[0] != step:
            raise GanforgeError("CycleGAN's D phase ran without a G phase before it in the same step",
                                "keep the phases' default order and schedule (G, then D, every step)")
        c, self._cache = self._cache[1], None
        return self._d_loss(c["a"], c["b"], c["fake_a"], c["fake_b"])

    def _g_loss(self, a: torch.Tensor, b: torch.Tensor
                ) -> tuple[torch.Tensor, dict[str, float], dict[str, torch.Tensor]]:
        """L_G, its stats, and the reals and (detached) fakes the D phase reuses."""
        fake_b, fake_a = self.G_AB(a), self.G_BA(b)
        adv = lsgan_g_loss(self.D_B(fake_b)) + lsgan_g_loss(self.D_A(fake_a))
        cyc = cycle_loss(a, self.G_BA(fake_b), b, self.G_AB(fake_a))
        loss = adv + self.lambda_cycle * cyc
        stats = {"loss_G_adv": adv.item(), "cycle": cyc.item()}
        if self.lambda_identity > 0:
            idt = identity_loss(a, self.G_BA(a), b, self.G_AB(b))
            loss = loss + self.lambda_identity * self.lambda_cycle * idt
            stats["identity"] = idt.item()
        return loss, stats, {"a": a, "b": b, "fake_a": fake_a.detach(), "fake_b": fake_b.detach()}

    def _d_loss(self, a: torch.Tensor, b: torch.Tensor, fake_a: torch.Tensor,
                fake_b: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        old_a = self.pool_A.query(fake_a, self.pool_rng)
        old_b = self.pool_B.query(fake_b, self.pool_rng)
        real_a, fake_a_out = self.D_A(a), self.D_A(old_a)
        real_b, fake_b_out = self.D_B(b), self.D_B(old_b)
        loss_a, loss_b = lsgan_d_loss(real_a, fake_a_out), lsgan_d_loss(real_b, fake_b_out)
        stats = {"loss_D_A": loss_a.item(), "loss_D_B": loss_b.item(),
                 "D_A_real": real_a.detach().mean().item(), "D_A_fake": fake_a_out.detach().mean().item(),
                 "D_B_real": real_b.detach().mean().item(), "D_B_fake": fake_b_out.detach().mean().item()}
        return loss_a + loss_b, stats

    def input_multiple(self, network: nn.Module) -> int:
        return network.multiple  # the ResNet generator halves every side twice

    def progress_text(self, row: Mapping[str, float]) -> str:
        return "  ".join(f"{c} {row[c]:.3f}" for c in ("loss_D_A", "loss_D_B", "loss_G_adv", "cycle")
                         if c in row)

    # ------------------------------------------------------------------ pictures
    @torch.no_grad()
    def panels(self, n: int | None = None, network: nn.Module | None = None,
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """{"input" a, "output" G(a), "cycle" F(G(a)), "B example" b, "F(b)"} for the fixed
        images (the data are unpaired: b is no partner of a)."""
        a, b = self.fixed_pairs(n)
        out = self.translate(a, network, generator)
        return {"input": displayable(a), "output": out,
                "cycle": displayable(self.translate(out, self.G_BA, generator)),
                "B example": b, "F(b)": displayable(self.translate(b, self.G_BA, generator))}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "pool_rng": self.pool_rng.get_state(),
                "pool_A": self.pool_A.state_dict(), "pool_B": self.pool_B.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.pool_rng.set_state(state["pool_rng"])
        self.pool_A.load_state_dict(state["pool_A"], self.device)
        self.pool_B.load_state_dict(state["pool_B"], self.device)
