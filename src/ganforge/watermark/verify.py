"""Is this image from the generator with key K? Decode, count matching bits, binomial test."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ganforge.watermark.decoder import Decoder
from ganforge.watermark.key import p_value


@dataclass
class Verdict:
    """Per-image ``decoded`` bits (N, k), ``matches`` (N,) and ``p_values`` (N,) against ``key``;
    the bitwise majority vote ``recovered`` (k,) over the images; ``set_p_value`` the binomial
    tail of all ``matches.sum()`` of N k bits (the images taken as independent), with its log10
    (which stays finite when the p-value underflows to 0)."""

    key: torch.Tensor
    decoded: torch.Tensor
    matches: torch.Tensor
    p_values: torch.Tensor
    recovered: torch.Tensor
    set_p_value: float
    set_log10_p: float

    @property
    def bits(self) -> int:
        return len(self.key)

    @property
    def bit_accuracy(self) -> float:
        """Mean over images and bits."""
        return float(self.matches.float().mean()) / self.bits if len(self.matches) else float("nan")

    def flagged(self, alpha: float) -> int:
        """Images whose own p-value is below ``alpha``."""
        return int((self.p_values < alpha).sum())


def log10_p_value(matches: int, bits: int) -> float:
    """log10 P(M >= matches), M ~ Binomial(bits, 1/2), finite even when the p-value is < 1e-308."""
    import numpy as np
    from scipy.special import logsumexp
    from scipy.stats import binom

    if matches <= 0:
        return 0.0
    p = p_value(matches, bits)
    if p > 1e-300:
        return math.log10(p)
    # far in the tail: sum the log pmf terms (they fall fast, a few thousand are plenty)
    j = np.arange(matches, min(bits, matches + 5000) + 1)
    return float(logsumexp(binom.logpmf(j, bits, 0.5))) / math.log(10)


def verify(decoder: Decoder, key: torch.Tensor, images: torch.Tensor) -> Verdict:
    """Decode ``images`` (N, C, H, W) in [-1, 1] and test them against ``key``."""
    key = torch.as_tensor(key).float().flatten()
    decoded = decoder.decode(images)
    matches = (decoded == key.view(1, -1)).sum(1)
    k = len(key)
    table = torch.tensor([p_value(m, k) for m in range(k + 1)], dtype=torch.float64)
    p_values = table[matches]
    recovered = (decoded.mean(0) > 0.5).float() if len(decoded) else torch.zeros(k)
    total, n_bits = int(matches.sum()), len(images) * k
    return Verdict(key, decoded, matches, p_values, recovered, p_value(total, n_bits),
                   log10_p_value(total, n_bits))


def format_p(p: float, log10_p: float | None = None) -> str:
    """``0.031``, ``2.3e-10``, or ``10^-412.7`` below the float range."""
    if p > 0 or log10_p is None:
        return f"{p:.3g}"
    return f"10^{log10_p:.1f}"
