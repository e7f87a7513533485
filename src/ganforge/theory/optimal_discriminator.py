"""Result 1 (Goodfellow et al., 2014, Prop. 1): for a fixed G, the optimal discriminator is

    D*(x) = p_data(x) / (p_data(x) + p_g(x)).

A smooth MLP D is trained to convergence on fixed 1D Gaussian mixtures p_data and p_g (fresh
samples each step) and compared with D* from :func:`ganforge.maths.optimal_discriminator`.
The error is the mean absolute error weighted by where the samples are,

    MAE = integral |D(x) - D*(x)| m(x) dx,   m = (p_data + p_g) / 2,

since D is only determined where there is mass (target: MAE < 0.02).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy.integrate import trapezoid

from ganforge import maths
from ganforge.theory._common import (
    GRID,
    P_DATA,
    P_G,
    check,
    d_on,
    density,
    new_figure,
    result,
    save,
    train_discriminator,
)

TARGET_MAE = 0.02


def run(out_dir: Path, seed: int = 0, quick: bool = False) -> dict[str, Any]:
    steps, batch = (800, 2048) if quick else (3000, 4096)
    D = train_discriminator(P_DATA, P_G, steps=steps, batch=batch, seed=seed)
    pd, pg = density(P_DATA)(GRID), density(P_G)(GRID)
    d_star = maths.optimal_discriminator(pd, pg, GRID)
    learned = d_on(D, GRID)
    m = (pd + pg) / 2
    mae = float(trapezoid(np.abs(learned - d_star) * m, GRID))
    support = m > 1e-3 * m.max()
    max_err = float(np.abs(learned - d_star)[support].max())

    fig, ax = new_figure()
    ax.plot(GRID, pd, color="tab:blue", lw=1, label="p_data")
    ax.plot(GRID, pg, color="tab:orange", lw=1, label="p_g")
    ax.plot(GRID, d_star, color="k", lw=2, label="D*(x) = p_data / (p_data + p_g)")
    ax.plot(GRID, learned, color="tab:red", lw=1.5, ls="--", label=f"trained D(x), MAE {mae:.4f}")
    ax.set_xlim(-6, 6)
    ax.set_xlabel("x")
    ax.set_title("The optimal discriminator")
    ax.legend(fontsize="small", loc="upper right")
    path = save(fig, out_dir, "optimal_discriminator.png")
    return result("optimal-discriminator", [path],
                  {"mae": mae, "max_abs_error_on_support": max_err, "steps": steps, "batch": batch},
                  [check("mean |D - D*| (weighted by (p_data + p_g) / 2)", mae, f"< {TARGET_MAE}",
                         mae < TARGET_MAE)])
