"""The downstream classifier every remedy is judged by: a small CNN trained for a fixed budget.

Fairness contract: every remedy trains the same architecture (:class:`SmallCNN`) for the same
number of optimiser steps (``ClassifierBudget.steps``) with the same batch size, learning-rate
schedule and seed, whatever the size of its (resampled or augmented) training set; only the
training set and, for the class-weighted remedy, the loss weights differ. The metrics are
scikit-learn's, on an untouched test split.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import GanforgeError


class SmallCNN(nn.Module):
    """(N, C, H, W) in [-1, 1] -> conv3(16)+BN -> pool -> conv3(32)+BN -> pool -> fc(64) -> K.

    ~25k parameters at 28x28 (a global average pool would lose the position cues that separate
    shirts from T-shirts, so the pooled map is flattened)."""

    def __init__(self, in_channels: int, size: int, num_classes: int, width: int = 16) -> None:
        super().__init__()
        side = size // 4
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * width * side * side, 64), nn.ReLU(),
        )
        self.head = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@dataclass(frozen=True)
class ClassifierBudget:
    """The fixed training budget, the same for every remedy."""

    steps: int = 600
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    width: int = 16

    def check(self) -> None:
        for key in ("steps", "batch_size", "width"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise GanforgeError(f"classifier {key} must be a positive int, got {value!r}",
                                    f"set {key} to e.g. {getattr(ClassifierBudget, key)}")
        if not self.lr > 0:
            raise GanforgeError(f"classifier lr must be positive, got {self.lr!r}", "set lr=3e-3")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_classifier(x: torch.Tensor, y: torch.Tensor, num_classes: int, *,
                     budget: ClassifierBudget = ClassifierBudget(), seed: int = 0,
                     class_weight: torch.Tensor | None = None) -> SmallCNN:
    """A :class:`SmallCNN` trained on ``(x, y)`` for exactly ``budget.steps`` Adam steps (one-cycle
    rate), minibatches drawn by seeded reshuffling (``seed``); ``class_weight`` (K,) weights the
    cross-entropy per class. Returned in eval mode."""
    budget.check()
    if x.dim() != 4 or len(x) != len(y) or len(x) == 0:
        raise GanforgeError(f"training images must be (N, C, H, W) with N labels, got {tuple(x.shape)} "
                            f"and {len(y)} labels", "pass image tensors and their labels")
    torch.manual_seed(seed)
    model = SmallCNN(x.shape[1], x.shape[-1], num_classes, budget.width)
    opt = torch.optim.Adam(model.parameters(), lr=budget.lr, weight_decay=budget.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, budget.lr, total_steps=budget.steps)
    g = torch.Generator().manual_seed(seed + 1)
    weight = None if class_weight is None else class_weight.float()
    y = y.long()
    perm, pos = torch.randperm(len(x), generator=g), 0
    model.train()
    for _ in range(budget.steps):
        if pos + budget.batch_size > len(perm):
            perm, pos = torch.randperm(len(x), generator=g), 0
        idx = perm[pos:pos + budget.batch_size]
        pos += budget.batch_size
        loss = F.cross_entropy(model(x[idx]), y[idx], weight=weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


@torch.no_grad()
def predict_proba(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Softmax class probabilities (N, K) of ``model`` in eval mode."""
    model.eval()
    return torch.cat([F.softmax(model(x[i:i + batch_size]), dim=1) for i in range(0, len(x), batch_size)])


def imbalance_metrics(y_true: np.ndarray | torch.Tensor, y_pred: np.ndarray | torch.Tensor,
                      minority: list[int] | tuple[int, ...], num_classes: int) -> dict[str, float]:
    """Balanced accuracy, accuracy, macro F1, the minority classes' mean recall and precision
    (scikit-learn; a class never predicted has precision 0) and every class's recall."""
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        f1_score,
        precision_score,
        recall_score,
    )

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = list(range(num_classes))
    recall = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    precision = precision_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    return {
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "minority_recall": float(np.mean([recall[k] for k in minority])),
        "minority_precision": float(np.mean([precision[k] for k in minority])),
        "per_class_recall": [float(r) for r in recall],
    }


def evaluate_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                        minority: list[int] | tuple[int, ...], num_classes: int) -> dict[str, float]:
    """:func:`imbalance_metrics` of ``model``'s predictions on ``(x, y)``."""
    pred = predict_proba(model, x).argmax(1)
    return imbalance_metrics(y.numpy(), pred.numpy(), minority, num_classes)
