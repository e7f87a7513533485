"""Loading a finished (or interrupted) run directory for sampling and inspection."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ganforge._io import check_allocation
from ganforge.config import ExperimentConfig
from ganforge.errors import GanforgeError
from ganforge.models.base import Generator, check_truncation
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
    def num_classes(self) -> int | None:
        """K for a class-conditional run, else None."""
        return self.experiment.num_classes if self.algorithm.conditional else None

    def labels(self, n: int, class_: int | None = None) -> torch.Tensor | None:
        """Labels for n samples of a conditional run: all ``class_``, or 0..K-1 cycled (in
        proportion to the clusters' sizes for a self-conditioned run). None for an
        unconditional run (where asking for a class is an error)."""
        if self.num_classes is None:
            if class_ is not None:
                raise GanforgeError(f"run {self.path} is not class-conditional, so it cannot sample "
                                    f"class {class_}", "drop --class, or train with model.conditional")
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
    exp = Experiment(cfg, device, sample_shape=tuple(state["sample_shape"]),
                     num_classes=state["num_classes"], restoring=True)
    load_networks(exp, state, path)
    exp.algorithm.load_sampling_state(state["algorithm"])
    return Run(run_dir, cfg, int(state["step"]), exp, path)
