from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"

needs_mnist = pytest.mark.skipif(
    not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").exists(),
    reason="real MNIST test split not found beside the repo (../shared/data/mnist)")


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture
def one_thread():
    """Tiny models are overhead-bound; one thread is faster and avoids contention."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# Small, fast experiment configs used across train/CLI tests.
TINY_RING = {
    "seed": 3,
    "data": {"name": "ring8"},
    "model": {"name": "mlp", "z_dim": 4, "g_hidden": [16], "d_hidden": [16]},
    "train": {"steps": 12, "batch_size": 32, "log_every": 3, "sample_every": 6,
              "checkpoint_every": 6, "num_fixed_samples": 64},
}
TINY_DIGITS = {
    "seed": 1,
    "data": {"name": "digits", "size": 8},
    "model": {"name": "dcgan", "z_dim": 8, "width": 4},
    "train": {"steps": 6, "batch_size": 16, "log_every": 2, "sample_every": 3,
              "checkpoint_every": 3, "num_fixed_samples": 16, "ema_decay": 0.9},
}
