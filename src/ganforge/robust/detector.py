"""A detector of adversarial examples ("teach the model to spot them"): a binary CNN trained on
clean images (label 0) against attacks on them (label 1), scored by ROC AUC per attack.

The attacks it learns from are crafted against the classifier it protects, on training images
(by default FGSM and PGD-10 at radii 0.1 and 0.3 and CW-L2 with 50 steps, an equal share each,
as many adversarial as clean images); its test attacks may be others (a detector trained without
CW scores CW-L2's small L2 perturbations near chance: see docs/robustness.md). Defense-GAN's reconstruction
error ||G(z*) - x||^2 is the other score (:meth:`DefenseGAN.reconstruction_error`): adversarial
perturbations lie off G's range, so they reconstruct worse (Samangouei et al. 2018, section 3.3).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.robust.attacks import AttackSpec, attack_images
from ganforge.robust.classifier import check_images, check_positive_ints, in_batches, module_from_state

DEFAULT_TRAINING_ATTACKS = (
    AttackSpec("fgsm", 0.1, steps=1),
    AttackSpec("fgsm", 0.3, steps=1),
    AttackSpec("pgd", 0.1, steps=10),
    AttackSpec("pgd", 0.3, steps=10),
    AttackSpec("cw", None, steps=50, c=10.0),
)


class AdversarialDetector(nn.Module):
    """Images (N, 1, 28, 28) in [0, 1] -> logit of "adversarial" (N,)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(2 * width * 7 * 7, 64),
            nn.ReLU(),
            nn.Linear(64, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1).squeeze(1)

    @torch.no_grad()
    def score(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """P(adversarial) per image (N,), on the CPU."""
        self.eval()
        return in_batches(lambda batch: torch.sigmoid(self(batch)), x, batch_size, self)


@dataclass(frozen=True)
class DetectorConfig:
    epochs: int = 3
    batch_size: int = 128
    lr: float = 1e-3
    width: int = 32
    seed: int = 0


def train_detector(
    classifier: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: DetectorConfig = DetectorConfig(),
    *,
    attacks: Sequence[AttackSpec] = DEFAULT_TRAINING_ATTACKS,
    log: Callable[[str], None] | None = None,
) -> AdversarialDetector:
    """Craft ``attacks`` (an equal share of ``images`` each) against ``classifier`` and train an
    :class:`AdversarialDetector` on the clean images against them."""
    check_images(images, labels)
    check_positive_ints(config, ("epochs", "batch_size", "width"), "detector")
    if not attacks:
        raise GanforgeError("the detector needs at least one training attack", "pass e.g. fgsm:0.3")
    started = time.perf_counter()
    rng = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(len(images), generator=rng)
    chunks = order.tensor_split(len(attacks))
    adversarial = torch.cat(
        [
            attack_images(spec, classifier, images[idx], labels[idx], seed=config.seed + i)
            for i, (spec, idx) in enumerate(zip(attacks, chunks, strict=True))
        ]
    )
    crafted = time.perf_counter() - started
    x = torch.cat([images[order], adversarial])
    target = torch.cat([torch.zeros(len(images)), torch.ones(len(adversarial))])
    device = next(classifier.parameters()).device
    torch.manual_seed(config.seed)
    model = AdversarialDetector(config.width).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    for epoch in range(config.epochs):
        model.train()
        perm = torch.randperm(len(x), generator=rng)
        total = 0.0
        for start in range(0, len(x), config.batch_size):
            idx = perm[start : start + config.batch_size]
            loss = F.binary_cross_entropy_with_logits(model(x[idx].to(device)), target[idx].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        if log is not None:
            log(f"detector epoch {epoch + 1}/{config.epochs}: loss {total / len(x):.4f}")
    model.eval()
    model.meta = {
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "width": config.width,
        "seed": config.seed,
        "n_train": len(x),
        "attacks": [a.key for a in attacks],
        "crafting_seconds": round(crafted, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return model


def detector_from_state(weights: dict[str, torch.Tensor], meta: dict[str, Any]) -> AdversarialDetector:
    return module_from_state(AdversarialDetector(int(meta.get("width", 32))), weights, meta)


def roc_auc(clean_scores: torch.Tensor | np.ndarray, adversarial_scores: torch.Tensor | np.ndarray) -> float:
    """ROC AUC of telling adversarial (positive) from clean images by a score (higher: adversarial)."""
    from sklearn.metrics import roc_auc_score

    clean, adv = np.asarray(clean_scores, dtype=float), np.asarray(adversarial_scores, dtype=float)
    truth = np.concatenate([np.zeros(len(clean)), np.ones(len(adv))])
    return float(roc_auc_score(truth, np.concatenate([clean, adv])))
