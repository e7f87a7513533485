"""Reproducible batch sources with a checkpointable position in the data order.

* :class:`ShuffledBatches` walks an in-memory :class:`ArrayDataset` in a fresh random permutation
  each epoch (dropping the last incomplete batch), drawn from its own ``torch.Generator``; the
  dataset's data kind collates the rows (:mod:`ganforge.data.kinds`).
* :class:`StreamBatches` draws from a :class:`StreamDataset`'s own ``torch.Generator``; an epoch
  there is a nominal ``epoch_length`` samples.

``state_dict()`` captures everything needed to continue with exactly the same batches.
"""

from __future__ import annotations

import torch

from ganforge.data.base import AnyDataset, ArrayDataset, StreamDataset
from ganforge.data.kinds import Batch, collate_for
from ganforge.errors import GanforgeError


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


def batches_for(dataset: AnyDataset, batch_size: int, seed: int) -> ShuffledBatches | StreamBatches:
    if isinstance(dataset, StreamDataset):
        return StreamBatches(dataset, batch_size, seed)
    return ShuffledBatches(dataset, batch_size, seed)
