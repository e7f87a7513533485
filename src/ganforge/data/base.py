"""Dataset contracts and the dataset registry.

Two kinds of dataset, both yielding float32 samples scaled to [-1, 1] (images as C x H x W,
2D points as a length-2 vector) and int64 labels where the data has them:

* :class:`ArrayDataset` — finite, held in memory (digits, MNIST family, image folders).
* :class:`StreamDataset` — infinite, sampled on the fly from a seeded ``torch.Generator`` (toy2d).

Configs name a dataset by its registry name: ``data: {name: mnist, root: ..., size: 28}``.

Every dataset declares what it offers, so that algorithms, evaluation and feature extractors ask
the dataset instead of matching its name:

* ``fields``: the named tensors of its batches (``x``, and ``y`` when it has labels);
* ``kind``: its data kind (:mod:`ganforge.data.kinds`): the class's ``data_kind`` (``paired``,
  ``captioned``...), else the kind of ``sample_shape`` (``image`` (C, H, W), ``points-2d``);
* ``num_classes`` / ``classes``: the label set, when there is one;
* ``extractor``: the in-project feature extractor that fits it (``lenet_mnist``, ``raw``...), or
  None (InceptionV3 then);
* ``modes``: ``mixture`` for a Gaussian mixture with known ``centers`` and ``std``, ``stacked``
  for Stacked MNIST (1,000 digit triples), or None: which mode-count metric applies.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch.utils.data import Dataset

from ganforge.data.kinds import kind_name_of_shape
from ganforge.registry import Registry

DATASETS: Registry = Registry("dataset", section="data")
register_dataset = DATASETS.register


def default_extractor(sample_shape: tuple[int, ...]) -> str | None:
    """Flat vectors (points) are compared in their own coordinates (``raw``); images need a
    feature network, None leaves the choice to the evaluator (InceptionV3)."""
    return "raw" if len(tuple(sample_shape)) == 1 else None


class Declared:
    """What every dataset declares (see the module docstring); ``fields`` comes from the class."""

    #: the class's data kind (:mod:`ganforge.data.kinds`); None: the kind of its sample shape
    data_kind: ClassVar[str | None] = None
    name: str
    num_classes: int | None
    sample_shape: tuple[int, ...]
    extractor: str | None
    modes: str | None
    fields: tuple[str, ...]

    @property
    def kind(self) -> str | None:
        """The name of its data kind (None: no registered kind holds its sample shape)."""
        return self.data_kind or kind_name_of_shape(self.sample_shape)

    def capabilities(self) -> dict[str, object]:
        return {"fields": self.fields, "kind": self.kind, "num_classes": self.num_classes,
                "extractor": self.extractor, "modes": self.modes}


class ArrayDataset(Declared, Dataset):
    """A finite in-memory dataset.

    ``x``: float32 tensor (N, C, H, W) or (N, 2) with values in [-1, 1].
    ``y``: int64 tensor (N,) of class labels, or ``None``.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None = None, *, name: str = "",
                 num_classes: int | None = None, extractor: str | None = None,
                 modes: str | None = None, classes: tuple[str, ...] | None = None) -> None:
        if y is not None and len(y) != len(x):
            raise ValueError(f"{len(x)} samples but {len(y)} labels")
        self.x = x.float().contiguous()
        self.y = None if y is None else y.long().contiguous()
        self.name = name
        if num_classes is None and self.y is not None and len(self.y):
            num_classes = int(self.y.max()) + 1
        self.num_classes = num_classes
        self.classes = classes
        self.extractor = extractor if extractor is not None else default_extractor(self.sample_shape)
        self.modes = modes

    @property
    def fields(self) -> tuple[str, ...]:
        return ("x",) if self.y is None else ("x", "y")

    def tensors(self) -> dict[str, torch.Tensor]:
        """The named tensors of the whole dataset, one entry per field."""
        return {"x": self.x} if self.y is None else {"x": self.x, "y": self.y}

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.x[i], (-1 if self.y is None else int(self.y[i]))

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])


class StreamDataset(Declared, ABC):
    """An infinite dataset sampled from a seeded generator; nothing is stored."""

    name: str = ""
    num_classes: int | None = None
    classes: tuple[str, ...] | None = None
    sample_shape: tuple[int, ...] = (2,)
    extractor: str | None = "raw"
    modes: str | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        return ("x",) if self.num_classes is None else ("x", "y")

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Draw ``n`` samples (float32, shape (n, *sample_shape)) and labels (int64 (n,) or
        None)."""

    def materialise(self, n: int, seed: int = 0) -> ArrayDataset:
        """A fixed finite draw, e.g. for evaluation."""
        x, y = self.sample(n, torch.Generator().manual_seed(seed))
        out = ArrayDataset(x, y, name=self.name, num_classes=self.num_classes,
                           extractor=self.extractor, modes=self.modes, classes=self.classes)
        for attr in ("centers", "std"):  # what the mode metrics of a mixture read
            if hasattr(self, attr):
                setattr(out, attr, getattr(self, attr))
        return out


AnyDataset = ArrayDataset | StreamDataset


def datasets_of_kind(kind: str) -> list[str]:
    """The registered datasets whose builders declare, by their return type, a dataset class of
    data kind ``kind`` (its ``data_kind``, else the kind of its class-level ``sample_shape``);
    datasets whose kind is known only once built (an image folder) are not listed."""
    import typing

    names = []
    for name in DATASETS.names():
        try:
            returned = typing.get_type_hints(DATASETS.get(name)).get("return")
        except Exception:  # noqa: BLE001  an unresolvable annotation: its kind is not declared
            continue
        if not (isinstance(returned, type) and issubclass(returned, Declared)):
            continue
        declared, shape = returned.data_kind, returned.sample_shape  # a property on array datasets
        if declared == kind or (declared is None and isinstance(shape, tuple)
                                and kind_name_of_shape(shape) == kind):
            names.append(name)
    return names


def build_dataset(section: Mapping[str, Any]) -> AnyDataset:
    """Build the dataset a config's ``data`` section names (validated against the builder)."""
    import ganforge.data  # noqa: F401  (registers the built-in datasets)

    return DATASETS.build(section)
