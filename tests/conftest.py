from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

if TYPE_CHECKING:
    from ganforge.config import ExperimentConfig

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


def one_error_line(capsys, *fragments: str) -> None:
    """What the command printed on stderr is one ``ganforge: error:`` line holding every
    fragment."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganforge: error:"), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def train_tiny(config: ExperimentConfig | str, path: Path, overrides: dict | None = None) -> Path:
    """Train ``config`` (an ExperimentConfig, or a preset name with ``overrides``) into ``path`` on
    one thread (the thread count is restored after); returns ``path``."""
    from ganforge import Trainer, load_config

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = config if not isinstance(config, str) else load_config(config, overrides=overrides)
        Trainer(cfg, path, progress=False).fit()
    finally:
        torch.set_num_threads(before)
    return path


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
