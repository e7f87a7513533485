"""Atomic checkpoint files that load with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors and plain Python values only (no pickled classes), so loading
one never executes code. Writes go to a temporary file in the same directory, are fsynced, then
renamed over the target, so a crash never leaves a half-written ``last.pt``.

Layout (``version`` 2)::

    config, sample_shape, num_classes, step, stage, images_seen
    nets        {name: state_dict}            every network of the algorithm
    ema         {name: EMA state}             the networks with an EMA copy
    optimizers  {name: optimizer state_dict}
    rng         {torch, cuda}                 the global RNGs (dropout)
    data        the batch source's position
    algorithm   the algorithm's own state (its noise generators, stabilisers...)

Checkpoints of version 1 (one GAN: ``G``, ``D``, ``opt_g``, ``opt_d``...) are translated on
load by :func:`upgrade`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganforge._io import atomic_write
from ganforge.errors import GanforgeError

FORMAT = "ganforge-checkpoint-v1"  # the file format's tag; the layout inside has a version
VERSION = 2
REQUIRED = ("config", "sample_shape", "num_classes", "step", "nets", "ema", "optimizers", "rng",
            "data", "algorithm")
REQUIRED_V1 = ("config", "sample_shape", "num_classes", "step", "G", "D", "opt_g", "opt_d", "rng",
               "data", "fixed_z")


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    return atomic_write(path, lambda fh: torch.save({"format": FORMAT, "version": VERSION, **state}, fh))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise GanforgeError(f"no checkpoint at {path}", "train first, or point at a run directory")
    try:
        with warnings.catch_warnings():  # a legacy or foreign pickle warns before it fails
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated file, foreign pickle, ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise GanforgeError(f"cannot read checkpoint {path} ({first[:120]})",
                            "it is corrupt or not a ganforge checkpoint; use another one") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise GanforgeError(f"{path} is not a ganforge checkpoint",
                            "point at a file written by `ganforge train`")
    required = REQUIRED_V1 if state.get("version", 1) < 2 else REQUIRED
    missing = [key for key in required if key not in state]
    if missing:
        raise GanforgeError(f"checkpoint {path} lacks {missing[0]!r}",
                            "it is damaged or was not written by `ganforge train`; use another one")
    kinds = {"config": dict, "nets": dict} if state.get("version", 1) >= 2 else {"config": dict}
    wrong = [key for key, kind in kinds.items() if not isinstance(state[key], kind)]
    if wrong:
        raise GanforgeError(f"checkpoint {path} holds a {type(state[wrong[0]]).__name__} as its "
                            f"{wrong[0]!r}, not a mapping",
                            "it is damaged or was not written by `ganforge train`; use another one")
    return upgrade(state)


def upgrade(state: dict[str, Any]) -> dict[str, Any]:
    """A version-1 checkpoint (one GAN trained by the loop before algorithm plug-ins) in the
    version-2 layout; newer checkpoints are returned as they are."""
    if state.get("version", 1) >= 2:
        return state
    train = state["config"].get("train", {})
    steps_per_update = int(train.get("n_disc", 1)) * int(train.get("batch_size", 0))
    return {
        "format": state["format"], "version": VERSION, "config": state["config"],
        "sample_shape": state["sample_shape"], "num_classes": state["num_classes"],
        "step": state["step"], "stage": 0, "images_seen": int(state["step"]) * steps_per_update,
        "nets": {"G": state["G"], "D": state["D"]},
        "ema": {} if state.get("ema") is None else {"G": state["ema"]},
        "optimizers": {"G": state["opt_g"], "D": state["opt_d"]},
        "rng": {"torch": state["rng"]["torch"], "cuda": state["rng"].get("cuda", [])},
        "data": state["data"],
        "algorithm": {"noise": state["rng"]["noise"], "stabilisers": state.get("stabilisers"),
                      "self_condition": state.get("self_condition"), "fixed_z": state["fixed_z"]},
    }


def load_weights(module: nn.Module, weights: dict[str, torch.Tensor], what: str,
                 source: str | Path) -> None:
    """``module.load_state_dict`` with a one-line error when the checkpoint is for another model."""
    try:
        module.load_state_dict(weights)
    except RuntimeError as err:
        detail = " ".join(str(err).split())
        raise GanforgeError(
            f"checkpoint {source} does not fit this {what} ({detail[:160]}...)",
            "it was written for another model or size: use the run's own config.yaml") from None
