"""Result 5: mode collapse. A vanilla GAN (the minimax loss of Goodfellow et al., 2014, same MLP
as the benchmark) is trained on the PacGAN ring of 8 Gaussians (radius 1, std 0.01); the
generator's samples are recorded at regular steps and drawn as a strip, with the number of
modes covered, the fraction of high-quality samples and the reverse KL of the mode histogram at
each snapshot (:func:`ganforge.metrics.modes.mode_metrics`). Collapse shows as modes that
are missed or starved (an uneven mode histogram, a large reverse KL) and as mass left on the
"bridges" between modes (a low high-quality fraction).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from ganforge.config import load_config
from ganforge.metrics.modes import mode_metrics
from ganforge.theory._common import check, result
from ganforge.train import Trainer
from ganforge.train.trainer import Callback
from ganforge.viz import plot_sample_strip

N_SAMPLES = 1000
N_SNAPSHOTS = 6


class SampleRecorder(Callback):
    """Draws N_SAMPLES points from G (fixed noise, eval mode) every ``every`` steps."""

    def __init__(self, every: int, seed: int) -> None:
        self.every = every
        self.seed = seed
        self.snapshots: list[tuple[int, torch.Tensor]] = []

    @torch.no_grad()
    def on_step_end(self, trainer: Trainer) -> None:
        if trainer.step % self.every:
            return None
        G = trainer.algorithm.generator
        G.eval()
        z = G.sample_z(N_SAMPLES, torch.Generator().manual_seed(self.seed))
        self.snapshots.append((trainer.step, G(z).cpu()))
        G.train()
        return None


def run(out_dir: Path, seed: int = 0, quick: bool = False) -> dict[str, Any]:
    steps = 600 if quick else 2500
    cfg = load_config(overrides={
        "seed": seed, "device": "cpu",
        "data": {"name": "ring8", "radius": 1.0, "std": 0.01},
        "model": {"name": "mlp", "z_dim": 2, "g_hidden": [64, 64, 64], "d_hidden": [64, 64, 64]},
        "loss": {"name": "minimax"},
        "train.steps": steps, "train.batch_size": 256, "optim.G.lr": 2e-4, "optim.D.lr": 8e-4,
        "train.log_every": steps, "train.sample_every": steps, "train.checkpoint_every": steps,
    })
    recorder = SampleRecorder(steps // N_SNAPSHOTS, seed + 99)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "run", progress=False, callbacks=[recorder])
        while trainer.step < steps:  # the loop of fit() without its checkpoints and plots
            trainer.train_step()
            recorder.on_step_end(trainer)
        dataset = trainer.exp.dataset
    per_step = [(step, mode_metrics(x, dataset.centers, dataset.std)) for step, x in recorder.snapshots]
    real = dataset.materialise(N_SAMPLES, seed=seed + 3).x
    path = plot_sample_strip(recorder.snapshots, Path(out_dir) / "mode_collapse.png", real=real,
                             centers=dataset.centers)
    final = per_step[-1][1]
    numbers = {
        "steps": [s for s, _ in per_step],
        "modes": [m["modes"] for _, m in per_step],
        "high_quality": [m["high_quality"] for _, m in per_step],
        "reverse_kl": [m["reverse_kl"] for _, m in per_step],
        "final_mode_histogram": final["mode_histogram"],
    }
    return result("mode-collapse", [path], numbers, [
        check("snapshots drawn", len(per_step), f"= {N_SNAPSHOTS}", len(per_step) == N_SNAPSHOTS),
        check("modes covered at the end (of 8; the protocol's 'modes')", final["modes"],
              "reported (no target)", True),
    ])
