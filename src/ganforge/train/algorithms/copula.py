"""The Gaussian copula baseline as a run (``algorithm: copula``, ``model: copula``): fitted once on
the train split when the run is built (:class:`ganforge.models.copula.GaussianCopula`: every
column through its empirical CDF to a normal score, their correlation), no training steps, and
then sampled, conditioned (by redrawing) and evaluated like a CTGAN or TVAE run, so that
``ganforge evaluate`` compares the three on one footing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from ganforge.config import ExperimentConfig
from ganforge.data.base import AnyDataset
from ganforge.errors import GanforgeError
from ganforge.models.base import MODELS
from ganforge.models.copula import CopulaModel
from ganforge.train.algorithms.base import OptimizerSpec, Phase, register_algorithm
from ganforge.train.algorithms.tabular import TableAlgorithm, TableOptions


@register_algorithm("copula")
class Copula(TableAlgorithm):
    """The Gaussian copula (see the module docstring): no optimiser, no phase."""

    name = "copula"
    Options = TableOptions
    generator_name = "copula"
    ema_networks: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: ExperimentConfig, dataset: AnyDataset | None, *,
                 sample_shape: tuple[int, ...], num_classes: int | None, device: torch.device,
                 restoring: bool = False) -> None:
        super().__init__(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes,
                         device=device, restoring=restoring)
        self.model = MODELS.build(cfg.model, self.sample_shape, None)
        if not isinstance(self.model, CopulaModel):
            raise GanforgeError(f"model {cfg.model.get('name')!r} is not the Gaussian copula",
                                "use model.name=copula with algorithm copula")
        if dataset is not None and not restoring:
            self.model.fit(dataset.train_frame, dataset.schema.types)
        self.networks = {"copula": self.model}

    def optimizers(self) -> dict[str, OptimizerSpec]:
        return {}

    def phases(self) -> list[Phase]:
        return []

    def draw_rows(self, n: int, generator: torch.Generator | None, wanted: Mapping[str, int],
                  network: nn.Module) -> Any:
        """``n`` rows of the fitted copula, its seed drawn from ``generator``."""
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
        return network.copula.sample(n, seed)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "copula": self.model.copula.state_dict()}

    def load_sampling_state(self, state: dict[str, Any]) -> None:
        super().load_sampling_state(state)
        self.model.load(state["copula"])
