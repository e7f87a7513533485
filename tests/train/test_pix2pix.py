"""The pix2pix algorithm through the shared Trainer: its losses against hand computations, the
L1-only baseline leaves D untouched, bit-identical resume, a loaded run translates with no data,
the latent tools refuse it, and a short learning check.

The pairs are a stand-in for edges2fashion: scikit-learn's digits at 32 x 32 (targets) and their
Sobel edge maps (inputs)."""

from __future__ import annotations

import argparse

import pytest
import torch
import torch.nn.functional as F

from ganforge.config import ExperimentConfig
from ganforge.data.digits import digits
from ganforge.data.paired import PairedDataset, sobel_edges
from ganforge.errors import GanforgeError
from ganforge.train import Experiment, Trainer, load_run
from ganforge.train.algorithms.pix2pix import Pix2Pix, pix2pix_d_loss, pix2pix_g_loss
from tests.train._image_to_image import assert_same_networks, resumed_checkpoints, tiny_config, train_tiny_run

TINY = {
    "seed": 2,
    "algorithm": {"name": "pix2pix", "l1_weight": 10.0},
    "data": {"name": "digits", "size": 32},
    "model": {"name": "pix2pix", "width": 4, "d_width": 4, "depth": 3, "receptive_field": 16},
    "train": {"steps": 8, "batch_size": 8, "log_every": 1, "sample_every": 4,
              "checkpoint_every": 4, "num_fixed_samples": 6},
}


def _cfg(**changes) -> ExperimentConfig:
    return tiny_config(TINY, **changes)


def edge_pairs(n: int = 400, start: int = 0) -> PairedDataset:
    base = digits(size=32)
    x = base.x[start:start + n]
    return PairedDataset(x, sobel_edges(x, 0.15), base.y[start:start + n], name="digit-edges",
                         num_classes=10)


@pytest.fixture(scope="module")
def data():
    return edge_pairs()


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data):
    return train_tiny_run(tmp_path_factory, "pix2pix", _cfg(), data)


# ---------------------------------------------------------------------- the losses
def test_d_loss_is_half_the_bce_of_real_pairs_as_1_and_fake_pairs_as_0():
    real, fake = torch.tensor([[0.3, -1.0], [2.0, 0.1]]), torch.tensor([[-0.5, 1.5], [0.0, -2.0]])
    by_hand = 0.5 * (-torch.log(torch.sigmoid(real)).mean() - torch.log(1 - torch.sigmoid(fake)).mean())
    assert torch.allclose(pix2pix_d_loss(real, fake), by_hand)


def test_g_loss_is_non_saturating_cgan_plus_weighted_l1():
    logits = torch.tensor([0.2, -0.7, 1.1])
    out, target = torch.tensor([0.5, -0.5, 1.0]), torch.tensor([0.0, -1.0, 0.0])
    loss, adv, l1 = pix2pix_g_loss(logits, out, target, 100.0)
    assert torch.allclose(adv, -torch.log(torch.sigmoid(logits)).mean())
    assert torch.allclose(l1, torch.tensor(2.0 / 3))
    assert torch.allclose(loss, adv + 100 * l1)
    loss0, adv0, _ = pix2pix_g_loss(None, out, target, 3.0)
    assert adv0 == 0 and torch.allclose(loss0, 3 * l1)


def test_the_phases_compute_the_paper_losses(data):
    algo: Pix2Pix = Experiment(_cfg(), "cpu", dataset=data).algorithm
    batch = {k: v[:8] for k, v in data.tensors().items()}
    c, x = batch["cond"], batch["x"]
    state = algo.noise.get_state()
    loss_g, stats = algo.loss("G", batch, 0)
    gen = torch.Generator()
    gen.set_state(state)
    fake = algo.G(c, gen)
    logits = algo.D(c, fake)
    l1 = (fake - x).abs().mean()
    expected = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)) + 10.0 * l1
    assert torch.allclose(loss_g, expected, atol=1e-6) and stats["l1"] == pytest.approx(l1.item(), rel=1e-5)
    state = algo.noise.get_state()
    loss_d, stats = algo.loss("D", batch, 0)
    gen.set_state(state)
    with torch.no_grad():
        fake = algo.G(c, gen)
    expected = pix2pix_d_loss(algo.D(c, x), algo.D(c, fake))
    assert torch.allclose(loss_d, expected, atol=1e-6) and 0 < stats["real_score"] < 1


def test_l1_only_never_touches_d(tmp_path, data):
    calls = []
    trainer = Trainer(_cfg(algorithm={"adversarial": False}), tmp_path / "l1", progress=False, dataset=data)
    assert [p.name for p in trainer.exp.phases] == ["G"]
    trainer.exp.algorithm.D.register_forward_hook(lambda *a: calls.append(1))
    d_before = {k: v.clone() for k, v in trainer.exp.algorithm.D.state_dict().items()}
    trainer.fit()
    assert not calls
    for k, v in trainer.exp.algorithm.D.state_dict().items():
        assert torch.equal(v, d_before[k]), k
    header = (tmp_path / "l1" / "metrics.csv").read_text().splitlines()[0]
    assert "l1" in header and "loss_D" not in header


def test_resume_is_bit_identical(tmp_path, data):
    a, b = resumed_checkpoints(_cfg, tmp_path, data, 4)
    assert_same_networks(a, b)
    assert torch.equal(a["algorithm"]["noise"], b["algorithm"]["noise"])


# ---------------------------------------------------------------------- a loaded run
def test_a_loaded_run_translates_with_no_data(tiny_run, data):
    run = load_run(tiny_run)
    algo: Pix2Pix = run.algorithm
    assert algo.dataset is None and algo.cond_shape == (1, 32, 32)  # from the checkpoint, not the config
    assert "cond_shape" not in run.config.algorithm
    assert algo.fixed_cond.shape == (6, 1, 32, 32) and algo.fixed_target.shape == (6, 1, 32, 32)
    x = run.sample(10, seed=1)           # the fixed pairs' inputs, cycled
    assert x.shape == (10, 1, 32, 32) and torch.equal(x, run.sample(10, seed=1))
    out = algo.translate(data.cond[:3], generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 1, 32, 32)
    assert torch.equal(run.sample(3, seed=0, labels=data.cond[:3]), out)
    panels = algo.panels(4)
    assert list(panels) == ["input", "output", "target"]
    assert sorted(p.name for p in (tiny_run / "samples").glob("*.png")) == ["step_0000004.png",
                                                                           "step_0000008.png"]


def test_the_latent_tools_refuse_an_image_to_image_run(tiny_run):
    from ganforge.latent.cli import _load

    args = argparse.Namespace(run_dir=str(tiny_run), checkpoint="final", device="cpu", ema=False)
    with pytest.raises(GanforgeError, match="no latent space"):
        _load(args)


@pytest.mark.parametrize("changes, fragment", [
    ({"algorithm": {"adversarial": False, "l1_weight": 0.0}}, "leaves G no loss"),
    ({"algorithm": {"l1_weight": -1.0}}, "l1_weight=-1"),
    ({"algorithm": {"cond_shape": [3, 32, 32]}}, "cond_shape"),
    ({"model": {"in_channels": 3}}, "in_channels=3"),
    ({"algorithm": {"loss": {"name": "hinge"}}}, "unknown key 'algorithm.loss' for algorithm 'pix2pix'"),
])
def test_bad_configs_are_one_line_errors(changes, fragment, data):
    with pytest.raises(GanforgeError, match=fragment) as err:
        Experiment(_cfg(**changes), "cpu", dataset=data)
    assert "\n" not in str(err.value)


def test_unpaired_data_is_refused():
    with pytest.raises(GanforgeError, match="field 'cond'"):
        Experiment(_cfg(), "cpu", dataset=digits(size=32))


def test_l1_falls_well_below_the_blank_and_identity_baselines(tmp_path, data):
    from ganforge.metrics.paired import baselines

    pytest.importorskip("skimage")
    held_out = edge_pairs(200, start=1500)
    cfg = _cfg(algorithm={"adversarial": False, "l1_weight": 1.0},
               model={"width": 8, "depth": 5, "dropout": 0.0},
               train={"steps": 150, "batch_size": 32, "sample_every": 1000, "checkpoint_every": 1000,
                      "log_every": 50},
               optim={"G": {"name": "adam", "lr": 2e-3, "betas": [0.5, 0.999]}})
    Trainer(cfg, tmp_path / "learn", progress=False, dataset=data).fit()
    algo = load_run(tmp_path / "learn").algorithm
    out = algo.translate(held_out.cond)
    l1 = (out - held_out.x).abs().mean().item()
    base = baselines(held_out.cond, held_out.x)
    assert l1 < 0.6 * base["blank"]["l1"] and l1 < 0.6 * base["identity"]["l1"], (l1, base)


@pytest.mark.slow
def test_pix2pix_learns_edges_to_fashion(tmp_path):
    """L1 + cGAN on real edges2fashion pairs: held-out L1 well below the blank translator's, and
    a higher PSNR and SSIM."""
    from pathlib import Path

    from ganforge.data import build_dataset
    from ganforge.metrics.paired import baselines, mean_scores

    pytest.importorskip("skimage")
    root = Path(__file__).resolve().parents[3] / "shared" / "data" / "fashion-mnist"
    if not (root / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("needs Fashion-MNIST in shared/data/fashion-mnist")
    section = {"name": "edges2fashion", "root": str(root)}
    cfg = _cfg(data={**section, "limit": 5000}, algorithm={"l1_weight": 100.0},
               model={"width": 8, "d_width": 8, "depth": 5, "receptive_field": 70},
               train={"steps": 400, "batch_size": 32, "sample_every": 1000, "checkpoint_every": 1000,
                      "log_every": 100})
    Trainer(cfg, tmp_path / "learn", progress=False).fit()
    algo = load_run(tmp_path / "learn").algorithm
    test = build_dataset({**section, "split": "test", "limit": 500})
    scores = mean_scores(algo.translate(test.cond, generator=torch.Generator().manual_seed(0)), test.x)
    blank = baselines(test.cond, test.x)["blank"]
    assert scores["l1"] < 0.5 * blank["l1"], (scores, blank)
    assert scores["psnr"] > blank["psnr"] + 5 and scores["ssim"] > blank["ssim"] + 0.2, (scores, blank)
