from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganforge.data import build_dataset
from ganforge.errors import GanforgeError
from ganforge.metrics.extractors import LeNetExtractor
from ganforge.metrics.stacked_modes import stacked_mnist_modes, stacked_mode_metrics
from tests.conftest import SHARED_MNIST, needs_mnist


def test_mode_metrics_from_digits():
    every = np.array([[a, b, c] for a in range(10) for b in range(10) for c in range(10)])
    res = stacked_mode_metrics(every)
    assert res["modes"] == 1000 and res["kl"] == pytest.approx(0.0, abs=1e-12)
    one = stacked_mode_metrics(np.zeros((50, 3), dtype=int))
    assert one["modes"] == 1 and one["kl"] == pytest.approx(math.log(1000))
    with pytest.raises(GanforgeError):
        stacked_mode_metrics(np.zeros((5, 2), dtype=int))


@needs_mnist
def test_stacked_mnist_dataset_and_perfect_samples_cover_all_modes():
    ds = build_dataset({"name": "stacked-mnist", "root": str(SHARED_MNIST), "split": "test", "n": 500,
                        "seed": 1})
    assert ds.x.shape == (500, 3, 28, 28) and ds.num_classes == 1000
    assert torch.equal(ds.y, ds.digits[:, 0] * 100 + ds.digits[:, 1] * 10 + ds.digits[:, 2])
    # "Perfect samples": one image per mode built from correctly classified real digits.
    base = build_dataset({"name": "mnist", "root": str(SHARED_MNIST), "split": "test"})
    ext = LeNetExtractor("mnist")
    pred = ext.classify_channels(base.x[:600])[:, 0]
    good = [int(torch.nonzero((pred == d) & (base.y[:600] == d))[0]) for d in range(10)]
    combos = torch.tensor([[a, b, c] for a in range(10) for b in range(10) for c in range(10)])
    images = base.x[torch.tensor(good)][combos][:, :, 0]
    res = stacked_mnist_modes(images, ext)
    assert res["modes"] == 1000 and res["kl"] == pytest.approx(0.0, abs=1e-12)
    collapsed = stacked_mnist_modes(images[:1].repeat(20, 1, 1, 1), ext)
    assert collapsed["modes"] == 1 and collapsed["kl"] == pytest.approx(math.log(1000))


def test_stacked_mnist_needs_its_files(tmp_path):
    with pytest.raises(GanforgeError, match="does not exist"):
        build_dataset({"name": "stacked-mnist", "root": str(tmp_path / "missing")})
    with pytest.raises(GanforgeError, match="data.n"):
        build_dataset({"name": "stacked-mnist", "root": str(tmp_path), "n": 0})
