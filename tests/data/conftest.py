from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ganforge.data.idx import write_idx

SplitWriter = Callable[..., tuple[np.ndarray, np.ndarray]]


@pytest.fixture
def write_split() -> SplitWriter:
    """Write a tiny random MNIST-style split (images and labels) into a folder; returns them."""

    def write(folder: Path, prefix: str = "train", n: int = 12, hw: tuple[int, int] = (28, 28),
              gz: bool = True, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        images = rng.integers(0, 256, size=(n, *hw), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        suffix = ".gz" if gz else ""
        folder.mkdir(parents=True, exist_ok=True)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        return images, labels

    return write
