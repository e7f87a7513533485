"""The fixed-budget downstream classifier and its imbalance metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.augmentation.classifier import (
    ClassifierBudget,
    evaluate_classifier,
    imbalance_metrics,
    train_classifier,
)
from ganforge.errors import GanforgeError


def _quadrants(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """4 classes: a bright 4x4 quadrant of an 8x8 image, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(4, (n,), generator=g)
    x = torch.full((n, 1, 8, 8), -1.0) + 0.3 * torch.rand(n, 1, 8, 8, generator=g)
    for i, k in enumerate(y.tolist()):
        r, c = divmod(k, 2)
        x[i, 0, 4 * r:4 * r + 4, 4 * c:4 * c + 4] += 1.5
    return x.clamp(-1, 1), y


def test_metrics_match_hand_computed_values():
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 0, 1, 1, 0, 2, 0])
    m = imbalance_metrics(y_true, y_pred, minority=[2], num_classes=3)
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 1 / 2 + 1 / 2) / 3)
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["minority_recall"] == pytest.approx(1 / 2) and m["minority_precision"] == 1.0
    f1 = [2 * (3 / 5) * (3 / 4) / (3 / 5 + 3 / 4), 1 / 2, 2 * 1 * 0.5 / 1.5]
    assert m["macro_f1"] == pytest.approx(np.mean(f1))
    assert m["per_class_recall"] == pytest.approx([3 / 4, 1 / 2, 1 / 2])
    never = imbalance_metrics(y_true, np.zeros(8, int), minority=[1, 2], num_classes=3)
    assert never["minority_recall"] == 0 and never["minority_precision"] == 0


def test_learns_an_easy_problem_deterministically_within_its_budget():
    x, y = _quadrants(400, 0)
    xt, yt = _quadrants(200, 1)
    budget = ClassifierBudget(steps=60, batch_size=32, width=4)
    model = train_classifier(x, y, 4, budget=budget, seed=0)
    m = evaluate_classifier(model, xt, yt, minority=[3], num_classes=4)
    assert m["balanced_accuracy"] > 0.95
    again = train_classifier(x, y, 4, budget=budget, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 again.state_dict().values(), strict=True))


def test_class_weight_changes_the_training():
    x, y = _quadrants(200, 0)
    budget = ClassifierBudget(steps=5, batch_size=16, width=4)
    plain = train_classifier(x, y, 4, budget=budget, seed=0)
    weighted = train_classifier(x, y, 4, budget=budget, seed=0,
                                class_weight=torch.tensor([1.0, 1.0, 1.0, 10.0]))
    assert not torch.equal(plain.head.weight, weighted.head.weight)


@pytest.mark.parametrize("budget", [ClassifierBudget(steps=0), ClassifierBudget(batch_size=-1),
                                    ClassifierBudget(lr=0.0)])
def test_bad_budgets_are_errors(budget):
    x, y = _quadrants(10, 0)
    with pytest.raises(GanforgeError):
        train_classifier(x, y, 4, budget=budget)


def test_bad_shapes_are_errors():
    with pytest.raises(GanforgeError, match="N, C, H, W"):
        train_classifier(torch.zeros(4, 64), torch.zeros(4, dtype=torch.long), 2)
