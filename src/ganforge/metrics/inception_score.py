"""Inception Score style score (Salimans et al. 2016) from any classifier's logits.

    IS = exp( E_x KL( p(y|x) || p(y) ) ),   p(y) = E_x p(y|x)

computed in float64 on each of ``splits`` consecutive parts of the samples (part i holds rows
``i*N//splits`` to ``(i+1)*N//splits``, as in the original code), giving mean and (ddof=0) std.
With InceptionV3's 1008-way logits this is the classic IS; with a digit classifier ganforge calls
it ``is_lenet_mnist`` etc. It is at most the number of classes, and 1 for a constant classifier.
"""

from __future__ import annotations

import numpy as np
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics._base import as_features


def inception_score_from_logits(logits: torch.Tensor | np.ndarray, splits: int = 10) -> tuple[float, float]:
    """(mean, std) over ``splits`` parts of exp(mean KL(p(y|x) || p(y)))."""
    logits = as_features(logits, "logits").double()
    n = len(logits)
    if splits < 1 or n < splits:
        raise GanforgeError(f"the score needs at least {splits} samples for {splits} splits, got {n}",
                            "feed more samples or use fewer splits")
    logp = torch.log_softmax(logits, dim=1)
    p = logp.exp()
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        part_p, part_logp = p[lo:hi], logp[lo:hi]
        log_py = torch.log(part_p.mean(0))
        kl = (part_p * (part_logp - log_py)).sum(1)
        scores.append(float(torch.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))


class InceptionScore:
    """Streaming score: ``update(logits)`` stores the logits (O(N C)); ``compute()`` scores them."""

    def __init__(self, splits: int = 10) -> None:
        self.splits = splits
        self.reset()

    def reset(self) -> None:
        self._logits: list[torch.Tensor] = []

    def update(self, logits: torch.Tensor | np.ndarray, real: bool = False) -> None:
        self._logits.append(as_features(logits, "logits").double())

    def compute(self) -> tuple[float, float]:
        if not self._logits:
            raise GanforgeError("no logits were given", "call update(logits) first")
        return inception_score_from_logits(torch.cat(self._logits), self.splits)
