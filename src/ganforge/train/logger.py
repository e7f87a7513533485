"""Append-safe ``metrics.csv`` (plus optional TensorBoard) for training logs."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from ganforge._io import atomic_write_text
from ganforge.errors import GanforgeError

#: the loop's own columns; the algorithm and the callbacks name the rest
POSITION = ["step", "epoch", "images_seen"]


def summary_writer_class() -> type:
    """torch's ``SummaryWriter``, or a one-line error naming the extra that brings it."""
    import importlib.util

    missing = GanforgeError("train.tensorboard=true but tensorboard is not installed",
                            "pip install 'ganforge[tensorboard]' or set train.tensorboard=false")
    if importlib.util.find_spec("tensorboard") is None:
        raise missing
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise missing from None
    return SummaryWriter


class MetricsLogger:
    """Writes one row per logged step. Re-opening after a resume first drops rows past ``step``,
    so an interrupted run that is resumed from its last checkpoint has no duplicated steps."""

    def __init__(self, run_dir: Path, tensorboard: bool = False, resume_step: int | None = None,
                 columns: list[str] | None = None):
        self.path = run_dir / "metrics.csv"
        self.columns = POSITION + [c for c in dict.fromkeys(columns or []) if c not in POSITION]
        if resume_step is not None and self.path.exists():
            self.truncate_after(resume_step)
        self.writer = None
        if tensorboard:
            self.writer = summary_writer_class()(log_dir=str(run_dir / "tensorboard"))

    def truncate_after(self, step: int) -> None:
        """Drop the rows past ``step`` (a resume, a rollback), rewriting the file atomically."""
        if not self.path.exists():
            return
        rows = [r for r in read_rows(self.path) if (r.get("step") or "").isdigit() and int(r["step"]) <= step]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=self.columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.path, out.getvalue())

    def log(self, row: dict[str, Any]) -> None:
        new_file = not self.path.exists() or self.path.stat().st_size == 0
        with self.path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            writer.writerow({k: _fmt(row.get(k)) for k in self.columns})
        if self.writer is not None:
            for key in self.columns[3:]:
                value = row.get(key)
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self.writer.add_scalar(f"train/{key}", value, row["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a metrics.csv; a file that is not UTF-8 text is a one-line error."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except UnicodeDecodeError as err:
        raise GanforgeError(f"{path} is not UTF-8 text (byte {err.start}): it is damaged",
                            f"move {path.name} away (training starts a new one) or restore it") from None
    except csv.Error as err:
        raise GanforgeError(f"{path} is not a readable CSV file ({err})",
                            f"move {path.name} away (training starts a new one) or restore it") from None


def read_last_row(path: Path) -> dict[str, str] | None:
    if not path.exists():
        return None
    rows = read_rows(path)
    return rows[-1] if rows else None


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value
