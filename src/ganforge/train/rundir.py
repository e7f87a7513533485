"""One writer per run directory, and no leftovers of interrupted writes.

:class:`RunLock` holds an exclusive ``fcntl.flock`` on ``RUN_DIR/.lock`` while a Trainer writes
into the directory. The kernel drops the lock when its process dies (kill -9 included), so a
lock left by a dead process is taken over without any staleness heuristic; the lock file
records the holder's pid for the error message. On platforms without ``fcntl`` (Windows) the
lock is a no-op.

:func:`remove_partial_writes` deletes the temporary siblings that :func:`ganforge._io.atomic_write`
leaves when its process is killed between writing and renaming (``.NAME.PID.HEX.tmp``); it runs
under the lock, so no other ganforge process can be writing them.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from ganforge.errors import GanforgeError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"
_PARTIAL = re.compile(r"^\..+\.\d+\.[0-9a-f]{8}\.tmp$")
#: what `ganforge train` writes into a run directory (``--force`` removes these and nothing else)
RUN_FILES = ("config.yaml", "metrics.csv", "eval.json", "eval_baseline.json", LOCK_NAME)
RUN_FOLDERS = ("checkpoints", "samples", "plots", "tensorboard")


class RunLock:
    """``with RunLock(run_dir): ...``: exclusive use of ``run_dir``, or a one-line error."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        if fcntl is None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise GanforgeError(
                f"run directory {self.path.parent} is being written by another ganforge process "
                f"(pid {holder})", "wait for it to finish, or choose another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def remove_partial_writes(run_dir: Path) -> list[Path]:
    """Delete the temporary files of interrupted atomic writes below ``run_dir``."""
    removed = []
    for folder in (run_dir, *(run_dir / name for name in RUN_FOLDERS)):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.is_file() and _PARTIAL.match(path.name):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed


def never_checkpointed(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds only what `ganforge train` writes before its first checkpoint
    (a run killed then): no ``checkpoints/*.pt`` and nothing foreign, so starting it again loses
    nothing."""
    if not run_dir.is_dir():
        return False
    names = [p.name for p in run_dir.iterdir() if not _PARTIAL.match(p.name)]
    if any(name not in RUN_FILES + RUN_FOLDERS for name in names):
        return False
    return not any((run_dir / "checkpoints").glob("*.pt"))


def clear_run(run_dir: Path) -> None:
    """Remove what `ganforge train` wrote into ``run_dir`` (``--force``); a directory holding
    anything else is refused, so a mistyped ``--out`` never deletes a user's files."""
    import shutil

    foreign = [p.name for p in run_dir.iterdir()
               if p.name not in RUN_FILES + RUN_FOLDERS and not _PARTIAL.match(p.name)]
    if foreign:
        raise GanforgeError(f"--force would delete {run_dir}, which holds {foreign[0]!r} that "
                            "`ganforge train` did not write", "choose another --out")
    with RunLock(run_dir):
        for name in RUN_FOLDERS:
            shutil.rmtree(run_dir / name, ignore_errors=True)
        for path in run_dir.iterdir():
            if path.name != LOCK_NAME:
                path.unlink()
