"""The contract between the Trainer and a way of training (an *algorithm*).

The Trainer owns the loop, the schedules, EMA, checkpoints, logging and callbacks; an algorithm
owns everything that makes one family train differently (in the spirit of stylegan2-ada's
loss/phase split)::

    Options       a dataclass of the algorithm's options: the keys of the config's ``algorithm``
                  section besides ``name``, type-checked by :func:`parse_options` (``self.options``)
    networks      named nn.Modules built through the model registry, e.g. {"G": ..., "D": ...}
    optimizers    named specs: which parameters each optimiser updates and its defaults
    phases        Phase(name, optimizers, every, repeat, start, stop, uses_data, loss, batch_source)
    phase.loss(batch, step) -> (loss, stats)      one update's objective for one phase

One training step at ``step`` runs, for every phase active at ``step`` in the order declared,
``repeat`` times: draw a batch (a dict of named tensors) from the phase's ``batch_source`` (the
Trainer's loader by default; none when the phase does not ``uses_data``), the phase's ``loss``,
``backward``, a step of the phase's optimisers, ``after_update``. Phase settings come from the
algorithm's defaults, overridden per phase by the config's ``phases`` section: n_disc,
pretraining ranges, lazy regularisation intervals and TTUR are all phase settings. A phase
without a ``loss`` function of its own is scored by ``algorithm.loss(phase.name, batch, step)``.

A new family that trains differently is one subclass registered with
``@register_algorithm("name")``; see DEVELOPERS.md for a worked example. Its options are a nested
dataclass ``Options`` (fields with types and defaults; value checks in ``__post_init__``,
one-line :class:`GanforgeError` s); a subclass that extends another family's options derives
its ``Options`` from theirs. A key no field names is refused here, once, for every algorithm.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ganforge.config import ExperimentConfig, PhaseConfig, from_mapping, legacy_section_unset
from ganforge.data.base import AnyDataset
from ganforge.errors import GanforgeError
from ganforge.registry import Registry
from ganforge.train.batches import Batch, BatchSource

ALGORITHMS: Registry = Registry("algorithm")
register_algorithm = ALGORITHMS.register


#: a phase's objective: (batch or None, step) -> (the scalar to minimise, stats to log)
PhaseLoss = Callable[[Batch | None, int], tuple[torch.Tensor, dict[str, float]]]


@dataclass(frozen=True)
class Phase:
    """One kind of update: ``optimizers`` step on ``loss(batch, step)``, at steps
    ``start <= step < stop`` (``stop`` None: to the end) with ``(step - start) % every == 0``,
    ``repeat`` times in a row; a new batch is drawn for each repeat when ``uses_data``.

    ``loss``: the phase's objective (usually a bound method of the algorithm; None:
    ``algorithm.loss(name, batch, step)``). ``batch_source``: where its batches come from (None:
    the Trainer's loader over the algorithm's ``train_data``); the Trainer draws from it, so the
    run's ``images_seen`` and ``epoch`` count those batches. An algorithm that gives a phase its
    own source owns that source's state (it checkpoints it in its ``state_dict``).
    """

    name: str
    optimizers: tuple[str, ...]
    every: int = 1
    repeat: int = 1
    start: int = 0
    stop: int | None = None
    uses_data: bool = True
    loss: PhaseLoss | None = field(default=None, compare=False)
    batch_source: BatchSource | None = field(default=None, compare=False)

    def active(self, step: int) -> bool:
        if step < self.start or (self.stop is not None and step >= self.stop):
            return False
        return (step - self.start) % self.every == 0

    def configured(self, cfg: PhaseConfig) -> Phase:
        return dataclasses.replace(self, **cfg.overrides())


@dataclass
class OptimizerSpec:
    """Which parameters one optimiser updates, and its default settings (the config's
    ``optim.<name>`` keys override them: ``name`` any ``torch.optim`` class, ``lr``, its other
    keyword arguments, and ``lr_mult``: {submodule prefix: factor} for per-module rates)."""

    module: nn.Module
    defaults: dict[str, Any] = field(default_factory=dict)


@dataclass
class NoOptions:
    """The options of an algorithm that has none."""


class Algorithm:
    """Base class of the training algorithms; see the module docstring.

    Subclasses set ``networks`` (an ordered dict of modules on the experiment's device) in
    ``__init__`` and implement :meth:`optimizers`, :meth:`phases` and :meth:`loss`; their options
    are ``self.options``, an instance of their ``Options`` dataclass. Everything random must come
    from generators the algorithm checkpoints in :meth:`state_dict` (or from the global torch RNG,
    which the Trainer checkpoints).
    """

    #: the dataclass of the options read from the config's ``algorithm`` section (see
    #: :meth:`parse_options`)
    Options: ClassVar[type] = NoOptions

    name: ClassVar[str] = ""
    #: the batch fields the algorithm reads; the dataset must declare them
    required_fields: ClassVar[tuple[str, ...]] = ("x",)
    #: the network that turns latent codes into samples (``sample``, the latent tools)
    generator_name: ClassVar[str] = "G"
    #: networks that get an EMA copy when ``train.ema_decay`` is set
    ema_networks: ClassVar[tuple[str, ...]] = ("G",)
    #: metrics.csv columns the stats of :meth:`loss` fill (after step, epoch, images_seen)
    columns: tuple[str, ...] = ()

    networks: dict[str, nn.Module]
    options: Any

    def __init__(self, cfg: ExperimentConfig, dataset: AnyDataset | None, *,
                 sample_shape: tuple[int, ...], num_classes: int | None,
                 device: torch.device) -> None:
        self.cfg = cfg
        self.options = self.parse_options(cfg.algorithm)
        self.dataset = dataset
        self.sample_shape = tuple(sample_shape)
        self.num_classes = num_classes
        self.device = device
        self.check_dataset(dataset)

    # ------------------------------------------------------------------ options
    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The keys this algorithm reads from the config's ``algorithm`` section (``name`` aside)."""
        return tuple(f.name for f in dataclasses.fields(cls.Options))

    @classmethod
    def parse_options(cls, section: Mapping[str, Any]) -> Any:
        """The ``algorithm`` section (its keys but ``name``) as an instance of :attr:`Options`,
        every value type-checked as the config's own sections are; a key no option names is a
        one-line error that says which algorithms read it. A legacy top-level section that sets
        nothing (``stabilisers`` at its defaults, as every old run's config.yaml held it) is
        ignored by an algorithm that does not read it."""
        accepted = cls.option_names()
        keys = {k: v for k, v in section.items() if k != "name" and not (
            k not in accepted and legacy_section_unset(k, v))}
        unknown = [k for k in keys if k not in accepted]
        if unknown:
            key = unknown[0]
            readers = [name for name in ALGORITHMS.names() if key in ALGORITHMS.get(name).option_names()]
            where = f" (an option of algorithm {', '.join(readers)})" if readers else ""
            raise GanforgeError(f"unknown key 'algorithm.{key}' for algorithm {cls.name!r}{where}",
                                f"drop it{' or change algorithm.name' if readers else ''}; "
                                f"{cls.name}'s keys are: name, {', '.join(accepted) or '(no options)'}")
        return from_mapping(cls.Options, keys, prefix="algorithm.")

    @classmethod
    def labels_are_classes(cls, cfg: ExperimentConfig) -> bool:
        """Whether the generator of a run of ``cfg`` draws the dataset's classes as labels (so
        class metrics compare its samples with the data's classes): by default, a model with
        ``model.conditional``; an algorithm whose labels mean something else overrides this."""
        return cfg.model.get("conditional") is not None

    def check_distributable(self) -> None:
        """A one-line GanforgeError when this run cannot train in several processes (default:
        it can); the Trainer asks before a multi-process run starts."""

    @property
    def loss_name(self) -> str | None:
        """The name of the objective the run trains with, for an algorithm whose ``loss`` is an
        option (None: the algorithm's own fixed loss)."""
        return None

    # ------------------------------------------------------------------ what the Trainer asks
    @classmethod
    def check_dataset(cls, dataset: AnyDataset | None) -> None:
        """One-line error when the dataset lacks a field this algorithm reads."""
        if dataset is None:
            return
        missing = [f for f in cls.required_fields if f not in dataset.fields]
        if missing:
            have = ", ".join(dataset.fields)
            raise GanforgeError(
                f"algorithm {cls.name!r} needs batches with field {missing[0]!r}, and dataset "
                f"{getattr(dataset, 'name', '') or 'given'!r} has only: {have}",
                "choose a dataset with that field (see docs/training.md) or another algorithm")

    @property
    def train_data(self) -> AnyDataset | None:
        """The data the Trainer draws batches from (the dataset, unless the algorithm relabels it)."""
        return self.dataset

    def optimizers(self) -> dict[str, OptimizerSpec]:
        raise TypeError(f"{type(self).__name__} must define optimizers()")

    def phases(self) -> list[Phase]:
        raise TypeError(f"{type(self).__name__} must define phases()")

    def loss(self, phase: str, batch: dict[str, torch.Tensor] | None,
             step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The scalar phase ``phase``'s optimisers minimise, and stats to log (plain floats): by
        default the phase's own ``loss`` function; an algorithm whose phases name none defines
        this instead."""
        own = next((p.loss for p in self.phases() if p.name == phase and p.loss is not None), None)
        if own is None:
            raise TypeError(f"{type(self).__name__} must define loss() or give phase {phase!r} a loss")
        return own(batch, step)

    def phase_loss(self, phase: Phase, batch: Batch | None,
                   step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """What the Trainer calls: ``phase.loss(batch, step)``, or :meth:`loss` for a phase without
        a loss function of its own."""
        if phase.loss is not None:
            return phase.loss(batch, step)
        return self.loss(phase.name, batch, step)

    def begin_step(self, step: int) -> None:
        """Runs before the phases of every step (e.g. re-clustering the data)."""

    def after_update(self, phase: str, step: int) -> None:
        """Runs after every optimiser step of ``phase`` (weight clipping, running averages)."""

    def wrap_optimizers(self, optimizers: dict[str, torch.optim.Optimizer]
                        ) -> dict[str, torch.optim.Optimizer]:
        """The optimisers the Trainer steps, given the ones it built from :meth:`optimizers`
        (e.g. wrapped for differentially private SGD); identity by default. Called again after
        every rebuild (a stage change)."""
        return optimizers

    def stop_reason(self, step: int) -> str | None:
        """Why training must end before ``train.steps`` (e.g. a privacy budget spent), checked
        after every step; None to go on. A run stopped so counts as finished."""
        return None

    def progress_text(self, row: Mapping[str, float]) -> str:
        """The live part of the progress bar, from one logged row."""
        return "  ".join(f"{c} {row[c]:.3f}" for c in self.columns[:4] if c in row)

    # ------------------------------------------------------------------ stages (growth)
    def stage_at(self, step: int) -> int:
        """The stage the run is in at ``step`` (0 for algorithms that never change shape)."""
        return 0

    def enter_stage(self, stage: int) -> tuple[str, ...]:
        """Change the networks for ``stage`` (e.g. grow them); returns the names of the networks
        that changed. The Trainer then builds fresh optimisers, and fresh EMA copies of the changed
        networks; on resume it calls this before loading the checkpoint's weights."""
        return ()

    # ------------------------------------------------------------------ sampling and artefacts
    @property
    def generator(self) -> nn.Module:
        return self.networks[self.generator_name]

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None, network: nn.Module | None = None,
               batch_size: int = 1000, psi: float = 1.0) -> torch.Tensor:
        """``n`` samples (CPU) from ``network`` (default: the generator; pass its EMA copy), codes
        drawn from ``generator``; ``labels`` (n,) for a conditional algorithm; ``psi`` < 1 for the
        truncation trick of a family that has one. The train/eval mode is left to the caller."""
        net = self.generator if network is None else network
        if psi == 1.0:
            return net.sample(n, generator, labels, batch_size)
        return net.sample(n, generator, labels, batch_size, psi=psi)

    def labels_for(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """Conditioning labels for n samples (None for an unconditional algorithm)."""
        return None

    @property
    def conditional(self) -> str | None:
        return None

    def snapshot(self, path: Path, generator: nn.Module, step: int) -> Path:
        """Write a picture of the current samples (fixed inputs) to ``path``."""
        raise TypeError(f"{type(self).__name__} must define snapshot()")

    def train(self, mode: bool = True) -> None:
        for net in self.networks.values():
            net.train(mode)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The algorithm's own state (RNGs, running averages); weights are the Trainer's."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def load_sampling_state(self, state: dict[str, Any]) -> None:
        """What a loaded run needs to sample without its data (default: the whole state)."""
        self.load_state_dict(state)


def option_weight(value: Any, key: str, fix: str) -> float:
    """``algorithm.KEY`` as a float; a one-line error (with ``fix``) unless ``value`` is a finite
    number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise GanforgeError(f"algorithm.{key}={value!r} is not a finite number >= 0", fix)
    return float(value)


def algorithm_class(cfg: ExperimentConfig) -> type[Algorithm]:
    """The registered class of the algorithm ``cfg.algorithm`` names (a one-line error for an
    unknown name)."""
    import ganforge.train.algorithms  # noqa: F401  (registers the built-in algorithms)

    return ALGORITHMS.get(cfg.algorithm.get("name"))


def algorithm_options(cfg: ExperimentConfig) -> Any:
    """The options of ``cfg``'s algorithm, validated (its ``Options`` dataclass), without building
    it: for tools that read a run's settings (``ganforge play``, the reports)."""
    return algorithm_class(cfg).parse_options(cfg.algorithm)


def labels_are_classes(cfg: ExperimentConfig) -> bool:
    """Whether a run of ``cfg`` generates samples of the dataset's classes (see
    :meth:`Algorithm.labels_are_classes`; the config-level question ``cfg.class_conditional`` once
    answered)."""
    return algorithm_class(cfg).labels_are_classes(cfg)


def build_algorithm(cfg: ExperimentConfig, dataset: AnyDataset | None, *,
                    sample_shape: tuple[int, ...], num_classes: int | None,
                    device: torch.device, restoring: bool = False) -> Algorithm:
    """The algorithm ``cfg.algorithm`` names, its options checked against its ``Options``.
    ``restoring``: the caller loads a checkpoint next, so one-off initial work may be skipped."""
    cls = algorithm_class(cfg)
    cls.parse_options(cfg.algorithm)  # before the networks: a bad option is the first error
    for key in [k for k, v in cfg.algorithm.items() if k != "name" and k not in cls.option_names()]:
        del cfg.algorithm[key]  # a legacy section that set nothing: the run's config.yaml drops it
    return cls(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes, device=device,
               restoring=restoring)
