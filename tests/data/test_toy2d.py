import math

import pytest
import torch

from ganforge.data import build_dataset
from ganforge.data.toy2d import grid25, moons, ring8, spiral, swissroll, toy2d
from ganforge.errors import GanforgeError

N = 20_000


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


ALL = [ring8, grid25, spiral, swissroll, moons]


@pytest.mark.parametrize("builder", ALL, ids=lambda b: b.__name__)
def test_same_seed_same_samples_different_seed_differ(builder):
    ds = builder()
    x1, y1 = ds.sample(500, gen(3))
    x2, y2 = ds.sample(500, gen(3))
    x3, _ = ds.sample(500, gen(4))
    assert torch.equal(x1, x2)
    assert (y1 is None and y2 is None) or torch.equal(y1, y2)
    assert not torch.allclose(x1, x3)
    assert x1.shape == (500, 2) and x1.dtype == torch.float32
    assert ds.sample_shape == (2,)


@pytest.mark.parametrize("builder", ALL, ids=lambda b: b.__name__)
def test_sampling_ignores_the_global_rng(builder):
    ds = builder()
    torch.manual_seed(0)
    a, _ = ds.sample(100, gen(1))
    torch.manual_seed(12345)
    b, _ = ds.sample(100, gen(1))
    assert torch.equal(a, b)
    state = torch.get_rng_state()
    ds.sample(100, gen(2))
    assert torch.equal(state, torch.get_rng_state())


def test_ring8_centres_labels_and_spread():
    ds = ring8()
    assert ds.num_classes == 8 and ds.std == 0.02
    angles = torch.arange(8) * (2 * math.pi / 8)
    expected = 2.0 * torch.stack([angles.cos(), angles.sin()], dim=1)
    torch.testing.assert_close(ds.centers, expected, atol=1e-6, rtol=0)
    x, y = ds.sample(N, gen(0))
    assert y.dtype == torch.int64 and set(y.tolist()) == set(range(8))
    for k in range(8):
        pts = x[y == k]
        assert abs(len(pts) / N - 1 / 8) < 0.02
        torch.testing.assert_close(pts.mean(0), ds.centers[k], atol=0.003, rtol=0)
        resid = pts - ds.centers[k]
        assert resid.std(0).sub(0.02).abs().max() < 0.002
    # every point is nearest to the mode it was labelled with (modes are 1.5 apart, std 0.02)
    nearest = torch.cdist(x, ds.centers).argmin(1)
    assert torch.equal(nearest, y)


def test_grid25_centres_are_exact_and_spread_matches_std():
    ds = grid25()
    assert ds.num_classes == 25 and ds.std == 0.05
    expected = {(float(a), float(b)) for a in range(-4, 5, 2) for b in range(-4, 5, 2)}
    assert {tuple(c) for c in ds.centers.tolist()} == expected
    x, y = ds.sample(N, gen(1))
    resid = x - ds.centers[y]
    assert abs(resid.std().item() - 0.05) < 0.002
    assert resid.mean(0).abs().max() < 0.002
    counts = torch.bincount(y, minlength=25).float() / N
    assert (counts - 1 / 25).abs().max() < 0.01


def test_overrides_change_geometry():
    ring = ring8(radius=3.0, std=0.1)
    torch.testing.assert_close(ring.centers.norm(dim=1), torch.full((8,), 3.0))
    x, y = ring.sample(N, gen(0))
    assert abs((x - ring.centers[y]).std().item() - 0.1) < 0.004
    grid = grid25(spacing=1.0)
    assert grid.centers.min().item() == -2.0 and grid.centers.max().item() == 2.0
    assert ring8(std=0.0).sample(10, gen(0))[0].norm(dim=1).sub(2.0).abs().max() < 1e-5


@pytest.mark.parametrize("builder", [spiral, swissroll, moons], ids=lambda b: b.__name__)
def test_continuous_shapes_have_no_modes_or_labels(builder):
    ds = builder()
    assert ds.centers is None and ds.num_classes is None and ds.std == 0.05
    x, y = ds.sample(1000, gen(0))
    assert y is None and torch.isfinite(x).all()
    materialised = ds.materialise(64, seed=5)
    assert materialised.y is None and len(materialised) == 64


def test_noise_free_shapes_lie_on_their_curves():
    g = gen(0)
    x, _ = moons(std=0.0, scale=1.0).sample(2000, g)
    # undo the centring: points must lie on the unit circle at the origin or at (1, 0.5)
    p = x + torch.tensor([0.5, 0.25])
    d_upper = (p.norm(dim=1) - 1).abs()
    d_lower = ((p - torch.tensor([1.0, 0.5])).norm(dim=1) - 1).abs()
    assert torch.minimum(d_upper, d_lower).max() < 1e-5
    assert 0.45 < (d_upper < 1e-5).float().mean() < 0.55

    x, _ = swissroll(std=0.0, scale=1.0).sample(2000, g)
    t = x.norm(dim=1)  # point = t (cos t, sin t), so |point| = t
    assert t.min() >= 1.5 * math.pi - 1e-4 and t.max() <= 4.5 * math.pi + 1e-4
    torch.testing.assert_close(x, torch.stack([t * t.cos(), t * t.sin()], 1), atol=1e-3, rtol=0)

    sp = spiral(std=0.0)
    x, _ = sp.sample(2000, g)
    t = x.norm(dim=1) / sp.radius
    angle = 2 * math.pi * sp.turns * t
    clean = sp.radius * t[:, None] * torch.stack([angle.cos(), angle.sin()], 1)
    torch.testing.assert_close(x, clean, atol=1e-4, rtol=0)


def test_toy2d_general_builder():
    ring = toy2d(kind="ring", n_modes=6, radius=1.0, std=0.01)
    assert ring.num_classes == 6 and ring.std == 0.01
    torch.testing.assert_close(ring.centers.norm(dim=1), torch.ones(6))
    grid = toy2d(kind="grid", n_modes=9, spacing=1.0)
    assert {tuple(c) for c in grid.centers.tolist()} == {(a, b) for a in (-1.0, 0.0, 1.0)
                                                           for b in (-1.0, 0.0, 1.0)}
    assert toy2d(kind="moons", std=0.2).std == 0.2
    with pytest.raises(GanforgeError, match="square number"):
        toy2d(kind="grid", n_modes=10)
    with pytest.raises(GanforgeError, match="unknown toy2d kind 'star'.*one of"):
        toy2d(kind="star")
    with pytest.raises(GanforgeError, match="remove data.n_modes"):
        toy2d(kind="spiral", n_modes=3)


def test_bad_std_is_a_user_error():
    with pytest.raises(GanforgeError, match="data.std.*set data.std"):
        build_dataset({"name": "ring8", "std": -1.0})
