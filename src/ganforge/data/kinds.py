"""Kinds of data, as plug-ins: what a dataset holds decides how its rows become a batch, how
samples are written (``ganforge sample -o FILE.EXT``), which metrics score it by default and what
a preview figure shows.

A kind is one :class:`DataKind`, registered by name with :func:`register_kind`::

    name      image | points-2d | paired | unpaired | captioned (and what a new module adds)
    shape     which sample shapes are this kind by shape alone (image: (C, H, W)); None for a
              kind only a declaration names (a dataset's ``data_kind``, an algorithm's)
    collate   (named tensors, row index) -> batch: what the Trainer's loader draws
    writers   {".png": Writer, ".npz": Writer}: :class:`Samples` to a file, by extension
    metrics   the metric names (metric registry) that score it by default
    preview   the figure of a :class:`Samples` (training snapshots); default: the .png writer
    suggested the extension ``ganforge train`` suggests writing samples to (default ``.png``)

A dataset declares its kind (``Declared.kind``: its class's ``data_kind``, else the kind of its
sample shape); an algorithm declares the kind of the samples it draws (``Algorithm.data_kind``,
the same fallback), which a loaded run, with no data, writes with. Adding a kind (a table, a
graph, a sequence) is one module that calls :func:`register_kind`, imported by
:mod:`ganforge.data`; the CLI asks the run's kind for the writer and needs no change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from ganforge.data.writers import Samples, write_grid, write_npz, write_panels, write_scatter
from ganforge.errors import GanforgeError

#: a batch is a dict of named tensors, one per field the dataset declares (``x``, ``y``...)
Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Writer:
    """Writes :class:`Samples` to a path (atomically; returns the path). ``grouped``: a figure
    that shows one row per class, so a conditional run draws its samples class by class."""

    write: Callable[[Samples, Path], Path]
    grouped: bool = False


def collate_rows(tensors: Mapping[str, torch.Tensor], index: torch.Tensor) -> Batch:
    """Rows ``index`` of every named tensor: the batch of fixed-shape samples."""
    return {name: tensor[index] for name, tensor in tensors.items()}


@dataclass(frozen=True)
class DataKind:
    """One kind of data; see the module docstring."""

    name: str
    writers: Mapping[str, Writer]
    shape: Callable[[tuple[int, ...]], bool] | None = None
    collate: Callable[[Mapping[str, torch.Tensor], torch.Tensor], Batch] = collate_rows
    metrics: tuple[str, ...] = ()
    preview_writer: Writer | None = None
    description: str = ""
    suggested: str = ".png"

    def writer(self, path: str | Path) -> Writer:
        """The writer of ``path``'s extension; a one-line error naming the ones this kind has."""
        suffix = Path(path).suffix
        if suffix not in self.writers:
            choices = " or ".join(self.writers)
            raise GanforgeError(f"a run of {self.name} data writes {choices} files, not {path}",
                                f"e.g. -o samples{next(iter(self.writers))}")
        return self.writers[suffix]

    def preview(self, samples: Samples, path: str | Path) -> Path:
        """The kind's figure of ``samples`` at ``path`` (training snapshots)."""
        writer = self.preview_writer or self.writers.get(".png")
        if writer is None:
            raise GanforgeError(f"data kind {self.name!r} has no preview figure",
                                "give it a preview_writer or a .png writer")
        return writer.write(samples, Path(path))


KINDS: dict[str, DataKind] = {}


def register_kind(kind: DataKind) -> DataKind:
    """Add ``kind`` to :data:`KINDS` under its name (a name registered twice is a bug)."""
    if kind.name in KINDS:
        raise RuntimeError(f"data kind {kind.name!r} registered twice")
    KINDS[kind.name] = kind
    return kind


def get_kind(name: str) -> DataKind:
    if name not in KINDS:
        raise GanforgeError(f"unknown data kind {name!r}", f"choose one of: {', '.join(KINDS)}")
    return KINDS[name]


def kind_name_of_shape(sample_shape: tuple[int, ...]) -> str | None:
    """The name of the first registered kind that claims ``sample_shape``, or None."""
    shape = tuple(sample_shape)
    return next((k.name for k in KINDS.values() if k.shape is not None and k.shape(shape)), None)


def kind_of_shape(sample_shape: tuple[int, ...]) -> DataKind:
    """The kind of samples of ``sample_shape``; a one-line error when no kind claims it."""
    name = kind_name_of_shape(sample_shape)
    if name is None:
        raise GanforgeError(f"no data kind holds samples of shape {tuple(sample_shape)}",
                            "register a data kind for them (see ganforge.data.kinds)")
    return KINDS[name]


def collate_for(kind_name: str | None) -> Callable[[Mapping[str, torch.Tensor], torch.Tensor], Batch]:
    """The collation of the kind named ``kind_name`` (rows of fixed-shape tensors without one)."""
    return KINDS[kind_name].collate if kind_name in KINDS else collate_rows


def writable_suffixes() -> list[str]:
    """Every extension some registered kind writes, sorted."""
    return sorted({suffix for kind in KINDS.values() for suffix in kind.writers})


# ---------------------------------------------------------------------- the built-in kinds
IMAGE_METRICS = ("fid", "kid", "is", "prdc", "modes", "class")
NPZ = Writer(write_npz)
GRID = Writer(write_grid, grouped=True)
PANELS = Writer(write_panels)

register_kind(DataKind(
    "image", {".npz": NPZ, ".png": GRID}, shape=lambda shape: len(shape) == 3,
    metrics=IMAGE_METRICS, description="images (C, H, W) in [-1, 1]"))
register_kind(DataKind(
    "points-2d", {".npz": NPZ, ".png": Writer(write_scatter)}, shape=lambda shape: shape == (2,),
    metrics=("fid", "kid", "prdc", "modes", "class"), description="points in the plane (2,)"))
register_kind(DataKind(
    "paired", {".npz": NPZ, ".png": PANELS}, metrics=("l1", "psnr", "ssim"),
    description="target images x with input images cond, pair by pair"))
register_kind(DataKind(
    "unpaired", {".npz": NPZ, ".png": PANELS}, metrics=("l1", "psnr", "ssim"),
    description="images of two domains, x and cond, without pairing"))
register_kind(DataKind(
    "captioned", {".npz": NPZ, ".png": GRID}, metrics=IMAGE_METRICS,
    description="images with caption embeddings text"))
