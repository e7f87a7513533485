"""Nearest real neighbours: against brute force, and memorised samples found at distance 0."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data.base import build_dataset
from ganforge.errors import GanforgeError
from ganforge.latent import nearest_real, plot_neighbours, real_neighbour_baseline
from ganforge.viz.grid import to_uint8


def test_indices_and_distances_match_brute_force_cdist():
    g = torch.Generator().manual_seed(0)
    fake, real = torch.randn(10, 1, 4, 4, generator=g), torch.randn(60, 1, 4, 4, generator=g)
    idx, dist = nearest_real(fake, real, k=3)
    assert idx.shape == dist.shape == (10, 3) and idx.dtype == torch.int64
    d = torch.cdist(fake.flatten(1).double(), real.flatten(1).double())
    assert torch.equal(idx[:, 0], d.argmin(1))
    assert torch.equal(idx, d.topk(3, largest=False).indices)
    torch.testing.assert_close(dist, d.gather(1, idx))


def test_a_memorised_sample_is_found_at_distance_zero():
    real = build_dataset({"name": "digits", "size": 8}).x
    g = torch.Generator().manual_seed(1)
    copies = [5, 1200]
    fake = torch.cat([real[copies], torch.rand(3, 1, 8, 8, generator=g) * 2 - 1])
    idx, dist = nearest_real(fake, real, k=2)
    assert (dist[:2, 0] == 0).all()                 # exactly zero, not ~1e-4
    assert torch.equal(real[idx[:2, 0]], real[copies])  # (a duplicate image would also do)
    assert (dist[2:, 0] > 0).all()
    baseline = real_neighbour_baseline(real, n=300)
    assert 0 < baseline < dist[2:, 0].min()  # noise is far from every digit


def test_baseline_is_the_median_nearest_other_distance():
    g = torch.Generator().manual_seed(2)
    real = torch.randn(40, 3, generator=g)
    d = torch.cdist(real.double(), real.double())
    d.fill_diagonal_(float("inf"))
    expected = float(np.median(d.min(1).values.numpy()))
    assert real_neighbour_baseline(real, n=40) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("fake, real, k", [
    (torch.zeros(2, 4), torch.zeros(5, 3), 1),
    (torch.zeros(2, 4), torch.zeros(5, 4), 6),
    (torch.zeros(2, 4), torch.zeros(5, 4), 0),
    (torch.zeros(0, 4), torch.zeros(5, 4), 1),
])
def test_bad_input_raises(fake, real, k):
    with pytest.raises(GanforgeError):
        nearest_real(fake, real, k)


def test_figure_rows_hold_each_sample_then_its_neighbours(tmp_path):
    g = torch.Generator().manual_seed(3)
    fake, real = torch.rand(2, 1, 8, 8, generator=g) * 2 - 1, torch.rand(20, 1, 8, 8, generator=g) * 2 - 1
    idx, _ = nearest_real(fake, real, k=3)
    path = plot_neighbours(fake, real, idx, tmp_path / "nn.png")
    grid = np.asarray(Image.open(path))
    scale, cell = 4, 8 + 2  # 8x8 images are upscaled x4; 2 px padding
    assert grid.shape == ((2 * cell + 2) * scale, (4 * cell + 2) * scale)
    for row in range(2):
        for col, image in enumerate([fake[row], *real[idx[row]]]):
            top, left = (2 + row * cell) * scale, (2 + col * cell) * scale
            pixels = grid[top:top + 8 * scale:scale, left:left + 8 * scale:scale]
            assert np.array_equal(pixels, to_uint8(image[0].numpy())), (row, col)
