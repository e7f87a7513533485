"""The loss family selected by name: objectives built from config sections, and trained briefly."""

from __future__ import annotations

import pytest
import torch
from tests.conftest import TINY_RING
from torch import nn

from ganforge import load_config
from ganforge.errors import GanforgeError
from ganforge.maths import (
    discriminator_loss,
    gradient_penalty,
    hinge_discriminator_loss,
    lsgan_discriminator_loss,
    r1_penalty,
)
from ganforge.train import Trainer
from ganforge.train.objectives import OBJECTIVES, build_objective


class Affine(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 1).double()

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return 0.5 * x.pow(2).sum(1) + self.lin(x).squeeze(1)


def batches() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return (torch.randn(8, 2, generator=g, dtype=torch.float64),
            torch.randn(8, 2, generator=g, dtype=torch.float64))


def test_every_new_loss_is_registered_by_name():
    assert {"lsgan", "hinge", "wgan", "wgan-gp", "r1"} <= set(OBJECTIVES.names())


@pytest.mark.parametrize(("name", "d_loss"), [("lsgan", lsgan_discriminator_loss),
                                              ("hinge", hinge_discriminator_loss)])
def test_paired_objectives_use_the_pure_losses(name, d_loss):
    D, (real, fake) = Affine(), batches()
    out = build_objective({"name": name}).d_phase(D, real, fake)
    assert out.loss.item() == pytest.approx(d_loss(D(real), D(fake)).item(), rel=1e-12)


def test_wgan_gp_adds_the_weighted_penalty():
    D, (real, fake) = Affine(), batches()
    torch.manual_seed(5)
    loss = build_objective({"name": "wgan-gp", "gp_weight": 3.0}).d_phase(D, real, fake).loss
    torch.manual_seed(5)
    gp = gradient_penalty(D, real, fake)
    expected = D(fake).mean() - D(real).mean() + 3.0 * gp
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)


def test_r1_adds_half_gamma_times_the_penalty():
    D, (real, fake) = Affine(), batches()
    loss = build_objective({"name": "r1", "gamma": 4.0}).d_phase(D, real, fake).loss
    expected = discriminator_loss(D(real), D(fake)) + 2.0 * r1_penalty(D, real)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)


def test_wgan_clips_every_critic_parameter_after_a_step():
    D = nn.Linear(3, 4)
    with torch.no_grad():
        D.weight.mul_(100)
    build_objective({"name": "wgan", "clip": 0.05}).after_d_step(D)
    assert all(p.abs().max() <= 0.05 for p in D.parameters())
    assert float(D.weight.abs().max()) == pytest.approx(0.05)


@pytest.mark.parametrize("section", [{"name": "wgan", "clip": 0.0}, {"name": "wgan-gp", "gp_weight": -1},
                                     {"name": "r1", "gamma": "big"}])
def test_bad_weights_are_one_line_errors(section):
    with pytest.raises(GanforgeError, match="loss"):
        build_objective(section)


def test_unknown_key_names_the_accepted_ones():
    with pytest.raises(GanforgeError, match="gp_weight"):
        build_objective({"name": "wgan-gp", "lambda": 10})


@pytest.mark.parametrize("loss", [{"name": "lsgan"}, {"name": "hinge"}, {"name": "wgan", "clip": 0.02},
                                  {"name": "wgan-gp"}, {"name": "r1", "gamma": 1.0}])
def test_each_objective_trains_with_the_real_trainer(tmp_path, loss):
    cfg = load_config(config_file=None, overrides={
        **{f"{k}": v for k, v in TINY_RING.items() if k != "train"},
        **{f"train.{k}": v for k, v in TINY_RING["train"].items()}, "algorithm.loss": loss, "train.steps": 4})
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    stats = [trainer.train_step() for _ in range(4)]
    assert all(torch.isfinite(torch.tensor([s["loss_D"], s["loss_G"]])).all() for s in stats)
    if loss["name"] == "wgan":
        assert all(p.abs().max() <= 0.02 + 1e-7 for p in trainer.algorithm.D.parameters())
