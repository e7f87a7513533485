"""Feature matching, historical averaging, one-sided label smoothing and the noise / EMA schedules
against closed forms, numpy references and torch's own binary cross-entropy."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.maths import (
    HistoricalAverage,
    discriminator_loss,
    ema_decay_at,
    feature_matching_loss,
    historical_averaging_penalty,
    instance_noise_std,
    label_smoothing_term,
)


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ------------------------------------------------------------------------------ feature matching


def test_feature_matching_is_the_squared_distance_of_the_batch_means():
    real, fake = randn(7, 4, seed=1), randn(5, 4, seed=2)  # batches of different sizes
    expected = np.sum((real.numpy().mean(axis=0) - fake.numpy().mean(axis=0)) ** 2)
    assert feature_matching_loss(real, fake).item() == pytest.approx(expected, rel=1e-12)
    assert feature_matching_loss(real, real.clone()).item() == pytest.approx(0.0, abs=1e-15)


def test_feature_matching_flattens_feature_maps():
    real, fake = randn(4, 2, 3, 3, seed=3), randn(4, 2, 3, 3, seed=4)
    flat = feature_matching_loss(real.flatten(1), fake.flatten(1))
    assert feature_matching_loss(real, fake).item() == pytest.approx(flat.item(), rel=1e-12)


def test_feature_matching_gradient_reaches_only_the_fake_features():
    real = randn(6, 3, seed=5).requires_grad_(True)
    fake = randn(4, 3, seed=6).requires_grad_(True)
    feature_matching_loss(real, fake).backward()
    assert real.grad is None
    diff = real.detach().mean(0) - fake.detach().mean(0)
    expected = (-2 * diff / 4).expand(4, 3)  # d/df_i ||m_r - mean_j f_j||^2 = -2 (m_r - m_f) / N
    torch.testing.assert_close(fake.grad, expected, rtol=1e-12, atol=0)


def test_feature_matching_rejects_mismatched_features():
    with pytest.raises(GanforgeError, match="differ in shape"):
        feature_matching_loss(randn(4, 3), randn(4, 5))
    with pytest.raises(GanforgeError, match=r"\(N, F\)"):
        feature_matching_loss(randn(4), randn(4))


# ----------------------------------------------------------------------------- historical averaging


def test_historical_penalty_value_and_gradient():
    params = [randn(3, 2, seed=7).requires_grad_(True), randn(4, seed=8).requires_grad_(True)]
    averages = [randn(3, 2, seed=9).requires_grad_(True), randn(4, seed=10)]
    penalty = historical_averaging_penalty(params, averages)
    expected = sum(np.sum((p.detach().numpy() - a.detach().numpy()) ** 2)
                   for p, a in zip(params, averages, strict=True))
    assert penalty.item() == pytest.approx(expected, rel=1e-12)
    penalty.backward()
    for p, a in zip(params, averages, strict=True):
        torch.testing.assert_close(p.grad, 2 * (p.detach() - a.detach()), rtol=1e-12, atol=0)
    assert averages[0].grad is None  # the averages are constants


def test_historical_penalty_validates_its_inputs():
    assert historical_averaging_penalty([], []).item() == 0.0
    with pytest.raises(GanforgeError, match="2 parameter tensors but 1 averages"):
        historical_averaging_penalty([randn(2), randn(2)], [randn(2)])
    with pytest.raises(GanforgeError, match="shape"):
        historical_averaging_penalty([randn(2, 2)], [randn(4)])


def test_historical_average_is_the_cumulative_mean_of_all_values_seen():
    module = nn.Linear(3, 2)
    average = HistoricalAverage(module)
    assert average.penalty(module).item() == 0.0  # before the first update
    gen = torch.Generator().manual_seed(11)
    seen = []
    for _ in range(5):
        with torch.no_grad():
            for p in module.parameters():
                p.copy_(torch.randn(p.shape, generator=gen))
        seen.append([p.detach().numpy().copy() for p in module.parameters()])
        average.update(module)
        expected = [np.mean(values, axis=0) for values in zip(*seen, strict=True)]
        for a, e in zip(average.averages, expected, strict=True):
            assert a.dtype == torch.float32  # no float64 copies
            np.testing.assert_allclose(a.numpy(), e, rtol=1e-5, atol=1e-6)
    assert average.count == 5


def test_historical_average_penalty_pulls_parameters_towards_the_mean():
    module = nn.Linear(2, 2)
    average = HistoricalAverage(module)
    with torch.no_grad():
        module.weight.fill_(1.0)
        module.bias.fill_(0.0)
    average.update(module)
    with torch.no_grad():
        module.weight.fill_(3.0)
        module.bias.fill_(-1.0)
    average.update(module)  # mean: weight 2, bias -0.5
    penalty = average.penalty(module)  # 4 * (3 - 2)^2 + 2 * (-1 + 0.5)^2 = 4.5
    assert penalty.item() == pytest.approx(4.5)
    penalty.backward()
    torch.testing.assert_close(module.weight.grad, torch.full((2, 2), 2.0))
    torch.testing.assert_close(module.bias.grad, torch.full((2,), -1.0))


def test_historical_average_state_round_trips_through_a_weights_only_load():
    module = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    average = HistoricalAverage(module)
    for _ in range(3):
        with torch.no_grad():
            for p in module.parameters():
                p.add_(torch.randn(p.shape))
        average.update(module)
    buffer = io.BytesIO()
    torch.save(average.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    restored = HistoricalAverage(module)
    restored.load_state_dict(state)
    assert restored.count == 3
    for a, b in zip(average.averages, restored.averages, strict=True):
        assert torch.equal(a, b)
    assert restored.penalty(module).item() == average.penalty(module).item()


def test_historical_average_rejects_another_module_and_a_wrong_state_without_changing():
    average = HistoricalAverage(nn.Linear(3, 2))
    with pytest.raises(GanforgeError, match="created for"):
        average.update(nn.Linear(4, 2))
    wrong = HistoricalAverage(nn.Linear(4, 2)).state_dict()
    with pytest.raises(GanforgeError, match="shape"):
        average.load_state_dict(wrong)
    assert average.count == 0 and all(torch.equal(a, torch.zeros_like(a)) for a in average.averages)
    with pytest.raises(GanforgeError, match="does not match"):
        average.load_state_dict({"averages": {"other": torch.zeros(1)}, "count": 1})


def test_historical_average_follows_the_module_dtype():
    module = nn.Linear(2, 2)
    average = HistoricalAverage(module)
    module.double()
    average.update(module)
    assert all(a.dtype == torch.float64 for a in average.averages)
    assert average.penalty(module).dtype == torch.float64


# ----------------------------------------------------------------------------- label smoothing


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3, 0.9])
def test_smoothing_term_turns_the_d_loss_into_bce_with_target_one_minus_s(smoothing):
    real = (randn(9, 1, seed=12) * 4).requires_grad_(True)
    fake = (randn(9, 1, seed=13) * 4).requires_grad_(True)
    ours = discriminator_loss(real, fake) + label_smoothing_term(real, smoothing)
    torchs = (F.binary_cross_entropy_with_logits(real, torch.full_like(real, 1 - smoothing))
              + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    assert ours.item() == pytest.approx(torchs.item(), rel=1e-12)
    ours_grad = torch.autograd.grad(ours, (real, fake))
    torch_grad = torch.autograd.grad(torchs, (real, fake))
    for a, b in zip(ours_grad, torch_grad, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)


def test_smoothing_term_stays_exact_for_saturated_logits():
    real = torch.tensor([-100.0, -30.0, 0.0, 30.0, 100.0], dtype=torch.float64)
    s = 0.2
    ours = F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + label_smoothing_term(real, s)
    torchs = F.binary_cross_entropy_with_logits(real, torch.full_like(real, 1 - s))
    assert ours.item() == pytest.approx(torchs.item(), rel=1e-12)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, math.nan, math.inf, True, "0.1", None])
def test_smoothing_rejects_values_outside_zero_one(bad):
    with pytest.raises(GanforgeError, match=r"label smoothing .* \[0, 1\)"):
        label_smoothing_term(torch.zeros(3), bad)


# ------------------------------------------------------------------------------------ schedules


@pytest.mark.parametrize("initial, anneal", [(0.1, 100), (1.0, 7), (0.0, 10)])
def test_instance_noise_anneals_linearly_to_zero(initial, anneal):
    steps = np.arange(0, 3 * anneal + 1)
    expected = np.interp(steps, [0, anneal], [initial, 0.0])  # linear, then held at 0
    got = [instance_noise_std(int(t), initial, anneal) for t in steps]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    assert instance_noise_std(0, initial, anneal) == initial
    assert instance_noise_std(anneal, initial, anneal) == 0.0


def test_instance_noise_with_zero_anneal_steps_is_off_and_bad_values_raise():
    assert instance_noise_std(0, 0.5, 0) == 0.0
    assert instance_noise_std(np.int64(5), np.float32(0.5), np.int64(10)) == pytest.approx(0.25)
    for args, words in [((-1, 0.1, 10), "step"), ((0, -0.1, 10), "std"), ((0, math.nan, 10), "std"),
                        ((0, 0.1, -5), "anneal_steps"), ((0, 0.1, 2.5), "anneal_steps"),
                        ((1.5, 0.1, 10), "step"), ((True, 0.1, 10), "step")]:
        with pytest.raises(GanforgeError, match=words):
            instance_noise_std(*args)


def test_ema_decay_follows_the_num_updates_rule():
    steps = np.arange(0, 3000, 37)
    warm = np.minimum(0.999, (1.0 + steps) / (10.0 + steps))
    np.testing.assert_allclose([ema_decay_at(int(t), 0.999, warmup=True) for t in steps], warm, rtol=1e-15)
    assert all(ema_decay_at(int(t), 0.999, warmup=False) == 0.999 for t in steps)
    assert ema_decay_at(0, 0.999, True) == pytest.approx(0.1)
    assert ema_decay_at(8, 0.999, True) == pytest.approx(0.5)
    assert ema_decay_at(8, 0.3, True) == 0.3  # min(decay, ...) once decay is the smaller
    assert ema_decay_at(889, 0.99, True) == pytest.approx(890 / 899)  # < 0.99: warm-up ends at t = 890
    assert ema_decay_at(890, 0.99, True) == pytest.approx(0.99)


@pytest.mark.parametrize("step, decay", [(-1, 0.9), (0, 1.5), (0, -0.1), (0, math.nan), (2.0, 0.9)])
def test_ema_decay_rejects_bad_values(step, decay):
    with pytest.raises(GanforgeError):
        ema_decay_at(step, decay, True)
