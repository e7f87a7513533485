"""Paired datasets: the (x, cond) contract, the edge maps, masked pairs and the paired folder's
formats and one-line errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import build_dataset
from ganforge.data.paired import (
    PairedDataset,
    canny_edges,
    paired_folder,
    sobel_edges,
    square_masks,
)
from ganforge.errors import GanforgeError
from ganforge.train.batches import ShuffledBatches

FASHION = Path(__file__).resolve().parents[3] / "shared" / "data" / "fashion-mnist"
needs_fashion = pytest.mark.skipif(not (FASHION / "t10k-images-idx3-ubyte.gz").is_file(),
                                   reason="needs Fashion-MNIST in shared/data/fashion-mnist")


def test_paired_dataset_declares_x_y_cond_and_batches_carry_them():
    x, cond = torch.rand(10, 1, 8, 8) * 2 - 1, torch.rand(10, 2, 8, 8) * 2 - 1
    ds = PairedDataset(x, cond, torch.arange(10) % 3)
    assert ds.fields == ("x", "y", "cond") and ds.cond_shape == (2, 8, 8)
    assert PairedDataset(x, cond).fields == ("x", "cond")
    batch = ShuffledBatches(ds, 4, seed=0).next()
    assert set(batch) == {"x", "y", "cond"}
    i = int(torch.nonzero((ds.x == batch["x"][0]).flatten(1).all(1))[0])
    assert torch.equal(batch["cond"][0], ds.cond[i])           # pairs stay together
    assert len(ds.subset(slice(0, 3))) == 3
    with pytest.raises(ValueError):
        PairedDataset(x, cond[:5])


def test_sobel_edges_mark_a_step_and_nothing_in_flat_regions():
    x = -torch.ones(1, 1, 8, 8)
    x[..., 4:] = 1.0  # a vertical step between columns 3 and 4
    e = sobel_edges(x)
    assert set(e.unique().tolist()) <= {-1.0, 1.0}
    assert (e[0, 0, :, 3:5] == -1).all()                 # the step is an edge (black)
    assert (e[0, 0, :, :2] == 1).all() and (e[0, 0, :, 6:] == 1).all()


@pytest.mark.skipif(importlib.util.find_spec("skimage") is None, reason="needs scikit-image")
def test_canny_edges_find_a_square_outline():
    x = -torch.ones(1, 1, 16, 16)
    x[..., 4:12, 4:12] = 1.0
    e = canny_edges(x, sigma=1.0)
    assert (e == -1).any() and (e[0, 0, 7:9, 7:9] == 1).all() and (e[0, 0, 0] == 1).all()


def test_square_masks_centre_and_random():
    m = square_masks(3, 8, 4, "centre", seed=0)
    assert m.shape == (3, 1, 8, 8) and (m.sum(dim=(1, 2, 3)) == 16).all()
    assert (m[:, 0, 2:6, 2:6] == 1).all()
    r = square_masks(50, 8, 4, "random", seed=1)
    assert (r.sum(dim=(1, 2, 3)) == 16).all()
    assert len({tuple(torch.nonzero(mi[0])[0].tolist()) for mi in r}) > 5  # places vary
    assert torch.equal(r, square_masks(50, 8, 4, "random", seed=1))


@needs_fashion
def test_edges2fashion_pairs_padded_images_with_their_edges():
    ds = build_dataset({"name": "edges2fashion", "root": str(FASHION), "split": "test", "limit": 64})
    assert ds.fields == ("x", "y", "cond") and ds.x.shape == (64, 1, 32, 32) and ds.cond_shape == (1, 32, 32)
    assert (ds.x[..., :2, :] == -1).all()                   # padded with background
    assert torch.equal(ds.cond, sobel_edges(ds.x))
    assert ds.extractor == "lenet_fashion" and ds.num_classes == 10


@needs_fashion
def test_masked_fashion_holes_and_mask_channel():
    ds = build_dataset({"name": "masked-fashion", "root": str(FASHION), "split": "test", "limit": 8,
                        "hole": 10})
    assert ds.cond_shape == (2, 32, 32)
    hole = ds.cond[:, 1:] > 0
    assert (hole.sum(dim=(1, 2, 3)) == 100).all() and (ds.cond[:, :1][hole] == 0).all()
    outside = ~hole
    assert torch.equal(ds.cond[:, :1][outside], ds.x[outside])


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_paired_folder_reads_a_and_b_subfolders(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("one.png", "two.png"):
        _save(tmp_path / "A" / name, rng.integers(0, 256, (8, 8), dtype=np.uint8))
        _save(tmp_path / "B" / name, rng.integers(0, 256, (8, 8), dtype=np.uint8))
    ds = paired_folder(str(tmp_path), channels=1)
    a = np.asarray(Image.open(tmp_path / "A" / "one.png"), dtype=np.float32) / 127.5 - 1
    assert ds.fields == ("x", "cond") and ds.x.shape == (2, 1, 8, 8)
    assert torch.allclose(ds.cond[0, 0], torch.from_numpy(a))
    back = paired_folder(str(tmp_path), channels=1, direction="BtoA")
    assert torch.equal(back.x, ds.cond) and torch.equal(back.cond, ds.x)


def test_paired_folder_splits_side_by_side_pairs(tmp_path):
    ab = np.zeros((6, 12, 3), dtype=np.uint8)
    ab[:, 6:] = 255  # A black, B white
    _save(tmp_path / "p.png", ab)
    ds = paired_folder(str(tmp_path), size=4)
    assert ds.x.shape == (1, 3, 4, 4) and (ds.cond == -1).all() and (ds.x == 1).all()


def test_paired_folder_errors_are_one_line(tmp_path):
    with pytest.raises(GanforgeError, match="no .png"):
        paired_folder(str(tmp_path))
    _save(tmp_path / "A" / "lonely.png", np.zeros((8, 8), dtype=np.uint8))
    (tmp_path / "B").mkdir()
    with pytest.raises(GanforgeError, match="lonely.png has no partner") as err:
        paired_folder(str(tmp_path), channels=1)
    assert "\n" not in str(err.value)
    _save(tmp_path / "B" / "lonely.png", np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(GanforgeError, match="8x8 but B/lonely.png is 4x4"):
        paired_folder(str(tmp_path), channels=1)
    assert paired_folder(str(tmp_path), channels=1, size=4).x.shape == (1, 1, 4, 4)
    sbs = tmp_path / "sbs"
    _save(sbs / "a.png", np.zeros((8, 16), dtype=np.uint8))
    _save(sbs / "b.png", np.zeros((4, 8), dtype=np.uint8))
    with pytest.raises(GanforgeError, match="mismatched sizes"):
        paired_folder(str(sbs), channels=1)
    with pytest.raises(GanforgeError, match="direction"):
        paired_folder(str(sbs), direction="up")
