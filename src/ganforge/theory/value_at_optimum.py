"""Result 2 (Goodfellow et al., 2014, Thm. 1): at the optimal discriminator

    V(D*, G) = E_{p_data}[log D*(x)] + E_{p_g}[log(1 - D*(x))] = -log 4 + 2 JSD(p_data || p_g),

so the global minimum over G, -log 4, is reached exactly when p_g = p_data.

Three estimates on the fixed 1D mixtures of result 1:

* V(D*, G) by numerical integration (:func:`ganforge.maths.value_at_optimum`),
* -log 4 + 2 JSD by numerical integration (:func:`ganforge.maths.jensen_shannon`),
* the Monte Carlo estimate with a *trained* D: (1/n) sum log D(x_i) + (1/n) sum log(1 - D(x'_i)),
  x_i ~ p_data, x'_i ~ p_g (:func:`ganforge.maths.value_function` on fresh samples).

Targets: |MC - integral| < 0.01, and V = -log 4 when p_g = p_data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ganforge import maths
from ganforge.theory._common import (
    GRID,
    LOG4,
    P_DATA,
    P_G,
    check,
    density,
    new_figure,
    result,
    sample_mixture,
    save,
    train_discriminator,
)

TARGET = 0.01


@torch.no_grad()
def monte_carlo_value(D: torch.nn.Module, p_data: tuple, p_g: tuple, n: int, seed: int) -> float:
    gen = torch.Generator().manual_seed(seed + 10_000)
    real, fake = sample_mixture(p_data, n, gen), sample_mixture(p_g, n, gen)
    return float(maths.value_function(D(real).squeeze(1).double(), D(fake).squeeze(1).double()))


def run(out_dir: Path, seed: int = 0, quick: bool = False) -> dict[str, Any]:
    steps, batch, n_mc = (800, 2048, 200_000) if quick else (2000, 2048, 1_000_000)
    pd, pg = density(P_DATA)(GRID), density(P_G)(GRID)
    v_integral = maths.value_at_optimum(pd, pg, GRID)
    jsd = maths.jensen_shannon(pd, pg, GRID)
    v_jsd = -LOG4 + 2 * jsd
    D = train_discriminator(P_DATA, P_G, steps=steps, batch=batch, seed=seed)
    v_mc = monte_carlo_value(D, P_DATA, P_G, n_mc, seed)
    # p_g = p_data: D* = 1/2 everywhere and V = -log 4.
    v_same = maths.value_at_optimum(pd, pd, GRID)
    D_same = train_discriminator(P_DATA, P_DATA, steps=steps // 4, batch=batch, seed=seed)
    v_same_mc = monte_carlo_value(D_same, P_DATA, P_DATA, n_mc, seed)

    fig, ax = new_figure()
    labels = ["integral\nV(D*, G)", "-log 4\n+ 2 JSD", "Monte Carlo\ntrained D",
              "p_g = p_data\nintegral", "p_g = p_data\nMonte Carlo"]
    values = [v_integral, v_jsd, v_mc, v_same, v_same_mc]
    ax.bar(range(5), values, color=["k", "tab:gray", "tab:red", "tab:blue", "tab:cyan"])
    ax.axhline(-LOG4, color="k", ls="--", lw=1, label="-log 4")
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.4f}", ha="center", va="top", color="w", fontsize="small")
    ax.set_xticks(range(5), labels, fontsize="small")
    ax.set_ylabel("V(D, G)")
    ax.set_ylim(-LOG4 - 0.1, 0)
    ax.invert_yaxis()
    ax.set_title(f"V(D*, G) = -log 4 + 2 JSD   (JSD = {jsd:.4f})")
    ax.legend(fontsize="small", loc="lower right")
    path = save(fig, out_dir, "value_at_optimum.png")
    numbers = {"v_integral": v_integral, "v_from_jsd": v_jsd, "jsd": jsd, "v_monte_carlo": v_mc,
               "v_same_integral": v_same, "v_same_monte_carlo": v_same_mc, "minus_log4": -LOG4,
               "mc_samples": n_mc}
    err_mc = abs(v_mc - v_integral)
    return result("value-at-optimum", [path], numbers, [
        check("|integral V(D*,G) - (-log 4 + 2 JSD)|", abs(v_integral - v_jsd), "< 1e-6",
              abs(v_integral - v_jsd) < 1e-6),
        check("|Monte Carlo V(D,G) - integral V(D*,G)|", err_mc, f"< {TARGET}", err_mc < TARGET),
        check("|V(D*,G) + log 4| for p_g = p_data (integral)", abs(v_same + LOG4), "< 1e-6",
              abs(v_same + LOG4) < 1e-6),
        check("|V(D,G) + log 4| for p_g = p_data (Monte Carlo)", abs(v_same_mc + LOG4),
              f"< {TARGET}", abs(v_same_mc + LOG4) < TARGET),
    ])


__all__ = ["run", "monte_carlo_value"]
