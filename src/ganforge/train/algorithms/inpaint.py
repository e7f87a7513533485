"""Inpainting with a context encoder (Pathak et al. 2016, "Context Encoders: Feature Learning by
Inpainting"): G fills a hole given its surroundings; a joint reconstruction + adversarial loss.

Inputs c = [x * (1 - m), 2 m - 1] (the image with the hole at 0 and the mask as the last channel,
``masked-fashion`` with ``mask_channel: true``); m = 1 inside the hole. Networks: the ``pix2pix``
family's U-Net G and PatchGAN D (D scores (c, image): the context is the same for real and
completed images, so only the hole's content tells them apart). The completed image is

    x_hat = x * (1 - m) + G(c) * m            (the known pixels are kept; G paints the hole only)

and, with BCE(l, t) the mean binary cross-entropy of the logits with target t,

    L_rec = sum m (x - G(c))^2 / sum m                       L2 inside the hole only
    G:  L_G = rec_weight L_rec + adv_weight BCE(D(c, x_hat), 1)     (paper: 0.999 and 0.001)
    D:  L_D = 1/2 [ BCE(D(c, x), 1) + BCE(D(c, x_hat), 0) ]         x_hat detached

``adversarial: false`` is the L2-only context encoder (the baseline; D never evaluated).
:meth:`Inpaint.translate` returns the completed image x_hat, so ``ganforge translate``, the
snapshots and the paired metrics see what a user gets. Logged: ``rec`` (L_rec), ``loss_G_adv``,
``real_score`` / ``fake_score``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.config import ExperimentConfig
from ganforge.data.base import AnyDataset
from ganforge.errors import GanforgeError
from ganforge.train.algorithms.base import option_weight, register_algorithm
from ganforge.train.algorithms.image_to_image import ImageToImageOptions, probability_scores
from ganforge.train.algorithms.pix2pix import Pix2Pix, pix2pix_d_loss


def hole_mask(cond: torch.Tensor) -> torch.Tensor:
    """m (N, 1, H, W), 1 inside the hole, from the inputs' last (mask, 2m - 1) channel."""
    return (cond[:, -1:] > 0).to(cond.dtype)


def complete(cond: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """x_hat = known pixels outside the hole, G's inside: c_img (1 - m) + G(c) m."""
    m = hole_mask(cond)
    return cond[:, :output.shape[1]] * (1 - m) + output * m


def hole_l2(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sum m (target - output)^2 / sum m (over every pixel and channel of the batch)."""
    m = mask.expand_as(output)
    return (((target - output) ** 2) * m).sum() / m.sum().clamp_min(1)


@register_algorithm("inpaint")
class Inpaint(Pix2Pix):
    """The context encoder of the module docstring. Options: ``rec_weight`` (0.999),
    ``adv_weight`` (0.001), ``adversarial`` (false: the L2-only context encoder)."""

    name = "inpaint"

    @dataclass
    class Options(ImageToImageOptions):
        rec_weight: float = 0.999
        adv_weight: float = 0.001
        adversarial: bool = True
        #: pix2pix's L1 weight, unused: the loss here is the context encoder's own
        l1_weight: ClassVar[float] = 1.0

        def __post_init__(self) -> None:
            for key in ("rec_weight", "adv_weight"):
                option_weight(getattr(self, key), key,
                              "set algorithm.rec_weight=0.999 and adv_weight=0.001 (the paper's)")
            if self.rec_weight == 0:
                raise GanforgeError("algorithm.rec_weight=0 leaves the hole unconstrained",
                                    "set algorithm.rec_weight=0.999 (the paper's)")

    def __init__(self, cfg: ExperimentConfig, dataset: AnyDataset | None, *,
                 sample_shape: tuple[int, ...], num_classes: int | None, device: torch.device,
                 restoring: bool = False) -> None:
        super().__init__(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes, device=device,
                         restoring=restoring)
        if self.cond_shape[0] != self.sample_shape[0] + 1:
            raise GanforgeError(f"inpainting reads the hole from a mask channel, and the inputs have "
                                f"{self.cond_shape[0]} channel(s) for {self.sample_shape[0]}-channel images",
                                "set data.mask_channel=true (masked-fashion)")
        self.rec_weight, self.adv_weight = self.options.rec_weight, self.options.adv_weight
        self.columns = (("loss_D", "loss_G", "loss_G_adv", "rec", "real_score", "fake_score", "grad_norm_G",
                         "grad_norm_D") if self.adversarial else ("loss_G", "rec", "grad_norm_G"))

    @torch.no_grad()
    def translate(self, cond: torch.Tensor, network: nn.Module | None = None,
                  generator: torch.Generator | None = None, batch_size: int = 256) -> torch.Tensor:
        """The completed images x_hat for inputs ``cond`` (see the module docstring)."""
        return complete(cond, super().translate(cond, network, generator, batch_size))

    def d_loss(self, batch: dict[str, torch.Tensor],
               step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The D phase: real images against the completed ones (G's output in the hole only)."""
        c, x = self.pair(batch)
        with torch.no_grad():
            fake = complete(c, self.G(c, self.noise))
        real_logits, fake_logits = self.D(c, x), self.D(c, fake)
        return pix2pix_d_loss(real_logits, fake_logits), probability_scores(real_logits, fake_logits)

    def g_loss(self, batch: dict[str, torch.Tensor],
               step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The G phase: the reconstruction in the hole, plus the adversarial term when on."""
        c, x = self.pair(batch)
        out = self.G(c, self.noise)
        rec = hole_l2(out, x, hole_mask(c))
        stats = {"rec": rec.item()}
        loss = self.rec_weight * rec
        if self.adversarial:
            logits = self.D(c, complete(c, out))
            adv = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
            loss = loss + self.adv_weight * adv
            stats["loss_G_adv"] = adv.item()
        return loss, stats

    def progress_text(self, row) -> str:
        if self.adversarial:
            return f"loss_D {row['loss_D']:.3f}  adv {row['loss_G_adv']:.3f}  rec {row['rec']:.4f}"
        return f"rec {row['rec']:.4f}"
