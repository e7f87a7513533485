"""APE-GAN (Jin, Shen, Zhang and Liu 2019, "APE-GAN: Adversarial Perturbation Elimination with
GAN"): a generator trained adversarially to map adversarial examples back to clean images.

G is a small encoder-decoder (two stride-2 convolutions, two stride-2 transposed convolutions,
tanh out); D a three-convolution discriminator. With x clean, x_adv an attack on the classifier
to defend (FGSM at several radii, as in the paper) and D's logits l:

    L_D = BCE(l(x), 1) + BCE(l(G(x_adv)), 0)
    L_G = 0.7 * mean (G(x_adv) - x)^2 + 0.3 * BCE(l(G(x_adv)), 1)

(the paper's weights; the BCE terms are :func:`ganforge.maths.discriminator_loss` and the
non-saturating generator loss). G is differentiable, so an adaptive attack differentiates through it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.maths.losses import discriminator_loss, generator_loss_non_saturating
from ganforge.robust.attacks import AttackSpec, attack_images
from ganforge.robust.classifier import check_images, check_positive_ints, module_from_state
from ganforge.robust.defenses import Defense


def _bn_act(layer: nn.Module, channels: int, act: nn.Module) -> nn.Sequential:
    return nn.Sequential(layer, nn.BatchNorm2d(channels), act)


class APEGenerator(Defense):
    """x_adv (N, 1, 28, 28) in [0, 1] -> the purified image in [0, 1]."""

    differentiable = True

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 3, 2, 1),
            nn.LeakyReLU(0.2),  # 14x14
            _bn_act(nn.Conv2d(width, 2 * width, 3, 2, 1), 2 * width, nn.LeakyReLU(0.2)),  # 7x7
            _bn_act(nn.ConvTranspose2d(2 * width, width, 4, 2, 1), width, nn.ReLU()),  # 14x14
            nn.ConvTranspose2d(width, 1, 4, 2, 1),
            nn.Tanh(),  # 28x28
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.net(x * 2 - 1) + 1) / 2


class APEDiscriminator(nn.Module):
    """Images in [0, 1] -> one logit each."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 3, 2, 1),
            nn.LeakyReLU(0.2),
            _bn_act(nn.Conv2d(width, 2 * width, 3, 2, 1), 2 * width, nn.LeakyReLU(0.2)),
            _bn_act(nn.Conv2d(2 * width, 4 * width, 3, 2, 1), 4 * width, nn.LeakyReLU(0.2)),
            nn.Flatten(),
            nn.Linear(4 * width * 4 * 4, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1).squeeze(1)


@dataclass(frozen=True)
class APEConfig:
    """APE-GAN's training: ``epochs`` over the images, FGSM examples at the radii ``eps`` (one
    radius per batch, in turn), Adam at ``lr`` with betas (0.5, 0.999), loss weights as in the
    paper."""

    epochs: int = 2
    batch_size: int = 128
    lr: float = 2e-4
    eps: tuple[float, ...] = (0.1, 0.3)
    mse_weight: float = 0.7
    adversarial_weight: float = 0.3
    width: int = 64
    seed: int = 0

    def check(self) -> None:
        check_positive_ints(self, ("epochs", "batch_size", "width"), "APE-GAN")
        if not self.eps or any(not (math.isfinite(e) and 0 < e <= 1) for e in self.eps):
            raise GanforgeError(
                f"APE-GAN's FGSM radii {list(self.eps)} must be in (0, 1]", "pass e.g. --eps 0.1 --eps 0.3"
            )


def train_ape_gan(
    classifier: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: APEConfig = APEConfig(),
    *,
    log: Callable[[str], None] | None = None,
) -> APEGenerator:
    """Train APE-GAN against ``classifier`` (images in [0, 1] -> logits) on clean ``images``."""
    config.check()
    check_images(images, labels)
    device = next(classifier.parameters()).device
    torch.manual_seed(config.seed)
    order_rng = torch.Generator().manual_seed(config.seed)
    G, D = APEGenerator(config.width).to(device), APEDiscriminator(config.width).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=config.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=config.lr, betas=(0.5, 0.999))
    n, bs = len(images), config.batch_size
    started, batch = time.perf_counter(), 0
    for epoch in range(config.epochs):
        order = torch.randperm(n, generator=order_rng)
        mse_sum, seen = 0.0, 0
        for start in range(0, n - bs + 1, bs):
            idx = order[start : start + bs]
            x, y = images[idx].to(device), labels[idx].to(device)
            eps = config.eps[batch % len(config.eps)]
            x_adv = attack_images(AttackSpec("fgsm", eps, steps=1), classifier, x, y, seed=batch).to(device)
            batch += 1
            G.train()
            D.train()
            fake = G(x_adv)
            d_loss = discriminator_loss(D(x), D(fake.detach()))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            mse = F.mse_loss(fake, x)
            g_loss = config.mse_weight * mse + config.adversarial_weight * generator_loss_non_saturating(
                D(fake)
            )
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            mse_sum, seen = mse_sum + float(mse.detach()) * len(x), seen + len(x)
        if log is not None:
            log(
                f"APE-GAN epoch {epoch + 1}/{config.epochs}: "
                f"reconstruction MSE {mse_sum / max(seen, 1):.4f}, "
                f"{time.perf_counter() - started:.0f} s"
            )
    G.eval()
    G.meta = {
        **asdict(config),
        "eps": list(config.eps),
        "seconds": round(time.perf_counter() - started, 1),
        "n_train": n,
    }
    return G


def ape_from_state(weights: dict[str, torch.Tensor], meta: dict[str, Any]) -> APEGenerator:
    return module_from_state(APEGenerator(int(meta.get("width", 64))), weights, meta)


def default_eps(values: Sequence[float] | None) -> tuple[float, ...]:
    return tuple(values) if values else APEConfig.eps
