"""What the rare-event estimators share: the simulator contract, the result, and batches of
samples (the kind's tensors, or a table's DataFrame) taken, merged and joined row-wise."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from ganforge.errors import GanforgeError
from ganforge.maths.importance import Estimate
from ganforge.rare.proposals import Proposal


class Simulator(Protocol):
    """Codes to samples: ``z_dim``, the prior's draws and log-density, and ``__call__(z,
    generator)`` -> the samples of codes z (other randomness drawn from ``generator``)."""

    z_dim: int

    def sample_prior(self, n: int, generator: torch.Generator) -> torch.Tensor: ...

    def log_prior(self, z: torch.Tensor) -> torch.Tensor: ...

    def __call__(self, z: torch.Tensor, generator: torch.Generator) -> Any: ...


@dataclass
class Level:
    """One level of the cross-entropy method or of subset simulation: the ``level`` reached, its
    ``elites``, the draws' codes (a subsample, for figures) and the proposal fitted to them
    (none for subset simulation, whose ``note`` gives its pCN step)."""

    iteration: int
    level: float
    elites: int
    draws: int
    codes: torch.Tensor
    proposal: Proposal | None
    #: what drew the level when no proposal did (subset simulation's pCN step)
    note: dict[str, Any] | None = None


@dataclass
class RareEventResult:
    """The estimate (:class:`~ganforge.maths.importance.Estimate`), the generator ``calls``
    spent, the calls naive MC needs for the same relative error, the ``levels``, and the
    ``scenarios``: samples in the event (the kind's batch) with their ``codes`` (standard-normal
    coordinates) and ``weights``, the probability mass each stands for (importance sampling:
    w_i / N; subset simulation: p / hits): the weights of every in-event draw sum to p."""

    event: str
    method: str
    estimate: Estimate
    calls: int
    naive_calls: float
    levels: list[Level] = field(default_factory=list)
    proposal: Proposal | None = None
    scenarios: Any = None
    codes: torch.Tensor | None = None
    weights: torch.Tensor | None = None
    upper_bound: float | None = None
    warning: str | None = None

    @property
    def p(self) -> float:
        return self.estimate.p

    def summary(self) -> dict[str, Any]:
        """The JSON-able numbers."""
        e = self.estimate
        return {
            "event": self.event, "method": self.method, "p": e.p, "std_error": e.std_error,
            "relative_error": e.relative_error if math.isfinite(e.relative_error) else None,
            "hits": e.hits, "final_draws": e.n, "ess": e.ess, "calls": self.calls,
            "naive_calls_same_error": self.naive_calls if math.isfinite(self.naive_calls) else None,
            "calls_saved": (self.naive_calls / self.calls) if math.isfinite(self.naive_calls) else None,
            "levels": [{"iteration": lv.iteration, "level": lv.level, "elites": lv.elites, "draws": lv.draws,
                        "proposal": lv.proposal.describe() if lv.proposal is not None else lv.note}
                       for lv in self.levels],
            "upper_bound": self.upper_bound, "warning": self.warning,
        }


def take(samples: Any, index: torch.Tensor) -> Any:
    if isinstance(samples, torch.Tensor):
        return samples[index]
    return samples.iloc[index.numpy()].reset_index(drop=True)  # a DataFrame


def where(ok: torch.Tensor, new: Any, old: Any) -> Any:
    """Row i of ``new`` where ``ok[i]``, else of ``old``."""
    if isinstance(new, torch.Tensor):
        return torch.where(ok.reshape(-1, *([1] * (new.dim() - 1))), new, old)
    out = old.copy()
    out.loc[ok.numpy()] = new.loc[ok.numpy()].to_numpy()
    return out


def concat(parts: list[Any]) -> Any:
    if not parts:
        return None
    if isinstance(parts[0], torch.Tensor):
        return torch.cat(parts)
    import pandas as pd

    return pd.concat(parts, ignore_index=True)


def positive_int(value: Any, name: str, example: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise GanforgeError(f"{name} must be a positive whole number, got {value!r}",
                            f"pass e.g. {name} {example}")
    return int(value)


def fraction(value: Any, name: str, low_open: bool = True) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (0 < value < 1 if low_open else 0 <= value < 1):
        raise GanforgeError(f"{name} must be a number in {'(0, 1)' if low_open else '[0, 1)'}, got {value!r}",
                            f"pass e.g. {name} 0.1")
    return float(value)


