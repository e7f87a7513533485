"""Helpers shared by the image-to-image algorithm tests (pix2pix, CycleGAN, SRGAN, inpaint): tiny
configs with per-test changes, a tiny trained run, and the bit-identical resume check."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import torch

from ganforge.config import ExperimentConfig
from ganforge.train import Trainer
from ganforge.train.checkpoint import load_checkpoint


def tiny_config(tiny: dict[str, Any], **changes: dict[str, Any]) -> ExperimentConfig:
    """``tiny`` with each section in ``changes`` merged over its own (a deep copy: no test shares
    a section with another)."""
    tree = copy.deepcopy(tiny)
    for key, value in changes.items():
        tree[key] = {**tree.get(key, {}), **value}
    return ExperimentConfig.from_dict(tree)


def train_tiny_run(tmp_path_factory: pytest.TempPathFactory, name: str, cfg: ExperimentConfig,
                   data: Any) -> Path:
    """``cfg`` trained on ``data`` (one thread) into a fresh ``name/run`` folder; its path."""
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp(name) / "run"
    Trainer(cfg, run, progress=False, dataset=data).fit()
    return run


def resumed_checkpoints(make_cfg: Callable[..., ExperimentConfig], path: Path, data: Any, split_steps: int,
                        train: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The final checkpoints of ``make_cfg(train=train)`` trained in one go (``path/full``) and
    stopped after ``split_steps`` then resumed (``path/split``)."""
    train = train or {}
    Trainer(make_cfg(train=train), path / "full", progress=False, dataset=data).fit()
    Trainer(make_cfg(train={**train, "steps": split_steps}), path / "split", progress=False,
            dataset=data).fit()
    Trainer(make_cfg(train=train), path / "split", resume=True, progress=False, dataset=data).fit()
    return (load_checkpoint(path / "full" / "checkpoints" / "final.pt"),
            load_checkpoint(path / "split" / "checkpoints" / "final.pt"))


def assert_same_networks(a: dict[str, Any], b: dict[str, Any], nets: Iterable[str] = ("G", "D")) -> None:
    """Every tensor of ``nets`` is equal in checkpoints ``a`` and ``b``."""
    for net in nets:
        for name, t in a["nets"][net].items():
            assert torch.equal(t, b["nets"][net][name]), f"{net}.{name}"
