"""What a run drew (:class:`Samples`) and the file writers of the built-in data kinds
(:mod:`ganforge.data.kinds`): each takes the samples and a path, writes atomically and returns
the path."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge._io import atomic_write


@dataclass
class Samples:
    """What a run drew, ready for a writer: ``x`` (n, *shape) the samples (CPU); ``arrays``
    named arrays saved beside ``x`` (labels ``y``, ``caption``, a paired run's ``cond`` and
    ``target``); ``panels`` named image batches of a figure (input | output | target);
    ``nrow`` images per grid row (one row per class or caption); ``title`` of a figure;
    ``description`` of what was drawn, for messages ("64 samples from step 500"); a table
    run's decoded rows ``table`` (a DataFrame), the real rows to compare them with
    ``reference`` and the column ``types``."""

    x: torch.Tensor
    arrays: dict[str, np.ndarray | torch.Tensor] = field(default_factory=dict)
    panels: dict[str, torch.Tensor] = field(default_factory=dict)
    nrow: int | None = None
    title: str = ""
    description: str = ""
    table: Any = None
    reference: Any = None
    types: dict[str, str] | None = None



def write_npz(samples: Samples, path: Path) -> Path:
    """``x`` (float32) and every named array of ``samples`` in one ``.npz``."""
    arrays = {"x": samples.x.numpy().astype(np.float32)}
    for name, value in samples.arrays.items():
        a = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        arrays[name] = a.astype(np.float32) if a.dtype.kind == "f" else a
    return atomic_write(path, lambda fh: np.savez(fh, **arrays))


def write_grid(samples: Samples, path: Path) -> Path:
    """A PNG grid of the images, ``nrow`` to a row."""
    from ganforge.viz import save_grid

    return save_grid(samples.x, path, nrow=samples.nrow)


def write_scatter(samples: Samples, path: Path) -> Path:
    """A PNG scatter of the points (N, 2)."""
    from ganforge.viz import plot_2d_field

    return plot_2d_field(samples.x[:0], samples.x, path, title=samples.title)


def write_panels(samples: Samples, path: Path) -> Path:
    """A PNG of the named panels side by side (input | output | target)."""
    from ganforge.viz import plot_panels

    return plot_panels(samples.panels, path, title=samples.title or None)
