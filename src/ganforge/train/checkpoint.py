"""Atomic checkpoint files that load with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors and plain Python values only (no pickled classes), so loading
one never executes code. Writes go to a temporary file in the same directory, are fsynced, then
renamed over the target, so a crash never leaves a half-written ``last.pt``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganforge._io import atomic_write
from ganforge.errors import GanforgeError

FORMAT = "ganforge-checkpoint-v1"


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    return atomic_write(path, lambda fh: torch.save({"format": FORMAT, **state}, fh))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise GanforgeError(f"no checkpoint at {path}", "train first, or point at a run directory")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated file, foreign pickle, ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise GanforgeError(f"cannot read checkpoint {path} ({first[:120]})",
                            "it is corrupt or not a ganforge checkpoint; use another one") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise GanforgeError(f"{path} is not a ganforge checkpoint",
                            "point at a file written by `ganforge train`")
    return state


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
