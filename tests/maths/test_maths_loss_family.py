"""The loss family (LSGAN, hinge, Wasserstein) against hand-derived values and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.maths import (
    hinge_discriminator_loss,
    hinge_generator_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)

REAL = [2.0, -0.5, 0.25, 1.5, 0.9]
FAKE = [-3.0, 0.5, -0.99, 1.2]


def logits(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64, requires_grad=True)


def d_grads(loss_fn, real_values=REAL, fake_values=FAKE):
    real, fake = logits(real_values), logits(fake_values)
    loss = loss_fn(real, fake)
    loss.backward()
    return loss.item(), real.grad.numpy(), fake.grad.numpy()


def g_grads(loss_fn, fake_values=FAKE):
    fake = logits(fake_values)
    loss = loss_fn(fake)
    loss.backward()
    return loss.item(), fake.grad.numpy()


def test_lsgan_discriminator_value_and_gradient():
    r, f = np.array(REAL), np.array(FAKE)
    value, g_real, g_fake = d_grads(lsgan_discriminator_loss)
    # 1/2 mean (r - b)^2 + 1/2 mean (f - a)^2 with a = 0, b = 1
    assert value == pytest.approx(0.5 * np.mean((r - 1) ** 2) + 0.5 * np.mean(f**2), rel=1e-12)
    np.testing.assert_allclose(g_real, (r - 1) / len(r), rtol=1e-12)
    np.testing.assert_allclose(g_fake, f / len(f), rtol=1e-12)


def test_lsgan_generator_value_and_gradient():
    f = np.array(FAKE)
    value, grad = g_grads(lsgan_generator_loss)
    assert value == pytest.approx(0.5 * np.mean((f - 1) ** 2), rel=1e-12)
    np.testing.assert_allclose(grad, (f - 1) / len(f), rtol=1e-12)


def test_lsgan_optimum_labels_give_zero_loss():
    assert lsgan_discriminator_loss(torch.ones(3), torch.zeros(4)).item() == 0.0
    assert lsgan_generator_loss(torch.ones(4)).item() == 0.0


def test_hinge_discriminator_value_and_gradient():
    r, f = np.array(REAL), np.array(FAKE)
    value, g_real, g_fake = d_grads(hinge_discriminator_loss)
    assert value == pytest.approx(np.mean(np.maximum(0, 1 - r)) + np.mean(np.maximum(0, 1 + f)))
    # d/dr max(0, 1 - r) = -1 where r < 1, else 0; d/df max(0, 1 + f) = 1 where f > -1, else 0
    np.testing.assert_allclose(g_real, np.where(r < 1, -1.0, 0.0) / len(r))
    np.testing.assert_allclose(g_fake, np.where(f > -1, 1.0, 0.0) / len(f))


def test_hinge_discriminator_is_zero_beyond_the_margins():
    assert hinge_discriminator_loss(torch.tensor([1.0, 5.0]), torch.tensor([-1.0, -7.0])).item() == 0


def test_hinge_and_wasserstein_generator_losses():
    f = np.array(FAKE)
    for loss_fn in (hinge_generator_loss, wasserstein_generator_loss):
        value, grad = g_grads(loss_fn)
        assert value == pytest.approx(-f.mean(), rel=1e-12)
        np.testing.assert_allclose(grad, np.full_like(f, -1 / len(f)))


def test_wasserstein_critic_value_and_gradient():
    r, f = np.array(REAL), np.array(FAKE)
    value, g_real, g_fake = d_grads(wasserstein_critic_loss)
    assert value == pytest.approx(f.mean() - r.mean(), rel=1e-12)
    np.testing.assert_allclose(g_real, np.full_like(r, -1 / len(r)))
    np.testing.assert_allclose(g_fake, np.full_like(f, 1 / len(f)))


def test_wasserstein_dual_with_the_identity_critic_is_the_mean_shift():
    # For two point masses at 0 and 3, f(x) = x is an optimal 1-Lipschitz critic: W1 = 3.
    real, fake = torch.full((10,), 3.0), torch.zeros(10)
    assert -wasserstein_critic_loss(real, fake).item() == pytest.approx(3.0)
