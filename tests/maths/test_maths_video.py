"""The gradient difference loss (Mathieu, Couprie and LeCun 2016, eq. 5) against a case worked out
by hand, its invariances, its gradients, and its one-line errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganforge.errors import GanforgeError
from ganforge.maths.video import gradient_difference_loss, image_gradients

# A 2x3 target Y and prediction P, and the loss written out term by term.
Y = torch.tensor([[0.0, 1.0, 3.0],
                  [2.0, 2.0, 0.0]], dtype=torch.float64)
P = torch.tensor([[0.0, 0.0, 1.0],
                  [1.0, 3.0, 0.0]], dtype=torch.float64)
# rows (i = 1; j = 0, 1, 2):  |Y_1j - Y_0j| = 2, 1, 3;   |P_1j - P_0j| = 1, 3, 1;   | . - . | = 1, 2, 2
# columns (i = 0, 1; j = 1, 2): |Y_ij - Y_i,j-1| = 1, 2 | 0, 2;   |P_ij - P_i,j-1| = 0, 1 | 2, 3
#                               | . - . | = 1, 1 | 2, 1
# 3 row terms + 4 column terms = 7 terms
SUM_ALPHA_1 = (1 + 2 + 2) + (1 + 1 + 2 + 1)   # 10
SUM_ALPHA_2 = (1 + 4 + 4) + (1 + 1 + 4 + 1)   # 16


def blur(x: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """A separable Gaussian blur of (..., H, W) images (replicate padding)."""
    radius = int(3 * sigma)
    k = torch.exp(-torch.arange(-radius, radius + 1, dtype=x.dtype) ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    shape = x.shape
    y = x.reshape(-1, 1, *shape[-2:])
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))
    return y.reshape(shape)


def squares(n: int = 4, size: int = 16, seed: int = 0) -> torch.Tensor:
    """(n, 1, size, size) images in [-1, 1] of one bright square each."""
    g = torch.Generator().manual_seed(seed)
    x = -torch.ones(n, 1, size, size, dtype=torch.float64)
    for i in range(n):
        top, left = torch.randint(1, size - 7, (2,), generator=g).tolist()
        x[i, 0, top:top + 6, left:left + 6] = 1.0
    return x


def total_gradient(x: torch.Tensor) -> float:
    dy, dx = image_gradients(x)
    return float(dy.abs().sum() + dx.abs().sum())


def test_image_gradients_are_backward_differences():
    dy, dx = image_gradients(Y)
    assert torch.equal(dy, torch.tensor([[2.0, 1.0, -3.0]], dtype=torch.float64))
    assert torch.equal(dx, torch.tensor([[1.0, 2.0], [0.0, -2.0]], dtype=torch.float64))


@pytest.mark.parametrize(("alpha", "total"), [(1.0, SUM_ALPHA_1), (2.0, SUM_ALPHA_2)])
def test_loss_matches_the_case_worked_by_hand(alpha, total):
    assert gradient_difference_loss(P, Y, alpha).item() == pytest.approx(total / 7, rel=1e-12)
    # the mean runs over every term of every frame: a second, perfect frame halves it
    pred, target = torch.stack([P, Y]), torch.stack([Y, Y])
    assert gradient_difference_loss(pred, target, alpha).item() == pytest.approx(total / 14, rel=1e-12)
    # symmetric in its arguments
    assert gradient_difference_loss(Y, P, alpha).item() == pytest.approx(total / 7, rel=1e-12)


def test_loss_is_zero_for_the_target_and_for_the_target_plus_a_constant():
    target = torch.randn(2, 3, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    assert gradient_difference_loss(target.clone(), target).item() == 0.0
    assert gradient_difference_loss(target + 0.25, target).item() == pytest.approx(0.0, abs=1e-6)
    assert gradient_difference_loss(target.double() - 3.0, target.double(), alpha=2).item() \
        == pytest.approx(0.0, abs=1e-12)


def test_loss_is_positive_for_a_blurred_target():
    target = squares()
    for alpha in (1.0, 2.0):
        assert gradient_difference_loss(blur(target), target, alpha).item() > 0.01


def test_a_gradient_step_on_a_blurred_prediction_sharpens_it():
    target = squares()
    pred = blur(target).requires_grad_(True)
    loss = gradient_difference_loss(pred, target)
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    stepped = (pred - 0.5 * pred.grad / pred.grad.abs().max()).detach()
    assert total_gradient(stepped) > total_gradient(pred.detach())
    assert gradient_difference_loss(stepped, target).item() < loss.item()


def test_gradients_match_finite_differences():
    g = torch.Generator().manual_seed(3)
    pred = torch.randn(2, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randn(2, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    for alpha in (1.0, 2.0, 1.5):
        assert torch.autograd.gradcheck(lambda p, t, a=alpha: gradient_difference_loss(p, t, a),
                                        (pred, target))


def test_gradients_stay_finite_where_the_differences_vanish():
    target = squares(2)
    for alpha in (0.5, 1.0, 2.0):
        pred = target.clone().requires_grad_(True)
        gradient_difference_loss(pred, target, alpha).backward()
        assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() == 0


@pytest.mark.parametrize(("pred", "target", "alpha", "words"), [
    (torch.zeros(2, 4, 4), torch.zeros(2, 4, 5), 1.0, "differ in shape"),
    (torch.zeros(4, 4), torch.zeros(4, 4), 0.0, "alpha=0.0"),
    (torch.zeros(4, 4), torch.zeros(4, 4), -1.0, "alpha=-1.0"),
    (torch.zeros(4, 4), torch.zeros(4, 4), float("nan"), "alpha=nan"),
    (torch.zeros(4, 4), torch.zeros(4, 4), True, "alpha=True"),
    (torch.zeros(4), torch.zeros(4), 1.0, "H, W >= 2"),
    (torch.zeros(3, 1, 4), torch.zeros(3, 1, 4), 1.0, "H, W >= 2"),
    (torch.zeros(0, 4, 4), torch.zeros(0, 4, 4), 1.0, "H, W >= 2"),
])
def test_bad_inputs_are_one_line_errors(pred, target, alpha, words):
    with pytest.raises(GanforgeError) as err:
        gradient_difference_loss(pred, target, alpha)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_image_gradients_refuse_a_vector():
    with pytest.raises(GanforgeError, match="H, W"):
        image_gradients(torch.zeros(5))
