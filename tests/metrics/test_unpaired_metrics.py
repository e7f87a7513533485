"""Unpaired translation metrics: the centre crop, the classifier share, and evaluate_unpaired on a
stand-in algorithm whose maps are known."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.data.transforms import centre_crop
from ganforge.errors import GanforgeError
from ganforge.metrics.unpaired import class_share, cycle_l1, evaluate_unpaired


class _Shift(nn.Module):
    def __init__(self, by: float) -> None:
        super().__init__()
        self.by = by

    def forward(self, x, generator=None):
        return x + self.by


class _Algo:
    """translate(x, network) applies network (default G_AB), like the image-to-image base."""

    def __init__(self, g: nn.Module, f: nn.Module) -> None:
        self.G_AB, self.G_BA = g, f

    def translate(self, x, network=None, generator=None, batch_size=256):
        return (self.G_AB if network is None else network)(x)


class _MeanClassifier(nn.Module):
    """Class 1 when the image's mean is positive, else class 0; records the input side."""

    def forward(self, x):
        self.side = x.shape[-1]
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([-m, m], dim=1)


def test_centre_crop_takes_the_middle():
    x = torch.arange(36.0).view(1, 1, 6, 6)
    assert torch.equal(centre_crop(x, 2), x[..., 2:4, 2:4])
    with pytest.raises(GanforgeError, match="smaller"):
        centre_crop(x, 8)


def test_class_share_counts_the_target_class_on_the_crop():
    clf = _MeanClassifier()
    x = torch.cat([torch.full((3, 1, 32, 32), 0.5), torch.full((1, 1, 32, 32), -0.5)])
    assert class_share(x, 1, clf, side=28, batch_size=2) == pytest.approx(0.75)
    assert clf.side == 28


def test_evaluate_unpaired_on_known_maps():
    algo = _Algo(_Shift(0.25), _Shift(-0.125))
    a = torch.zeros(4, 1, 8, 8) - 0.5
    assert cycle_l1(algo, a) == pytest.approx(0.125)
    r = evaluate_unpaired(algo, a, partner=a + 0.25, target_class=0, classifier=_MeanClassifier(), side=8)
    assert r["cycle_l1"] == pytest.approx(0.125) and r["images"] == 4
    assert r["paired"]["l1"] == pytest.approx(0.0) and r["identity"]["l1"] == pytest.approx(0.25)
    assert r["target_share"] == 1.0 and r["input_share"] == 1.0
