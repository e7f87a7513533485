"""Pictures of GAN training: image grids, 2-D discriminator fields, training curves and tail QQ
plots.

Every writer produces a PNG atomically (temporary sibling file, then ``os.replace``) and uses
matplotlib's object API only, so no pyplot figures are created or leaked.
"""

from ganforge.viz.curves import (
    ema,
    plot_all,
    plot_grad_norms,
    plot_losses,
    plot_scores,
    read_metrics,
)
from ganforge.viz.field import plot_2d_field, plot_sample_strip
from ganforge.viz.grid import make_grid, save_grid
from ganforge.viz.panels import plot_panels
from ganforge.viz.tails import plot_pareto_qq

__all__ = [
    "ema",
    "make_grid",
    "plot_2d_field",
    "plot_all",
    "plot_grad_norms",
    "plot_losses",
    "plot_panels",
    "plot_sample_strip",
    "plot_scores",
    "plot_pareto_qq",
    "read_metrics",
    "save_grid",
]
