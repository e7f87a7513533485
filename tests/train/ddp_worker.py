"""Run by torchrun in tests/train/test_distributed.py: a noise-free toy algorithm (a linear map
fitted to y = 3 x on ring8 points), so that N processes on shards equal one on the whole batch."""

from __future__ import annotations

import sys
from pathlib import Path

from torch import nn

from ganforge.config import ExperimentConfig
from ganforge.train import ALGORITHMS, Trainer
from ganforge.train.algorithms import Algorithm, OptimizerSpec, Phase, register_algorithm


class Fit(Algorithm):
    name = "fit-test"
    generator_name = "net"
    ema_networks = ("net",)
    columns = ("loss_fit", "grad_norm_fit")

    def __init__(self, cfg, dataset, *, sample_shape, num_classes, device, restoring=False):
        super().__init__(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes, device=device)
        self.net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
        self.networks = {"net": self.net}

    def optimizers(self):
        return {"fit": OptimizerSpec(self.net, {"name": "adam", "lr": 1e-2})}

    def phases(self):
        return [Phase("fit", ("fit",))]

    def loss(self, phase, batch, step):
        x = batch["x"]
        return ((self.net(x) - 3 * x) ** 2).mean(), {}

    def snapshot(self, path, generator, step):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        return path


def register() -> None:
    if "fit-test" not in ALGORITHMS:
        register_algorithm("fit-test")(Fit)


def config(batch_size: int, steps: int) -> ExperimentConfig:
    return ExperimentConfig.from_dict({
        "seed": 7, "device": "cpu", "algorithm": {"name": "fit-test"}, "data": {"name": "ring8"},
        "train": {"steps": steps, "batch_size": batch_size, "log_every": 5, "sample_every": 1000,
                  "checkpoint_every": 5, "ema_decay": 0.9}})


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    register()
    out, batch_size, steps = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    Trainer(config(batch_size, steps), out, progress=False, resume=len(sys.argv) > 4).fit()
