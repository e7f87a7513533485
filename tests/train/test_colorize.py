"""The colorize algorithm's learning check: L -> ab on photo patches, scored on the held-out
photographs. Per-pixel error is not the measure: the grey answer (ab = 0) has the lowest L1 of
all (the benchmark's PSNR: grey 17.7 dB, L1 model 17.2, cGAN 16.8), since a plausible wrong colour
costs more than none. What a colorizer learns is which colour goes where: its (a, b) correlate with
the true ones, where grey's correlation is 0."""

from __future__ import annotations

import pytest
import torch

from ganforge.config import ExperimentConfig
from ganforge.data import build_dataset
from ganforge.metrics.restoration import colourfulness
from ganforge.train import Trainer


@pytest.mark.slow
def test_colorize_learns_chroma_better_than_grey(tmp_path):
    """After a few hundred steps the cGAN's held-out a and b each correlate with the true a and b
    (Pearson r over all held-out pixels), and its outputs carry colour (colourfulness above 10)."""
    pytest.importorskip("skimage")
    torch.set_num_threads(1)
    data = {"name": "photo-patches", "task": "colorization", "size": 32, "n_patches": 4096,
            "augment": True}
    cfg = ExperimentConfig.from_dict({
        "seed": 0, "algorithm": {"name": "colorize", "l1_weight": 100.0},
        "data": data,
        "model": {"name": "pix2pix", "width": 16, "d_width": 16, "depth": 5, "receptive_field": 16},
        "train": {"steps": 600, "batch_size": 16, "log_every": 100, "sample_every": 10**6,
                  "checkpoint_every": 10**6}})
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    trainer.fit()
    algo = trainer.exp.algorithm
    test = build_dataset({**data, "split": "test"})
    ab = algo.translate(test.cond, generator=torch.Generator().manual_seed(0))
    r = [torch.corrcoef(torch.stack([ab[:, c].flatten(), test.x[:, c].flatten()]))[0, 1].item()
         for c in (0, 1)]
    print("correlation of a, b with the truth:", r)
    assert min(r) > 0.2, r
    assert colourfulness(algo.colorize(test.cond)).mean().item() > 10
