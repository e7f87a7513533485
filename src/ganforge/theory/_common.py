"""Shared pieces of the theory checks: the fixed 1D mixtures, a discriminator trainer, figures."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from ganforge import maths
from ganforge.viz._atomic import save_figure

#: (means, stds, weights) of the fixed 1D p_data and p_g used by results 1 and 2.
P_DATA = ((-2.0, 1.5), (0.5, 0.7), (0.5, 0.5))
P_G = ((0.0, 2.5), (1.0, 0.5), (0.6, 0.4))
#: integration grid: both mixtures have negligible mass outside [-8, 8]
GRID = np.linspace(-8.0, 8.0, 16001)


def density(spec: tuple) -> Callable[[np.ndarray], np.ndarray]:
    return maths.mixture_density(*spec)


def sample_mixture(spec: tuple, n: int, generator: torch.Generator) -> torch.Tensor:
    """n draws (n, 1) from the 1D Gaussian mixture ``spec`` = (means, stds, weights)."""
    means, stds, weights = (torch.tensor(v, dtype=torch.float64) for v in spec)
    k = torch.multinomial(weights / weights.sum(), n, replacement=True, generator=generator)
    eps = torch.randn(n, generator=generator, dtype=torch.float64)
    return (means[k] + stds[k] * eps).float()[:, None]


def mlp(in_dim: int, width: int = 64, depth: int = 2, act: type[nn.Module] = nn.SiLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(in_dim, width), act()]
        in_dim = width
    layers.append(nn.Linear(in_dim, 1))
    return nn.Sequential(*layers)


def train_discriminator(p_data: tuple, p_g: tuple, *, steps: int, batch: int, seed: int,
                        lr: float = 3e-3) -> nn.Module:
    """Maximise V(D, G) over a smooth MLP D (logits) for fixed 1D mixtures, by minimising
    L_D = -E_x[log D(x)] - E_{x~p_g}[log(1 - D(x))] on fresh samples each step, with Adam and a
    cosine learning-rate decay to 0 so that the last steps average out the sampling noise."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    D = mlp(1)
    opt = torch.optim.Adam(D.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        real, fake = sample_mixture(p_data, batch, gen), sample_mixture(p_g, batch, gen)
        loss = maths.discriminator_loss(D(real).squeeze(1), D(fake).squeeze(1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return D.eval()


@torch.no_grad()
def d_on(D: nn.Module, x: np.ndarray) -> np.ndarray:
    """sigmoid(D(x)) on a 1D numpy grid."""
    t = torch.as_tensor(x, dtype=torch.float32)[:, None]
    return torch.sigmoid(D(t).squeeze(1)).double().numpy()


def check(what: str, value: float, target: str, passed: bool) -> dict[str, Any]:
    return {"check": what, "value": float(value), "target": target, "passed": bool(passed)}


def reported(what: str, value: float, why: str) -> dict[str, Any]:
    """A number shown beside the checks but not a target (``passed`` is None): a known limit of a
    method, explained by ``why`` and in docs/theory.md."""
    return {"check": what, "value": float(value), "target": why, "passed": None}


def result(name: str, figures: list[Path], numbers: dict[str, Any],
           checks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "figures": figures, "numbers": numbers, "checks": checks}


def new_figure(width: float = 6.4, height: float = 4.0, ncols: int = 1) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(1, ncols)


def save(fig: Figure, out_dir: Path, name: str) -> Path:
    """Write ``fig`` atomically to out_dir/name (temp file + os.replace)."""
    return save_figure(fig, Path(out_dir) / name, dpi=110)


LOG4 = math.log(4.0)
