"""Unpaired datasets: the (x = B, cond = A) contract, the two registered datasets, disjoint halves
and true partners of mnist-thickness, the dilation against scikit-image, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.data import build_dataset
from ganforge.data.paired import PairedDataset
from ganforge.data.unpaired import UnpairedDataset, disk, thicken
from ganforge.errors import GanforgeError


def _rows(x: torch.Tensor) -> set[bytes]:
    return {row.numpy().tobytes() for row in x}


def test_unpaired_rows_hold_every_image_of_both_domains():
    a, b = torch.randn(5, 1, 4, 4), torch.randn(3, 1, 4, 4)
    d = UnpairedDataset(a, b, seed=1, domains=("p", "q"))
    assert d.fields == ("x", "cond") and len(d) == 5 and not d.paired
    assert torch.equal(d.cond, a)                   # A in order
    assert _rows(d.x) == _rows(b)                   # every B image, the shorter domain cycled
    assert torch.equal(d.a, a) and torch.equal(d.b, b) and d.domains == ("p", "q")
    assert not torch.equal(UnpairedDataset(a, b, seed=2).x, d.x) or len(b) < 2


def test_fashion_pair_classes_takes_one_class_per_domain(tmp_path, write_split):
    images, labels = write_split(tmp_path, "train", n=40)
    d = build_dataset({"name": "fashion-pair-classes", "root": str(tmp_path)})
    assert d.cond.shape[1:] == (1, 32, 32) and len(d.a) == len(d.b) == 4
    crop = ((d.a[:, 0, 2:30, 2:30] + 1) * 127.5).round().numpy().astype(np.uint8)
    assert np.array_equal(crop, images[labels == 7])
    crop_b = ((d.b[:, 0, 2:30, 2:30] + 1) * 127.5).round().numpy().astype(np.uint8)
    assert np.array_equal(crop_b, images[labels == 9])
    assert d.domains == ("Sneaker", "Ankle boot")
    small = build_dataset({"name": "fashion-pair-classes", "root": str(tmp_path), "limit": 2,
                           "class_a": 0, "class_b": 1})
    assert len(small.a) == len(small.b) == 2


def test_thicken_matches_scikit_image_dilation():
    from skimage.morphology import dilation

    x = torch.rand(3, 1, 12, 12) * 2 - 1
    for r in (1, 2):
        ref = np.stack([dilation(img, disk(r)) for img in x[:, 0].numpy()])
        inner = (slice(None), 0, slice(r, -r), slice(r, -r))   # borders: skimage pads differently
        assert np.allclose(thicken(x, r)[inner].numpy(), ref[:, r:-r, r:-r])
    assert torch.equal(thicken(x, 0), x)
    assert (thicken(x, 1) >= x).all()


def test_mnist_thickness_halves_are_disjoint_and_partners_are_true(tmp_path, write_split):
    write_split(tmp_path, "t10k", n=30)
    base = {"name": "mnist-thickness", "root": str(tmp_path), "test_size": 10}
    train, test = build_dataset(base), build_dataset({**base, "split": "test"})
    assert isinstance(train, UnpairedDataset) and isinstance(test, PairedDataset)
    assert len(train.a) == len(train.b) == 10 and len(test) == 10
    a_idx, b_idx = set(train.a_index.tolist()), set(train.b_index.tolist())
    assert not a_idx & b_idx                                        # disjoint halves
    # no training A image's thick partner is among the B images, nor any held-out image
    assert not _rows(train.partner) & _rows(train.b)
    assert not _rows(test.cond) & (_rows(train.a) | _rows(train.b))
    assert torch.equal(train.partner, thicken(train.a, 1))
    assert torch.equal(test.x, thicken(test.cond, 1))               # the true pairs
    assert len(build_dataset({**base, "limit": 3}).a) == 3


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"split": "val"}, "split"),
    ({"radius": -1}, "radius"),
    ({"test_size": 29}, "test_size"),
    ({"size": 20}, "size"),
])
def test_mnist_thickness_errors(tmp_path, write_split, changes, fragment):
    write_split(tmp_path, "t10k", n=30)
    with pytest.raises(GanforgeError, match=fragment):
        build_dataset({"name": "mnist-thickness", "root": str(tmp_path), "test_size": 10, **changes})


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"class_a": 9}, "both 9"),
    ({"class_b": 10}, "class_b"),
    ({"limit": 0}, "limit"),
])
def test_fashion_pair_classes_errors(tmp_path, write_split, changes, fragment):
    write_split(tmp_path, "train", n=40)
    with pytest.raises(GanforgeError, match=fragment):
        build_dataset({"name": "fashion-pair-classes", "root": str(tmp_path), **changes})
