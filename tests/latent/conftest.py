"""Tiny trained runs shared by the latent-space tests (each trained once per session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from ganforge import Trainer, load_config

DIGITS_OVERRIDES = {
    "seed": 0, "data.size": 8, "model.width": 4, "model.z_dim": 8, "train.steps": 2,
    "train.batch_size": 8, "train.log_every": 1, "train.sample_every": 1000,
    "train.checkpoint_every": 1000, "train.num_fixed_samples": 4,
}
RING_OVERRIDES = {
    "seed": 0, "model.z_dim": 3, "model.g_hidden": [8], "model.d_hidden": [8], "train.steps": 2,
    "train.batch_size": 8, "train.log_every": 1, "train.sample_every": 1000,
    "train.checkpoint_every": 1000, "train.num_fixed_samples": 8,
}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models are overhead-bound; one thread is faster and spares the shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _train(preset: str, overrides: dict, path):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(load_config(preset, overrides=overrides), path, progress=False).fit()
    finally:
        torch.set_num_threads(before)
    return path


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """DCGAN on 8x8 digits, z_dim 8, with EMA (the preset's ema_decay), 2 steps."""
    return _train("digits-dcgan", DIGITS_OVERRIDES, tmp_path_factory.mktemp("latent") / "digits")


@pytest.fixture(scope="session")
def ring_run(tmp_path_factory):
    """MLP on the ring of 8 Gaussians (2-D points), z_dim 3, no EMA, 2 steps."""
    return _train("ring8-mlp", RING_OVERRIDES, tmp_path_factory.mktemp("latent") / "ring")


@pytest.fixture(scope="session")
def cond_digits_run(tmp_path_factory):
    """Class-conditional (concat) DCGAN on 8x8 digits: 10 classes, no EMA, 2 steps."""
    overrides = {**DIGITS_OVERRIDES, "model.conditional": "concat", "train.ema_decay": None}
    return _train("digits-dcgan", overrides, tmp_path_factory.mktemp("latent") / "cond-digits")


@pytest.fixture(scope="session")
def cond_ring_run(tmp_path_factory):
    """Class-conditional (concat) MLP on ring8: 8 classes (the mixture components), 2 steps."""
    overrides = {**RING_OVERRIDES, "model.conditional": "concat"}
    return _train("ring8-mlp", overrides, tmp_path_factory.mktemp("latent") / "cond-ring")
