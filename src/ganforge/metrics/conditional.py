"""Metrics for class-conditional generators.

* Class-match accuracy: the share of samples generated for class y that a fixed classifier
  assigns to y,  acc = (1/N) sum_i [argmax_k c(G(z_i, y_i))_k = y_i].
* Intra-class FID (Miyato & Koyama 2018): the Frechet distance between the real and generated
  feature distributions of each class separately, FID_k = FID(real | y = k, fake | y = k),
  and their mean over classes. Unlike FID on the pooled samples it penalises a generator that
  draws the right digits for the wrong labels.
"""

from __future__ import annotations

import numpy as np
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics.fid import frechet_distance
from ganforge.metrics.stats import RunningMoments


def class_match_accuracy(class_logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of rows whose arg-max class equals the requested label."""
    if class_logits.shape[0] != labels.shape[0]:
        raise GanforgeError(f"{class_logits.shape[0]} samples but {labels.shape[0]} labels",
                            "pass one label per sample")
    return float((class_logits.argmax(dim=1).cpu() == labels.cpu()).float().mean())


def intra_class_fid(real_features: torch.Tensor, real_labels: torch.Tensor,
                    fake_features: torch.Tensor, fake_labels: torch.Tensor,
                    num_classes: int) -> dict[int, float]:
    """FID_k for every class k present on both sides (float64 moments)."""
    out = {}
    for k in range(num_classes):
        real_k, fake_k = real_features[real_labels == k], fake_features[fake_labels == k]
        if len(real_k) < 2 or len(fake_k) < 2:
            continue
        a, b = RunningMoments(), RunningMoments()
        a.update(real_k)
        b.update(fake_k)
        out[k] = frechet_distance(a.mean, a.cov, b.mean, b.cov)
    if not out:
        raise GanforgeError("no class has at least 2 real and 2 generated samples",
                            "generate more samples per class")
    return out


def mean_intra_class_fid(per_class: dict[int, float]) -> float:
    return float(np.mean(list(per_class.values())))
