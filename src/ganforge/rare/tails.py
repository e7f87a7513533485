"""Heavy tails: the tail index of a statistic on a run's samples and on its data.

A generator whose latent is Gaussian and whose network is Lipschitz has tails lighter than any
power law (Huster et al. 2021), so the Hill estimate of its samples' tail index comes out far
above the data's when the data are heavy-tailed; a Student-t latent (``model.prior=student-t``,
``model.prior_df`` near the data's index) is the fix. :func:`tail_report` measures both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.errors import GanforgeError
from ganforge.maths.tails import hill_estimator
from ganforge.rare.events import parse_statistic
from ganforge.rare.simulator import RunSimulator
from ganforge.rare.statistics import as_values


@dataclass
class TailReport:
    """Hill tail indices of ``statistic`` on ``n`` generated samples and on the run's data (None
    when no data were given), with the values themselves for a QQ figure."""

    statistic: str
    k: int | None
    samples: np.ndarray
    data: np.ndarray | None
    alpha_samples: float
    alpha_data: float | None

    def summary(self) -> dict[str, Any]:
        out = {"statistic": self.statistic, "k": self.k, "n_samples": int(len(self.samples)),
               "alpha_samples": self.alpha_samples}
        if self.data is not None:
            out.update(n_data=int(len(self.data)), alpha_data=self.alpha_data,
                       ratio=self.alpha_samples / self.alpha_data if self.alpha_data else None)
        return out

    def plot(self, path: str | Path) -> Path:
        from ganforge.data.vectors import plot_tail_qq

        series = {"generated": self.samples}
        if self.data is not None:
            series = {"data": self.data, **series}
        return plot_tail_qq(series, path, title=f"tail of {self.statistic}")


def tail_report(run: Any, statistic: str, *, n: int = 100_000, k: int | None = None, seed: int = 0,
                data: Any = None, ema: bool = False, batch_size: int = 10_000) -> TailReport:
    """Hill estimates of ``statistic`` (as in an event, without a threshold) on ``n`` samples of
    ``run`` and on ``data`` (the kind's batch of real samples: a tensor or a DataFrame; None:
    samples only). ``k`` upper order statistics for the data (default sqrt(n)); the samples use
    the same share of their upper tail."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 10:
        raise GanforgeError(f"-n must be a whole number >= 10, got {n!r}", "pass e.g. -n 100000")
    simulator = RunSimulator(run, ema=ema)
    stat = parse_statistic(statistic, simulator.context)
    gen = torch.Generator().manual_seed(seed)
    values = []
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        values.append(as_values(stat(simulator(simulator.sample_prior(m, gen), gen)), m, statistic))
    samples = torch.cat(values).numpy()
    samples = samples[np.isfinite(samples)]
    real = None
    if data is not None:
        size = len(data)
        real = as_values(stat(data), size, statistic).numpy()
        real = real[np.isfinite(real)]
    if real is None:
        return TailReport(statistic, k, samples, None, hill_estimator(samples, k), None)
    k_data = k if k is not None else int(math.sqrt(len(real)))
    # the same share of the upper tail on both sides (Hill's bias depends on it)
    k_samples = max(2, round(k_data * len(samples) / max(len(real), 1)))
    alpha_samples = hill_estimator(samples, min(k_samples, len(samples) - 1))
    return TailReport(statistic, k_data, samples, real, alpha_samples, hill_estimator(real, k_data))
