"""plot_2d_field / plot_sample_strip: D(x) evaluated on a grid, PNGs with real content."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.viz import plot_2d_field, plot_sample_strip
from ganforge.viz.field import auto_bounds


def clouds(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    real = rng.normal([2.0, 1.0], 0.3, size=(200, 2))
    fake = rng.normal([-1.0, -3.0], 0.5, size=(150, 2))
    return real, fake


def read_rgb(path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


class Recorder:
    """A prob_fn that logs what it was called with; D(x) = sigmoid(x_0)."""

    def __init__(self) -> None:
        self.layer = torch.nn.Linear(2, 1)  # has parameters that require grad
        self.calls: list[tuple[torch.Tensor, bool]] = []

    def __call__(self, pts: torch.Tensor) -> torch.Tensor:
        self.calls.append((pts.clone(), torch.is_grad_enabled()))
        return torch.sigmoid(self.layer(pts) * 0 + pts[:, :1])  # shape (K, 1) is accepted


def test_prob_fn_is_called_on_a_grid_covering_both_clouds_in_no_grad_chunks(tmp_path):
    real, fake = clouds()
    rec = Recorder()
    plot_2d_field(real, fake, tmp_path / "f.png", prob_fn=rec, resolution=60, chunk_size=1000)
    assert len(rec.calls) == 4  # 3600 points in chunks of at most 1000
    assert all(len(pts) <= 1000 for pts, _ in rec.calls)
    assert not any(grad for _, grad in rec.calls)
    grid = torch.cat([pts for pts, _ in rec.calls])
    assert grid.dtype == torch.float32
    assert grid.shape == (3600, 2)
    assert len(torch.unique(grid[:, 0])) == 60 and len(torch.unique(grid[:, 1])) == 60
    both = np.concatenate([real, fake])
    lo, hi = grid.min(0).values.numpy(), grid.max(0).values.numpy()
    assert (lo < both.min(0)).all() and (hi > both.max(0)).all(), "grid has a margin"
    assert (hi - lo < 2 * (both.max(0) - both.min(0))).all(), "but not a huge one"


def test_explicit_bounds_are_the_grid_extent(tmp_path):
    real, fake = clouds()
    rec = Recorder()
    plot_2d_field(real, fake, tmp_path / "f.png", prob_fn=rec, bounds=(-5, 5, -4, 6), resolution=11)
    grid = torch.cat([pts for pts, _ in rec.calls])
    assert grid[:, 0].min() == -5 and grid[:, 0].max() == 5
    assert grid[:, 1].min() == -4 and grid[:, 1].max() == 6
    with pytest.raises(ValueError):
        plot_2d_field(real, fake, tmp_path / "g.png", bounds=(1, 0, 0, 1))


def test_png_is_non_trivial_and_the_field_is_drawn(tmp_path):
    real, fake = clouds()
    centers = np.array([[2.0, 1.0], [-1.0, -3.0]])

    def field(value: float):
        return lambda pts: torch.full((len(pts),), value)

    low = read_rgb(
        plot_2d_field(real, fake, tmp_path / "low.png", field(0.0), "t", centers, resolution=40)
    )
    high = read_rgb(
        plot_2d_field(real, fake, tmp_path / "high.png", field(1.0), "t", centers, resolution=40)
    )
    assert low.shape == high.shape and low.shape[0] > 100 and low.shape[1] > 100
    assert len(np.unique(low.reshape(-1, 3), axis=0)) > 20, "not a single colour"
    # D = 0 and D = 1 fill the plotting area with different colours.
    assert (np.abs(low.astype(int) - high.astype(int)).sum(axis=2) > 30).mean() > 0.2


def test_without_prob_fn_and_with_empty_real_or_non_finite_fake(tmp_path):
    _, fake = clouds()
    fake[:5] = np.nan
    path = plot_2d_field(torch.empty(0, 2), torch.from_numpy(fake), tmp_path / "s.png")
    assert len(np.unique(read_rgb(path).reshape(-1, 3), axis=0)) > 2


def test_bad_inputs_raise_value_error(tmp_path):
    real, fake = clouds()
    with pytest.raises(ValueError):
        plot_2d_field(real[:, :1], fake, tmp_path / "f.png")
    with pytest.raises(ValueError):
        plot_2d_field(real, fake, tmp_path / "f.png", prob_fn=lambda pts: pts[:1, 0])
    assert not (tmp_path / "f.png").exists()


def test_auto_bounds_never_collapse():
    x0, x1, y0, y1 = auto_bounds(np.zeros((3, 2)))
    assert x0 < 0 < x1 and y0 < 0 < y1
    assert auto_bounds(np.full((2, 2), np.inf)) == (-1.0, 1.0, -1.0, 1.0)


def test_sample_strip_has_one_panel_per_snapshot(tmp_path):
    real, fake = clouds()
    one = read_rgb(plot_sample_strip([(0, fake)], tmp_path / "one.png", real=real))
    three = read_rgb(
        plot_sample_strip(
            [(0, fake), (100, fake * 0.5), (200, real)], tmp_path / "three.png", centers=real[:2]
        )
    )
    assert three.shape[0] == one.shape[0]
    assert three.shape[1] > 2.5 * one.shape[1]
    with pytest.raises(ValueError):
        plot_sample_strip([], tmp_path / "none.png")


def test_no_pyplot_figures_are_left_open(tmp_path):
    import matplotlib.pyplot as plt

    real, fake = clouds()
    before = plt.get_fignums()
    plot_2d_field(real, fake, tmp_path / "f.png", prob_fn=lambda p: torch.zeros(len(p)))
    plot_sample_strip([(1, fake)], tmp_path / "s.png")
    assert plt.get_fignums() == before
