"""Atomic file writing, shared by every writer in ganforge.

A reader (a browser tab, a dashboard polling the run directory, a resumed run) must never see a
half-written file, so each file is written to a temporary sibling in the *same* directory (so
the final ``os.replace`` is a rename on one filesystem, atomic on POSIX and Windows), fsynced,
and only then moved over the target.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


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


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
