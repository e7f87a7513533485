"""Pictures of synthetic tables: every column's distribution, real over synthetic, and the
difference of the two correlation matrices."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ganforge.viz._atomic import save_figure

NUMERIC = ("continuous", "integer")


def _numeric(frame: Any, column: str) -> np.ndarray:
    values = np.asarray(frame[column].to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    return values[~np.isnan(values)]


def _shares(frame: Any, column: str) -> dict[str, float]:
    counts = frame[column].astype(object).where(frame[column].notna(), "(missing)").astype(str).value_counts()
    return (counts / max(counts.sum(), 1)).to_dict()


def plot_marginals(real: Any | None, synthetic: Any, types: Mapping[str, str], path: str | os.PathLike[str],
                   *, title: str | None = None, max_columns: int = 16, columns_per_row: int = 4) -> Path:
    """One panel per column (the first ``max_columns``): a numeric column's histogram, a discrete
    column's category shares (the 12 most common in the real rows), the real rows (grey) under
    the synthetic ones (orange). ``real`` None draws the synthetic rows alone."""
    names = [c for c in synthetic.columns if c in types][:max_columns]
    rows = max(1, math.ceil(len(names) / columns_per_row))
    cols = min(columns_per_row, max(1, len(names)))
    fig = Figure(figsize=(3.2 * cols, 2.4 * rows + (0.5 if title else 0.2)))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        if types[name] in NUMERIC:
            fake = _numeric(synthetic, name)
            true = _numeric(real, name) if real is not None else fake[:0]
            both = np.concatenate([true, fake])
            lo, hi = (np.percentile(both, [0.5, 99.5]) if len(both) else (0.0, 1.0))
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 30)
            if len(true):
                ax.hist(true, bins=bins, density=True, color="0.6", alpha=0.7, label="real")
            ax.hist(fake, bins=bins, density=True, histtype="step", color="tab:orange", lw=1.6,
                    label="synthetic")
        else:
            fake = _shares(synthetic, name)
            true = _shares(real, name) if real is not None else {}
            keys = sorted(true or fake, key=lambda k: -(true or fake)[k])[:12]
            pos = np.arange(len(keys))
            if true:
                ax.bar(pos - 0.2, [true.get(k, 0.0) for k in keys], width=0.4, color="0.6", label="real")
            ax.bar(pos + (0.2 if true else 0.0), [fake.get(k, 0.0) for k in keys], width=0.4,
                   color="tab:orange", label="synthetic")
            ax.set_xticks(pos)
            ax.set_xticklabels([k[:8] for k in keys], rotation=60, fontsize=6)
        ax.set_title(f"{name} ({types[name]})", fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes[len(names):]:
        ax.set_axis_off()
    if names:
        axes[0].legend(fontsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def association_matrix(frame: Any, types: Mapping[str, str]) -> tuple[list[str], np.ndarray]:
    """Pearson correlations of the columns, discrete ones coded by their categories' ranks in
    frequency order (so a pair of discrete columns shows whether they move together); the
    columns it covers and the matrix."""
    import pandas as pd

    names = [c for c in frame.columns if c in types]
    coded = {}
    for name in names:
        if types[name] in NUMERIC:
            coded[name] = pd.to_numeric(frame[name], errors="coerce")
        else:
            values = frame[name].astype(object).where(frame[name].notna(), "(missing)").astype(str)
            order = {k: i for i, k in enumerate(values.value_counts().index)}
            coded[name] = values.map(order).astype(float)
    matrix = pd.DataFrame(coded).corr().to_numpy()
    return names, np.nan_to_num(matrix)


def plot_correlation_difference(real: Any, synthetic: Any, types: Mapping[str, str],
                                path: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Heatmaps of the real table's correlations, the synthetic table's, and their absolute
    difference (0: the pair trend is kept)."""
    names, r = association_matrix(real, types)
    _, s = association_matrix(synthetic[names], types)
    fig = Figure(figsize=(12, 4.2 + (0.3 if title else 0)))
    axes = fig.subplots(1, 3)
    panels = (("real", r, "coolwarm", -1), ("synthetic", s, "coolwarm", -1),
              ("|real - synthetic|", np.abs(r - s), "viridis", 0))
    for ax, (label, m, cmap, vmin) in zip(axes, panels, strict=True):
        image = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=1)
        ax.set_title(label, fontsize=10)
        ax.set_xticks(range(len(names)))
        ax.set_yticks(range(len(names)))
        ax.set_xticklabels(names, rotation=90, fontsize=6)
        ax.set_yticklabels(names, fontsize=6)
        fig.colorbar(image, ax=ax, fraction=0.046)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)
