"""Vector arithmetic on averaged latent codes (Radford et al., 2016, section 6.3; White, 2016).

DCGAN's "smiling woman - neutral woman + neutral man = smiling man": single codes are noisy, so
each concept is the *average* of a few codes whose samples show it, and the result is::

    z_result = mean(z_a) - mean(z_b) + mean(z_c)

Render ``G(z_result)``, plus a few variations ``G(z_result + u)`` with ``u ~ U[-s, s]^d`` (the
paper used s = 0.25) to see that the result is a region of latent space, not a lucky point.
Pick the codes with :func:`~ganforge.latent.codes.codes_from_seeds` or
:func:`~ganforge.latent.codes.codes_from_batch` (the indices of samples in a ``ganforge sample``
grid); for a conditional generator render each group with its class label.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ganforge.errors import GanforgeError
from ganforge.latent.codes import (
    check_label,
    codes_from_batch,
    codes_from_seeds,
    generate,
    num_classes_of,
    seeded_batch,
)
from ganforge.models.base import Generator

__all__ = ["ArithmeticResult", "arithmetic", "average_codes", "codes_from_batch", "codes_from_seeds",
           "latent_arithmetic", "seeded_batch", "variations"]


def _codes(z: torch.Tensor, name: str) -> torch.Tensor:
    z = torch.as_tensor(z)
    if z.dim() == 1:
        z = z.unsqueeze(0)
    if z.dim() != 2 or len(z) == 0:
        raise GanforgeError(f"group {name} must hold codes of shape (n, z_dim) with n >= 1, "
                            f"got shape {tuple(z.shape)}", "pass at least one code per group")
    return z


def average_codes(z: torch.Tensor) -> torch.Tensor:
    """The mean code ``(1/n) sum_i z_i`` of an (n, z_dim) batch (a single (z_dim,) code is its
    own mean); shape (z_dim,). Averaged in float64, returned in z's dtype."""
    z = _codes(z, "of codes")
    return z.to(torch.float64).mean(0).to(z.dtype)


def arithmetic(zs_a: torch.Tensor, zs_b: torch.Tensor, zs_c: torch.Tensor) -> torch.Tensor:
    """``mean(zs_a) - mean(zs_b) + mean(zs_c)``, shape (z_dim,). Each group is (n_g, z_dim) with
    its own n_g >= 1, or a single (z_dim,) code; all must share z_dim."""
    groups = [_codes(z, name) for z, name in ((zs_a, "a"), (zs_b, "b"), (zs_c, "c"))]
    dims = {z.shape[1] for z in groups}
    if len(dims) != 1:
        raise GanforgeError(f"groups a, b and c have different code sizes {sorted(dims)}",
                            "take all codes from the same generator")
    a, b, c = (z.to(torch.float64).mean(0) for z in groups)
    return (a - b + c).to(groups[0].dtype)


def variations(z: torch.Tensor, n: int, scale: float = 0.25, seed: int = 0) -> torch.Tensor:
    """``n`` jittered copies ``z + u`` of one code, ``u ~ U[-scale, scale]^z_dim`` drawn from
    ``torch.Generator().manual_seed(seed)``; shape (n, z_dim)."""
    if scale < 0:
        raise GanforgeError(f"the noise scale must be non-negative, got {scale}", "pass e.g. 0.25")
    z = torch.as_tensor(z).reshape(-1)
    u = torch.rand(n, len(z), generator=torch.Generator().manual_seed(int(seed)), dtype=torch.float64)
    return (z.to(torch.float64) + scale * (2.0 * u - 1.0)).to(z.dtype)


@dataclass
class ArithmeticResult:
    """Codes and samples of one ``a - b + c`` experiment (samples are CPU float32)."""

    codes: dict[str, torch.Tensor]       # "a", "b", "c": (n_g, z_dim)
    means: dict[str, torch.Tensor]       # "a", "b", "c": (z_dim,)
    result: torch.Tensor                 # (z_dim,)
    samples: dict[str, torch.Tensor]     # "a", "b", "c": (n_g, *out_shape)
    mean_samples: dict[str, torch.Tensor]  # "a", "b", "c": (1, *out_shape), G(mean code)
    result_sample: torch.Tensor          # (1, *out_shape), G(result)
    variation_samples: torch.Tensor      # (n_var, *out_shape), G(result + u)
    labels: dict[str, int | None]        # the class of each group and of "result"


def latent_arithmetic(G: Generator, zs_a: torch.Tensor, zs_b: torch.Tensor, zs_c: torch.Tensor, *,
                      labels: dict[str, int | None] | None = None, n_variations: int = 0,
                      noise: float = 0.25, seed: int = 0) -> ArithmeticResult:
    """Compute :func:`arithmetic` and render every group, every mean code, the result and
    ``n_variations`` :func:`variations` of it with ``G``.

    ``labels`` maps "a", "b", "c" (and optionally "result") to class labels; a conditional ``G``
    needs all three. The result is rendered with ``labels["result"]``, by default the class of
    group c (the base the difference a - b is added to).
    """
    labels = dict(labels or {})
    for key in labels:
        if key not in ("a", "b", "c", "result"):
            raise GanforgeError(f"unknown group {key!r} in labels", "use the keys a, b, c, result")
    labels.setdefault("result", labels.get("c"))
    if num_classes_of(G) is not None and any(labels.get(k) is None for k in "abc"):
        raise GanforgeError("a conditional generator needs a class for every group",
                            "pass labels={'a': ..., 'b': ..., 'c': ...} (CLI: --class K or --classes A B C)")
    for key in ("a", "b", "c", "result"):
        labels[key] = check_label(G, labels.get(key), f"the class of group {key}")
    codes = {k: _codes(z, k) for k, z in (("a", zs_a), ("b", zs_b), ("c", zs_c))}
    result = arithmetic(codes["a"], codes["b"], codes["c"])
    means = {k: average_codes(z) for k, z in codes.items()}
    samples = {k: generate(G, z, labels[k]) for k, z in codes.items()}
    mean_samples = {k: generate(G, m, labels[k]) for k, m in means.items()}
    jitter = variations(result, n_variations, noise, seed)
    return ArithmeticResult(
        codes=codes, means=means, result=result, samples=samples, mean_samples=mean_samples,
        result_sample=generate(G, result, labels["result"]),
        variation_samples=(generate(G, jitter, labels["result"]) if n_variations
                           else torch.empty(0, *G.out_shape)),
        labels=labels)
