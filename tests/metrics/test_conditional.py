"""Class-match accuracy and intra-class FID, against independent references, and the Evaluator's
``class`` group on a toy mixture (classified by the nearest mode)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from ganforge import build_dataset
from ganforge.data.base import ArrayDataset
from ganforge.errors import GanforgeError
from ganforge.metrics.conditional import class_match_accuracy, intra_class_fid, mean_intra_class_fid
from ganforge.metrics.evaluate import Evaluator


def scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_class_match_is_the_share_of_argmax_hits():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0], [9.0, 0.0, 0.0]])
    assert class_match_accuracy(logits, torch.tensor([0, 1, 1, 0])) == 0.75
    with pytest.raises(GanforgeError, match="labels"):
        class_match_accuracy(logits, torch.tensor([0, 1]))


def test_intra_class_fid_is_the_per_class_frechet_distance():
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(600, 4, generator=gen, dtype=torch.float64)
    fake = torch.randn(600, 4, generator=gen, dtype=torch.float64) * 1.3 + 0.2
    y_real, y_fake = torch.arange(600) % 3, (torch.arange(600) + 1) % 3
    per_class = intra_class_fid(real, y_real, fake, y_fake, 3)
    for k in range(3):
        expected = scipy_fid(real[y_real == k].numpy(), fake[y_fake == k].numpy())
        assert per_class[k] == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert mean_intra_class_fid(per_class) == pytest.approx(np.mean(list(per_class.values())))


def test_intra_class_fid_sees_swapped_labels_that_pooled_fid_misses():
    """Two well separated classes drawn for the wrong labels: pooled statistics are identical,
    intra-class FID is large."""
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(400, 2, generator=gen, dtype=torch.float64)
    b = torch.randn(400, 2, generator=gen, dtype=torch.float64) + 10
    real, y = torch.cat([a, b]), torch.cat([torch.zeros(400), torch.ones(400)]).long()
    right = mean_intra_class_fid(intra_class_fid(real, y, real, y, 2))
    swapped = mean_intra_class_fid(intra_class_fid(real, y, real, 1 - y, 2))
    assert right == pytest.approx(0.0, abs=1e-6) and swapped > 150


def test_evaluator_class_group_on_a_toy_mixture():
    ring = build_dataset({"name": "ring8"})
    ev = Evaluator(ring, ["class"], extractor="raw", num_samples=800, seed=0)
    base = ev.baseline()
    assert base["class_match_raw"] == 1.0  # real points sit on their own mode
    data = ring.materialise(800, seed=9)
    assert ev.score(data.x, data.y)["class_match_raw"] == 1.0
    wrong = ev.score(data.x, (data.y + 1) % 8)  # every sample on the neighbouring mode
    assert wrong["class_match_raw"] == 0.0 and wrong["intra_fid_raw"] > 1.0
    with pytest.raises(GanforgeError, match="labels the samples were generated for"):
        ev.score(data.x)


def test_class_metrics_need_labelled_data_and_a_classifier():
    with pytest.raises(GanforgeError, match="needs a classifier"):
        Evaluator(build_dataset({"name": "spiral"}), ["class"], extractor="raw", num_samples=100)
    digits = build_dataset({"name": "digits"})
    unlabelled = ArrayDataset(digits.x, None, name="digits")
    with pytest.raises(GanforgeError, match="no labels"):
        Evaluator(unlabelled, ["class"], extractor="lenet_digits", num_samples=100)
