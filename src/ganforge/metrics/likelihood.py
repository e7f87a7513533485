"""Likelihood metrics of models that have one (the VAE): scored on held-out real data, in nats.

* ``elbo`` -> ``neg_elbo`` = E[-log p(x|z)] + KL(q(z|x) || p(z)) (lower is better), its two terms
  ``recon_nll`` and ``kl``;
* ``iwae`` -> ``nll_iwae`` = -log (1/k sum_i p(x, z_i) / q(z_i|x)), z_i ~ q(z|x) (Burda et al.
  2015), an upper bound on -log p(x) that tightens as k grows and never exceeds ``neg_elbo``
  (k = 1 is the ELBO).

Both are model metrics: the run's algorithm computes them (``log_likelihood_bounds``), so they
apply only to a :class:`LikelihoodModel` (an algorithm that declares it: the ``HasLikelihood``
capability); asking for them on a GAN is a one-line error.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

from ganforge.errors import GanforgeError
from ganforge.metrics.registry import LOWER, NEITHER, MetricContext, MetricSpec, register_metric

DEFAULT_IMPORTANCE_SAMPLES = 1000


@runtime_checkable
class LikelihoodModel(Protocol):
    """What the likelihood metrics call: per-sample bounds in nats of held-out ``x`` with ``k``
    importance samples drawn from ``generator``: ``neg_elbo``, ``recon_nll``, ``kl``,
    ``nll_iwae``."""

    def log_likelihood_bounds(self, x: torch.Tensor, k: int,
                              generator: torch.Generator | None = None) -> dict[str, torch.Tensor]: ...


def _applies(ctx: MetricContext) -> tuple[str, str] | None:
    if isinstance(ctx.algorithm, LikelihoodModel):
        return None
    return ("likelihood metrics (elbo, iwae) need a model with a likelihood, and this run has none",
            "evaluate a vae run, or choose sample metrics (fid, kid, is, prdc, modes, class)")


register_metric(MetricSpec("elbo", lambda ctx: {"neg_elbo": LOWER, "recon_nll": LOWER, "kl": NEITHER},
                           source="model", applies=_applies, needs_features=False,
                           description="negative ELBO on held-out data and its two terms (nats)"))
register_metric(MetricSpec("iwae", lambda ctx: {"nll_iwae": LOWER}, source="model", applies=_applies,
                           needs_features=False,
                           description="importance-weighted bound on -log p(x) (nats, k samples)"))


@torch.no_grad()
def evaluate_likelihood(algorithm: Any, x: torch.Tensor, metrics: list[str], *,
                        importance_samples: int = DEFAULT_IMPORTANCE_SAMPLES, seed: int = 0,
                        batch_size: int = 100) -> dict[str, float]:
    """Mean per-sample bounds over the held-out images ``x``, in nats."""
    if importance_samples < 1:
        raise GanforgeError(f"the number of importance samples must be >= 1, got {importance_samples}",
                            "pass e.g. --importance-samples 1000")
    generator = torch.Generator().manual_seed(seed)
    k = importance_samples if "iwae" in metrics else 1
    sums: dict[str, float] = {}
    for start in range(0, len(x), batch_size):
        bounds = algorithm.log_likelihood_bounds(x[start:start + batch_size], k, generator)
        for key, value in bounds.items():
            sums[key] = sums.get(key, 0.0) + float(value.double().sum())
    out = {key: value / len(x) for key, value in sums.items()}
    if "iwae" not in metrics:
        out.pop("nll_iwae", None)
    if "elbo" not in metrics:
        for key in ("neg_elbo", "recon_nll", "kl"):
            out.pop(key, None)
    return out
