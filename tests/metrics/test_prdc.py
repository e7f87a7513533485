from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch

from ganforge.metrics import PrecisionRecallDensityCoverage, knn_sq_radii, prdc
from tests.metrics._refs import relative_error

prdc_oracle = pytest.importorskip("prdc")


def oracle(x, y, k_pr=3, k_dc=5):
    with contextlib.redirect_stdout(io.StringIO()):
        a, b = prdc_oracle.compute_prdc(x, y, k_pr), prdc_oracle.compute_prdc(x, y, k_dc)
    return {"precision": a["precision"], "recall": a["recall"], "density": b["density"],
            "coverage": b["coverage"]}


def assert_equal(ours, ref):
    for key in ("precision", "recall", "density", "coverage"):
        assert relative_error(ours[key], float(ref[key])) <= 1e-6, (key, ours[key], ref[key])


@pytest.mark.parametrize("n,m,d", [(500, 400, 8), (900, 1100, 32)])
def test_prdc_equals_the_prdc_package_on_random_features(n, m, d):
    rng = np.random.default_rng(n)
    x, y = rng.normal(size=(n, d)), rng.normal(size=(m, d)) * 1.2 + 0.3
    assert_equal(prdc(x, y, block_size=256), oracle(x, y))


def test_prdc_equals_the_prdc_package_on_real_features(digits_features):
    a, b, _ = digits_features
    assert_equal(prdc(a, b), oracle(a, b))
    assert_equal(prdc(a, b, k_pr=5, k_dc=3), oracle(a, b, 5, 3))


def test_identical_sets_have_precision_and_recall_one():
    x = np.random.default_rng(1).normal(size=(400, 6))
    res = prdc(x, x)
    assert res["precision"] == 1.0 and res["recall"] == 1.0 and res["coverage"] == 1.0


def test_block_size_and_streaming_do_not_change_results():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(700, 16)), rng.normal(size=(650, 16)) + 0.2
    ref = prdc(x, y, block_size=4096)
    for block in (50, 256):
        assert prdc(x, y, block_size=block) == ref
    metric = PrecisionRecallDensityCoverage()
    for i in range(0, 700, 100):
        metric.update(torch.from_numpy(x[i:i + 100]), real=True)
    metric.update(y, real=False)
    assert metric.compute() == ref


def test_knn_radii_equal_brute_force():
    x = torch.from_numpy(np.random.default_rng(3).normal(size=(300, 5)))
    brute = torch.cdist(x, x).pow(2).sort(dim=1).values[:, :4]
    torch.testing.assert_close(knn_sq_radii(x, 3, block_size=64), brute, rtol=1e-9, atol=1e-9)
