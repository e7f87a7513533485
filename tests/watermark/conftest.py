"""Tiny trained runs shared by the watermark tests (each trained once per session)."""

from __future__ import annotations

import pytest
from tests.conftest import train_tiny

#: DCGAN on 8x8 digits with reduced widths (and the preset's EMA and minibatch std)
TINY_DIGITS = {
    "seed": 0, "data.size": 8, "model.width": 8, "model.z_dim": 8, "train.steps": 40,
    "train.batch_size": 32, "train.log_every": 10, "train.sample_every": 1000,
    "train.checkpoint_every": 1000, "train.num_fixed_samples": 8, "train.ema_decay": 0.9,
}


@pytest.fixture(autouse=True)
def _one_thread(one_thread) -> None:
    """Tiny models are overhead-bound: every test here runs on one thread (tests/conftest.py)."""


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    return train_tiny("digits-dcgan", tmp_path_factory.mktemp("watermark") / "digits", TINY_DIGITS)


@pytest.fixture(scope="session")
def vae_run(tmp_path_factory):
    """A tiny VAE on 8x8 digits: a run that is not a GAN."""
    from ganforge.config import ExperimentConfig

    cfg = ExperimentConfig.from_dict({
        "seed": 0, "algorithm": {"name": "vae"}, "data": {"name": "digits", "size": 8},
        "model": {"name": "vae-mlp", "z_dim": 2, "hidden": [8]},
        "train": {"steps": 2, "batch_size": 8, "sample_every": 1000, "checkpoint_every": 1000,
                  "num_fixed_samples": 4}})
    return train_tiny(cfg, tmp_path_factory.mktemp("watermark") / "vae")


@pytest.fixture(scope="session")
def ring_run(tmp_path_factory):
    """A tiny GAN on 2-D points: a GAN without images."""
    overrides = {"model.g_hidden": [4], "model.d_hidden": [4], "train.steps": 2, "train.batch_size": 8,
                 "train.sample_every": 1000, "train.checkpoint_every": 1000, "train.num_fixed_samples": 8}
    return train_tiny("ring8-mlp", tmp_path_factory.mktemp("watermark") / "ring", overrides)


@pytest.fixture(scope="session")
def conditional_run(tmp_path_factory):
    """A class-conditional (projection) DCGAN on 8x8 digits, 2 steps."""
    overrides = {**TINY_DIGITS, "model.conditional": "projection", "train.steps": 2, "train.ema_decay": None}
    return train_tiny("digits-dcgan", tmp_path_factory.mktemp("watermark") / "cond", overrides)
