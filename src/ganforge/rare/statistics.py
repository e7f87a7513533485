"""Statistics of samples, by data kind: what a rare event thresholds.

A statistic maps a batch of samples (the kind's: image or point tensors, a table's DataFrame) to
one float64 value per sample. Each kind registers its built-in ones by name; an event names them
as ``NAME`` or ``NAME(ARG, ...)`` (:mod:`ganforge.rare.events`)::

    points-2d  x, y                      a coordinate
               distance(CX, CY)          Euclidean distance from the point (CX, CY) (default 0, 0)
    vectors    value(I)                  coordinate I (default 0)
    image      mean                      mean intensity in [0, 1] (pixels and channels)
               region(TOP, LEFT, H, W)   mean intensity in [0, 1] of a pixel box
               class(K[, CLASSIFIER])    a shipped classifier's probability of class K
                                         (digits 8x8; mnist or fashion 28x28)
    table      column(NAME)              a numeric column's value (missing: never in the event)
               equals(NAME, VALUE)       1 where a column equals VALUE, else 0

User statistics are any callable ``samples -> (N,) values`` on the Python API, or
``package.module:function`` naming one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ganforge.errors import GanforgeError

#: samples (the kind's batch) -> one float64 value per sample, shape (N,)
Statistic = Callable[[Any], torch.Tensor]


@dataclass(frozen=True)
class Context:
    """What a statistic's builder may read of the run: its data kind, the shape of one sample
    and, for tables, the schema (:class:`~ganforge.data.table.TableSchema`)."""

    kind: str
    sample_shape: tuple[int, ...]
    schema: Any = None


@dataclass(frozen=True)
class Entry:
    build: Callable[..., Statistic]
    usage: str


class StatisticRegistry:
    """Builders of statistics by (data kind, name); ``build(context, *args)`` gets the event's
    arguments as text."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Entry]] = {}

    def register(self, kind: str, name: str, usage: str) -> Callable[[Callable[..., Statistic]],
                                                                     Callable[..., Statistic]]:
        def decorator(build: Callable[..., Statistic]) -> Callable[..., Statistic]:
            table = self._entries.setdefault(kind, {})
            if name in table:
                raise RuntimeError(f"statistic {name!r} of kind {kind!r} registered twice")
            table[name] = Entry(build, usage)
            return build
        return decorator

    def usages(self, kind: str) -> list[str]:
        return [entry.usage for entry in self._entries.get(kind, {}).values()]

    def build(self, context: Context, name: str, args: list[str]) -> Statistic:
        entry = self._entries.get(context.kind, {}).get(name)
        if entry is None:
            known = ", ".join(self.usages(context.kind)) or "none built in"
            raise GanforgeError(f"statistic {name!r} is unknown for {context.kind} data",
                                f"use one of: {known}; or package.module:function on the Python API")
        try:
            return entry.build(context, *args)
        except TypeError:
            raise GanforgeError(f"statistic {name}({', '.join(args)}) has the wrong number of arguments",
                                f"write it as {entry.usage}") from None


STATISTICS = StatisticRegistry()


def user_statistic(spec: str) -> Statistic:
    """The callable ``package.module:function`` names (a one-line error when it does not load)."""
    module_name, _, function_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise GanforgeError(f"statistic {spec!r}: cannot import module {module_name!r} ({err})",
                            "put the module on PYTHONPATH or fix its name") from None
    fn = getattr(module, function_name, None)
    if not callable(fn):
        raise GanforgeError(f"statistic {spec!r}: module {module_name!r} has no function {function_name!r}",
                            "name a function that maps samples to one value each")
    return fn


def as_values(values: Any, n: int, what: str) -> torch.Tensor:
    """A statistic's output as float64 (N,), checked."""
    out = torch.as_tensor(np.asarray(values, dtype=np.float64) if not isinstance(values, torch.Tensor)
                          else values).double().reshape(-1)
    if out.numel() != n:
        raise GanforgeError(f"statistic {what} returned {out.numel()} values for {n} samples",
                            "return one value per sample")
    return out


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise GanforgeError(f"{what} {text!r} is not a number", "pass a number") from None


def _index(text: str, what: str, size: int) -> int:
    try:
        i = int(text)
    except ValueError:
        raise GanforgeError(f"{what} {text!r} is not an integer", "pass an integer") from None
    if not 0 <= i < size:
        raise GanforgeError(f"{what} {i} is out of range 0..{size - 1}", f"pass 0 to {size - 1}")
    return i


# ----------------------------------------------------------------------------- points and vectors
@STATISTICS.register("points-2d", "x", "x")
def _x(context: Context) -> Statistic:
    return lambda x: x[:, 0].double()


@STATISTICS.register("points-2d", "y", "y")
def _y(context: Context) -> Statistic:
    return lambda x: x[:, 1].double()


@STATISTICS.register("points-2d", "distance", "distance(CX, CY)")
def _distance(context: Context, cx: str = "0", cy: str = "0") -> Statistic:
    centre = torch.tensor([_number(cx, "distance: CX"), _number(cy, "distance: CY")], dtype=torch.float64)
    return lambda x: (x.double() - centre).norm(dim=1)


@STATISTICS.register("vectors", "value", "value(I)")
def _value(context: Context, i: str = "0") -> Statistic:
    index = _index(i, "value: coordinate", context.sample_shape[0])
    return lambda x: x[:, index].double()


# ----------------------------------------------------------------------------- images
def _intensity(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> intensities in [0, 1]."""
    return (x.double() + 1) / 2


@STATISTICS.register("image", "mean", "mean")
def _mean(context: Context) -> Statistic:
    return lambda x: _intensity(x).flatten(1).mean(dim=1)


@STATISTICS.register("image", "region", "region(TOP, LEFT, H, W)")
def _region(context: Context, top: str, left: str, height: str, width: str) -> Statistic:
    _, rows, cols = context.sample_shape
    t, left_ = _index(top, "region: TOP", rows), _index(left, "region: LEFT", cols)
    h = _index(height, "region: H", rows - t + 1)
    w = _index(width, "region: W", cols - left_ + 1)
    if h == 0 or w == 0:
        raise GanforgeError("region: H and W must be at least 1", "pass a box of at least one pixel")
    return lambda x: _intensity(x[:, :, t:t + h, left_:left_ + w]).flatten(1).mean(dim=1)


def _classifier_for(size: int, name: str | None) -> tuple[torch.nn.Module, str]:
    from ganforge.weights import ARCHITECTURES, load_classifier

    fits = [n for n, arch in ARCHITECTURES.items() if arch.native_size == size]
    if name is None:
        if len(fits) != 1:
            raise GanforgeError(
                f"class(K): {len(fits)} shipped classifiers read {size}x{size} images "
                f"({', '.join(fits) or 'none'})",
                f"name one: class(K, {'|'.join(fits)})" if fits
                else "use a run of 8x8 or 28x28 grey images, or a statistic of your own")
        name = fits[0]
    if name not in ARCHITECTURES:
        raise GanforgeError(f"class(K, {name}): no shipped classifier {name!r}",
                            f"choose one of: {', '.join(ARCHITECTURES)}")
    if name not in fits:
        raise GanforgeError(f"class(K, {name}): the {name} classifier reads "
                            f"{ARCHITECTURES[name].native_size}x{ARCHITECTURES[name].native_size} "
                            f"images, this run makes {size}x{size}",
                            f"choose one of: {', '.join(fits) or '(none)'}")
    model, _ = load_classifier(name)
    return model, name


@STATISTICS.register("image", "class", "class(K[, CLASSIFIER])")
def _class(context: Context, k: str, classifier: str | None = None) -> Statistic:
    _, rows, cols = context.sample_shape
    if rows != cols:
        raise GanforgeError(f"class(K) needs square images, this run makes {rows}x{cols}",
                            "use another statistic")
    model, _ = _classifier_for(rows, classifier)
    label = _index(k, "class: K", 10)

    @torch.no_grad()
    def probability(x: torch.Tensor) -> torch.Tensor:
        grey = x.float().mean(dim=1, keepdim=True)  # colour images: the channel mean
        return model(grey).double().softmax(dim=1)[:, label]

    probability.margin_scale = "logit"  # type: ignore[attr-defined]  (events rank it in log-odds)
    return probability


# ----------------------------------------------------------------------------- tables
@STATISTICS.register("table", "column", "column(NAME)")
def _column(context: Context, name: str) -> Statistic:
    from ganforge.data.table import NUMERIC

    column = context.schema.column(name)
    if column.type not in NUMERIC:
        numeric = [c.name for c in context.schema.columns if c.type in NUMERIC]
        raise GanforgeError(f"column({name}): column {name!r} is {column.type}, not numeric",
                            f"use equals({name}, VALUE) for a category, or column() of: "
                            f"{', '.join(map(str, numeric)) or '(none)'}")

    def values(frame: Any) -> torch.Tensor:
        import pandas as pd

        return torch.from_numpy(pd.to_numeric(frame[column.name], errors="coerce").to_numpy(np.float64))

    return values


@STATISTICS.register("table", "equals", "equals(NAME, VALUE)")
def _equals(context: Context, name: str, value: str) -> Statistic:
    column = context.schema.column(name)
    text = value.strip()
    if column.categories is not None and not any(str(c) == text for c in column.categories):
        raise GanforgeError(f"equals({name}, {text}): column {name!r} has no category {text!r}",
                            f"choose one of: {', '.join(str(c) for c in column.categories)}")
    return lambda frame: torch.from_numpy((frame[column.name].astype(str) == text).to_numpy(np.float64))
