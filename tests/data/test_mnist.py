from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.data import build_dataset, mnist
from ganforge.data.idx import read_idx_images, write_idx
from ganforge.errors import GanforgeError

SHARED_MNIST = Path(__file__).resolve().parents[2].parent / "shared/data/mnist"
HAS_SHARED = (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file()


@pytest.mark.parametrize("gz", [True, False])
def test_loads_small_split_scaled_to_unit_range(tmp_path, write_split, gz):
    images, labels = write_split(tmp_path, "t10k", n=12, gz=gz)
    ds = mnist.mnist(root=str(tmp_path), split="test")
    assert ds.x.shape == (12, 1, 28, 28) and ds.x.dtype == torch.float32
    assert ds.y.dtype == torch.int64 and ds.y.tolist() == labels.tolist()
    torch.testing.assert_close(ds.x[:, 0], torch.from_numpy(images).float() / 127.5 - 1)
    assert ds.x.min() >= -1 and ds.x.max() <= 1
    assert ds.num_classes == 10 and ds.name == "mnist"


def test_split_all_concatenates_train_then_test(tmp_path, write_split):
    train, _ = write_split(tmp_path, "train", n=7, seed=1)
    test, _ = write_split(tmp_path, "t10k", n=5, seed=2)
    ds = mnist.fashion_mnist(root=str(tmp_path), split="all")
    assert len(ds) == 12 and ds.name == "fashion-mnist"
    expected = np.concatenate([train, test])
    torch.testing.assert_close(ds.x[:, 0], torch.from_numpy(expected).float() / 127.5 - 1)
    assert ds.classes[0] == "T-shirt/top"


def test_resize_to_32(tmp_path, write_split):
    write_split(tmp_path, "train", n=4)
    ds = build_dataset({"name": "kmnist", "root": str(tmp_path), "size": 32})
    assert ds.x.shape == (4, 1, 32, 32) and ds.x.min() >= -1 and ds.x.max() <= 1
    # a constant image stays constant through the resize
    flat = np.full((1, 28, 28), 200, dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", flat)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.array([3], dtype=np.uint8))
    const = mnist.kmnist(root=str(tmp_path), size=32)
    torch.testing.assert_close(const.x, torch.full((1, 1, 32, 32), 200 / 127.5 - 1))


def test_pad_to_centres_the_unresampled_images_on_a_minus_one_background(tmp_path, write_split):
    images, _ = write_split(tmp_path, "train", n=3)
    ds = build_dataset({"name": "fashion-mnist", "root": str(tmp_path), "pad_to": 32})
    assert ds.x.shape == (3, 1, 32, 32)
    torch.testing.assert_close(ds.x[:, 0, 2:30, 2:30], torch.from_numpy(images).float() / 127.5 - 1)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert (ds.x[:, 0][:, border] == -1).all()
    for bad in (20, True, "32"):
        with pytest.raises(GanforgeError, match="pad_to"):
            build_dataset({"name": "fashion-mnist", "root": str(tmp_path), "pad_to": bad})


def test_missing_directory_message(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(GanforgeError) as err:
        mnist.mnist(root=str(missing))
    msg = str(err.value)
    assert f"MNIST directory {missing} does not exist" in msg
    assert "data.download=true" in msg and "data.root" in msg
    assert not missing.exists()


def test_missing_split_names_the_files(tmp_path, write_split):
    write_split(tmp_path, "t10k", n=3)
    with pytest.raises(GanforgeError) as err:
        mnist.mnist(root=str(tmp_path), split="train")
    msg = str(err.value)
    assert f"incomplete in {tmp_path}" in msg
    assert "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz]" in msg
    assert "t10k" not in msg and "data.download=true" in msg
    with pytest.raises(GanforgeError, match="train-images"):
        mnist.mnist(root=str(tmp_path), split="all")


def test_image_and_label_count_mismatch(tmp_path, write_split):
    write_split(tmp_path, "train", n=5)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(4, dtype=np.uint8))
    with pytest.raises(GanforgeError, match="holds 5 images but .* holds 4 labels.*download"):
        mnist.mnist(root=str(tmp_path))


def test_bad_options(tmp_path, write_split):
    write_split(tmp_path, "train", n=2)
    with pytest.raises(GanforgeError, match="unknown split 'val'.*train, test, all"):
        mnist.mnist(root=str(tmp_path), split="val")
    with pytest.raises(GanforgeError, match="data.size must be a positive int"):
        mnist.mnist(root=str(tmp_path), size=0)
    with pytest.raises(GanforgeError, match="data.download must be true or false"):
        mnist.mnist(root=str(tmp_path), download="yes")
    with pytest.raises(GanforgeError, match="unknown key 'resize' for dataset 'mnist'"):
        build_dataset({"name": "mnist", "root": str(tmp_path), "resize": True})


def test_default_root_is_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert mnist.default_root("kmnist") == tmp_path / ".cache/ganforge/kmnist"
    with pytest.raises(GanforgeError, match=r"\.cache/ganforge/mnist does not exist"):
        mnist.mnist()


@pytest.mark.skipif(not HAS_SHARED, reason=f"real MNIST test split not at {SHARED_MNIST}")
def test_real_mnist_test_split():
    ds = build_dataset({"name": "mnist", "root": str(SHARED_MNIST), "split": "test"})
    assert ds.x.shape == (10000, 1, 28, 28)
    counts = torch.bincount(ds.y, minlength=10).tolist()
    assert counts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert ds.x.min() == -1.0 and ds.x.max() == 1.0
    raw = read_idx_images(SHARED_MNIST / "t10k-images-idx3-ubyte.gz")
    assert raw.dtype == np.uint8 and raw.shape == (10000, 28, 28)
    assert abs(raw.mean() - 33.79) < 0.01
    assert abs(((ds.x + 1) * 127.5).mean().item() - 33.79) < 0.01
    # the first test digit is a 7
    assert ds.y[0].item() == 7
