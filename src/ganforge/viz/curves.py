"""Training curves from the ``metrics.csv`` rows the trainer writes."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ganforge.errors import GanforgeError
from ganforge.viz._atomic import save_figure

Metrics = Mapping[str, np.ndarray]


def read_metrics(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a metrics CSV (header row, then one row per logged step) into float64 columns.

    Every header column becomes an array with one entry per data row; empty, missing or
    non-numeric cells become NaN, and cells beyond the header are ignored, so a row that is still
    being written by a live trainer, or columns added by later versions, never break reading.
    An empty file gives ``{}``; a header-only file gives empty arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise GanforgeError(
            f"metrics file {path} does not exist",
            "pass the metrics.csv written by the trainer in the run directory",
        )
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            columns: dict[str, list[float]] = {name: [] for name in reader.fieldnames or []}
            for row in reader:
                for name, values in columns.items():
                    values.append(_to_float(row.get(name)))
    except (UnicodeDecodeError, csv.Error) as err:
        raise GanforgeError(f"metrics file {path} cannot be read as UTF-8 CSV ({str(err)[:60]})",
                            "it is damaged: restore it, or move it away") from None
    return {name: np.asarray(values, dtype=np.float64) for name, values in columns.items()}


def _to_float(cell: str | None) -> float:
    try:
        return float(cell) if cell is not None else math.nan
    except ValueError:
        return math.nan


def n_rows(metrics: Metrics) -> int:
    """Number of rows in ``metrics`` (0 when it has no columns)."""
    return max((len(v) for v in metrics.values()), default=0)


def ema(values: np.ndarray, span: int | None = None) -> np.ndarray:
    """Exponential moving average with ``alpha = 2 / (span + 1)``, skipping NaN/inf entries.

    ``span`` defaults to ``clip(len(values) // 20, 1, 50)`` (light smoothing; none for short
    runs). Non-finite inputs leave the running average unchanged; entries before the first
    finite value are NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    if span is None:
        span = int(np.clip(len(values) // 20, 1, 50))
    if span < 1:
        raise GanforgeError(f"span must be at least 1, got {span}")
    alpha = 2.0 / (span + 1.0)
    out = np.empty_like(values)
    acc = math.nan
    for i, v in enumerate(values):
        if math.isfinite(v):
            acc = v if math.isnan(acc) else acc + alpha * (v - acc)
        out[i] = acc
    return out


def _steps(metrics: Metrics) -> tuple[np.ndarray, str]:
    if "step" in metrics:
        return np.asarray(metrics["step"], dtype=np.float64), "step"
    return np.arange(n_rows(metrics), dtype=np.float64), "row"


def _plot_series(
    metrics: Metrics,
    series: Sequence[tuple[str, str]],
    ylabel: str,
    title: str,
    smooth: bool = True,
) -> tuple[Figure, Axes]:
    """Draw ``(column, label)`` series against step; raw faint, EMA solid. Missing columns skip."""
    x, xlabel = _steps(metrics)
    fig = Figure(figsize=(7.0, 4.0))
    ax = fig.add_subplot()
    for i, (column, label) in enumerate(series):
        if column not in metrics:
            continue
        y = np.asarray(metrics[column], dtype=np.float64)
        keep = np.isfinite(x) & np.isfinite(y)
        if not keep.any():
            continue
        colour = f"C{i}"
        if smooth:
            ax.plot(x[keep], y[keep], color=colour, alpha=0.3, linewidth=0.8)
            ax.plot(x[keep], ema(y[keep]), color=colour, linewidth=1.6, label=label)
        else:
            ax.plot(x[keep], y[keep], color=colour, linewidth=1.2, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _finish(fig: Figure, ax: Axes, path: str | os.PathLike[str]) -> Path:
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="best", fontsize="small")
    else:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")
    fig.tight_layout()
    return save_figure(fig, path)


def _prefixed(metrics: Metrics, prefix: str, default: Sequence[str]) -> list[tuple[str, str]]:
    """The columns named ``prefix*`` (one per phase or network), else ``default``."""
    names = [c for c in metrics if c.startswith(prefix)] or list(default)
    return [(c, c) for c in names]


def plot_losses(metrics: Metrics, path: str | os.PathLike[str]) -> Path:
    """PNG of every phase's loss (``loss_D``, ``loss_G``, ``loss_vae``...) against step: raw
    (faint) and EMA-smoothed (solid)."""
    fig, ax = _plot_series(metrics, _prefixed(metrics, "loss_", ("loss_D", "loss_G")), "loss", "Losses")
    return _finish(fig, ax, path)


def plot_scores(metrics: Metrics, path: str | os.PathLike[str]) -> Path:
    """PNG of ``real_score`` (mean D(x)) and ``fake_score`` (mean D(G(z))) against step.

    The y axis is fixed to [0, 1]; a dashed line marks 0.5, the optimal discriminator's output
    D* = 1/2 everywhere once p_g = p_data. A run whose D is a critic (Wasserstein, hinge, least
    squares losses) logs raw values instead, plotted by :func:`plot_critic`.
    """
    if "real_score" not in metrics and "critic_real" in metrics:
        return plot_critic(metrics, path)
    fig, ax = _plot_series(
        metrics,
        [("real_score", "real_score = mean D(x)"), ("fake_score", "fake_score = mean D(G(z))")],
        "discriminator output",
        "Discriminator scores",
    )
    ax.axhline(0.5, color="k", linestyle="--", linewidth=1.0, label="D* = 1/2")
    ax.set_ylim(0.0, 1.0)
    return _finish(fig, ax, path)


def plot_critic(metrics: Metrics, path: str | os.PathLike[str]) -> Path:
    """PNG of a critic's mean raw outputs on real and generated samples and their difference
    (for the Wasserstein losses the critic's estimate of W1); no probability axis."""
    fig, ax = _plot_series(
        metrics,
        [("critic_real", "critic_real = mean f(x)"), ("critic_fake", "critic_fake = mean f(G(z))"),
         ("critic_gap", "critic_gap = mean f(x) - mean f(G(z))")],
        "critic output",
        "Critic values",
    )
    ax.axhline(0.0, color="k", linestyle=":", linewidth=0.8)
    return _finish(fig, ax, path)


def plot_grad_norms(metrics: Metrics, path: str | os.PathLike[str]) -> Path:
    """PNG of every network's gradient norm (``grad_norm_G``, ``grad_norm_D``...) against step
    on a log-scale y axis."""
    fig, ax = _plot_series(
        metrics,
        _prefixed(metrics, "grad_norm_", ("grad_norm_G", "grad_norm_D")),
        "gradient norm",
        "Gradient norms",
        smooth=False,
    )
    # Log scale only with something positive to show; otherwise matplotlib warns and the
    # empty axes get nonsensical limits.
    if any(np.any(line.get_ydata() > 0) for line in ax.get_lines()):
        ax.set_yscale("log")
    return _finish(fig, ax, path)


def plot_all(
    metrics_csv_path: str | os.PathLike[str], out_dir: str | os.PathLike[str]
) -> list[Path]:
    """Write ``losses.png``, ``scores.png`` (a GAN's D(x)/D(G(z)) or critic values; skipped
    when the run logs neither) and ``grad_norms.png`` for a metrics CSV to ``out_dir``.

    Creates ``out_dir`` as needed and returns the paths in that order. A CSV without data
    rows writes nothing (``out_dir`` is not created) and returns ``[]``.
    """
    metrics = read_metrics(metrics_csv_path)
    if n_rows(metrics) == 0:
        return []
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [plot_losses(metrics, out / "losses.png")]
    if any(c in metrics for c in ("real_score", "critic_real")):
        paths.append(plot_scores(metrics, out / "scores.png"))
    paths.append(plot_grad_norms(metrics, out / "grad_norms.png"))
    return paths
