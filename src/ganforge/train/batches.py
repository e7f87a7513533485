"""Reproducible batch sources with a checkpointable position in the data order.

* :class:`ShuffledBatches` walks an in-memory :class:`ArrayDataset` in a fresh random permutation
  each epoch (dropping the last incomplete batch), drawn from its own ``torch.Generator``; the
  dataset's data kind collates the rows (:mod:`ganforge.data.kinds`).
* :class:`StreamBatches` draws from a :class:`StreamDataset`'s own ``torch.Generator``; an epoch
  there is a nominal ``epoch_length`` samples.
* :class:`PoissonBatches` Poisson-samples an :class:`ArrayDataset`'s records (DP-SGD's sampler):
  each record joins a batch independently with probability q = batch_size / N; an epoch is 1/q
  batches (N records in expectation).
* :class:`BalancedBatches` draws rows with replacement, each from a class chosen uniformly and
  then a record of that class: class-balanced real batches for a rare class (BAGAN-GP's D).

Each is a :class:`BatchSource`; ``state_dict()`` captures everything needed to continue with
exactly the same batches.
"""

from __future__ import annotations

from typing import Protocol

import torch

from ganforge.data.base import AnyDataset, ArrayDataset, StreamDataset
from ganforge.data.kinds import Batch, collate_for
from ganforge.errors import GanforgeError


class BatchSource(Protocol):
    """Where a training phase draws its batches (``Phase.batch_source``)."""

    @property
    def epoch(self) -> int:
        """Passes over the data so far (logged as ``epoch``)."""
        ...

    def next(self) -> Batch:
        """The next batch: a dict of named tensors holding ``x``."""
        ...


class ShuffledBatches:
    def __init__(self, dataset: ArrayDataset, batch_size: int, seed: int) -> None:
        if len(dataset) < batch_size:
            raise GanforgeError(
                f"the dataset has {len(dataset)} samples, fewer than train.batch_size={batch_size}",
                "lower train.batch_size or use more data")
        self.dataset = dataset
        self.collate = collate_for(dataset.kind)  # how the dataset's kind makes rows a batch
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self.position = 0
        self.order = torch.randperm(len(dataset), generator=self.generator)

    def next(self) -> Batch:
        if self.position + self.batch_size > len(self.dataset):
            self.epoch += 1
            self.position = 0
            self.order = torch.randperm(len(self.dataset), generator=self.generator)
        index = self.order[self.position:self.position + self.batch_size]
        self.position += self.batch_size
        return self.collate(self.dataset.tensors(), index)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "epoch": self.epoch,
                "position": self.position, "order": self.order.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self.order = state["order"].clone()


class StreamBatches:
    epoch_length = 10_000

    def __init__(self, dataset: StreamDataset, batch_size: int, seed: int) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.drawn = 0

    @property
    def epoch(self) -> int:
        return self.drawn // self.epoch_length

    def next(self) -> Batch:
        self.drawn += self.batch_size
        x, y = self.dataset.sample(self.batch_size, self.generator)
        return {"x": x} if y is None else {"x": x, "y": y}

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "drawn": self.drawn}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.drawn = int(state["drawn"])


class PoissonBatches:
    """Poisson sampling of ``dataset``'s records: each record joins a batch with probability
    q = ``batch_size`` / N, independently, decided by ``generator`` (one uniform draw per record
    and batch, in record order); batches vary in size and may be empty. An epoch is 1/q batches.
    The caller owns ``generator`` (and checkpoints it); ``draws`` counts the batches drawn."""

    def __init__(self, dataset: ArrayDataset, batch_size: int, generator: torch.Generator) -> None:
        if batch_size > len(dataset):
            raise GanforgeError(f"train.batch_size={batch_size} is the expected Poisson batch, and the "
                                f"dataset has only {len(dataset)} records",
                                "lower train.batch_size or use more data")
        self.dataset, self.batch_size, self.generator = dataset, batch_size, generator
        self.rate = batch_size / len(dataset)
        self.draws = 0

    @property
    def epoch(self) -> int:
        return self.draws * self.batch_size // len(self.dataset)

    def next(self) -> Batch:
        chosen = (torch.rand(len(self.dataset), generator=self.generator) < self.rate).nonzero().squeeze(1)
        self.draws += 1
        return {name: tensor[chosen] for name, tensor in self.dataset.tensors().items()}


class BalancedBatches:
    """Class-balanced sampling with replacement from a labelled ``dataset``: each row draws a
    record with probability 1 / (K n_k) for a record of class k (K classes present, n_k records
    each), so every class fills 1/K of a batch in expectation however rare it is. An epoch is N
    rows. The sampler owns its ``torch.Generator`` (seeded by ``seed``; :meth:`state_dict`)."""

    def __init__(self, dataset: ArrayDataset, batch_size: int, seed: int) -> None:
        if dataset.y is None:
            raise GanforgeError("class-balanced batches need labelled data, and this dataset has no labels",
                                "use a labelled dataset, or turn the balanced sampling off")
        counts = torch.bincount(dataset.y.long())
        present = counts > 0
        self.weights = (1.0 / (int(present.sum()) * counts.clamp_min(1).double()))[dataset.y.long()]
        self.dataset, self.batch_size = dataset, batch_size
        self.collate = collate_for(dataset.kind)
        self.generator = torch.Generator().manual_seed(seed)
        self.drawn = 0

    @property
    def epoch(self) -> int:
        return self.drawn // len(self.dataset)

    def next(self) -> Batch:
        index = torch.multinomial(self.weights, self.batch_size, replacement=True, generator=self.generator)
        self.drawn += self.batch_size
        return self.collate(self.dataset.tensors(), index)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "drawn": self.drawn}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.drawn = int(state["drawn"])


def batches_for(dataset: AnyDataset, batch_size: int, seed: int) -> ShuffledBatches | StreamBatches:
    if isinstance(dataset, StreamDataset):
        return StreamBatches(dataset, batch_size, seed)
    return ShuffledBatches(dataset, batch_size, seed)
