from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics import (
    FeatureStats,
    FrechetDistance,
    RunningMoments,
    fid_from_features,
    frechet_distance,
)
from tests.metrics._refs import fid_reference, relative_error


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_fid_equals_pytorch_fid_formula_on_random_features(method):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(800, 16)) @ rng.normal(size=(16, 16))
    y = rng.normal(size=(700, 16)) * 1.3 + 0.2
    assert relative_error(fid_from_features(x, y, method=method), fid_reference(x, y)) <= 1e-6


def test_fid_equals_reference_on_real_features(digits_features):
    a, b, _ = digits_features
    ours, ref = fid_from_features(a, b), fid_reference(a, b)
    assert ref > 0
    assert relative_error(ours, ref) <= 1e-6


def test_fid_of_a_set_with_itself_is_zero(digits_features):
    a, _, _ = digits_features
    assert abs(fid_from_features(a, a)) < 1e-6 * np.trace(np.cov(a, rowvar=False))


def test_fid_of_shifted_gaussians_approaches_squared_shift():
    rng = np.random.default_rng(2)
    m = np.full(8, 0.5)
    x, y = rng.normal(size=(20000, 8)), rng.normal(size=(20000, 8)) + m
    assert fid_from_features(x, y) == pytest.approx(m @ m, rel=0.03)
    # and exactly with exact statistics
    assert frechet_distance(np.zeros(8), np.eye(8), m, np.eye(8)) == pytest.approx(m @ m, rel=1e-12)


def test_streaming_equals_one_shot_and_chunking_does_not_matter():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(1000, 12)), rng.normal(size=(900, 12)) * 0.7
    one_shot = fid_from_features(x, y, chunk_size=10_000)
    for chunk in (1, 7, 128):
        assert fid_from_features(x, y, chunk_size=chunk) == pytest.approx(one_shot, rel=1e-10)
    metric = FrechetDistance()
    for i in range(0, 1000, 333):
        metric.update(torch.from_numpy(x[i:i + 333]), real=True)
    metric.update(y, real=False)
    assert metric.compute() == pytest.approx(one_shot, rel=1e-10)


def test_running_moments_equal_numpy():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(500, 6)) * 100 + 1e4  # large offset: the naive formula would lose digits
    m = RunningMoments()
    for i in range(0, 500, 37):
        m.update(x[i:i + 37])
    np.testing.assert_allclose(m.mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(m.cov, np.cov(x, rowvar=False), rtol=1e-9, atol=1e-9)


def test_singular_covariances_use_eps_retry_and_stay_finite():
    x = np.zeros((50, 4))
    x[:, 0] = np.arange(50)
    value = fid_from_features(x, x + 1.0)
    assert np.isfinite(value) and value == pytest.approx(4.0, abs=1e-3)


def test_reference_stats_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    stats = FeatureStats(rng.normal(size=3), np.eye(3), 10, "lenet_mnist", "mnist", "1x28x28")
    path = stats.save(tmp_path / "ref.npz")
    back = FeatureStats.load(path, "lenet_mnist")
    np.testing.assert_array_equal(back.mu, stats.mu)
    assert (back.n, back.extractor, back.dataset, back.image_size) == (10, "lenet_mnist", "mnist", "1x28x28")
    with pytest.raises(GanforgeError, match="extractor"):
        FeatureStats.load(path, "inception")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(GanforgeError, match="cannot read"):
        FeatureStats.load(tmp_path / "bad.npz")


def test_mismatched_dimensions_are_a_user_error():
    with pytest.raises(GanforgeError):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
