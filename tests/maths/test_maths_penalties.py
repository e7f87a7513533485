"""WGAN-GP and R1 penalties against closed forms for linear and quadratic discriminators."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.maths import gradient_penalty, r1_penalty


class Linear(nn.Module):
    """D(x) = w . x + b: grad_x D = w everywhere."""

    def __init__(self, w: list[float]) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w + 0.3


class Quadratic(nn.Module):
    """D(x) = c / 2 ||x||^2: grad_x D = c x."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = nn.Parameter(torch.tensor(c, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.c * x.flatten(1).pow(2).sum(1)


def batch(n: int, seed: int, shape=(3,)) -> torch.Tensor:
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_gp_of_a_linear_critic_is_norm_minus_one_squared_and_differentiable():
    D = Linear([3.0, 4.0, 0.0])  # ||w|| = 5
    gp = gradient_penalty(D, batch(6, 0), batch(6, 1))
    assert gp.item() == pytest.approx(16.0, rel=1e-12)
    gp.backward()  # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    np.testing.assert_allclose(D.w.grad.numpy(), 2 * 4 * np.array([3.0, 4.0, 0.0]) / 5, rtol=1e-12)


def test_gp_interpolates_per_sample_with_the_given_alpha():
    real, fake = batch(5, 2, (2, 2)), batch(5, 3, (2, 2))
    alpha = torch.tensor([0.0, 0.25, 0.5, 0.9, 1.0], dtype=torch.float64)
    D = Quadratic(2.0)
    x_hat = alpha[:, None, None] * real + (1 - alpha[:, None, None]) * fake
    norms = 2.0 * x_hat.flatten(1).norm(dim=1)
    expected = ((norms - 1) ** 2).mean()
    gp = gradient_penalty(D, real, fake, alpha=alpha)
    assert gp.item() == pytest.approx(expected.item(), rel=1e-12)
    gp.backward()  # d/dc mean (c ||x_hat|| - 1)^2 = mean 2 (c ||x_hat|| - 1) ||x_hat||
    r = x_hat.flatten(1).norm(dim=1)
    assert D.c.grad.item() == pytest.approx((2 * (2.0 * r - 1) * r).mean().item(), rel=1e-12)


def test_gp_draws_one_uniform_alpha_per_sample_from_the_generator():
    real, fake = batch(64, 4), batch(64, 5)
    D = Quadratic(1.0)
    alpha = torch.rand(64, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    drawn = gradient_penalty(D, real, fake, generator=torch.Generator().manual_seed(7))
    assert drawn.item() == pytest.approx(gradient_penalty(D, real, fake, alpha=alpha).item())
    shared = gradient_penalty(D, real, fake, alpha=torch.full((64,), float(alpha[0])))
    assert drawn.item() != pytest.approx(shared.item())


def test_gp_refuses_batches_of_different_shapes():
    with pytest.raises(GanforgeError, match="differ"):
        gradient_penalty(Quadratic(1.0), batch(4, 0), batch(5, 1))


def test_r1_of_linear_and_quadratic_discriminators():
    D = Linear([1.0, -2.0, 2.0])
    r1 = r1_penalty(D, batch(8, 0))
    assert r1.item() == pytest.approx(9.0, rel=1e-12)  # ||w||^2
    r1.backward()
    np.testing.assert_allclose(D.w.grad.numpy(), 2 * np.array([1.0, -2.0, 2.0]), rtol=1e-12)
    real = batch(8, 1)
    Q = Quadratic(3.0)
    assert r1_penalty(Q, real).item() == pytest.approx(
        (9.0 * real.pow(2).sum(1)).mean().item(), rel=1e-12)


def test_penalties_do_not_leak_gradients_into_the_samples():
    real = batch(4, 0).requires_grad_(True)
    fake = batch(4, 1).requires_grad_(True)
    (gradient_penalty(Quadratic(1.0), real, fake) + r1_penalty(Quadratic(1.0), real)).backward()
    assert real.grad is None and fake.grad is None
