"""BigGAN's truncated normal (Brock et al. 2019, sec. 3.1): codes z ~ N(0, I) whose entries
outside [-threshold, threshold] are redrawn until they fall inside, so that each entry follows
N(0, 1) truncated to that interval.

It sits in maths (below the models) because a generator's :meth:`~ganforge.models.base.Generator.truncated_z`
draws with it; :mod:`ganforge.latent.truncation` builds its sweeps on it.
"""

from __future__ import annotations

from numbers import Real

import torch

from ganforge.errors import GanforgeError

#: Rounds of rejection resampling before the (rare) leftovers are drawn by inverse CDF.
MAX_ROUNDS = 100


def check_threshold(threshold: float) -> float:
    """Return ``threshold`` as a float if it is positive and finite, else raise GanforgeError."""
    if (isinstance(threshold, bool) or not isinstance(threshold, Real)
            or not 0.0 < float(threshold) < float("inf")):
        raise GanforgeError(f"the truncation threshold must be positive, got {threshold!r}",
                            "pass e.g. 2.0, 1.0 or 0.5 (smaller keeps less variety)")
    return float(threshold)


def truncate_resample(z: torch.Tensor, threshold: float, generator: torch.Generator | None = None,
                      max_rounds: int = MAX_ROUNDS) -> torch.Tensor:
    """BigGAN's truncation: a copy of ``z`` in which exactly the entries with ``|z_i| > threshold``
    are redrawn from N(0, 1) (from ``generator``, on the CPU) until ``|z_i| <= threshold``.

    Entries already inside are returned unchanged. After ``max_rounds`` rounds of rejection (only
    reached for tiny thresholds) the remaining entries are drawn exactly from the same truncated
    normal by inverse CDF: ``Phi^-1(Phi(-c) + u (Phi(c) - Phi(-c)))``, u ~ U(0, 1).
    """
    c = check_threshold(threshold)
    z = torch.as_tensor(z)
    out = z.detach().to("cpu", copy=True)
    mask = out.abs() > c
    for _ in range(max_rounds):
        k = int(mask.sum())
        if k == 0:
            break
        out[mask] = torch.randn(k, generator=generator, dtype=torch.float64).to(out.dtype)
        mask = out.abs() > c
    else:
        k = int(mask.sum())
        if k:
            lo = torch.special.ndtr(torch.tensor(-c, dtype=torch.float64))
            hi = torch.special.ndtr(torch.tensor(c, dtype=torch.float64))
            u = torch.rand(k, generator=generator, dtype=torch.float64)
            draw = torch.special.ndtri(lo + u * (hi - lo)).clamp(-c, c)
            out[mask] = draw.to(out.dtype)
    return out.to(z.device)
