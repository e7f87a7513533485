"""Loading a finished (or interrupted) run directory for sampling and inspection."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ganforge.config import ExperimentConfig
from ganforge.errors import GanforgeError
from ganforge.models.base import Generator
from ganforge.train.checkpoint import load_checkpoint, load_weights
from ganforge.train.trainer import Experiment


@dataclass
class Run:
    path: Path
    config: ExperimentConfig
    step: int
    experiment: Experiment
    checkpoint: Path

    @property
    def generator(self) -> Generator:
        return self.experiment.G

    @property
    def ema_generator(self) -> Generator | None:
        return None if self.experiment.ema is None else self.experiment.ema.model

    @torch.no_grad()
    def sample(self, n: int, *, ema: bool = False, seed: int = 0,
               batch_size: int = 1000) -> torch.Tensor:
        """``n`` samples (CPU float32) from the generator (eval mode) or its EMA copy."""
        G = self.generator
        if ema:
            if self.ema_generator is None:
                raise GanforgeError(f"run {self.path} was trained without EMA",
                                    "drop --ema, or train with train.ema_decay=0.999")
            G = self.ema_generator
        G.eval()
        noise = torch.Generator().manual_seed(seed)
        chunks = [G(G.sample_z(min(batch_size, n - i), noise)).cpu()
                  for i in range(0, n, batch_size)]
        return torch.cat(chunks) if chunks else torch.empty(0, *G.out_shape)


def find_checkpoint(run_dir: Path, which: str = "final") -> Path:
    """``final.pt`` if the run finished, else ``last.pt``; or an explicit file name/path."""
    if which.endswith(".pt"):
        candidate = Path(which)
        return candidate if candidate.is_absolute() or candidate.exists() else (
            run_dir / "checkpoints" / which)
    for name in (f"{which}.pt", "last.pt"):
        candidate = run_dir / "checkpoints" / name
        if candidate.is_file():
            return candidate
    raise GanforgeError(f"{run_dir} has no checkpoints/final.pt or last.pt",
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
                     num_classes=state["num_classes"])
    load_weights(exp.G, state["G"], "generator", path)
    load_weights(exp.D, state["D"], "discriminator", path)
    if exp.ema is not None and state.get("ema") is not None:
        exp.ema.load_state_dict(state["ema"])
    return Run(run_dir, cfg, int(state["step"]), exp, path)
