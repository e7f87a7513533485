"""The PacGAN mode metrics on hand-made sample sets with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganforge.data.toy2d import grid_centers, ring_centers
from ganforge.errors import GanforgeError
from ganforge.metrics.modes import mode_metrics

CENTERS = ring_centers(8, 1.0)
STD = 0.01


def test_perfect_samples_cover_every_mode_with_zero_kl() -> None:
    g = torch.Generator().manual_seed(0)
    x = CENTERS.repeat(100, 1) + STD * torch.randn(800, 2, generator=g).clamp(-2, 2)
    m = mode_metrics(x, CENTERS, STD)
    assert m["modes"] == 8 and m["high_quality"] == 1.0
    assert m["mode_histogram"] == [100] * 8
    assert m["reverse_kl"] == pytest.approx(0.0, abs=1e-12)


def test_all_samples_at_one_centre_give_one_mode_and_kl_log_k() -> None:
    x = np.repeat(grid_centers(5, 2.0)[7:8].numpy(), 50, axis=0)
    m = mode_metrics(x, grid_centers(5, 2.0), 0.05)
    assert m["modes"] == 1 and m["high_quality"] == 1.0
    assert m["mode_histogram"][7] == 50 and sum(m["mode_histogram"]) == 50
    assert m["reverse_kl"] == pytest.approx(math.log(25), rel=1e-12)


def test_far_away_samples_are_not_high_quality() -> None:
    m = mode_metrics(torch.full((30, 2), 50.0), CENTERS, STD)
    assert m["modes"] == 0 and m["high_quality"] == 0.0 and math.isnan(m["reverse_kl"])
    assert m["mode_histogram"] == [0] * 8


def test_threshold_is_three_std_from_the_nearest_mean_and_kl_uses_only_hq_samples() -> None:
    c = CENTERS.numpy().astype(np.float64)
    radial = c / np.linalg.norm(c, axis=1, keepdims=True)
    x = np.concatenate([
        [c[0] + 2.9 * STD * radial[0]],  # inside 3 std of mode 0
        [c[1] + 3.1 * STD * radial[1]],  # just outside mode 1
        c[[0, 0, 2]],                  # two more at mode 0, one at mode 2
        [[np.nan, 0.0]],               # non-finite: low quality
    ])
    m = mode_metrics(x, c, STD)
    assert m["mode_histogram"] == [3, 0, 1, 0, 0, 0, 0, 0]
    assert m["modes"] == 2 and m["high_quality"] == pytest.approx(4 / 6)
    p = np.array([3, 1]) / 4  # KL(p || uniform over 8) = sum p log(8 p)
    assert m["reverse_kl"] == pytest.approx(float(np.sum(p * np.log(8 * p))), rel=1e-12)
    loose = mode_metrics(x, c, STD, threshold=3.2)
    assert loose["modes"] == 3 and loose["high_quality"] == pytest.approx(5 / 6)


def test_bad_inputs_are_one_line_errors() -> None:
    with pytest.raises(GanforgeError, match="shape"):
        mode_metrics(np.zeros((4, 3)), CENTERS, STD)
    with pytest.raises(GanforgeError, match="std"):
        mode_metrics(np.zeros((4, 2)), CENTERS, 0.0)
