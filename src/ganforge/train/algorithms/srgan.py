"""SRGAN (Ledig et al. 2017): super-resolution by an SRResNet G(c) from low-resolution inputs c,
first trained on the pixel MSE (SRResNet), then against a discriminator with a perceptual loss.

Networks (``model: {name: srgan}``): :mod:`ganforge.models.srgan`'s SRResNet ``G`` and
discriminator ``D`` (one logit per image). With BCE(l, t) the mean binary cross-entropy of
logits l with target t and phi a frozen feature network (:mod:`ganforge.models.perceptual`)::

    pretrain (steps [0, pretrain_steps)):  L = mean (x - G(c))^2                  SRResNet (MSE)
    D (steps >= pretrain_steps):           L_D = BCE(D(x), 1) + BCE(D(G(c)), 0)   G(c) detached
    G (steps >= pretrain_steps):           L_G = l_X + adversarial_weight * BCE(D(G(c)), 1)
        l_X = perceptual_weight * mean (phi(x) - phi(G(c)))^2     (``perceptual`` set: SRGAN-VGG)
        l_X = mean (x - G(c))^2                                   (``perceptual: null``: SRGAN-MSE)

``adversarial_weight`` is the paper's 1e-3. ``adversarial: false`` keeps the MSE phase for the
whole run and never builds an optimiser step for D: SRResNet alone (the ``photos-srresnet``
preset). D is untouched before ``pretrain_steps``. ``perceptual`` is ``{network, layer, weights}``:
``network: photo`` (default; the shipped in-project feature CNN) or ``vgg19`` with ``weights`` a
torchvision VGG19 state dict the user provides. Logged: ``mse`` (unweighted pixel MSE, every
G update), ``content`` (l_X), ``loss_G_adv``, ``real_score`` / ``fake_score`` (mean sigmoid of D).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ganforge.config import ExperimentConfig
from ganforge.data.base import AnyDataset
from ganforge.errors import GanforgeError
from ganforge.models.perceptual import FeatureExtractor, build_feature_network
from ganforge.models.srgan import SRResNet
from ganforge.train.algorithms.base import OptimizerSpec, Phase, option_weight, register_algorithm
from ganforge.train.algorithms.image_to_image import ImageToImage, ImageToImageOptions, probability_scores

ADAM_SRGAN = {"name": "adam", "lr": 1e-4, "betas": (0.9, 0.999)}
PERCEPTUAL_KEYS = ("network", "layer", "weights")


def srgan_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """L_D = BCE(real_logits, 1) + BCE(fake_logits, 0)."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def perceptual_loss(phi: torch.nn.Module, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean (phi(target) - phi(output))^2 (the target's features carry no gradient)."""
    with torch.no_grad():
        want = phi(target)
    return F.mse_loss(phi(output), want)


@register_algorithm("srgan")
class SRGAN(ImageToImage):
    """SRResNet / SRGAN; see the module docstring. Options: ``pretrain_steps`` (default 0),
    ``adversarial`` (false: SRResNet alone), ``adversarial_weight`` (1e-3), ``perceptual``
    ({network, layer, weights} or null), ``perceptual_weight`` (1.0)."""

    name = "srgan"

    @dataclass
    class Options(ImageToImageOptions):
        pretrain_steps: int = 0
        adversarial: bool = True
        adversarial_weight: float = 1e-3
        perceptual: dict[str, Any] | None = None
        perceptual_weight: float = 1.0

        def __post_init__(self) -> None:
            if self.pretrain_steps < 0:
                raise GanforgeError(f"algorithm.pretrain_steps={self.pretrain_steps!r} is not a count >= 0",
                                    "set algorithm.pretrain_steps, e.g. 2000")
            option_weight(self.adversarial_weight, "adversarial_weight", "set it to 1e-3 (the paper's)")
            option_weight(self.perceptual_weight, "perceptual_weight", "set it to 1.0")
            if self.perceptual is not None and any(k not in PERCEPTUAL_KEYS for k in self.perceptual):
                raise GanforgeError(f"algorithm.perceptual={self.perceptual!r} is not {{network, layer, "
                                    "weights}", "set e.g. algorithm.perceptual={network: photo, layer: "
                                    "relu2_2}, or null")

    def __init__(self, cfg: ExperimentConfig, dataset: AnyDataset | None, *,
                 sample_shape: tuple[int, ...], num_classes: int | None, device: torch.device,
                 restoring: bool = False) -> None:
        super().__init__(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes,
                         device=device)
        options = self.options
        self.adversarial_weight = options.adversarial_weight
        self.perceptual_weight = options.perceptual_weight
        adversarial, perceptual = options.adversarial, options.perceptual
        _, h_in, w_in = self.cond_shape
        self.G, self.D = self.build_networks(cfg, num_classes)
        if not isinstance(self.G, SRResNet):
            raise GanforgeError(f"model {cfg.model['name']!r} is not a super-resolution family",
                                "use model.name=srgan with algorithm srgan")
        scale = self.G.scale
        if (h_in * scale, w_in * scale) != tuple(self.sample_shape[1:]):
            raise GanforgeError(f"the inputs are {h_in}x{w_in} and the targets {self.sample_shape[1]}x"
                                f"{self.sample_shape[2]}, not {scale} times larger",
                                "set model.scale to the data's scale (data.scale)")
        self.G.to(device)
        self.D.to(device)
        self.networks = {"G": self.G, "D": self.D}
        self.pretrain_steps, self.adversarial = options.pretrain_steps, adversarial
        self.phi: FeatureExtractor | None = None
        if adversarial and perceptual is not None:
            self.phi = build_feature_network(**dict(perceptual)).to(device)
        self.columns = (("loss_pretrain", "mse", "loss_D", "loss_G", "content", "loss_G_adv", "real_score",
                         "fake_score", "grad_norm_G", "grad_norm_D") if adversarial
                        else ("loss_pretrain", "mse", "grad_norm_G"))

    # ------------------------------------------------------------------ the Trainer's contract
    def optimizers(self) -> dict[str, OptimizerSpec]:
        return {"G": OptimizerSpec(self.G, dict(ADAM_SRGAN)), "D": OptimizerSpec(self.D, dict(ADAM_SRGAN))}

    def phases(self) -> list[Phase]:
        if not self.adversarial:
            return [Phase("pretrain", ("G",), loss=self.pretrain_loss)]
        start = self.pretrain_steps
        pre = [Phase("pretrain", ("G",), stop=start, loss=self.pretrain_loss)] if start else []
        return [*pre, Phase("D", ("D",), start=start, loss=self.d_loss),
                Phase("G", ("G",), start=start, loss=self.g_loss)]

    def _pair(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return batch["cond"].to(self.device), batch["x"].to(self.device)

    def d_loss(self, batch: dict[str, torch.Tensor],
               step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The D phase: real high-resolution images against G's super-resolved ones."""
        c, x = self._pair(batch)
        with torch.no_grad():
            fake = self.G(c)
        real_logits, fake_logits = self.D(x), self.D(fake)
        return srgan_d_loss(real_logits, fake_logits), probability_scores(real_logits, fake_logits)

    def pretrain_loss(self, batch: dict[str, torch.Tensor],
                      step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The pretrain phase (SRResNet): the pixel MSE alone."""
        c, x = self._pair(batch)
        mse = F.mse_loss(self.G(c), x)
        return mse, {"mse": mse.item()}

    def g_loss(self, batch: dict[str, torch.Tensor],
               step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The G phase: the content loss (MSE, or VGG-style features) plus the adversarial term."""
        c, x = self._pair(batch)
        out = self.G(c)
        mse = F.mse_loss(out, x)
        content = mse if self.phi is None else self.perceptual_weight * perceptual_loss(self.phi, out, x)
        logits = self.D(out)
        adv = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        return content + self.adversarial_weight * adv, {"mse": mse.item(), "content": content.item(),
                                                         "loss_G_adv": adv.item()}

    def progress_text(self, row: Mapping[str, float]) -> str:
        if "loss_D" in row and row["loss_D"] == row["loss_D"]:
            return (f"content {row['content']:.4f}  adv {row['loss_G_adv']:.3f}  loss_D {row['loss_D']:.3f}  "
                    f"mse {row['mse']:.4f}")
        return f"mse {row.get('mse', float('nan')):.4f}"
