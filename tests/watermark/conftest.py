"""Tiny trained runs shared by the watermark tests (each trained once per session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from ganforge import Trainer, load_config

#: DCGAN on 8x8 digits with reduced widths (and the preset's EMA and minibatch std)
TINY_DIGITS = {
    "seed": 0, "data.size": 8, "model.width": 8, "model.z_dim": 8, "train.steps": 40,
    "train.batch_size": 32, "train.log_every": 10, "train.sample_every": 1000,
    "train.checkpoint_every": 1000, "train.num_fixed_samples": 8, "train.ema_decay": 0.9,
}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def train(preset, overrides: dict, path):
    """Train ``preset`` (a name, or an ExperimentConfig) with ``overrides`` into ``path``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = preset if not isinstance(preset, str) else load_config(preset, overrides=overrides)
        Trainer(cfg, path, progress=False).fit()
    finally:
        torch.set_num_threads(before)
    return path


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    return train("digits-dcgan", TINY_DIGITS, tmp_path_factory.mktemp("watermark") / "digits")


@pytest.fixture(scope="session")
def vae_run(tmp_path_factory):
    """A tiny VAE on 8x8 digits: a run that is not a GAN."""
    from ganforge.config import ExperimentConfig

    cfg = ExperimentConfig.from_dict({
        "seed": 0, "algorithm": {"name": "vae"}, "data": {"name": "digits", "size": 8},
        "model": {"name": "vae-mlp", "z_dim": 2, "hidden": [8]},
        "train": {"steps": 2, "batch_size": 8, "sample_every": 1000, "checkpoint_every": 1000,
                  "num_fixed_samples": 4}})
    return train(cfg, {}, tmp_path_factory.mktemp("watermark") / "vae")


@pytest.fixture(scope="session")
def ring_run(tmp_path_factory):
    """A tiny GAN on 2-D points: a GAN without images."""
    overrides = {"model.g_hidden": [4], "model.d_hidden": [4], "train.steps": 2, "train.batch_size": 8,
                 "train.sample_every": 1000, "train.checkpoint_every": 1000, "train.num_fixed_samples": 8}
    return train("ring8-mlp", overrides, tmp_path_factory.mktemp("watermark") / "ring")


@pytest.fixture(scope="session")
def conditional_run(tmp_path_factory):
    """A class-conditional (projection) DCGAN on 8x8 digits, 2 steps."""
    overrides = {**TINY_DIGITS, "model.conditional": "projection", "train.steps": 2, "train.ema_decay": None}
    return train("digits-dcgan", overrides, tmp_path_factory.mktemp("watermark") / "cond")
