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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO


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


#: kernel pseudo-filesystems: never a place for a run directory or an output file
SPECIAL_ROOTS = ("/proc", "/sys", "/dev")


def _special(path: Path) -> bool:
    text = str(path)
    return any(text == root or text.startswith(root + os.sep) for root in SPECIAL_ROOTS)


def check_output_dir(path: str | os.PathLike[str], what: str) -> Path:
    """Refuse (GanforgeError) a directory ``path`` that cannot be created or written: an
    existing non-directory, a kernel pseudo-filesystem, an ancestor that is a file or is not
    writable. Creates nothing."""
    from ganforge.errors import GanforgeError

    path = Path(path).expanduser().absolute()
    fix = "choose another folder"
    if _special(path):
        raise GanforgeError(f"{what} {path} is on a kernel pseudo-filesystem", fix)
    if path.exists() and not path.is_dir():
        raise GanforgeError(f"{what} {path} exists and is not a directory", fix)
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise GanforgeError(f"{what} {path} lies below {ancestor}, which is not a directory", fix)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise GanforgeError(f"{what} {path} cannot be created: {ancestor} is not writable", fix)
    return path


def check_output_file(path: str | os.PathLike[str], what: str) -> Path:
    """Refuse (GanforgeError) an output file ``path`` that cannot be written: an existing
    directory, a missing or unwritable folder, a kernel pseudo-filesystem. Creates nothing."""
    from ganforge.errors import GanforgeError

    path = Path(path).expanduser()
    where = path.absolute()
    if _special(where):
        raise GanforgeError(f"{what} {path} is on a kernel pseudo-filesystem", "write somewhere else")
    if path.is_dir():
        raise GanforgeError(f"{what} {path} is a directory", f"give a file name, e.g. {path / 'out.png'}")
    if not where.parent.is_dir():
        raise GanforgeError(f"directory {path.parent} does not exist", "create it first")
    if not os.access(where.parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise GanforgeError(f"{what} {path} is not writable", "write somewhere else")
    return path


def available_memory() -> int:
    """Bytes a new allocation can take: ``MemAvailable`` on Linux (else the physical memory),
    and no more than the process's address-space limit (``ulimit -v``) leaves."""
    free = _free_memory()
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit != resource.RLIM_INFINITY:
            used = int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            free = min(free, max(limit - used, 0))
    except (ImportError, OSError, ValueError, IndexError):
        pass
    return free


def _free_memory() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 40


def check_allocation(count: int, shape: tuple[int, ...], what: str, fix: str,
                     bytes_per_value: int = 4) -> None:
    """Refuse (GanforgeError) ``count`` float32 tensors of ``shape`` that would take more than
    half the available memory, before anything is allocated or written."""
    from ganforge.errors import GanforgeError

    size = count * bytes_per_value
    for dim in shape:
        size *= dim
    budget = available_memory() // 2
    if size > budget:
        raise GanforgeError(f"{what} needs {size / 2**30:.3g} GiB for its samples alone, more than half "
                            f"the {2 * budget / 2**30:.3g} GiB of memory available", fix)


@contextlib.contextmanager
def folder_written_whole(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Build a folder in a hidden sibling and rename it onto ``target`` (absent, or an empty
    folder) when the ``with`` block ends; if the block fails, the sibling is removed. A reader
    never sees a half-written folder."""
    import shutil

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    tmp.mkdir()
    try:
        yield tmp
        if target.is_dir():
            target.rmdir()  # only an empty folder can be replaced (rmdir refuses any other)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise


def read_npz_array(path: str | os.PathLike[str], fix: str) -> Any:
    """Array ``x`` of an ``.npz`` (else its first array), as numpy, never unpickling; a file that
    cannot be read is one :class:`GanforgeError` line with ``fix``."""
    import numpy as np

    from ganforge.errors import GanforgeError

    try:
        with np.load(path, allow_pickle=False) as f:
            if not f.files:
                raise ValueError("it holds no arrays")
            a = np.asarray(f["x"] if "x" in f.files else f[f.files[0]])
        if a.dtype.kind not in "biuf":  # complex, strings, objects: not pixel values
            raise ValueError(f"its array is of type {a.dtype}, not real numbers")
        return a
    except (OSError, ValueError, KeyError, EOFError) as err:
        raise GanforgeError(f"cannot read images from {path}: {' '.join(str(err).split())[:160]}",
                            fix) from None
