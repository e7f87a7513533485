"""Imbalanced training sets: chosen classes cut to a fraction of their images, with a fixed seed.

:func:`make_imbalanced` is the pure operation on tensors; :func:`imbalanced` is the registered
``imbalanced`` dataset that wraps any labelled in-memory dataset, so a preset can train a GAN on
the imbalanced data from the command line::

    data:
      name: imbalanced
      base: {name: fashion-mnist, root: /data/fashion-mnist, split: train}
      rare_classes: [6]
      fraction: 0.01
      seed: 0

Contract: the kept images of a rare class are a seeded random subset (``torch.randperm`` with
``seed``) of ``max(min_count, round(fraction * n_k))`` of its ``n_k`` images; every other class
is kept whole (or cut to ``per_class`` images first, the same way, when ``per_class`` is set);
the order of the kept images is their original order, so the result is a deterministic function
of (data, arguments). The wrapper keeps the base dataset's declarations (classes, extractor,
modes) and its name, so evaluation and extractors treat it like the base data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ganforge.data.base import ArrayDataset, build_dataset, register_dataset
from ganforge.errors import GanforgeError


def _check_fraction(fraction: float) -> None:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise GanforgeError(f"fraction must be in (0, 1], got {fraction!r}",
                            "set e.g. data.fraction=0.01 (keep 1% of each rare class)")


def _check_classes(rare_classes: Sequence[int], num_classes: int) -> list[int]:
    if isinstance(rare_classes, (str, bytes)) or not isinstance(rare_classes, Sequence):
        raise GanforgeError(f"rare_classes must be a list of class indices, got {rare_classes!r}",
                            "set e.g. data.rare_classes=[6]")
    out = []
    for k in rare_classes:
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < num_classes:
            raise GanforgeError(f"rare class {k!r} is not a class index of this {num_classes}-class "
                                "dataset", f"choose classes from 0 to {num_classes - 1}")
        out.append(k)
    if not out or len(set(out)) != len(out):
        raise GanforgeError("rare_classes must be a non-empty list without repeats, "
                            f"got {list(rare_classes)}", "set e.g. data.rare_classes=[6]")
    return out


def class_counts(y: torch.Tensor, num_classes: int) -> list[int]:
    """Images per class, classes 0..num_classes-1."""
    return torch.bincount(y.long(), minlength=num_classes)[:num_classes].tolist()


def imbalanced_indices(y: torch.Tensor, rare_classes: Sequence[int], fraction: float, *,
                       seed: int = 0, per_class: int | None = None, min_count: int = 1,
                       num_classes: int | None = None) -> torch.Tensor:
    """Indices (sorted, int64) of the images to keep; see the module docstring for the contract.

    ``per_class``: first cut every class to at most this many images (a smaller balanced base,
    for budgets); the rare classes then keep ``fraction`` of *that*, so the imbalance ratio is
    exactly ``fraction``. ``min_count`` (>= 1) keeps at least that many images of a rare class.
    """
    _check_fraction(fraction)
    num_classes = int(y.max()) + 1 if num_classes is None else num_classes
    rare = set(_check_classes(rare_classes, num_classes))
    if per_class is not None and (isinstance(per_class, bool) or not isinstance(per_class, int)
                                  or per_class < 1):
        raise GanforgeError(f"per_class must be a positive int or null, got {per_class!r}",
                            "set e.g. data.per_class=1000, or drop it to keep every image")
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise GanforgeError(f"min_count must be an int >= 1, got {min_count!r}", "set data.min_count=1")
    g = torch.Generator().manual_seed(seed)
    keep = []
    for k in range(num_classes):
        idx = torch.nonzero(y == k).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]  # one permutation per class, in class order
        if per_class is not None:
            idx = idx[:per_class]
        if k in rare:
            if len(idx) == 0:
                raise GanforgeError(f"rare class {k} has no images to keep", "choose another class")
            idx = idx[:min(len(idx), max(min_count, round(fraction * len(idx))))]
        keep.append(idx)
    return torch.sort(torch.cat(keep)).values


def make_imbalanced(x: torch.Tensor, y: torch.Tensor, rare_classes: Sequence[int], fraction: float,
                    **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` with the rare classes cut to ``fraction``; keyword arguments as
    :func:`imbalanced_indices`."""
    keep = imbalanced_indices(y, rare_classes, fraction, **kwargs)
    return x[keep], y[keep]


@register_dataset("imbalanced")
def imbalanced(base: Mapping[str, Any], rare_classes: list[int], fraction: float, seed: int = 0,
               per_class: int | None = None, min_count: int = 1) -> ArrayDataset:
    """The labelled dataset ``base`` (a ``data`` section, e.g. ``{name: fashion-mnist}``) with
    ``rare_classes`` cut to ``fraction`` of their images (see :func:`imbalanced_indices`)."""
    if not isinstance(base, Mapping) or "name" not in base:
        raise GanforgeError(f"data.base must be a dataset section with a name, got {base!r}",
                            "set e.g. data.base={name: fashion-mnist}")
    if base["name"] == "imbalanced":
        raise GanforgeError("data.base is itself an imbalanced dataset",
                            "name the original dataset in data.base and list every rare class once")
    ds = build_dataset(base)
    if not isinstance(ds, ArrayDataset) or ds.y is None or ds.num_classes is None:
        raise GanforgeError(f"data.base {base['name']!r} is not a labelled in-memory dataset",
                            "use a dataset with class labels (mnist, fashion-mnist, digits, folder...)")
    keep = imbalanced_indices(ds.y, rare_classes, fraction, seed=seed, per_class=per_class,
                              min_count=min_count, num_classes=ds.num_classes)
    return ArrayDataset(ds.x[keep], ds.y[keep], name=ds.name, num_classes=ds.num_classes,
                        extractor=ds.extractor, modes=ds.modes, classes=ds.classes)
