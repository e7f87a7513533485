"""Dataset contracts and the dataset registry.

Two kinds of dataset, both yielding float32 samples scaled to [-1, 1] (images as C x H x W,
2D points as a length-2 vector) and int64 labels where the data has them:

* :class:`ArrayDataset` — finite, held in memory (digits, MNIST family, image folders).
* :class:`StreamDataset` — infinite, sampled on the fly from a seeded ``torch.Generator`` (toy2d).

Configs name a dataset by its registry name: ``data: {name: mnist, root: ..., size: 28}``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import Dataset

from ganforge.registry import Registry

DATASETS: Registry = Registry("dataset")
register_dataset = DATASETS.register


class ArrayDataset(Dataset):
    """A finite in-memory dataset.

    ``x``: float32 tensor (N, C, H, W) or (N, 2) with values in [-1, 1].
    ``y``: int64 tensor (N,) of class labels, or ``None``.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None = None, *, name: str = "",
                 num_classes: int | None = None) -> None:
        if y is not None and len(y) != len(x):
            raise ValueError(f"{len(x)} samples but {len(y)} labels")
        self.x = x.float().contiguous()
        self.y = None if y is None else y.long().contiguous()
        self.name = name
        if num_classes is None and self.y is not None and len(self.y):
            num_classes = int(self.y.max()) + 1
        self.num_classes = num_classes

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.x[i], (-1 if self.y is None else int(self.y[i]))

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])


class StreamDataset(ABC):
    """An infinite dataset sampled from a seeded generator; nothing is stored."""

    name: str = ""
    num_classes: int | None = None
    sample_shape: tuple[int, ...] = (2,)

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Draw ``n`` samples (float32, shape (n, *sample_shape)) and labels (int64 (n,) or
        None)."""

    def materialise(self, n: int, seed: int = 0) -> ArrayDataset:
        """A fixed finite draw, e.g. for evaluation."""
        x, y = self.sample(n, torch.Generator().manual_seed(seed))
        return ArrayDataset(x, y, name=self.name, num_classes=self.num_classes)


AnyDataset = ArrayDataset | StreamDataset


def build_dataset(section: Mapping[str, Any]) -> AnyDataset:
    """Build the dataset a config's ``data`` section names (validated against the builder)."""
    import ganforge.data  # noqa: F401  (registers the built-in datasets)

    return DATASETS.build(section)
