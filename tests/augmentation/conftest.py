"""Tiny trained runs shared by the augmentation tests (each trained once per session)."""

from __future__ import annotations

import pytest

from ganforge.config import ExperimentConfig
from tests.conftest import train_tiny

#: 8x8 digits with class 3 cut to 20% of its images: the imbalanced data of the tiny runs
IMBALANCED_DIGITS = {"name": "imbalanced", "base": {"name": "digits", "size": 8},
                     "rare_classes": [3], "fraction": 0.2, "seed": 0}


def tiny_config(conditional: str | None) -> ExperimentConfig:
    model = {"name": "dcgan", "z_dim": 8, "width": 4}
    if conditional:
        model["conditional"] = conditional
    return ExperimentConfig.from_dict({
        "seed": 0, "algorithm": {"name": "gan"}, "data": IMBALANCED_DIGITS, "model": model,
        "train": {"steps": 2, "batch_size": 8, "log_every": 1, "sample_every": 1000,
                  "checkpoint_every": 1000, "num_fixed_samples": 4,
                  "ema_decay": 0.9 if conditional == "acgan" else None}})


@pytest.fixture(autouse=True)
def _one_thread(one_thread) -> None:
    """Tiny models are overhead-bound: every test here runs on one thread (tests/conftest.py)."""


def _train(conditional: str | None, path):
    import ganforge.data  # noqa: F401  (registers the imbalanced dataset)

    return train_tiny(tiny_config(conditional), path)


@pytest.fixture(scope="session")
def acgan_run(tmp_path_factory):
    """AC-GAN DCGAN on imbalanced 8x8 digits, 2 steps, with EMA."""
    return _train("acgan", tmp_path_factory.mktemp("augment") / "acgan")


@pytest.fixture(scope="session")
def projection_run(tmp_path_factory):
    """Projection-D DCGAN on imbalanced 8x8 digits, 2 steps, no EMA."""
    return _train("projection", tmp_path_factory.mktemp("augment") / "projection")


@pytest.fixture(scope="session")
def plain_run(tmp_path_factory):
    """An unconditional DCGAN on the same data."""
    return _train(None, tmp_path_factory.mktemp("augment") / "plain")
