"""ganforge.maths.losses against closed forms, torch's own BCE and a numpy reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from ganforge.errors import GanforgeError
from ganforge.maths import (
    GENERATOR_LOSSES,
    binary_cross_entropy,
    discriminator_loss,
    generator_loss,
    generator_loss_non_saturating,
    generator_loss_saturating,
    value_function,
)

LOG4 = math.log(4.0)


def numpy_bce(logits: np.ndarray, target: np.ndarray) -> float:
    """The textbook formula in float64 numpy, for moderate logits only."""
    y_hat = 1.0 / (1.0 + np.exp(-logits))
    return float(np.mean(-(target * np.log(y_hat) + (1 - target) * np.log(1 - y_hat))))


def numpy_bce_stable(logits: np.ndarray, target: np.ndarray) -> float:
    """The same formula with log y_hat = -log(1 + e^-l) and log(1 - y_hat) = -log(1 + e^l)."""
    log_y_hat, log_one_minus = -np.logaddexp(0, -logits), -np.logaddexp(0, logits)
    return float(np.mean(-(target * log_y_hat + (1 - target) * log_one_minus)))


def test_value_function_is_minus_log4_when_d_is_one_half():
    zeros = torch.zeros(7)
    assert value_function(zeros, torch.zeros(3)).item() == pytest.approx(-LOG4, abs=1e-6)


def test_value_function_matches_log_of_probabilities():
    real = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
    fake = torch.tensor([-3.0, 0.25], dtype=torch.float64)
    d_real, d_fake = torch.sigmoid(real), torch.sigmoid(fake)
    expected = torch.log(d_real).mean() + torch.log(1 - d_fake).mean()
    assert value_function(real, fake).item() == pytest.approx(expected.item(), rel=1e-12)


def test_value_function_is_a_differentiable_scalar():
    real = torch.randn(5, requires_grad=True)
    fake = torch.randn(4, requires_grad=True)
    v = value_function(real, fake)
    assert v.dim() == 0
    v.backward()
    assert real.grad is not None and fake.grad is not None


def test_binary_cross_entropy_matches_torch_and_numpy():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 6, generator=gen, dtype=torch.float64) * 3
    target = torch.rand(4, 6, generator=gen, dtype=torch.float64)
    ours = binary_cross_entropy(logits, target)
    assert ours.item() == pytest.approx(
        F.binary_cross_entropy_with_logits(logits, target).item(), rel=1e-12
    )
    assert ours.item() == pytest.approx(numpy_bce(logits.numpy(), target.numpy()), rel=1e-10)


@pytest.mark.parametrize("value", [0.0, 1.0, 0.9])
def test_binary_cross_entropy_accepts_a_float_target(value):
    logits = torch.linspace(-4, 4, 9, dtype=torch.float64)
    expected = F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, value))
    assert binary_cross_entropy(logits, value).item() == pytest.approx(expected.item(), rel=1e-12)


def test_binary_cross_entropy_broadcasts_a_target_row():
    logits = torch.tensor([[0.3, -2.0], [1.5, 4.0]], dtype=torch.float64)
    target = torch.tensor([1.0, 0.0], dtype=torch.float64)
    expected = F.binary_cross_entropy_with_logits(logits, target.expand(2, 2))
    assert binary_cross_entropy(logits, target).item() == pytest.approx(expected.item(), rel=1e-12)


@given(
    st.lists(
        st.tuples(
            st.floats(-30, 30, allow_nan=False),
            st.floats(0, 1, allow_nan=False),
        ),
        min_size=1,
        max_size=20,
    )
)
@settings(max_examples=40, deadline=None)
def test_binary_cross_entropy_property_matches_numpy(pairs):
    logits = np.array([p[0] for p in pairs])
    target = np.array([p[1] for p in pairs])
    ours = binary_cross_entropy(torch.from_numpy(logits), torch.from_numpy(target)).item()
    assert ours == pytest.approx(numpy_bce_stable(logits, target), rel=1e-12, abs=1e-12)
    moderate = np.abs(logits) < 8
    if moderate.all():
        assert ours == pytest.approx(numpy_bce(logits, target), rel=1e-9, abs=1e-9)
    assert ours >= 0


def test_discriminator_loss_is_minus_value_function_and_sum_of_bces():
    gen = torch.Generator().manual_seed(1)
    real = torch.randn(8, generator=gen, dtype=torch.float64) * 2
    fake = torch.randn(5, generator=gen, dtype=torch.float64) * 2
    loss = discriminator_loss(real, fake).item()
    assert loss == pytest.approx(-value_function(real, fake).item(), rel=1e-12)
    bce_sum = (
        F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
        + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    ).item()
    assert loss == pytest.approx(bce_sum, rel=1e-12)


@given(
    st.lists(st.floats(-50, 50, allow_nan=False), min_size=1, max_size=16),
    st.lists(st.floats(-50, 50, allow_nan=False), min_size=1, max_size=16),
)
@settings(max_examples=40, deadline=None)
def test_value_function_is_non_positive_and_loss_its_negation(real, fake):
    r = torch.tensor(real, dtype=torch.float64)
    f = torch.tensor(fake, dtype=torch.float64)
    v = value_function(r, f).item()
    assert v <= 0.0
    assert discriminator_loss(r, f).item() == pytest.approx(-v, rel=1e-12, abs=1e-12)


def test_losses_are_finite_with_finite_gradients_at_extreme_logits():
    extreme = torch.tensor([-100.0, 100.0])
    losses = {
        "value": lambda t: value_function(t, t),
        "bce1": lambda t: binary_cross_entropy(t, 1.0),
        "bce0": lambda t: binary_cross_entropy(t, 0.0),
        "d": lambda t: discriminator_loss(t, t),
        "g_sat": generator_loss_saturating,
        "g_nonsat": generator_loss_non_saturating,
    }
    for name, fn in losses.items():
        logits = extreme.clone().requires_grad_(True)
        out = fn(logits)
        out.backward()
        assert torch.isfinite(out), name
        assert torch.all(torch.isfinite(logits.grad)), name


def test_extreme_logits_give_the_right_values():
    # A perfectly wrong discriminator: log D(x) ~ -100 on reals, log(1 - D(G(z))) ~ -100 on fakes.
    real = torch.full((3,), -100.0)
    fake = torch.full((3,), 100.0)
    assert discriminator_loss(real, fake).item() == pytest.approx(200.0, rel=1e-6)
    # A perfect one: V ~ 0 (from below), and the fooled generator's losses are huge or tiny.
    assert value_function(-real, -fake).item() == pytest.approx(0.0, abs=1e-6)
    assert generator_loss_non_saturating(-fake).item() == pytest.approx(100.0, rel=1e-6)
    assert generator_loss_saturating(-fake).item() == pytest.approx(0.0, abs=1e-6)
    # The naive formula breaks down here; ours does not.
    assert torch.isinf(torch.log(1 - torch.sigmoid(fake))).all()


def _grad_wrt_d(loss_fn, d_value: float) -> float:
    """dL/dD at D(G(z)) = d_value, by routing a leaf D through the logit l = log(D / (1 - D))."""
    d = torch.tensor([d_value], dtype=torch.float64, requires_grad=True)
    loss_fn(torch.log(d / (1 - d))).backward()
    return d.grad.item()


def test_generator_gradients_wrt_d_match_calculus():
    d = 0.01
    sat = _grad_wrt_d(generator_loss_saturating, d)
    nonsat = _grad_wrt_d(generator_loss_non_saturating, d)
    assert sat == pytest.approx(-1 / (1 - d), rel=1e-9)  # d/dD log(1 - D)
    assert sat == pytest.approx(-1.0101010101, rel=1e-9)
    assert nonsat == pytest.approx(-1 / d, rel=1e-9)  # d/dD [-log D]
    assert nonsat == pytest.approx(-100.0, rel=1e-9)
    assert nonsat / sat == pytest.approx(99.0, rel=1e-9)


@pytest.mark.parametrize("batch", [1, 4])
def test_generator_gradients_wrt_logit_match_calculus(batch):
    d = 0.01
    logit = math.log(d / (1 - d))
    for fn, per_sample in [
        (generator_loss_saturating, -d),  # -sigmoid(l)
        (generator_loss_non_saturating, -(1 - d)),  # -(1 - sigmoid(l))
    ]:
        logits = torch.full((batch,), logit, dtype=torch.float64, requires_grad=True)
        fn(logits).backward()
        expected = torch.full((batch,), per_sample / batch, dtype=torch.float64)
        torch.testing.assert_close(logits.grad, expected, rtol=1e-9, atol=0)


def test_generator_losses_match_their_equations():
    fake = torch.tensor([-2.0, 0.0, 3.0], dtype=torch.float64)
    d = torch.sigmoid(fake)
    sat = generator_loss_saturating(fake).item()
    nonsat = generator_loss_non_saturating(fake).item()
    assert sat == pytest.approx(torch.log(1 - d).mean().item(), rel=1e-12)
    assert nonsat == pytest.approx(-torch.log(d).mean().item(), rel=1e-12)


def test_generator_loss_dispatches_by_name():
    fake = torch.tensor([-1.0, 2.0], dtype=torch.float64)
    assert set(GENERATOR_LOSSES) == {"saturating", "minimax", "non-saturating"}
    sat = generator_loss_saturating(fake)
    nonsat = generator_loss_non_saturating(fake)
    assert generator_loss("saturating", fake).item() == sat.item()
    assert generator_loss("minimax", fake).item() == sat.item()
    assert generator_loss("non-saturating", fake).item() == nonsat.item()
    assert sat.item() != nonsat.item()


def test_generator_loss_unknown_name_lists_the_choices():
    with pytest.raises(GanforgeError) as info:
        generator_loss("wasserstein", torch.zeros(2))
    message = str(info.value)
    assert "wasserstein" in message
    for name in GENERATOR_LOSSES:
        assert name in message
