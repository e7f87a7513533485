"""Simulators: latent codes to samples, for a trained run or a plain function of z.

Both work in standard-normal coordinates u ~ N(0, I): the generator's codes are
z = F^-1(Phi(u)) (:func:`~ganforge.maths.priors.from_standard_normal`; z = u for the usual
Gaussian latent), so the importance-sampling proposals meet a Gaussian prior whatever the
generator's (a heavy-tailed Student-t latent, a bounded uniform one) and their weights stay
bounded. The codes a result reports are these u."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ganforge.errors import GanforgeError
from ganforge.maths.priors import check_prior, from_standard_normal, prior_log_prob
from ganforge.rare.statistics import Context


class StandardNormalCodes:
    """What both simulators share: codes u ~ N(0, I) of ``z_dim`` entries, their log-density, and
    the generator's codes z = F^-1(Phi(u)) under ``prior`` (with ``prior_df`` for student-t)."""

    z_dim: int
    prior: str
    prior_df: float

    def sample_prior(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.z_dim, generator=generator)

    def log_prior(self, u: torch.Tensor) -> torch.Tensor:
        return prior_log_prob("normal", u)

    def codes(self, u: torch.Tensor) -> torch.Tensor:
        """The generator's codes z of standard-normal coordinates u."""
        return from_standard_normal(self.prior, u, self.prior_df)


class RunSimulator(StandardNormalCodes):
    """A loaded run's generator (or its EMA copy) as a :class:`~ganforge.rare.estimate.Simulator`:
    codes from its prior, samples through the algorithm's
    :class:`~ganforge.train.algorithms.base.LatentSimulation` (a conditional run's labels drawn
    from its label law, or all ``class_``)."""

    def __init__(self, run: Any, *, ema: bool = False, class_: int | None = None) -> None:
        from ganforge.train.algorithms.base import LatentSimulation, TableRows, require

        self.algorithm = require(run, LatentSimulation, "estimate rare-event probabilities in latent space")
        self.run = run
        self.network = run.pick_generator(ema)
        self.network.eval()
        self.z_dim = int(self.network.z_dim)
        self.prior, self.prior_df = self.network.prior, self.network.prior_df
        self.class_ = class_
        if class_ is not None:
            run.labels(1, class_)  # the one-line errors of a wrong class
        schema = self.algorithm.schema if isinstance(self.algorithm, TableRows) else None
        self.context = Context(run.kind.name, tuple(self.network.out_shape), schema)

    def __call__(self, u: torch.Tensor, generator: torch.Generator) -> Any:
        labels = None if self.class_ is None else self.run.labels(len(u), self.class_)
        out = self.algorithm.simulate(self.codes(u), generator, self.network, labels)
        if isinstance(out, torch.Tensor) and not torch.isfinite(out).all():
            raise GanforgeError(f"the generator of {self.run.path} outputs NaN or inf",
                                "its training diverged: use an earlier checkpoint (--checkpoint)")
        return out


class FunctionSimulator(StandardNormalCodes):
    """``fn(z)`` -> samples for codes from a product prior (``normal``, ``uniform`` or
    ``student-t`` with ``df``): a fixed generator such as a linear map, with closed-form
    probabilities to test estimators against."""

    def __init__(self, fn: Callable[[torch.Tensor], Any], z_dim: int, *, kind: str = "vectors",
                 sample_shape: tuple[int, ...] = (1,), prior: str = "normal", df: float = 3.0) -> None:
        self.fn, self.z_dim = fn, int(z_dim)
        self.prior, self.prior_df = check_prior(prior, df)
        self.context = Context(kind, tuple(sample_shape))

    def __call__(self, u: torch.Tensor, generator: torch.Generator) -> Any:
        return self.fn(self.codes(u))
