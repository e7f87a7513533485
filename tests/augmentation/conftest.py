"""Tiny trained runs shared by the augmentation tests (each trained once per session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from ganforge import Trainer
from ganforge.config import ExperimentConfig

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
def _one_thread() -> Iterator[None]:
    """Tiny models are overhead-bound; one thread is faster and spares the shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _train(conditional: str | None, path):
    import ganforge.data  # noqa: F401  (registers the imbalanced dataset)

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(tiny_config(conditional), path, progress=False).fit()
    finally:
        torch.set_num_threads(before)
    return path


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
