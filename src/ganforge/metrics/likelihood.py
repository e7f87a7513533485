"""Likelihood metrics of models that have one (the VAE): scored on held-out real data, in nats.

* ``elbo`` -> ``neg_elbo`` = E[-log p(x|z)] + KL(q(z|x) || p(z)) (lower is better), its two terms
  ``recon_nll`` and ``kl``;
* ``iwae`` -> ``nll_iwae`` = -log (1/k sum_i p(x, z_i) / q(z_i|x)), z_i ~ q(z|x) (Burda et al.
  2015), an upper bound on -log p(x) that tightens as k grows and never exceeds ``neg_elbo``
  (k = 1 is the ELBO).

Both are model metrics that need the capability ``likelihood``
(:class:`~ganforge.metrics.capabilities.LikelihoodModel`: the run's algorithm computes
``log_likelihood_bounds``); asking for them on a GAN is a one-line error from the registry.
"""

from __future__ import annotations

from typing import Any

import torch

from ganforge.errors import GanforgeError
from ganforge.metrics.registry import LOWER, NEITHER, MetricSpec, ModelInputs, register_metric

DEFAULT_IMPORTANCE_SAMPLES = 1000
#: the most importance samples per held-out image (each is one decoder pass)
MAX_IMPORTANCE_SAMPLES = 100_000
ELBO_COLUMNS = ("neg_elbo", "recon_nll", "kl")


def _bounds(inputs: ModelInputs, columns: tuple[str, ...]) -> dict[str, float]:
    """``columns`` of one pass of :func:`evaluate_likelihood` over the held-out images, shared by
    elbo and iwae (asked together, they come from the same k importance samples)."""
    if "likelihood" not in inputs.shared:
        names = [n for n in inputs.names if n in ("elbo", "iwae")]
        x, data = inputs.held_out()
        k = inputs.importance_samples
        split = f" ({data['split']} split)" if "split" in data else ""
        inputs.say(f"likelihood on {len(x)} held-out images of {data['name']}{split}, "
                   f"k = {k} importance samples")
        inputs.shared["likelihood"] = evaluate_likelihood(inputs.algorithm, x, names, importance_samples=k,
                                                          seed=inputs.seed)
        inputs.info["likelihood"] = {"data": data, "images": len(x), "importance_samples": k,
                                     "units": "nats per image"}
    return {c: v for c, v in inputs.shared["likelihood"].items() if c in columns}


register_metric(MetricSpec("elbo", lambda ctx: {"neg_elbo": LOWER, "recon_nll": LOWER, "kl": NEITHER},
                           source="model", needs={"likelihood"}, needs_features=False,
                           compute=lambda inputs: _bounds(inputs, ELBO_COLUMNS),
                           description="negative ELBO on held-out data and its two terms (nats)"))
register_metric(MetricSpec("iwae", lambda ctx: {"nll_iwae": LOWER}, source="model", needs={"likelihood"},
                           needs_features=False, compute=lambda inputs: _bounds(inputs, ("nll_iwae",)),
                           description="importance-weighted bound on -log p(x) (nats, k samples)"))


def check_importance_samples(k: int) -> None:
    """k of the importance-weighted bound: 1 (the ELBO) to :data:`MAX_IMPORTANCE_SAMPLES`."""
    if not 1 <= k <= MAX_IMPORTANCE_SAMPLES:
        raise GanforgeError(f"--importance-samples must lie in [1, {MAX_IMPORTANCE_SAMPLES:,}], got {k:,}",
                            "pass e.g. --importance-samples 1000 (k decodes per held-out image: "
                            f"more than {MAX_IMPORTANCE_SAMPLES:,} take hours on a CPU)")


@torch.no_grad()
def evaluate_likelihood(algorithm: Any, x: torch.Tensor, metrics: list[str], *,
                        importance_samples: int = DEFAULT_IMPORTANCE_SAMPLES, seed: int = 0,
                        batch_size: int = 100) -> dict[str, float]:
    """Mean per-sample bounds over the held-out images ``x``, in nats."""
    check_importance_samples(importance_samples)
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
        for key in ELBO_COLUMNS:
            out.pop(key, None)
    return out
