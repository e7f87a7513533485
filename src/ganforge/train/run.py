"""Loading a finished (or interrupted) run directory for sampling and inspection."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganforge._io import check_allocation
from ganforge.config import ExperimentConfig
from ganforge.data.kinds import DataKind, Samples
from ganforge.errors import GanforgeError
from ganforge.models.base import Generator, check_truncation
from ganforge.train.algorithms.base import (
    ClassConditioned,
    DesignsMolecules,
    PredictsFrames,
    TableRows,
    TextConditioned,
    Translates,
    Truncatable,
    algorithm_class,
    capability_for_need,
    conditions_on_classes,
    has,
    require,
)
from ganforge.train.checkpoint import load_checkpoint
from ganforge.train.trainer import Experiment, load_networks


@dataclass
class Run:
    path: Path
    config: ExperimentConfig
    step: int
    experiment: Experiment
    checkpoint: Path

    @property
    def algorithm(self):
        return self.experiment.algorithm

    @property
    def generator(self) -> Generator:
        """The network that maps latent codes to samples (G, a VAE's decoder)."""
        return self.experiment.sampling_network(ema=False)

    @property
    def ema_generator(self) -> Generator | None:
        exp = self.experiment
        return exp.sampling_network() if exp.algorithm.generator_name in exp.emas else None

    @property
    def kind(self) -> DataKind:
        """The data kind of the run's samples (:mod:`ganforge.data.kinds`): how they are written."""
        return self.algorithm.kind

    @property
    def conditions_on_classes(self) -> bool:
        """Whether the samples are drawn for the data's classes (class metrics apply)."""
        return conditions_on_classes(self.algorithm)

    def require_need(self, need: str, what: str) -> None:
        """The one-line "cannot do X" error (:func:`require`) when this run lacks the declared
        capability that provides metric requirement ``need``."""
        capability = capability_for_need(need)
        if capability is not None:
            require(self, capability, what)

    @property
    def num_classes(self) -> int | None:
        """K for a class-conditional run, else None."""
        return self.experiment.num_classes if has(self.algorithm, ClassConditioned) else None

    def labels(self, n: int, class_: int | None = None) -> torch.Tensor | None:
        """Labels for n samples of a conditional run: all ``class_``, or 0..K-1 cycled (in
        proportion to the clusters' sizes for a self-conditioned run). None for an
        unconditional run (where asking for a class is an error)."""
        if self.num_classes is None:
            if class_ is not None:
                require(self, ClassConditioned, f"sample class {class_}",
                        "drop --class, or train with model.conditional on labelled data")
            return None
        if class_ is None:
            return self.algorithm.labels_for(n).cpu()
        if not 0 <= class_ < self.num_classes:
            raise GanforgeError(f"class {class_} is out of range for this run's {self.num_classes} classes",
                                f"choose a class from 0 to {self.num_classes - 1}")
        return torch.full((n,), class_, dtype=torch.long)

    def pick_generator(self, ema: bool = False,
                       fix: str = "drop --ema, or train with train.ema_decay=0.999") -> Generator:
        """:attr:`generator`, or with ``ema`` :attr:`ema_generator` (a one-line error, with
        ``fix`` as its remedy, when the run was trained without EMA)."""
        if not ema:
            return self.generator
        G = self.ema_generator
        if G is None:
            raise GanforgeError(f"run {self.path} was trained without EMA", fix)
        return G

    @torch.no_grad()
    def sample(self, n: int, *, ema: bool = False, seed: int = 0, batch_size: int = 1000,
               labels: torch.Tensor | None = None, psi: float = 1.0) -> torch.Tensor:
        """``n`` samples (CPU float32) from the generator (eval mode) or its EMA copy; ``psi`` < 1
        applies the family's truncation trick (:attr:`Generator.truncation`).

        A conditional run needs ``labels`` (n,); by default they are :meth:`labels` (classes
        cycled), so the samples are class-balanced (or follow a self-conditioned run's prior)."""
        G = self.pick_generator(ema)
        psi = check_truncation(G, psi)
        check_allocation(n, tuple(G.out_shape), f"{n} samples", "ask for fewer samples")
        if labels is None:
            labels = self.labels(n)
        G.eval()
        gen = torch.Generator().manual_seed(seed)
        x = (self.algorithm.sample(n, gen, labels, G, batch_size) if psi == 1.0
             else self.algorithm.sample(n, gen, labels, G, batch_size, psi=psi))
        if not torch.isfinite(x).all():
            raise GanforgeError(f"the generator of {self.path} (step {self.step}) outputs NaN or inf",
                                "its training diverged: sample an earlier checkpoint (--checkpoint "
                                "step_NNNNNNN.pt) or retrain with lower learning rates")
        return x

    def draw(self, n: int, *, seed: int = 0, ema: bool = False, class_: int | None = None,
             prompts: list[str] | None = None, psi: float = 1.0, grouped: bool = False,
             conditions: dict[str, str] | None = None) -> Samples:
        """What ``ganforge sample`` writes, as :class:`~ganforge.data.kinds.Samples` for the run's
        data kind: an image-to-image run's fixed pairs, translated (panels input | output |
        target, arrays ``cond`` and ``target``); ``n`` samples per caption of ``prompts``; else
        ``n`` samples (of class ``class_``; all classes, class by class when ``grouped`` (one
        figure row each), on a run conditioned on the data's classes), truncated by ``psi``.
        Asking for what the run cannot do is a one-line error (:func:`require`)."""
        captioner = (None if prompts is None
                     else require(self, TextConditioned, "draw samples for captions (--text)"))
        if class_ is not None:
            require(self, ClassConditioned, f"sample class {class_}",
                    "drop --class, or train with model.conditional on labelled data")
        if psi != 1.0:
            require(self, Truncatable, "apply the truncation trick (--truncation)")
        if conditions:
            require(self, TableRows, "draw rows under conditions (--condition)")
        algorithm, step = self.algorithm, self.step
        if isinstance(algorithm, TableRows):
            check_allocation(n, tuple(algorithm.sample_shape), f"{n} rows", "ask for fewer rows")
            rows = algorithm.sample_rows(n, torch.Generator().manual_seed(seed), conditions,
                                         self.pick_generator(ema))
            what = "".join(f", {c}={v}" for c, v in (conditions or {}).items())
            return Samples(torch.zeros(n, 0), table=rows, types=algorithm.schema.types,
                           title=f"{n} rows, step {step}{what}",
                           description=f"{n} rows from step {step}{what}")
        if isinstance(algorithm, DesignsMolecules):
            check_allocation(n, tuple(algorithm.sample_shape), f"{n} molecules", "ask for fewer molecules")
            generator = torch.Generator().manual_seed(seed)
            x, smiles = algorithm.draw_molecules(n, generator, self.pick_generator(ema))
            invalid = sum(s is None for s in smiles)
            arrays = {**algorithm.sample_arrays(), "smiles": np.array([s or "" for s in smiles])}
            return Samples(x, arrays,
                           title=f"{n} molecules, step {step}",
                           description=f"{n} molecules from step {step} ({invalid} invalid)")
        if isinstance(algorithm, PredictsFrames):  # the fixed clips, continued
            clips = algorithm.fixed_sequences(n)
            samples = algorithm.figure(clips, self.pick_generator(ema), f"{self.path.name}, step {step}")
            samples.description = (f"{n} clips of step {step} ({algorithm.observed} observed + "
                                   f"{algorithm.horizon} predicted frames)")
            return samples
        if isinstance(algorithm, Translates):
            G = self.pick_generator(ema)
            panels = algorithm.panels(n, G, torch.Generator().manual_seed(seed))
            cond, target = algorithm.fixed_pairs(n)
            return Samples(panels["output"], {"cond": cond, "target": target}, panels=panels,
                           title=f"{self.path.name}, step {step}",
                           description=f"{n} input | output | target triples of step {step}")
        if captioner is not None and prompts is not None:  # one row of n samples per caption
            y = captioner.encode_text(prompts)
            x = self.sample(n * len(prompts), ema=ema, seed=seed, labels=y.repeat_interleave(n, dim=0))
            return Samples(x, {"caption": np.asarray(prompts).repeat(n)}, nrow=n,
                           title=f"{len(x)} samples, step {step}",
                           description=f"{len(x)} samples from step {step}")
        y, nrow = self.labels(n, class_), None
        if grouped and y is not None and class_ is None and conditions_on_classes(algorithm):
            nrow = math.ceil(n / self.num_classes)  # one row per class
            y = torch.arange(self.num_classes).repeat_interleave(nrow)[:n]
        x = self.sample(n, ema=ema, seed=seed, labels=y, psi=psi)
        arrays = {**algorithm.sample_arrays(), **({} if y is None else {"y": y.numpy().astype(np.int64)})}
        return Samples(x, arrays, nrow=nrow,
                       title=f"{n} samples, step {step}", description=f"{n} samples from step {step}")


CHECKPOINT_NAMES = ("final", "last", "best")


def find_checkpoint(run_dir: Path, which: str = "final") -> Path:
    """``final``: ``final.pt`` if the run finished, else ``last.pt``; ``last``; ``best`` (kept by
    ``eval.best``); or a file name in ``checkpoints/`` or a path ending in ``.pt``. Anything
    else, or a file that is not there, is a one-line error."""
    if which.endswith(".pt"):
        candidate = Path(which)
        if not (candidate.is_absolute() or candidate.exists()):
            candidate = run_dir / "checkpoints" / which
        if not candidate.is_file():
            raise GanforgeError(f"checkpoint {which} does not exist in {run_dir / 'checkpoints'}",
                                "pass final, last, best or one of the files there")
        return candidate
    if which not in CHECKPOINT_NAMES:
        raise GanforgeError(f"unknown checkpoint {which!r}",
                            "pass final, last, best or a FILE.pt (e.g. step_0001000.pt)")
    names = ("final.pt", "last.pt") if which == "final" else (f"{which}.pt",)
    for name in names:
        candidate = run_dir / "checkpoints" / name
        if candidate.is_file():
            return candidate
    if which == "best":
        raise GanforgeError(f"{run_dir} has no checkpoints/best.pt",
                            "train with eval.every and eval.best to keep one, or pass final or last")
    raise GanforgeError(f"{run_dir} has no checkpoints/{' or '.join(names)}",
                        "point at a run directory written by `ganforge train`")


def load_run(run_dir: str | Path, checkpoint: str = "final",
             device: str | None = "cpu") -> Run:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise GanforgeError(f"run directory {run_dir} does not exist",
                            "pass the --out directory of a `ganforge train` run")
    path = find_checkpoint(run_dir, checkpoint)
    state = load_checkpoint(path)
    cfg = ExperimentConfig.from_dict(state["config"])
    # what the data told the algorithm (e.g. an input shape) comes back from its saved state
    name = cfg.algorithm.get("name")
    restored = algorithm_class(name).restored_options(state["algorithm"]) if name is not None else {}
    built = dataclasses.replace(cfg, algorithm={**restored, **cfg.algorithm}) if restored else cfg
    exp = Experiment(built, device, sample_shape=tuple(state["sample_shape"]),
                     num_classes=state["num_classes"], restoring=True)
    load_networks(exp, state, path)
    exp.algorithm.load_sampling_state(state["algorithm"])
    return Run(run_dir, cfg, int(state["step"]), exp, path)
