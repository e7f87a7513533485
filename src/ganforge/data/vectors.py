"""Feature vectors: the ``vectors`` data kind for samples of shape (D,) of any length D, the
``columns`` dataset (numeric columns of a CSV as such vectors) and the tail QQ figure of a 1-D
statistic.

**The kind.** ``vectors`` claims every sample shape (D,) that no kind registered before it
claims: ``points-2d`` keeps (2,), so a vector of length 2 is a point in the plane. Samples are
written as ``.npz`` (``x`` float32 (n, D)) or ``.csv`` (one column per dimension, header
``x0, x1, ...`` or the given names); the ``.png`` preview is a histogram with a log-scale count
axis for D = 1 (a heavy tail shows as a long flat run of bins), else a scatter of the first two
coordinates.

**The dataset.** ``data: {name: columns, path: FILE, columns: [income], scale: median}`` reads
the numeric ``columns`` of a CSV (:func:`ganforge.data.table.read_csv`: at most ``max_rows``
rows, a seeded uniform sample of a longer file) as an
:class:`~ganforge.data.base.ArrayDataset` of shape (D,) = (len(columns),), declared of kind
``vectors``. Rows with a missing value in any chosen column are dropped (their count is the
dataset's ``dropped``). ``scale``:

    none     the values as written
    median   every column divided by its median absolute value m_j (x_ij / m_j), so a GAN sees
             O(1) values whatever the units; tail indices (Hill) are unchanged by the scaling.
             The divisors are the dataset's ``scales``.

Values are *not* squashed to [-1, 1]: a heavy tail would be lost, so a generator for this data
needs a linear output layer (the ``mlp`` family has one for vectors).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from ganforge._io import atomic_write
from ganforge.data.base import ArrayDataset, register_dataset
from ganforge.data.kinds import NPZ, DataKind, Writer, register_kind
from ganforge.data.table import read_csv
from ganforge.data.writers import Samples
from ganforge.errors import GanforgeError
from ganforge.maths.tails import hill_estimator, pareto_qq
from ganforge.viz.tails import plot_pareto_qq

SCALES = ("none", "median")


# ---------------------------------------------------------------------- writers
def _rows(samples: Samples) -> np.ndarray:
    x = samples.x.detach().cpu().numpy() if isinstance(samples.x, torch.Tensor) else np.asarray(samples.x)
    return x.reshape(len(x), -1).astype(np.float64)


def write_vectors_csv(samples: Samples, path: Path, names: Sequence[str] | None = None) -> Path:
    """The samples (n, D) as a CSV: a header (``names``, else ``x0 .. x{D-1}``), then one row per
    sample, values with 9 significant digits."""
    rows = _rows(samples)
    header = list(names) if names is not None else [f"x{j}" for j in range(rows.shape[1])]
    if len(header) != rows.shape[1]:
        raise GanforgeError(f"{len(header)} column names for samples of {rows.shape[1]} values",
                            "give one name per dimension")
    lines = [",".join(header)] + [",".join(f"{v:.9g}" for v in row) for row in rows]
    return atomic_write(path, lambda fh: fh.write(("\n".join(lines) + "\n").encode("utf-8")))


def write_vectors_png(samples: Samples, path: Path) -> Path:
    """The preview: a histogram of the values with a log-scale count axis (D = 1), else a scatter
    of the first two coordinates."""
    from matplotlib.figure import Figure

    from ganforge.viz._atomic import save_figure

    rows = _rows(samples)
    rows = rows[np.isfinite(rows).all(1)]
    fig = Figure(figsize=(5.0, 4.0))
    ax = fig.add_subplot()
    if rows.shape[1] == 1:
        if len(rows):
            ax.hist(rows[:, 0], bins=60, color="C0")
            ax.set_yscale("log")
        ax.set_xlabel("x0")
        ax.set_ylabel("count (log scale)")
    else:
        ax.scatter(rows[:, 0], rows[:, 1], s=4, alpha=0.5, color="C1")
        ax.set_xlabel("x0")
        ax.set_ylabel("x1")
    ax.set_title(samples.title or f"{len(rows)} vectors of {samples.x.shape[1:].numel()} values")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


register_kind(DataKind(
    "vectors", {".npz": NPZ, ".csv": Writer(write_vectors_csv), ".png": Writer(write_vectors_png)},
    shape=lambda shape: len(shape) == 1 and shape[0] >= 1, metrics=("fid", "kid", "prdc"),
    description="feature vectors (D,) of any length (numeric columns, 1-D statistics)"))


# ---------------------------------------------------------------------- the dataset
class VectorDataset(ArrayDataset):
    """Rows of numeric columns: ``x`` (N, D) float32; ``names`` of the columns, ``scales`` the
    divisors applied (1.0 for ``scale: none``), ``dropped`` the rows left out for a missing
    value."""

    data_kind = "vectors"

    def __init__(self, x: torch.Tensor, *, names: Sequence[str], scales: Sequence[float],
                 dropped: int = 0, name: str = "columns") -> None:
        super().__init__(x, None, name=name, extractor="raw")
        self.names = tuple(names)
        self.scales = tuple(float(s) for s in scales)
        self.dropped = int(dropped)


@register_dataset("columns")
def columns(path: str, columns: list | None = None, scale: str = "none",
            max_rows: int = 200_000, seed: int = 0) -> VectorDataset:
    """Numeric ``columns`` of the CSV at ``path`` as vectors (module docstring); ``columns``
    defaults to every numeric column; ``scale``: none | median; ``max_rows`` kept (a uniform
    sample of a longer file, drawn with ``seed``). Rows with a missing value are dropped."""
    if scale not in SCALES:
        raise GanforgeError(f"data.scale={scale!r} is not a scaling", f"choose one of: {', '.join(SCALES)}")
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 2:
        raise GanforgeError(f"data.max_rows={max_rows!r} is not a whole number >= 2", "set e.g. 100000")
    if columns is not None and (not isinstance(columns, list) or not columns
                                or not all(isinstance(c, str) for c in columns)):
        raise GanforgeError("data.columns must be a non-empty list of column names",
                            "write e.g. data.columns: [income]")
    import pandas as pd

    frame = read_csv(path, max_rows=max_rows, seed=seed)
    numeric = [str(c) for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    chosen = list(columns) if columns is not None else numeric
    wrong = [c for c in chosen if c not in numeric]
    if wrong or not chosen:
        raise GanforgeError(f"table {Path(path).name} has no numeric column {wrong[0]!r}" if wrong
                            else f"table {Path(path).name} has no numeric column",
                            f"choose among its numeric columns: {', '.join(numeric) or '(none)'}")
    values = frame[chosen].to_numpy(dtype=np.float64)
    complete = np.isfinite(values).all(1)
    values = values[complete]
    if len(values) < 2:
        raise GanforgeError(f"columns {', '.join(chosen)} of {Path(path).name} have {len(values)} "
                            "complete rows, too few to train on", "choose columns with fewer missing values")
    scales = np.ones(len(chosen))
    if scale == "median":
        scales = np.median(np.abs(values), axis=0)
        zero = [c for c, s in zip(chosen, scales, strict=True) if not s > 0]
        if zero:
            raise GanforgeError(f"column {zero[0]!r} has median absolute value 0: it cannot be scaled by it",
                                "set data.scale=none, or choose another column")
    x = torch.from_numpy(values / scales).float()
    return VectorDataset(x, names=chosen, scales=scales.tolist(), dropped=int((~complete).sum()),
                         name=Path(path).stem)


# ---------------------------------------------------------------------- the tail figure
def plot_tail_qq(series: Mapping[str, np.ndarray], path: str | os.PathLike[str], k: int | None = None,
                 title: str = "Pareto QQ plot of the upper tail") -> Path:
    """PNG of the Pareto QQ plot of each named 1-D sample's top ``k`` positive values
    (:func:`ganforge.maths.tails.pareto_qq`; ``k`` defaults to floor(sqrt(n)) of each sample),
    with its Hill index in the legend and the line of slope 1/alpha
    (:func:`ganforge.viz.tails.plot_pareto_qq`). Written atomically; returns ``path``. A sample
    the estimator refuses (non-finite values, fewer than 10 positive, k out of range) is a
    one-line :class:`GanforgeError` naming the series, and nothing is written."""
    if not isinstance(series, Mapping) or not series:
        raise GanforgeError("the tail QQ plot needs at least one named sample",
                            "pass e.g. {'data': x, 'generated': g}")
    points = {}
    for name, values in series.items():
        try:
            points[str(name)] = (*pareto_qq(values, k), hill_estimator(values, k))
        except GanforgeError as err:
            raise GanforgeError(f"series {name!r}: {err}") from None
    return plot_pareto_qq(points, path, title=title)
