"""Self-conditioned GAN (Liu et al., 2020): a class-conditional GAN trained on labels that come
from clustering the discriminator's features, with no annotation.

    h(x)  = D's features (the layer before its head)
    c(x)  = argmin_k ||h(x) - mu_k||^2,  mu_1..mu_K the k-means centroids of {h(x_i)} over the data
    pi_k  = #{i : c(x_i) = k} / N                                    (the clusters' sizes)
    D     judges (x, c(x)) real against (G(z, c), c);  G(z, c) with c ~ pi, z ~ p_z

Why it removes mode collapse: one connected latent space has to be stretched across the gaps
between separated modes, and what G leaves in the gaps are the low-quality samples; a generator
conditioned on a partition of the data only has to cover one cluster per label, and drawing the
label from the clusters' sizes gives each mode its share of the samples by construction. This
holds as long as every cluster lies inside one mode, so K should exceed the number of modes.

The first clustering uses the features of the freshly initialised D (as in the paper). With
``every`` the data are clustered again on D's current features; the new clusters are matched
to the old ones by the Hungarian algorithm on their overlap, so that G's label k keeps its
meaning. k-means is scikit-learn's, seeded from the run's seed and the clustering round.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans

from ganforge.data.base import ArrayDataset
from ganforge.errors import GanforgeError
from ganforge.models.base import Discriminator

#: conditionings whose features h(x) do not see the label (``concat`` feeds y into D's input)
LABEL_FREE_FEATURES = ("projection", "acgan")


def check_conditioning(conditional: str | None, clusters: int) -> None:
    if conditional not in LABEL_FREE_FEATURES:
        raise GanforgeError(
            f"algorithm.stabilisers.self_condition={clusters} clusters D's features, which need a "
            f"conditional model whose features do not see the label (model.conditional is "
            f"{conditional!r})",
            "set model.conditional=projection (or acgan)")


def match_labels(old: np.ndarray, new: np.ndarray, k: int) -> np.ndarray:
    """Relabel ``new`` so that cluster j takes the old label it overlaps most, jointly over all
    clusters (a maximum-weight matching of the K x K overlap counts)."""
    overlap = np.zeros((k, k), dtype=np.int64)
    np.add.at(overlap, (old, new), 1)
    old_of, new_of = linear_sum_assignment(overlap, maximize=True)
    relabel = np.empty(k, dtype=np.int64)
    relabel[new_of] = old_of
    return relabel[new]


def proportional_labels(prior: torch.Tensor, n: int) -> torch.Tensor:
    """n labels whose counts follow ``prior`` as closely as n allows, deterministically: label
    i is the prior's quantile at (i + 1/2) / n (the analogue of cycling 0..K-1 for a uniform prior)."""
    cdf = prior.double().cumsum(0)
    cdf = cdf / cdf[-1]
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    return torch.searchsorted(cdf, u).clamp_max(len(prior) - 1)


class SelfConditioning:
    """Holds the training data relabelled by cluster (``data``, an :class:`ArrayDataset` whose
    ``y`` is updated in place) and the label prior ``pi`` (``prior``)."""

    def __init__(self, data: ArrayDataset, clusters: int, *, every: int | None, seed: int,
                 device: torch.device) -> None:
        if clusters > len(data):
            raise GanforgeError(f"algorithm.stabilisers.self_condition={clusters} clusters for only "
                                f"{len(data)} training samples", "use fewer clusters or more data "
                                "(algorithm.stabilisers.self_condition_pool for a sampled dataset)")
        self.data = ArrayDataset(data.x, torch.zeros(len(data), dtype=torch.long), name=data.name,
                                 num_classes=clusters)
        self.clusters = clusters
        self.every = every
        self.seed = seed
        self.device = device
        self.rounds = 0
        self.prior = torch.full((clusters,), 1.0 / clusters)

    def due(self, step: int) -> bool:
        """Whether to cluster again before the update at ``step``."""
        return self.every is not None and step > 0 and step % self.every == 0

    @torch.no_grad()
    def features(self, D: Discriminator, batch_size: int = 1024) -> np.ndarray:
        """h(x) for every training sample (D in eval mode; the label fed is irrelevant)."""
        was_training = D.training
        D.eval()
        out = []
        for x in self.data.x.split(batch_size):
            y = torch.zeros(len(x), dtype=torch.long, device=self.device)
            out.append(D.evaluate(x.to(self.device), y).features.flatten(1).double().cpu())
        D.train(was_training)
        return torch.cat(out).numpy()

    def cluster(self, D: Discriminator) -> None:
        """k-means on D's features; relabels ``data`` and updates ``prior``."""
        h = self.features(D)
        if not np.isfinite(h).all():
            raise GanforgeError("the discriminator's features are not finite, so they cannot be "
                                "clustered (training diverged)", "lower the learning rates")
        kmeans = KMeans(self.clusters, n_init=1, random_state=self.seed + self.rounds)
        labels = kmeans.fit_predict(h).astype(np.int64)
        if self.rounds:
            labels = match_labels(self.data.y.numpy(), labels, self.clusters)
        self.data.y.copy_(torch.from_numpy(labels))
        counts = torch.bincount(self.data.y, minlength=self.clusters).double()
        self.prior = (counts / counts.sum()).float()
        self.rounds += 1

    def state_dict(self) -> dict[str, Any]:
        return {"labels": self.data.y.clone(), "prior": self.prior.clone(), "rounds": self.rounds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["labels"]) != len(self.data):
            raise GanforgeError(f"the checkpoint clustered {len(state['labels'])} samples, this "
                                f"dataset has {len(self.data)}", "resume with the run's own config.yaml")
        self.data.y.copy_(state["labels"])
        self.prior = state["prior"].clone()
        self.rounds = int(state["rounds"])
