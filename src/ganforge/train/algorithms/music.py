"""Music: piano-roll phrases of the ``pianoroll`` data kind (:mod:`ganforge.data.pianoroll`).

``pianoroll-gan``: the GAN algorithm (every loss and stabiliser of :mod:`.gan`) on phrases, for the
``musegan`` and ``crnngan`` models; the presets train MuseGAN with WGAN-GP (Gulrajani et al. 2017)
and n_critic 5, as Dong et al. (2018) did::

    L_D = E[D(G(z))] - E[D(x)] + 10 E[(||grad D(x-hat)||_2 - 1)^2]      (5 D steps a G step)
    L_G = -E[D(G(z))]

``pianoroll-lm`` (``model: {name: roll-lstm}``): the maximum-likelihood baseline, an LSTM language
model over frames trained by teacher forcing on

    L = - mean_{t, k} log p(s_t,k | s_<t, s_t,<k)

(s_t,k the state of voice k at step t: rest, onset or hold of a pitch;
:class:`~ganforge.models.music.RollLanguageModel`). Samples are drawn step by step.

Both keep the data's time and pitch grid (:class:`ComposesMusic`): in their checkpoint state, so a
loaded run writes MIDI and is scored without its data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ganforge.config import ExperimentConfig
from ganforge.data.base import AnyDataset
from ganforge.data.kinds import Samples
from ganforge.data.music import PianoRollDataset, grid_array, grid_from_array
from ganforge.data.pianoroll import RollGrid
from ganforge.errors import GanforgeError
from ganforge.models.base import MODELS, evaluating
from ganforge.models.music import RollLanguageModel
from ganforge.train.algorithms.base import (
    Algorithm,
    ComposesMusic,
    OptimizerSpec,
    Phase,
    register_algorithm,
)
from ganforge.train.algorithms.gan import GAN

ADAM_LM = {"name": "adam", "lr": 1e-3, "betas": (0.9, 0.999)}


def _phrases(name: str, dataset: AnyDataset | None, sample_shape: tuple[int, ...]) -> None:
    """A one-line error unless the data are piano-roll phrases (tracks, steps, pitches)."""
    kind = None if dataset is None else dataset.kind
    if len(sample_shape) != 3 or kind not in (None, "pianoroll"):
        raise GanforgeError(
            f"algorithm {name!r} trains on piano-roll phrases (tracks, steps, pitches), and the data hold "
            f"{kind or 'samples'} of shape {tuple(sample_shape)}",
            "use a music dataset (data.name=bach-chorales or music-folder)",
        )


class PhraseGrid(ComposesMusic):
    """The grid and track names of a music run: the dataset's, else (a loaded run, before its
    state) the config's data section, then the checkpoint's."""

    grid: RollGrid
    track_names: tuple[str, ...]

    def init_grid(
        self, cfg: ExperimentConfig, dataset: AnyDataset | None, sample_shape: tuple[int, ...]
    ) -> None:
        tracks, steps, pitches = sample_shape
        if isinstance(dataset, PianoRollDataset):
            self.grid, self.track_names = dataset.grid, dataset.track_names
            return
        spq, bars = int(cfg.data.get("steps_per_quarter", 4)), int(cfg.data.get("bars", 4))
        self.grid = RollGrid(
            bars=bars, beats_per_bar=max(1, steps // bars // spq), steps_per_quarter=spq, pitches=pitches
        )  # until the checkpoint's grid is loaded
        self.track_names = tuple(f"track {k + 1}" for k in range(tracks))

    def grid_state(self) -> dict[str, Any]:
        return {"grid": torch.from_numpy(grid_array(self.grid)), "track_names": list(self.track_names)}

    def load_grid_state(self, state: dict[str, Any]) -> None:
        if "grid" in state:
            self.grid, self.track_names = grid_from_array(state["grid"]), tuple(state["track_names"])

    def sample_arrays(self) -> dict[str, Any]:
        return {"grid": grid_array(self.grid), "track_names": np.array(self.track_names)}

    def phrase_figure(self, path: Path, generator: nn.Module, z: torch.Tensor | None, step: int) -> Path:
        """The kind's preview of a few phrases: of codes ``z``, or drawn (seed 0) when None."""
        with evaluating(generator), torch.no_grad():
            x = (
                generator(z) if z is not None else generator.sample(4, torch.Generator().manual_seed(0))
            ).cpu()  # type: ignore[operator]
        return self.kind.preview(Samples(x, self.sample_arrays(), title=f"step {step}"), path)  # type: ignore[attr-defined]


@register_algorithm("pianoroll-gan")
class PianoRollGAN(PhraseGrid, GAN):
    """The GAN on piano-roll phrases (MuseGAN, C-RNN-GAN); see the module docstring."""

    name = "pianoroll-gan"
    data_kind = "pianoroll"

    def __init__(self, cfg: ExperimentConfig, dataset: AnyDataset | None, *, sample_shape: tuple[int, ...],
                 num_classes: int | None, device: torch.device, restoring: bool = False) -> None:
        _phrases(self.name, dataset, sample_shape)
        super().__init__(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes, device=device,
                         restoring=restoring)
        self.init_grid(cfg, dataset, self.sample_shape)

    def snapshot(self, path: Path, generator: nn.Module, step: int) -> Path:
        return self.phrase_figure(path, generator, self.fixed_z[:4], step)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), **self.grid_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.load_grid_state(state)

    def load_sampling_state(self, state: dict[str, Any]) -> None:
        super().load_sampling_state(state)
        self.load_grid_state(state)


@register_algorithm("pianoroll-lm")
class PianoRollLM(PhraseGrid, Algorithm):
    """Maximum likelihood on phrases with an LSTM over frames; see the module docstring."""

    name = "pianoroll-lm"
    data_kind = "pianoroll"
    generator_name = "G"
    ema_networks = ("G",)
    columns = ("nll", "accuracy")

    def __init__(self, cfg: ExperimentConfig, dataset: AnyDataset | None, *, sample_shape: tuple[int, ...],
                 num_classes: int | None, device: torch.device, restoring: bool = False) -> None:
        super().__init__(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes, device=device)
        _phrases(self.name, dataset, self.sample_shape)
        built = MODELS.build(cfg.model, self.sample_shape, num_classes)
        if len(built) != 1 or not isinstance(built[0], RollLanguageModel):
            raise GanforgeError(
                f"model {cfg.model['name']!r} is not a language model over piano rolls",
                "use model.name=roll-lstm with algorithm pianoroll-lm",
            )
        self.G = built[0].to(device)
        self.networks = {"G": self.G}
        self.init_grid(cfg, dataset, self.sample_shape)

    def optimizers(self) -> dict[str, OptimizerSpec]:
        return {"G": OptimizerSpec(self.G, dict(ADAM_LM))}

    def phases(self) -> list[Phase]:
        return [Phase("G", ("G",), loss=self.nll)]

    def nll(self, batch: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        loss, accuracy = self.G.nll(batch["x"].to(self.device))
        return loss, {"nll": loss.item(), "accuracy": accuracy.item()}

    def progress_text(self, row: Any) -> str:
        return f"nll {row['nll']:.3f}  accuracy {row['accuracy']:.3f}"

    def snapshot(self, path: Path, generator: nn.Module, step: int) -> Path:
        return self.phrase_figure(path, generator, None, step)

    def state_dict(self) -> dict[str, Any]:
        return self.grid_state()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_grid_state(state)
