import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from ganforge.data import ArrayDataset, build_dataset
from ganforge.data.digits import digits
from ganforge.errors import GanforgeError


@pytest.fixture(scope="module")
def sk():
    return load_digits()


def test_native_digits_match_sklearn(sk):
    ds = digits()
    assert isinstance(ds, ArrayDataset)
    assert len(ds) == 1797 and ds.x.shape == (1797, 1, 8, 8) and ds.x.dtype == torch.float32
    assert ds.y.dtype == torch.int64 and ds.num_classes == 10
    assert torch.equal(ds.y.bincount(), torch.from_numpy(np.bincount(sk.target)))
    # linear map 0..16 -> -1..1, pixel for pixel
    expected = torch.from_numpy(sk.images).float() / 8 - 1
    torch.testing.assert_close(ds.x[:, 0], expected)
    assert ds.x.min() == -1.0 and ds.x.max() == 1.0
    x0, y0 = ds[0]
    assert x0.shape == (1, 8, 8) and y0 == sk.target[0]


@pytest.mark.parametrize("size", [16, 32])
def test_upscaled_digits(size, sk):
    ds = build_dataset({"name": "digits", "size": size})
    assert ds.x.shape == (1797, 1, size, size)
    assert ds.x.min() >= -1.0 and ds.x.max() <= 1.0
    assert torch.equal(ds.y, torch.from_numpy(sk.target).long())
    # upsampling keeps the image content: downsampling it back by block-averaging is close
    f = size // 8
    back = ds.x.reshape(1797, 1, 8, f, 8, f).mean((3, 5))
    native = torch.from_numpy(sk.images).float()[:, None] / 8 - 1
    assert (back - native).abs().mean() < 0.15
    assert ds.sample_shape == (1, size, size)


@pytest.mark.parametrize("size", [7, 28, 64, True])
def test_other_sizes_are_rejected(size):
    with pytest.raises(GanforgeError, match="set data.size to one of 8, 16, 32"):
        digits(size=size)
