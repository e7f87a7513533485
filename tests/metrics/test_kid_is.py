from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics import InceptionScore, KernelDistance, inception_score_from_logits, kid_from_features
from ganforge.metrics.kid import subset_indices
from tests.metrics._refs import is_reference, mmd2_reference, relative_error


def kid_reference(x, y, num_subsets, subset_size, seed):
    m = min(subset_size, len(x), len(y))
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(num_subsets):
        i = rng.choice(len(x), m, replace=False)
        j = rng.choice(len(y), m, replace=False)
        vals.append(mmd2_reference(x[i], y[j]))
    return np.mean(vals), np.std(vals)


def test_kid_equals_reference_on_random_features():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(600, 10)), rng.normal(size=(500, 10)) * 1.2 + 0.3
    mean, std = kid_from_features(x, y, num_subsets=20, subset_size=200, seed=3)
    ref_mean, ref_std = kid_reference(x, y, 20, 200, 3)
    assert relative_error(mean, ref_mean) <= 1e-6 and relative_error(std, ref_std) <= 1e-6


def test_kid_equals_reference_on_real_features(digits_features):
    a, b, _ = digits_features
    mean, std = kid_from_features(a, b, num_subsets=10, subset_size=500, seed=1)
    ref_mean, ref_std = kid_reference(a, b, 10, 500, 1)
    assert relative_error(mean, ref_mean) <= 1e-6 and relative_error(std, ref_std) <= 1e-6


def test_kid_separates_and_is_unbiased_near_zero():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8))
    mean, std = kid_from_features(x, y, num_subsets=30, subset_size=500)
    assert abs(mean) < 3 * std + 1e-3
    far, _ = kid_from_features(x, y + 1.0, num_subsets=30, subset_size=500)
    assert far > 10 * abs(mean)


def test_kid_streaming_equals_one_shot():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(300, 5)), rng.normal(size=(300, 5))
    metric = KernelDistance(num_subsets=5, subset_size=100, seed=4)
    for i in range(0, 300, 64):
        metric.update(torch.from_numpy(x[i:i + 64]), real=True)
        metric.update(y[i:i + 64], real=False)
    assert metric.compute() == pytest.approx(kid_from_features(x, y, 5, 100, 4), rel=1e-12)


def test_kid_subsets_are_without_replacement():
    for i, j in subset_indices(50, 40, 3, 1000, 0):
        assert len(set(i)) == len(i) == 40 and len(set(j)) == 40


@pytest.mark.parametrize("splits", [1, 10])
def test_is_equals_reference(splits, digits_features):
    _, _, logits = digits_features
    rng = np.random.default_rng(0)
    for lg in (logits, rng.normal(size=(1000, 7)) * 3):
        mean, std = inception_score_from_logits(lg, splits)
        ref_mean, ref_std = is_reference(lg, splits)
        assert relative_error(mean, ref_mean) <= 1e-6
        assert abs(std - ref_std) <= 1e-6 * max(ref_mean, 1)


def test_is_known_cases_and_streaming():
    uniform = np.zeros((100, 10))
    assert inception_score_from_logits(uniform)[0] == pytest.approx(1.0)
    confident = np.full((1000, 10), -50.0)
    confident[np.arange(1000), np.arange(1000) % 10] = 50.0
    assert inception_score_from_logits(confident)[0] == pytest.approx(10.0, rel=1e-9)
    metric = InceptionScore(splits=10)
    for i in range(0, 1000, 300):
        metric.update(torch.from_numpy(confident[i:i + 300]))
    assert metric.compute() == pytest.approx(inception_score_from_logits(confident), rel=1e-12)
    with pytest.raises(GanforgeError):
        inception_score_from_logits(np.zeros((5, 3)), splits=10)
