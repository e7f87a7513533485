"""Result 3 (Goodfellow et al., 2014, Sec. 3): why G maximises log D(G(z)) instead of minimising
log(1 - D(G(z))).

Take a logistic discriminator D(x) = sigmoid(l(x)), l(x) = w x + b, and a generator output x that
D rejects ever more confidently (D(x) -> 0). With s = D(x) the chain rule gives

    saturating      d/dx  log(1 - D(x)) = -w s          -> 0 as s -> 0
    non-saturating  d/dx -log D(x)      = -w (1 - s)    -> -w as s -> 0

so the ratio |saturating| / |non-saturating| = s / (1 - s) vanishes: early in training, when D
easily rejects G's samples, the minimax loss gives G almost no gradient. The gradients are taken
by autograd through :func:`ganforge.maths.generator_loss_saturating` and
:func:`ganforge.maths.generator_loss_non_saturating` and checked against these closed forms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge import maths
from ganforge.theory._common import check, new_figure, result, save

W, B = 2.0, 0.5
#: D(G(z)) values reported in the table
REPORTED = (0.5, 0.1, 1e-2, 1e-3, 1e-6)


def generator_gradients(d_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample d(loss)/dx of both generator losses, by autograd, at outputs x with D(x) = d."""
    d = torch.as_tensor(d_values, dtype=torch.float64)
    x = ((torch.logit(d) - B) / W).requires_grad_(True)
    grads = []
    for loss_fn in (maths.generator_loss_saturating, maths.generator_loss_non_saturating):
        (g,) = torch.autograd.grad(loss_fn(W * x + B) * len(x), x)  # x len: undo the batch mean
        grads.append(g.numpy())
    return grads[0], grads[1]


def run(out_dir: Path, seed: int = 0, quick: bool = False) -> dict[str, Any]:
    d = np.logspace(-8, np.log10(0.99), 400)
    g_sat, g_ns = generator_gradients(d)
    closed_sat, closed_ns = -W * d, -W * (1 - d)
    rel_err = float(max(np.max(np.abs(g_sat - closed_sat) / np.abs(closed_sat)),
                        np.max(np.abs(g_ns - closed_ns) / np.abs(closed_ns))))
    rep_sat, rep_ns = generator_gradients(np.array(REPORTED))
    ratios = np.abs(rep_sat) / np.abs(rep_ns)

    fig, (ax, ax_ratio) = new_figure(10.0, 4.0, ncols=2)
    ax.loglog(d, np.abs(g_sat), color="tab:red", label="saturating: log(1 - D(G(z)))")
    ax.loglog(d, np.abs(g_ns), color="tab:blue", label="non-saturating: -log D(G(z))")
    ax.set_xlabel("D(G(z))")
    ax.set_ylabel("|d loss / d G(z)|")
    ax.set_title(f"Generator gradient, D(x) = sigmoid({W:g} x + {B:g})")
    ax.legend(fontsize="small")
    ax_ratio.loglog(d, np.abs(g_sat) / np.abs(g_ns), color="k", label="autograd")
    ax_ratio.loglog(d, d / (1 - d), color="tab:orange", ls="--", label="s / (1 - s)")
    ax_ratio.set_xlabel("D(G(z)) = s")
    ax_ratio.set_ylabel("|saturating| / |non-saturating|")
    ax_ratio.set_title("Ratio of gradient magnitudes")
    ax_ratio.legend(fontsize="small")
    path = save(fig, out_dir, "saturation.png")
    numbers = {"d_values": list(REPORTED), "grad_saturating": rep_sat.tolist(),
               "grad_non_saturating": rep_ns.tolist(), "ratio": ratios.tolist(),
               "max_relative_error_vs_closed_form": rel_err}
    at_1e3 = float(ratios[REPORTED.index(1e-3)])
    return result("saturation", [path], numbers, [
        check("max relative error of autograd vs closed form", rel_err, "< 1e-9", rel_err < 1e-9),
        check("|saturating| / |non-saturating| at D(G(z)) = 1e-3", at_1e3, "~ 1e-3 / (1 - 1e-3)",
              abs(at_1e3 - 1e-3 / (1 - 1e-3)) < 1e-9),
    ])
