"""What a run must offer for a metric, declared as protocols low in the stack.

The metrics may not import :mod:`ganforge.train` (it is above them), so they state what they need
of a run's algorithm or generator as small :class:`typing.Protocol` types here; an algorithm (or a
capability interface of ``train/algorithms/base.py``) satisfies one by having its members, and the
caller asks with ``isinstance``, never with ``getattr``/``hasattr`` on the algorithm.

Each :class:`Requirement` names one such capability; a metric lists the names it needs
(``MetricSpec.needs``), :func:`provided_by` tells which ones a run has, and the registry's one-line
error for a missing one comes from the requirement's ``label``, ``what`` and ``fix``.

Runs come in two kinds (:func:`run_kind`): ``generative`` (samples drawn from the prior, or a
samples file) and ``translation`` (outputs of held-out inputs: :class:`Translator`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch

RUN_KINDS = {"generative": "a generative run (or a samples file)",
             "translation": "an image-to-image run",
             "table": "a run that synthesises table rows",
             "prediction": "a frame-prediction run",
             "clips": "a run that generates clips",
             "music": "a run that composes piano-roll phrases",
             "molecules": "a run that designs molecules"}


@runtime_checkable
class LikelihoodModel(Protocol):
    """A model with bounds on log p(x) (the VAE): ``elbo`` and ``iwae``."""

    def log_likelihood_bounds(self, x: torch.Tensor, k: int,
                              generator: torch.Generator) -> Mapping[str, torch.Tensor]: ...


@runtime_checkable
class Translator(Protocol):
    """An image-to-image algorithm: outputs G(c) of inputs ``cond``."""

    def translate(self, cond: torch.Tensor, network: torch.nn.Module | None = None,
                  generator: torch.Generator | None = None, batch_size: int = 256) -> torch.Tensor: ...


@runtime_checkable
class CycleTranslator(Translator, Protocol):
    """A translation with a learnt inverse F = ``G_BA`` (CycleGAN): the cycle metrics."""

    G_BA: torch.nn.Module


@runtime_checkable
class StyleSynthesis(Protocol):
    """A style-based generator: codes -> ``mapping`` -> w -> ``broadcast`` -> ``synthesis``
    (perceptual path length interpolates between the mapped codes). ``mapping`` is not listed:
    Python 3.12 checks protocols with ``inspect.getattr_static``, which does not see an
    ``nn.Module``'s submodules."""

    def sample_z(self, n: int, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None) -> torch.Tensor: ...

    def broadcast(self, w: torch.Tensor) -> torch.Tensor: ...

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class NoiseMaps(Protocol):
    """A generator whose per-pixel noise maps can be drawn up front (StyleGAN2), so that two
    images of a pair see the same noise."""

    def make_noise(self, n: int, generator: torch.Generator | None = None) -> Sequence[torch.Tensor]: ...


@runtime_checkable
class NoiseMode(Protocol):
    """A generator with a switchable noise input (``random`` or ``const``)."""

    noise_mode: str


@dataclass(frozen=True)
class Requirement:
    """A capability a metric may need: ``protocol`` checked on the run's ``of`` (``algorithm``
    or ``generator``). Missing, it is the error "{label} ({metrics}) need {what}, and this run
    has none", with ``fix`` as the remedy."""

    name: str
    protocol: type
    of: str
    label: str
    what: str
    fix: str


REQUIREMENTS: dict[str, Requirement] = {}


def register_requirement(req: Requirement) -> Requirement:
    if req.name in REQUIREMENTS:
        raise RuntimeError(f"requirement {req.name!r} registered twice")
    if req.of not in ("algorithm", "generator"):
        raise ValueError(f"a requirement is checked on the algorithm or the generator, not {req.of!r}")
    REQUIREMENTS[req.name] = req
    return req


register_requirement(Requirement(
    "likelihood", LikelihoodModel, "algorithm", "likelihood metrics", "a model with a likelihood",
    "evaluate a run whose model has a likelihood, or choose sample metrics (fid, kid, is, prdc, modes, "
    "class)"))
register_requirement(Requirement(
    "cycle", CycleTranslator, "algorithm", "cycle metrics", "a translation with a learnt inverse",
    "evaluate a translation trained with its inverse, or choose paired metrics (l1, psnr, ssim)"))
register_requirement(Requirement(
    "style", StyleSynthesis, "generator", "perceptual path length",
    "a style-based generator (mapping + synthesis)", "evaluate a run with a style-based generator"))


def provided_by(algorithm: Any = None, generator: Any = None) -> frozenset[str]:
    """The names of the :data:`REQUIREMENTS` that ``algorithm`` and ``generator`` satisfy."""
    subject = {"algorithm": algorithm, "generator": generator}
    return frozenset(name for name, req in REQUIREMENTS.items()
                     if subject[req.of] is not None and isinstance(subject[req.of], req.protocol))


@runtime_checkable
class RowSynthesizer(Protocol):
    """An algorithm that draws table rows as a DataFrame (``ctgan``, ``tvae``): the table metrics."""

    def sample_rows(self, n: int, generator: torch.Generator | None = None,
                    conditions: Mapping[str, Any] | None = None,
                    network: torch.nn.Module | None = None) -> Any: ...


@runtime_checkable
class FramePredictor(Protocol):
    """An algorithm that continues clips: the ``horizon`` frames after ``observed`` ones."""

    observed: int
    horizon: int

    def predict(self, observed_frames: torch.Tensor, horizon: int | None = None,
                network: torch.nn.Module | None = None, batch_size: int = 64) -> torch.Tensor: ...


@runtime_checkable
class ClipSampler(Protocol):
    """A generative algorithm whose samples are clips (N, T, C, H, W) (MoCoGAN)."""

    def sample_clips(self, n: int, generator: torch.Generator | None = None,
                     network: torch.nn.Module | None = None) -> torch.Tensor: ...


@runtime_checkable
class RollComposer(Protocol):
    """An algorithm whose samples are piano-roll phrases on its time and pitch ``grid``."""

    grid: Any

    def sample_rolls(self, n: int, generator: torch.Generator | None = None,
                     network: torch.nn.Module | None = None) -> torch.Tensor: ...


@runtime_checkable
class MoleculeDesigner(Protocol):
    """An algorithm whose samples decode to molecules: canonical SMILES (None: invalid)."""

    def sample_smiles(self, n: int, generator: torch.Generator | None = None,
                      network: torch.nn.Module | None = None) -> list[str | None]: ...


def run_kind(algorithm: Any) -> str:
    """``translation`` for an algorithm that translates inputs, ``table`` for one that draws
    table rows, ``prediction`` for one that continues clips, ``clips`` for one that draws clips,
    ``music`` for one that composes piano-roll phrases, ``molecules`` for one that designs
    molecules, else ``generative``."""
    if isinstance(algorithm, MoleculeDesigner):
        return "molecules"
    if isinstance(algorithm, RollComposer):
        return "music"
    if isinstance(algorithm, Translator):
        return "translation"
    if isinstance(algorithm, FramePredictor):
        return "prediction"
    if isinstance(algorithm, ClipSampler):
        return "clips"
    return "table" if isinstance(algorithm, RowSynthesizer) else "generative"
