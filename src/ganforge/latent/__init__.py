"""Latent-space tools for trained GAN runs (see docs/latent.md).

* :mod:`~ganforge.latent.interpolate`: :func:`lerp`, :func:`slerp`, :func:`interpolation_path`.
* :mod:`~ganforge.latent.arithmetic`: :func:`average_codes`, :func:`arithmetic` (mean(a) - mean(b)
  + mean(c)), :func:`latent_arithmetic` (codes and rendered samples).
* :mod:`~ganforge.latent.truncation`: :func:`truncate_resample` (BigGAN), :func:`truncate_psi`,
  :func:`psi_sweep`, :func:`threshold_sweep`.
* :mod:`~ganforge.latent.neighbours`: :func:`nearest_real` and the memorisation picture.
* :mod:`~ganforge.latent.codes`: picking codes by seed or by index in a ``ganforge sample`` grid,
  class labels for conditional generators, :func:`generate`.
* :mod:`~ganforge.latent.output`: PNG strips and grids, animated GIFs, 2-D point plots.
* :mod:`~ganforge.latent.cli`: ``ganforge latent RUN interpolate|arithmetic|truncate|neighbours``.
"""

from ganforge.latent.arithmetic import (
    ArithmeticResult,
    arithmetic,
    average_codes,
    latent_arithmetic,
    variations,
)
from ganforge.latent.codes import (
    check_label,
    class_labels,
    codes_from_batch,
    codes_from_seeds,
    generate,
    num_classes_of,
    seeded_batch,
)
from ganforge.latent.interpolate import angle, interpolate, interpolation_path, lerp, slerp
from ganforge.latent.neighbours import (
    nearest_real,
    plot_neighbours,
    plot_neighbours_2d,
    real_neighbour_baseline,
    save_neighbours,
)
from ganforge.latent.output import (
    gif_frames,
    plot_arithmetic_2d,
    plot_panels_2d,
    plot_path_2d,
    save_gif,
    save_path_gif_2d,
    save_rows,
    save_strip,
)
from ganforge.latent.truncation import (
    psi_sweep,
    threshold_sweep,
    truncate_psi,
    truncate_resample,
    truncated_normal,
    truncation_codes,
)

__all__ = [
    "ArithmeticResult",
    "angle",
    "arithmetic",
    "average_codes",
    "check_label",
    "class_labels",
    "codes_from_batch",
    "codes_from_seeds",
    "generate",
    "gif_frames",
    "interpolate",
    "interpolation_path",
    "latent_arithmetic",
    "lerp",
    "nearest_real",
    "num_classes_of",
    "plot_arithmetic_2d",
    "plot_neighbours",
    "plot_neighbours_2d",
    "plot_panels_2d",
    "plot_path_2d",
    "psi_sweep",
    "real_neighbour_baseline",
    "save_gif",
    "save_neighbours",
    "save_path_gif_2d",
    "save_rows",
    "save_strip",
    "seeded_batch",
    "slerp",
    "threshold_sweep",
    "truncate_psi",
    "truncate_resample",
    "truncated_normal",
    "truncation_codes",
    "variations",
]
