"""The torchmetrics-style contract shared by ganforge's metrics.

``update(x, real=...)`` adds a batch of features (real or generated), ``compute()`` returns the
result from everything seen so far, ``reset()`` forgets it. Objects that must keep the features
(KID, PRDC) store them as float32 on the CPU: O(N d) memory, never O(N^2).
"""

from __future__ import annotations

import numpy as np
import torch

from ganforge.errors import GanforgeError


def as_features(x: torch.Tensor | np.ndarray, what: str = "features") -> torch.Tensor:
    """A detached CPU tensor of shape (N, D) (1-D input is one feature per sample)."""
    t = torch.as_tensor(x).detach().cpu()
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim != 2:
        raise GanforgeError(f"{what} must have shape (N, D), got {tuple(t.shape)}",
                            "flatten or extract features first")
    if not t.is_floating_point():
        t = t.double()
    return t


class FeatureStore:
    """Real and generated features appended batch by batch (float32, or float64 if given so)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._real: list[torch.Tensor] = []
        self._fake: list[torch.Tensor] = []

    def update(self, x: torch.Tensor | np.ndarray, real: bool) -> None:
        t = as_features(x)
        if t.dtype not in (torch.float32, torch.float64):
            t = t.float()
        (self._real if real else self._fake).append(t)

    def get(self, real: bool) -> torch.Tensor:
        parts = self._real if real else self._fake
        if not parts:
            which = "real" if real else "generated"
            raise GanforgeError(f"no {which} features were given", f"call update(x, real={real}) first")
        return parts[0] if len(parts) == 1 else torch.cat(parts)


class StoredFeaturesMetric:
    """Base of the metrics that need every feature at ``compute()`` time (KID, PRDC): ``update``
    and ``reset`` go to a :class:`FeatureStore`; subclasses define ``compute``."""

    def __init__(self) -> None:
        self.store = FeatureStore()

    def reset(self) -> None:
        self.store.reset()

    def update(self, x: torch.Tensor | np.ndarray, real: bool) -> None:
        self.store.update(x, real)
