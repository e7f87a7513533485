"""The truncation trick: trade sample variety for sample quality at generation time.

Two forms, both for the prior z ~ N(0, I) the generators are trained with:

* **Resampling** (Brock et al., 2019, BigGAN): every entry with ``|z_i| > threshold`` is redrawn
  from N(0, 1) until it falls inside ``[-threshold, threshold]``; entries already inside are kept.
  The codes then follow N(0, 1) truncated to that interval, entry by entry.
* **psi interpolation** towards the mean code (Karras et al., 2019, StyleGAN, applied here to z)::

      z' = mean + psi (z - mean),   0 <= psi <= 1,   mean = E[z] = 0 for N(0, I)

  psi = 1 leaves z unchanged, psi = 0 sends every code to the mean (one "average" sample).

:func:`psi_sweep` and :func:`threshold_sweep` render the *same* codes at several settings, one
row per setting, so the loss of variety is visible column by column.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real

import torch

from ganforge.errors import GanforgeError
from ganforge.latent.codes import generate
from ganforge.maths.truncation import MAX_ROUNDS, check_threshold, truncate_resample
from ganforge.models.base import Generator

__all__ = ["MAX_ROUNDS", "check_psi", "check_threshold", "psi_sweep", "threshold_sweep", "truncate_psi",
           "truncate_resample", "truncated_normal", "truncation_codes"]


def check_psi(psi: float) -> float:
    """Return ``psi`` as a float if it lies in [0, 1], else raise GanforgeError."""
    if isinstance(psi, bool) or not isinstance(psi, Real) or not 0.0 <= float(psi) <= 1.0:
        raise GanforgeError(f"psi must lie in [0, 1], got {psi!r}",
                            "pass e.g. 1.0 (no truncation), 0.7 or 0.5 (0 gives the mean sample)")
    return float(psi)


def truncate_psi(z: torch.Tensor, psi: float, mean: torch.Tensor | None = None) -> torch.Tensor:
    """``z' = mean + psi (z - mean)`` with ``psi`` in [0, 1]; ``mean`` is a (z_dim,) code, default
    0 (the mean of N(0, I)). Same shape and dtype as ``z``."""
    psi = check_psi(psi)
    z = torch.as_tensor(z)
    m = torch.zeros(z.shape[-1], dtype=torch.float64, device=z.device) if mean is None else (
        torch.as_tensor(mean).to(device=z.device, dtype=torch.float64))
    if m.shape != (z.shape[-1],):
        raise GanforgeError(f"the mean code must have shape ({z.shape[-1]},), got {tuple(m.shape)}",
                            "pass one code of the generator's z_dim")
    return (m + psi * (z.to(torch.float64) - m)).to(z.dtype)


def truncated_normal(n: int, z_dim: int, threshold: float,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` codes from N(0, I) truncated entrywise to ``[-threshold, threshold]``: a standard
    normal draw followed by :func:`truncate_resample` with the same generator."""
    z = torch.randn(n, z_dim, generator=generator)
    return truncate_resample(z, threshold, generator, max_rounds=MAX_ROUNDS)  # read here: patchable


def truncation_codes(z: torch.Tensor, psis: Sequence[float] = (), thresholds: Sequence[float] = (),
                     mean: torch.Tensor | None = None, seed: int = 0
                     ) -> tuple[list[str], torch.Tensor]:
    """The codes ``z`` (n, z_dim) truncated at each setting: one row per psi (:func:`truncate_psi`)
    then one per threshold (:func:`truncate_resample`, each with a fresh generator seeded with
    ``seed``, so every threshold redraws from the same stream). Returns the row labels
    (``"psi=0.7"``, ``"threshold=1"``) and a (rows, n, z_dim) tensor."""
    psis = [check_psi(p) for p in psis]
    thresholds = [check_threshold(c) for c in thresholds]
    if not psis and not thresholds:
        raise GanforgeError("no truncation settings given", "pass psi values and/or thresholds")
    z = torch.as_tensor(z)
    if z.dim() != 2:
        raise GanforgeError(f"codes must have shape (n, z_dim), got {tuple(z.shape)}",
                            "pass a batch of codes")
    rows = [truncate_psi(z, p, mean) for p in psis]
    rows += [truncate_resample(z, c, torch.Generator().manual_seed(int(seed))) for c in thresholds]
    labels = [f"psi={p:g}" for p in psis] + [f"threshold={c:g}" for c in thresholds]
    return labels, torch.stack(rows)


def psi_sweep(G: Generator, z: torch.Tensor, psis: Sequence[float], y: torch.Tensor | int | None = None,
              mean: torch.Tensor | None = None) -> torch.Tensor:
    """``G(truncate_psi(z, psi))`` for each psi: the same n codes at every psi, shape
    (len(psis), n, *G.out_shape). Row ``psi = 1`` is the untruncated ``G(z)``."""
    _, codes = truncation_codes(z, psis, (), mean)
    return torch.stack([generate(G, row, y) for row in codes])


def threshold_sweep(G: Generator, z: torch.Tensor, thresholds: Sequence[float],
                    y: torch.Tensor | int | None = None, seed: int = 0) -> torch.Tensor:
    """``G(truncate_resample(z, threshold))`` for each threshold, shape
    (len(thresholds), n, *G.out_shape); see :func:`truncation_codes` for the seeding."""
    _, codes = truncation_codes(z, (), thresholds, seed=seed)
    return torch.stack([generate(G, row, y) for row in codes])
