"""pix2pix (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial
Networks"): a conditional GAN whose G maps an input image c to an output, trained with an L1
term towards the paired target x.

Networks (``model: {name: pix2pix}``): the U-Net ``G`` and the PatchGAN ``D`` of
:mod:`ganforge.models.pix2pix`; D scores the pair (c, image) with one logit per patch. With
BCE(l, t) the mean over every patch logit of the binary cross-entropy with target t::

    D:  L_D = 1/2 [ BCE(D(c, x), 1) + BCE(D(c, G(c)), 0) ]      G(c) detached (the paper halves L_D)
    G:  L_G = BCE(D(c, G(c)), 1) + lambda * mean |x - G(c)|       non-saturating cGAN term + L1

``lambda`` = ``l1_weight`` (100 in the paper). ``adversarial: false`` drops D entirely (no D
phase, D is never evaluated or stepped: the L1-only baseline); ``l1_weight: 0`` leaves the
cGAN alone. Both phases draw their own batch. Logged: ``loss_D``, ``loss_G``, ``loss_G_adv``
(the cGAN term), ``l1`` (the unweighted mean |x - G(c)|), ``real_score`` and ``fake_score``
(mean sigmoid of D's patch logits), the gradient norms.

Randomness: G's dropout masks from the algorithm's generator (seed + 1), checkpointed; the fixed
pairs from seed + 2 (see :mod:`.image_to_image`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.config import ExperimentConfig
from ganforge.data.base import AnyDataset
from ganforge.errors import GanforgeError
from ganforge.models.pix2pix import PatchDiscriminator, UNetGenerator
from ganforge.train.algorithms.base import OptimizerSpec, Phase, option_weight, register_algorithm
from ganforge.train.algorithms.image_to_image import ImageToImage, ImageToImageOptions, probability_scores

ADAM_PIX2PIX = {"name": "adam", "lr": 2e-4, "betas": (0.5, 0.999)}


def pix2pix_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """L_D = 1/2 [BCE(real_logits, 1) + BCE(fake_logits, 0)], each a mean over every logit."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return 0.5 * (real + fake)


def pix2pix_g_loss(fake_logits: torch.Tensor | None, output: torch.Tensor, target: torch.Tensor,
                   l1_weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L_G, adversarial term, mean |target - output|): L_G = BCE(fake_logits, 1) + l1_weight * L1;
    ``fake_logits`` None (no adversary) makes the adversarial term 0."""
    l1 = (target - output).abs().mean()
    adv = (output.new_zeros(()) if fake_logits is None else
           F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits)))
    return adv + l1_weight * l1, adv, l1


@register_algorithm("pix2pix")
class Pix2Pix(ImageToImage):
    """The pix2pix cGAN; see the module docstring. Options (``algorithm: {name: pix2pix, ...}``):
    ``l1_weight`` (lambda, default 100), ``adversarial`` (false: the L1-only baseline),
    ``cond_shape`` (recorded by the run; leave it unset)."""

    name = "pix2pix"

    @dataclass
    class Options(ImageToImageOptions):
        l1_weight: float = 100.0
        adversarial: bool = True

        def __post_init__(self) -> None:
            option_weight(self.l1_weight, "l1_weight", "set algorithm.l1_weight=100 (the paper's), or 0 "
                          "for the cGAN alone")
            if not self.adversarial and self.l1_weight == 0:
                raise GanforgeError("algorithm.adversarial=false with algorithm.l1_weight=0 leaves G no loss",
                                    "set a positive algorithm.l1_weight, or adversarial=true")

    def __init__(self, cfg: ExperimentConfig, dataset: AnyDataset | None, *,
                 sample_shape: tuple[int, ...], num_classes: int | None, device: torch.device,
                 restoring: bool = False) -> None:
        super().__init__(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes,
                         device=device)
        _, h_in, w_in = self.cond_shape
        if (h_in, w_in) != tuple(self.sample_shape[1:]):
            raise GanforgeError(f"pix2pix maps inputs to outputs of the same size, and the inputs are "
                                f"{h_in}x{w_in} but the targets {self.sample_shape[1]}x"
                                f"{self.sample_shape[2]}", "use pairs of one size (an upscaling "
                                "algorithm handles low-resolution inputs)")
        self.G, self.D = self.build_networks(cfg, num_classes)
        if not (isinstance(self.G, UNetGenerator) and isinstance(self.D, PatchDiscriminator)):
            raise GanforgeError(f"model {cfg.model['name']!r} is not an image-to-image family",
                                "use model.name=pix2pix with algorithm pix2pix")
        self.G.to(device)
        self.D.to(device)
        self.networks = {"G": self.G, "D": self.D}
        self.l1_weight, self.adversarial = float(self.options.l1_weight), self.options.adversarial
        self.columns = (("loss_D", "loss_G", "loss_G_adv", "l1", "real_score", "fake_score",
                         "grad_norm_G", "grad_norm_D") if self.adversarial
                        else ("loss_G", "l1", "grad_norm_G"))

    # ------------------------------------------------------------------ the Trainer's contract
    def optimizers(self) -> dict[str, OptimizerSpec]:
        return {"G": OptimizerSpec(self.G, dict(ADAM_PIX2PIX)),
                "D": OptimizerSpec(self.D, dict(ADAM_PIX2PIX))}

    def phases(self) -> list[Phase]:
        g = Phase("G", ("G",), loss=self.g_loss)
        return [Phase("D", ("D",), loss=self.d_loss), g] if self.adversarial else [g]

    def pair(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs ``cond``, targets ``x``) of a batch, on the device."""
        return batch["cond"].to(self.device), batch["x"].to(self.device)

    def d_loss(self, batch: dict[str, torch.Tensor],
               step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The D phase: PatchGAN's cross-entropy on (input, target) against (input, G(input))."""
        c, x = self.pair(batch)
        with torch.no_grad():
            fake = self.G(c, self.noise)
        real_logits, fake_logits = self.D(c, x), self.D(c, fake)
        loss = pix2pix_d_loss(real_logits, fake_logits)
        return loss, probability_scores(real_logits, fake_logits)

    def g_loss(self, batch: dict[str, torch.Tensor],
               step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The G phase: the cGAN term (when adversarial) plus lambda * L1 to the target."""
        c, x = self.pair(batch)
        fake = self.G(c, self.noise)
        logits = self.D(c, fake) if self.adversarial else None
        loss, adv, l1 = pix2pix_g_loss(logits, fake, x, self.l1_weight)
        stats = {"l1": l1.item()}
        if self.adversarial:
            stats["loss_G_adv"] = adv.item()
        return loss, stats

    def input_multiple(self, network: nn.Module) -> int:
        return network.multiple  # the U-Net halves every side depth times

    def progress_text(self, row: Mapping[str, float]) -> str:
        if self.adversarial:
            return (f"loss_D {row['loss_D']:.3f}  cGAN {row['loss_G_adv']:.3f}  L1 {row['l1']:.4f}  "
                    f"D(c,x) {row['real_score']:.2f}  D(c,G(c)) {row['fake_score']:.2f}")
        return f"L1 {row['l1']:.4f}"
