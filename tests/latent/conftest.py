"""Tiny trained runs shared by the latent-space tests (each trained once per session)."""

from __future__ import annotations

import pytest

from tests.conftest import train_tiny

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
def _one_thread(one_thread) -> None:
    """Tiny models are overhead-bound: every test here runs on one thread (tests/conftest.py)."""


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """DCGAN on 8x8 digits, z_dim 8, with EMA (the preset's ema_decay), 2 steps."""
    return train_tiny("digits-dcgan", tmp_path_factory.mktemp("latent") / "digits", DIGITS_OVERRIDES)


@pytest.fixture(scope="session")
def ring_run(tmp_path_factory):
    """MLP on the ring of 8 Gaussians (2-D points), z_dim 3, no EMA, 2 steps."""
    return train_tiny("ring8-mlp", tmp_path_factory.mktemp("latent") / "ring", RING_OVERRIDES)


@pytest.fixture(scope="session")
def cond_digits_run(tmp_path_factory):
    """Class-conditional (concat) DCGAN on 8x8 digits: 10 classes, no EMA, 2 steps."""
    overrides = {**DIGITS_OVERRIDES, "model.conditional": "concat", "train.ema_decay": None}
    return train_tiny("digits-dcgan", tmp_path_factory.mktemp("latent") / "cond-digits", overrides)


@pytest.fixture(scope="session")
def cond_ring_run(tmp_path_factory):
    """Class-conditional (concat) MLP on ring8: 8 classes (the mixture components), 2 steps."""
    overrides = {**RING_OVERRIDES, "model.conditional": "concat"}
    return train_tiny("ring8-mlp", tmp_path_factory.mktemp("latent") / "cond-ring", overrides)
