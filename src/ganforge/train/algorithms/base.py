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

**Capabilities.** What a run can do beyond drawing samples is declared, never probed: an
algorithm class lists the capabilities it has among its bases (``class GAN(Algorithm,
ClassConditioned, Truncatable, ...)``) and implements their methods. The tools ask with
``isinstance`` (or :func:`has`), and refuse with :func:`require`, the one place that words "this
run cannot do X": it names the capability and the registered families that have it.

    Translates        image to image: G maps input images to images (pix2pix, CycleGAN...)
    TextConditioned   encode_text: samples drawn for captions
    ClassConditioned  samples drawn for chosen class labels (a run trained with them)
    Truncatable       the truncation trick at sampling time (the generator declares one)
    StyleMixing       a style-based generator: mixing styles, interpolating in W
    LatentSpace       a generator of latent codes z (the ``ganforge latent`` tools)
    HasLikelihood     log_likelihood_bounds: held-out likelihood metrics (elbo, iwae)
    TableRows         rows of a table: decoded to a DataFrame, drawn under column conditions
    LatentSimulation  samples as a function of chosen codes z (rare events in latent space)
    PredictsFrames    continues clips: the frames after the observed ones (video prediction)
    ComposesMusic     piano-roll phrases on a time and pitch grid (MIDI, audio, music metrics)
    DesignsMolecules  molecules: samples decode to SMILES (the graph kind's writers, MOSES metrics)

A capability whose use depends on how the run was built (a GAN trained without labels, a
generator without a truncation trick) says why one instance lacks it in :meth:`Capability.missing_in`.
"""

from __future__ import annotations

import dataclasses
from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import torch
from torch import nn

from ganforge.config import ExperimentConfig, PhaseConfig, from_mapping, legacy_section_unset
from ganforge.data.base import AnyDataset
from ganforge.data.kinds import DataKind, Samples, get_kind, kind_of_shape
from ganforge.errors import GanforgeError
from ganforge.metrics.capabilities import LikelihoodModel
from ganforge.models.base import evaluating
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
    #: the data kind of the samples it draws (:mod:`ganforge.data.kinds`: how ``ganforge sample``
    #: writes them, what a preview shows); None: the kind of :attr:`sample_shape`
    data_kind: ClassVar[str | None] = None

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

    @property
    def kind(self) -> DataKind:
        """The :class:`~ganforge.data.kinds.DataKind` of the samples (see :attr:`data_kind`)."""
        return get_kind(self.data_kind) if self.data_kind else kind_of_shape(self.sample_shape)

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

    def sample_arrays(self) -> dict[str, Any]:
        """Named arrays the data kind's writers read beside the samples (a piano roll's time and
        pitch grid); ``ganforge sample`` adds them to what it writes. Empty by default."""
        return {}

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

    @classmethod
    def restored_options(cls, state: dict[str, Any]) -> dict[str, Any]:
        """Options a loaded run is rebuilt with, read from its checkpoint's algorithm ``state``
        (what the data would have told it, e.g. an input shape); merged under the config's."""
        return {}

    def load_sampling_state(self, state: dict[str, Any]) -> None:
        """What a loaded run needs to sample without its data (default: the whole state)."""
        self.load_state_dict(state)


# ---------------------------------------------------------------------- capabilities
class Capability(metaclass=ABCMeta):  # noqa: B024  (the capabilities below declare the methods)
    """Base of the declared capabilities (see the module docstring). ``title`` names it in
    messages ("latent space"); ``fix`` is the default remedy when a run lacks it."""

    title: ClassVar[str] = ""
    fix: ClassVar[str] = "use a run of one of those families"
    #: the metric requirement this capability provides (:data:`ganforge.metrics.capabilities.REQUIREMENTS`)
    metric_need: ClassVar[str | None] = None

    @classmethod
    def missing_in(cls, algorithm: Any) -> str | None:
        """Why ``algorithm``, whose class declares this capability, cannot use it as built (e.g.
        a GAN trained without labels), or None when it can. Called on the capability class."""
        return None


class Translates(Capability):
    """Image to image: G maps input images ``cond`` (N, C', H', W') to images (N, *sample_shape);
    the run keeps fixed (input, target) pairs to show (``ganforge translate``, ``sample``,
    paired metrics)."""

    title = "image-to-image translation"
    fix = "translate with a run of one of those families (e.g. pix2pix)"
    #: the shape of one input (C', H', W')
    cond_shape: tuple[int, int, int]

    @abstractmethod
    def translate(self, cond: torch.Tensor, network: nn.Module | None = None,
                  generator: torch.Generator | None = None, batch_size: int = 256) -> torch.Tensor:
        """G(c) for inputs ``cond`` in [-1, 1], on CPU, ``batch_size`` at a time."""

    @abstractmethod
    def fixed_pairs(self, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets) of the run's fixed pairs, cycled to ``n``."""

    @abstractmethod
    def panels(self, n: int | None = None, network: nn.Module | None = None,
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Named rows of a figure of the fixed pairs ({"input", "output", "target"}...)."""

    @abstractmethod
    def user_channels(self, network: nn.Module | None = None) -> int:
        """Channels of the images a user passes to ``ganforge translate``."""

    @abstractmethod
    def prepare_inputs(self, images: torch.Tensor) -> torch.Tensor:
        """G's inputs from a user's images."""

    @abstractmethod
    def output_images(self, cond: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The images to show for G's outputs ``out`` on inputs ``cond``."""

    @abstractmethod
    def input_multiple(self, network: nn.Module) -> int:
        """The number every side of an input must be a multiple of (1: any side)."""


class TextConditioned(Capability):
    """Samples drawn for captions: :meth:`encode_text` embeds any text with the run's own
    encoder, and the embeddings are the ``labels`` of :meth:`Algorithm.sample`."""

    title = "text conditioning"
    fix = "train a text-to-image run on captioned data (e.g. the fashion-stackgan preset)"

    @abstractmethod
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """Embeddings (n, E) on CPU of ``texts``; works on a loaded run with no dataset."""


class ClassConditioned(Capability):
    """Samples drawn for chosen labels: :attr:`Algorithm.conditional` names how G takes them
    (None: this run was trained without labels) and :meth:`Algorithm.labels_for` draws them."""

    title = "class-conditional sampling"
    fix = "train with model.conditional (concat, acgan or projection) on labelled data"

    @property
    @abstractmethod
    def conditions_on_classes(self) -> bool:
        """Whether G's labels are the dataset's classes (False for an unconditional run, and for
        a self-conditioned one, whose labels are clusters of D's features)."""

    @classmethod
    def missing_in(cls, algorithm: Any) -> str | None:
        return None if algorithm.conditional is not None else "it is not class-conditional"


class Truncatable(Capability):
    """The truncation trick at sampling time (``psi`` of :meth:`Algorithm.sample`), as the
    generator declares it (:attr:`ganforge.models.base.Generator.truncation`)."""

    title = "truncation trick"
    fix = "drop --truncation, or use a style-based or BigGAN generator"

    @property
    @abstractmethod
    def truncation_trick(self) -> str | None:
        """The generator's trick (``"z"``, ``"w"``), or None when it has none."""

    @classmethod
    def missing_in(cls, algorithm: Any) -> str | None:
        if algorithm.truncation_trick is not None:
            return None
        return f"its generator {type(algorithm.generator).__name__} has no truncation trick"


class StyleMixing(Capability):
    """A style-based generator (:class:`ganforge.models.style.StyleGenerator`): style mixing and
    paths in W."""

    title = "style-based generator"
    fix = "use a run with a style-based generator (model.name=stylegan, or algorithm stylegan2)"
    metric_need = "style"

    @property
    @abstractmethod
    def mixes_styles(self) -> bool:
        """Whether this run's generator is style-based."""

    @classmethod
    def missing_in(cls, algorithm: Any) -> str | None:
        if algorithm.mixes_styles:
            return None
        return f"its generator {type(algorithm.generator).__name__} is not a style-based generator"


class LatentSpace(Capability):
    """The generator (:attr:`Algorithm.generator`) is a :class:`ganforge.models.base.Generator`:
    codes z (``z_dim``) from its prior to samples, which the ``ganforge latent`` tools walk."""

    title = "latent space"


class HasLikelihood(Capability, LikelihoodModel):
    """:meth:`log_likelihood_bounds` on held-out data: the ``elbo`` and ``iwae`` metrics."""

    title = "likelihood"
    fix = "evaluate a run of one of those families, or choose sample metrics"
    metric_need = "likelihood"

    @abstractmethod
    def log_likelihood_bounds(self, x: torch.Tensor, k: int,
                              generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Per-sample bounds in nats: ``neg_elbo``, ``recon_nll``, ``kl``, ``nll_iwae``."""


class TableRows(Capability):
    """Rows of a table (:mod:`ganforge.data.table`): samples decode to a DataFrame with the
    training table's columns, types and categories, and can be drawn under conditions on
    discrete columns (``ganforge sample --condition col=value``)."""

    title = "table synthesis"
    fix = "train on a table (data.name=table) with a table family (ctgan, tvae)"

    @property
    @abstractmethod
    def schema(self) -> Any:
        """The :class:`~ganforge.data.table.TableSchema` of the rows."""

    @abstractmethod
    def sample_rows(self, n: int, generator: torch.Generator | None = None,
                    conditions: Mapping[str, Any] | None = None,
                    network: nn.Module | None = None) -> Any:
        """``n`` rows as a DataFrame; every row satisfies ``conditions`` ({column: category})."""


class LatentSimulation(Capability):
    """Samples are a function of codes z from the generator's prior (``Generator.sample_z``,
    ``prior_log_prob``) and of other randomness drawn from a ``torch.Generator`` (labels,
    a decoder's noise): :meth:`simulate` maps codes chosen by the caller, e.g. drawn from an
    importance-sampling proposal (``ganforge rare``), to the kind's samples. The default maps
    through ``network(z, labels)`` with labels from :meth:`Algorithm.labels_for`."""

    title = "latent simulation"
    fix = "use a run whose samples come from latent codes (a GAN, VAE or table GAN/VAE)"

    @torch.no_grad()
    def simulate(self, z: torch.Tensor, generator: torch.Generator | None = None,
                 network: nn.Module | None = None, labels: torch.Tensor | None = None) -> Any:
        """The samples of codes ``z`` (N, z_dim) (CPU tensors of the kind's shape, or what the
        kind holds: a table's DataFrame); ``labels`` (N,) fixes a conditional run's classes."""
        net = self.generator if network is None else network
        if labels is None:
            labels = self.labels_for(len(z), generator)
        device = next(net.parameters()).device
        return net(z.to(device), None if labels is None else labels.to(device)).float().cpu()


class PredictsFrames(Capability):
    """Continues clips: :meth:`predict` maps the first ``observed`` frames of clips (N, T_o, C, H,
    W) to the ``horizon`` frames that follow (``ganforge predict``, the prediction metrics, the
    observed | truth | prediction figures of :meth:`fixed_sequences`)."""

    title = "frame prediction"
    fix = "use a run of a frame predictor (e.g. the moving-mnist-convlstm preset)"

    observed: int
    horizon: int

    @abstractmethod
    def predict(self, observed_frames: torch.Tensor, horizon: int | None = None,
                network: nn.Module | None = None, batch_size: int = 64) -> torch.Tensor:
        """The ``horizon`` (default: the trained one) frames after ``observed_frames``, CPU."""

    @abstractmethod
    def fixed_sequences(self, n: int | None = None) -> torch.Tensor:
        """The run's fixed whole clips (n, T, C, H, W), cycled to ``n``: what figures show."""

    def figure(self, clips: torch.Tensor, network: nn.Module | None = None, title: str = "") -> Samples:
        """Whole ``clips`` beside their continuation: panels ``truth`` and ``prediction`` (the
        observed frames, then the predicted ones), ``x`` the latter, for the sequence kind's
        writers; ``arrays`` holds the truth and the observed frame count."""
        observed = clips[:, :self.observed]
        whole = torch.cat([observed, self.predict(observed, network=network)], dim=1)
        return Samples(whole, {"truth": clips, "observed": self.observed},
                       panels={"truth": clips, "prediction": whole}, title=title)


class ComposesMusic(Capability):
    """Samples are piano-roll phrases (:mod:`ganforge.data.pianoroll`) on the time and pitch
    ``grid`` of the data it learned (kept in the run, so a loaded run writes MIDI without its
    data); :meth:`sample_rolls` draws them for the music metrics."""

    title = "music composition"
    fix = "use a run of a music family (e.g. the chorales-musegan preset)"

    grid: Any
    track_names: tuple[str, ...]

    def sample_rolls(self, n: int, generator: torch.Generator | None = None,
                     network: nn.Module | None = None) -> torch.Tensor:
        """``n`` phrases (N, tracks, steps, pitches) in [-1, 1], CPU, in eval mode."""
        with evaluating(self.generator if network is None else network) as net:  # type: ignore[attr-defined]
            return self.sample(n, generator, network=net, batch_size=250)  # type: ignore[attr-defined]



class DesignsMolecules(Capability):
    """Samples are molecules (:mod:`ganforge.data.molecules`): :meth:`draw_molecules` gives the raw
    samples beside their SMILES (None where a sample is no valid molecule), which the graph kind
    writes (``.smi``, ``.png``) and the MOSES metrics score. The vocabulary the run learned (atom
    types, SMILES characters) is kept in its state, so a loaded run decodes without its data."""

    title = "molecule design"
    fix = "use a run of a molecule family (e.g. the moses-molgan or moses-charrnn preset)"

    @abstractmethod
    def draw_molecules(self, n: int, generator: torch.Generator | None = None,
                       network: nn.Module | None = None) -> tuple[torch.Tensor, list[str | None]]:
        """``n`` raw samples (CPU; a graph tensor, SMILES tokens) and their canonical SMILES (None:
        invalid), drawn in eval mode with ``generator``."""

    def sample_smiles(self, n: int, generator: torch.Generator | None = None,
                      network: nn.Module | None = None) -> list[str | None]:
        """``n`` canonical SMILES (None: an invalid sample), for the metrics."""
        return self.draw_molecules(n, generator, network)[1]

CapabilityT = TypeVar("CapabilityT", bound=Capability)


class _HasRun(Protocol):
    """What :func:`require` reads of a loaded run (:class:`ganforge.train.run.Run`)."""

    path: Path

    @property
    def algorithm(self) -> Algorithm: ...


def _registered_algorithms() -> Registry:
    import ganforge.train.algorithms  # noqa: F401  (registers the built-in algorithms)

    return ALGORITHMS


def algorithm_class(name: str) -> type[Algorithm]:
    """The algorithm class registered as ``name`` (a one-line error for an unknown name)."""
    return _registered_algorithms().get(name)


def families_with(capability: type[Capability]) -> list[str]:
    """The registered algorithm names whose class declares ``capability``."""
    algorithms = _registered_algorithms()
    return [name for name in algorithms.names() if issubclass(algorithms.get(name), capability)]


def capability_for_need(need: str) -> type[Capability] | None:
    """The declared capability (an interface deriving from :class:`Capability` directly) that
    provides metric requirement ``need``, if any."""
    return next((cls for cls in Capability.__subclasses__() if cls.metric_need == need), None)


def has(subject: Algorithm | _HasRun, capability: type[Capability]) -> bool:
    """Whether ``subject`` (an algorithm or a loaded run) declares ``capability`` and, as built,
    can use it."""
    algorithm = subject if isinstance(subject, Algorithm) else subject.algorithm
    return isinstance(algorithm, capability) and capability.missing_in(algorithm) is None


def conditions_on_classes(subject: Algorithm | _HasRun) -> bool:
    """Whether ``subject`` draws samples for its data's classes (:class:`ClassConditioned`, and
    not a self-conditioned run's clusters): class metrics and per-class figures apply."""
    algorithm = subject if isinstance(subject, Algorithm) else subject.algorithm
    return isinstance(algorithm, ClassConditioned) and algorithm.conditions_on_classes


def require(subject: Algorithm | _HasRun, capability: type[CapabilityT], what: str,
            fix: str | None = None) -> CapabilityT:
    """``subject``'s algorithm, when it has ``capability`` (:func:`has`); else the one-line
    error of every "this run cannot do X": ``what`` the user asked (e.g. "draw --text
    captions"), why not, the capability and the families that have it; ``fix`` (default: the
    capability's) is the remedy."""
    if isinstance(subject, Algorithm):
        algorithm, where = subject, f"algorithm {subject.name!r}"
    else:
        algorithm, where = subject.algorithm, f"run {subject.path} ({subject.algorithm.name})"
    if isinstance(algorithm, capability):
        reason = capability.missing_in(algorithm)
        if reason is None:
            return algorithm
    else:
        reason = f"{algorithm.name or type(algorithm).__name__} has no {capability.title}"
    families = ", ".join(families_with(capability)) or "none yet"
    raise GanforgeError(f"{where} cannot {what}: {reason} (capability {capability.__name__}, which "
                        f"these families have: {families})", fix or capability.fix)


def option_count(value: Any, key: str, minimum: int, fix: str) -> int:
    """``algorithm.KEY`` as an int; a one-line error (with ``fix``) unless ``value`` is an integer
    >= ``minimum`` (``bool`` refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise GanforgeError(f"algorithm.{key}={value!r} is not an integer >= {minimum}", fix)
    return value


def option_weight(value: Any, key: str, fix: str) -> float:
    """``algorithm.KEY`` as a float; a one-line error (with ``fix``) unless ``value`` is a finite
    number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise GanforgeError(f"algorithm.{key}={value!r} is not a finite number >= 0", fix)
    return float(value)


def algorithm_options(cfg: ExperimentConfig) -> Any:
    """The options of ``cfg``'s algorithm, validated (its ``Options`` dataclass), without building
    it: for tools that read a run's settings (``ganforge play``, the reports)."""
    return algorithm_class(cfg.algorithm.get("name")).parse_options(cfg.algorithm)


def labels_are_classes(cfg: ExperimentConfig) -> bool:
    """Whether a run of ``cfg`` generates samples of the dataset's classes (see
    :meth:`Algorithm.labels_are_classes`; the config-level question ``cfg.class_conditional`` once
    answered)."""
    return algorithm_class(cfg.algorithm.get("name")).labels_are_classes(cfg)


def build_algorithm(cfg: ExperimentConfig, dataset: AnyDataset | None, *,
                    sample_shape: tuple[int, ...], num_classes: int | None,
                    device: torch.device, restoring: bool = False) -> Algorithm:
    """The algorithm ``cfg.algorithm`` names, its options checked against its ``Options``.
    ``restoring``: the caller loads a checkpoint next, so one-off initial work may be skipped."""
    cls = algorithm_class(cfg.algorithm.get("name"))
    cls.parse_options(cfg.algorithm)  # before the networks: a bad option is the first error
    for key in [k for k, v in cfg.algorithm.items() if k != "name" and k not in cls.option_names()]:
        del cfg.algorithm[key]  # a legacy section that set nothing: the run's config.yaml drops it
    return cls(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes, device=device,
               restoring=restoring)
