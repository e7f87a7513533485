"""Small synthetic 28x28 ten-class images (always available) for the robustness tests, as tensors
and as an IDX dataset folder that ``ganforge robust --data fashion-mnist --root DIR`` reads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.data.idx import write_idx

needs_torchattacks = pytest.mark.skipif(
    importlib.util.find_spec("torchattacks") is None,
    reason="torchattacks is not installed (pip install --no-deps torchattacks==3.5.1)",
)


def blocks(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class k is a bright 7x7 block at the k-th of ten places on a dark background."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = np.full((n, 1, 28, 28), 0.1, dtype=np.float32)
    for i, k in enumerate(y):
        r, c = 2 + 12 * (k // 5), 1 + 5 * (k % 5)
        x[i, 0, r : r + 7, c : c + 7] = rng.uniform(0.7, 1.0)
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))


@pytest.fixture(scope="session")
def train_set() -> tuple[torch.Tensor, torch.Tensor]:
    return blocks(1500, 0)


@pytest.fixture(scope="session")
def test_set() -> tuple[torch.Tensor, torch.Tensor]:
    return blocks(200, 1)


@pytest.fixture(scope="session")
def classifier(train_set):
    from ganforge.robust import ClassifierConfig, train_classifier

    torch.manual_seed(0)
    return train_classifier(
        *train_set, ClassifierConfig(epochs=2, batch_size=64), meta={"dataset": "fashion-mnist"}
    )


@pytest.fixture(scope="session")
def idx_root(tmp_path_factory) -> Path:
    """A folder holding the synthetic images as Fashion-MNIST's four IDX files."""
    root = tmp_path_factory.mktemp("blocks")
    for stem, (x, y) in (("train", blocks(1000, 2)), ("t10k", blocks(100, 3))):
        write_idx(root / f"{stem}-images-idx3-ubyte.gz", (x[:, 0].numpy() * 255).round().astype(np.uint8))
        write_idx(root / f"{stem}-labels-idx1-ubyte.gz", y.numpy().astype(np.uint8))
    return root
