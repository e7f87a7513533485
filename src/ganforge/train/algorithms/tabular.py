"""What the table algorithms (``ctgan``, ``tvae``) share: the table's transform in the run, rows
decoded to DataFrames, sampling under conditions, and the marginals snapshot.

The transform (:class:`~ganforge.data.table.TableTransformer`: the schema and every numeric
column's fitted mixture) is fitted on the train split when the data are built; it is saved in the
algorithm's state, so a loaded run decodes its samples with no data. The transform's layout
(span widths and activations) builds the networks; a loaded run reads it back from the state
(:meth:`TableAlgorithm.restored_options`), so the ``layout`` option is never written by hand.

Conditions ``{column: category}`` (``ganforge sample --condition col=value``) are kept by
rejection: rows are drawn ``DRAW_BATCH`` at a time (a conditional family first sets its
conditional vector for them) until ``n`` satisfy every condition, at most ``MAX_DRAWS`` rows in
all; a condition too rare to meet is a one-line error that gives the acceptance rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ganforge.config import ExperimentConfig
from ganforge.data.base import AnyDataset
from ganforge.data.table import DISCRETE, TableDataset, TableSchema, TableTransformer
from ganforge.errors import GanforgeError
from ganforge.train.algorithms.base import Algorithm, TableRows

DRAW_BATCH = 2_000
MAX_DRAWS = 1_000_000


@dataclass
class TableOptions:
    """Options every table algorithm has: ``layout`` of the transform, [[width, activation, role],
    ...], read from the data (or, for a loaded run, from its checkpoint); never set by hand."""

    layout: list | None = None


def layout_of(transformer: TableTransformer) -> list[list]:
    """The transform's spans as [[width, activation, role], ...] (what builds the networks)."""
    return [[s.width, s.activation, s.role] for s in transformer.spans]


class TableAlgorithm(Algorithm, TableRows):
    """Base of the table algorithms: holds the transform, decodes, samples under conditions."""

    data_kind: ClassVar[str | None] = "table"
    options: TableOptions

    def __init__(self, cfg: ExperimentConfig, dataset: AnyDataset | None, *,
                 sample_shape: tuple[int, ...], num_classes: int | None, device: torch.device,
                 restoring: bool = False) -> None:
        if dataset is not None and not isinstance(dataset, TableDataset):
            raise GanforgeError(f"algorithm {self.name!r} trains on tables, and dataset "
                                f"{getattr(dataset, 'name', '')!r} is not one",
                                "set data.name=table and data.path=FILE.csv")
        super().__init__(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes, device=device)
        self.transformer: TableTransformer | None = dataset.transformer if dataset is not None else None
        layout = self.options.layout
        if self.transformer is not None:
            read = layout_of(self.transformer)
            if layout is not None and [list(x) for x in layout] != read:
                raise GanforgeError("algorithm.layout does not match the table's transform",
                                    "drop algorithm.layout (it is read from the data)")
            layout = read
        self.layout = layout
        self.noise = torch.Generator().manual_seed(cfg.seed + 1)

    # ------------------------------------------------------------------ the table
    @property
    def schema(self) -> TableSchema:
        if self.transformer is None:
            raise GanforgeError("this run holds no table transform", "load a trained run")
        return self.transformer.schema

    def decode(self, x: torch.Tensor) -> Any:
        """Transformed rows (N, D) -> the DataFrame of the original columns."""
        return self.transformer.inverse(x)

    def check_conditions(self, conditions: Mapping[str, Any]) -> dict[str, int]:
        """{column: category} -> {column: its category index}; one-line errors for a column the
        table lacks, a numeric column, or a category it never had."""
        out = {}
        for name, value in conditions.items():
            column = self.schema.column(name)
            if column.type not in DISCRETE:
                discrete = [c.name for c in self.schema.columns if c.type in DISCRETE]
                raise GanforgeError(f"--condition {name}={value}: column {name!r} is {column.type}; "
                                    "conditions name a category of a discrete column",
                                    f"condition on one of: {', '.join(discrete) or '(none)'}")
            # the command line gives text: "1" names category 1 of an integer-coded column
            if isinstance(value, str):
                text = value.strip()
                value = next((c for c in column.categories if c is not None and str(c) == text), value)
            out[name] = int(TableTransformer.category_index(column, [value], "this run's table")[0])
        return out

    def condition_vector(self, conditions: Mapping[str, int], n: int) -> torch.Tensor | None:
        """The generator's conditional input for rows drawn under ``conditions`` (None: the
        family has none, or draws its own)."""
        return None

    def sample(self, n: int, generator: torch.Generator | None = None, labels: torch.Tensor | None = None,
               network: nn.Module | None = None, batch_size: int = 1000, psi: float = 1.0) -> torch.Tensor:
        """``n`` transformed rows (CPU), the family's output noise drawn from ``generator``."""
        net = self.generator if network is None else network
        saved = net.noise
        net.noise = generator
        try:
            return net.sample(n, generator, labels, batch_size)
        finally:
            net.noise = saved

    @torch.no_grad()
    def simulate(self, z: torch.Tensor, generator: torch.Generator | None = None,
                 network: nn.Module | None = None, labels: torch.Tensor | None = None) -> Any:
        """The rows (a DataFrame) of codes ``z``: the family's other randomness (conditional
        vectors from the training law, output noise) drawn from ``generator``, decoded to the
        table's columns (the :class:`~ganforge.train.algorithms.base.LatentSimulation` contract
        of the families that declare it)."""
        net = self.generator if network is None else network
        if labels is None:
            labels = self.labels_for(len(z), generator)
        device = next(net.parameters()).device
        saved, was_training = net.noise, net.training
        net.noise = generator
        net.eval()
        try:
            x = net(z.to(device), None if labels is None else labels.to(device)).float().cpu()
        finally:
            net.noise = saved
            net.train(was_training)
        return self.decode(x)

    @torch.no_grad()
    def sample_rows(self, n: int, generator: torch.Generator | None = None,
                    conditions: Mapping[str, Any] | None = None,
                    network: nn.Module | None = None) -> Any:
        import pandas as pd

        wanted = self.check_conditions(conditions or {})
        net = self.generator if network is None else network
        was_training = net.training
        net.eval()
        kept, drawn = [], 0
        try:
            while sum(len(k) for k in kept) < n:
                if drawn >= MAX_DRAWS:
                    have = sum(len(k) for k in kept)
                    raise GanforgeError(
                        f"only {have} of {drawn} drawn rows meet the conditions "
                        f"{', '.join(f'{c}={v}' for c, v in (conditions or {}).items())}",
                        "ask for fewer rows or a more common category")
                m = DRAW_BATCH if wanted else n
                rows = self.draw_rows(m, generator, wanted, net)
                drawn += m
                if wanted:
                    mask = np.ones(len(rows), dtype=bool)
                    for name, index in wanted.items():
                        column = self.schema.column(name)
                        got = TableTransformer.category_index(column, rows[name].tolist())
                        mask &= got == index
                    rows = rows[mask]
                kept.append(rows)
        finally:
            net.train(was_training)
        return pd.concat(kept, ignore_index=True).iloc[:n].reset_index(drop=True)

    def draw_rows(self, n: int, generator: torch.Generator | None, wanted: Mapping[str, int],
                  network: nn.Module) -> Any:
        """``n`` rows as a DataFrame, the family's conditional input set for ``wanted`` (the
        rows are filtered afterwards): decoded samples of the network."""
        labels = self.condition_vector(wanted, n) if wanted else self.labels_for(n, generator)
        return self.decode(self.sample(n, generator, labels, network))

    def snapshot(self, path: Path, generator: nn.Module, step: int) -> Path:
        """Every column's distribution in 1,000 fixed-seed rows, over the training rows'."""
        from ganforge.viz.tabular import plot_marginals

        rows = self.sample_rows(1000, torch.Generator().manual_seed(self.cfg.seed + 2), network=generator)
        real = self.snapshot_reference()
        return plot_marginals(real, rows, self.schema.types, path.with_suffix(".png"),
                              title=f"{self.name}, step {step}: real (grey) vs synthetic")

    def snapshot_reference(self) -> Any:
        """The real rows a snapshot draws under the samples (None: draw none)."""
        return None if self.dataset is None else self.dataset.frame.iloc[:5000]

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"noise": self.noise.get_state(), "table": self.transformer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.noise.set_state(state["noise"])
        self.load_sampling_state(state)

    def load_sampling_state(self, state: dict[str, Any]) -> None:
        self.transformer = TableTransformer.from_state(state["table"])

    @classmethod
    def restored_options(cls, state: dict[str, Any]) -> dict[str, Any]:
        return {"layout": layout_of(TableTransformer.from_state(state["table"]))}
