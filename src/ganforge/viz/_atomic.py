"""Atomic file writing shared by every writer in :mod:`ganforge.viz`.

A reader (a browser tab, a dashboard polling the run directory, a test) must never see a
half-written PNG, so every image is written to a temporary file in the *same* directory (so the
final ``os.replace`` is a rename on one filesystem, which is atomic on POSIX and Windows) and only
then moved over the target.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from matplotlib.figure import Figure


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(fileobj)`` on a temporary sibling of ``path``, then rename it onto ``path``.

    Creates missing parent directories. On any failure the temporary file is removed and an
    existing ``path`` is left untouched. Returns ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A hidden, unique name rather than mkstemp: mkstemp creates 0600 files, and the rename would
    # carry those permissions onto the final image.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 100) -> Path:
    """Atomically save a matplotlib ``fig`` as PNG at ``path`` and release its artists."""
    try:
        return atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=dpi))
    finally:
        # The figure was never registered with pyplot, so clearing it is all the cleanup needed.
        fig.clear()
