"""The independent digit scorers: the exact 16 -> 8 px inverse, the held-out reference, the target."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.data import build_dataset
from ganforge.data.transforms import resize_images
from ganforge.errors import GanforgeError
from ganforge.metrics.digit_scorers import (
    SCORERS,
    TRAIN_SIZE,
    convincing,
    real_digits,
    real_reference,
    relative_scores,
    to_digit_grid,
)


def _held_out_images(size: int) -> torch.Tensor:
    """The held-out real digits as the dataset serves them at ``size`` px."""
    return build_dataset({"name": "digits", "size": size}).x[TRAIN_SIZE:]


@pytest.mark.parametrize("size", [8, 16, 32])
def test_the_dataset_images_map_back_to_their_exact_8x8_pixels(size):
    pixels = to_digit_grid(_held_out_images(size))
    assert pixels.shape == (1797 - TRAIN_SIZE, 64)
    np.testing.assert_allclose(pixels, real_digits()[2], atol=1e-4)


def test_the_inverse_is_the_least_squares_8x8_image():
    """Against torch.linalg.lstsq on the upsampling operator built from resize_images."""
    x = torch.rand(5, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.6 - 0.3
    basis = torch.eye(64, dtype=torch.float64).view(64, 1, 8, 8)
    up = resize_images(basis, 16).reshape(64, 256).T
    solution = torch.linalg.lstsq(up, x.double().reshape(5, 256).T).solution.T
    np.testing.assert_allclose(to_digit_grid(x), ((solution + 1) * 8).numpy(), atol=1e-9)


def test_grids_are_clipped_to_the_0_16_scale():
    pixels = to_digit_grid(torch.full((2, 1, 16, 16), 3.0))
    assert pixels.min() >= 0 and pixels.max() == 16


@pytest.mark.parametrize("shape", [(4, 3, 16, 16), (4, 1, 16, 8), (4, 1, 12, 12), (4, 256)])
def test_images_that_are_not_digits_are_a_one_line_error(shape):
    with pytest.raises(GanforgeError, match="digit scorers read"):
        to_digit_grid(torch.zeros(shape))


def test_held_out_real_digits_are_the_ceiling_every_scorer_agrees_on():
    real = real_reference()
    assert set(real) == set(SCORERS)
    for score in real.values():
        assert 0.8 < score.confidence <= 1.0
        assert score.shares.sum() == pytest.approx(1.0) and score.shares.min() > 0.06
    summary = relative_scores(_held_out_images(16))  # the real digits as a generator would emit them
    assert all(s["ratio"] == pytest.approx(1.0, abs=1e-6) for s in summary.values())
    assert convincing(summary)


def test_one_digit_only_or_noise_is_not_convincing():
    images = _held_out_images(16)
    zeros = images[torch.from_numpy(real_digits()[3] == 0)]
    assert not convincing(relative_scores(zeros))  # confident, but nine digits are missing
    noise = torch.rand(500, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert sum(s["ratio"] >= 0.95 for s in relative_scores(noise).values()) < 2


def test_the_target_needs_two_scorers_and_every_class():
    good = {"ratio": 0.96, "min_share": 0.07}
    assert convincing({"a": good, "b": good, "c": {"ratio": 0.5, "min_share": 0.07}})
    assert not convincing({"a": good, "b": {"ratio": 0.94, "min_share": 0.07}, "c": good | {"ratio": 0.9}})
    assert not convincing({"a": good, "b": good, "c": {"ratio": 0.99, "min_share": 0.05}})
