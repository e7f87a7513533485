"""Pictures of GAN training: image grids, 2-D discriminator fields and training curves.

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
    "read_metrics",
    "save_grid",
]
