"""Atomic PNG output for :mod:`ganforge.viz` (see :mod:`ganforge._io`)."""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.figure import Figure

from ganforge._io import atomic_write

__all__ = ["atomic_write", "save_figure"]


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 100) -> Path:
    """Atomically save a matplotlib ``fig`` as PNG at ``path`` and release its artists."""
    try:
        return atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=dpi))
    finally:
        # The figure was never registered with pyplot, so clearing it is all the cleanup needed.
        fig.clear()
