"""The tail QQ figure: Pareto QQ plots of several samples of one 1-D statistic side by side.

The points come from :func:`ganforge.maths.tails.pareto_qq` and the indices from
:func:`ganforge.maths.tails.hill_estimator`; viz sits beside maths in the layers, so this module
draws points it is given, and :func:`ganforge.data.vectors.plot_tail_qq` computes them from raw
samples and calls it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ganforge.errors import GanforgeError
from ganforge.viz._atomic import save_figure

#: one sample's Pareto QQ points: (exponential quantiles q, log-excesses e, Hill index alpha)
TailPoints = tuple[np.ndarray, np.ndarray, float]


def plot_pareto_qq(points: Mapping[str, TailPoints], path: str | os.PathLike[str],
                   title: str = "Pareto QQ plot of the upper tail") -> Path:
    """PNG of Pareto QQ plots: for each name, its points (q_i = -log(i/(k+1)), e_i = log X_(i) -
    log X_(k+1)) as one marker series, its Hill index alpha and k in the legend, and the line
    e = q / alpha through the origin (a power-law tail lies on its line; a light tail bends
    below a heavy one). Written atomically; returns ``path``. No series, or a series whose q
    and e differ in length or are empty, is a one-line :class:`GanforgeError`."""
    if not isinstance(points, Mapping) or not points:
        raise GanforgeError("the tail QQ plot needs at least one named sample",
                            "pass e.g. {'data': x, 'generated': g}")
    for name, (q, e, _) in points.items():
        if len(q) == 0 or len(q) != len(e):
            raise GanforgeError(f"series {name!r} has {len(q)} quantiles and {len(e)} log-excesses",
                                "pass the (q, e) pair of one pareto_qq call")
    fig = Figure(figsize=(6.0, 4.5))
    ax = fig.add_subplot()
    top = 0.0
    for i, (name, (q, e, alpha)) in enumerate(points.items()):
        colour = f"C{i}"
        q, e = np.asarray(q, dtype=np.float64), np.asarray(e, dtype=np.float64)
        label = f"{name}: Hill alpha = {alpha:.3g} (k = {len(q)})"
        ax.plot(q, e, linestyle="none", marker="o", markersize=3, alpha=0.7, color=colour, label=label)
        if math.isfinite(alpha) and alpha > 0:
            ax.plot([0.0, float(q.max())], [0.0, float(q.max()) / alpha], color=colour, linewidth=1.0)
        top = max(top, float(q.max()))
    ax.set_xlim(0.0, top * 1.02)
    ax.set_xlabel("exponential quantile  -log(i / (k+1))")
    ax.set_ylabel("log excess  log X(i) - log X(k+1)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    return save_figure(fig, path)
