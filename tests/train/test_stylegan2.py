"""StyleGAN2's training: lazy R1 (schedule and weight), path-length regularisation (the J^T y
estimate against autograd's Jacobian, the pl_mean EMA, the penalty), the c-adjusted Adam
settings, validation, the preset, bit-identical resume across both lazy phases, and (slow) a
learning check on the embedded digits."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ganforge.cli import main
from ganforge.config import ExperimentConfig, load_config
from ganforge.errors import GanforgeError
from ganforge.train import Experiment, Trainer
from ganforge.train.algorithms.stylegan2 import PAPER_ADAM, StyleGAN2, lazy_adam, path_lengths
from ganforge.train.checkpoint import load_checkpoint
from ganforge.train.run import load_run
from tests.train.test_trainer import _assert_same_state

TINY_SG2 = {
    "seed": 2,
    "algorithm": {"name": "stylegan2", "r1_gamma": 1.0},
    "data": {"name": "digits", "size": 8},
    "model": {"name": "stylegan2", "z_dim": 8, "w_dim": 8, "mapping_layers": 2, "width": 4,
              "max_width": 8},
    "train": {"steps": 20, "batch_size": 8, "log_every": 5, "sample_every": 10,
              "checkpoint_every": 10, "num_fixed_samples": 8, "ema_decay": 0.9},
}


def _cfg(**sections) -> ExperimentConfig:
    tree = {**TINY_SG2}
    for key, value in sections.items():
        tree[key] = {**tree.get(key, {}), **value}
    return ExperimentConfig.from_dict(tree)


def _experiment(**sections) -> Experiment:
    return Experiment(_cfg(**sections), "cpu")


# --------------------------------------------------------------------------- phases, optimisers
def test_lazy_phases_run_at_their_intervals():
    exp = _experiment()
    phases = {p.name: p for p in exp.phases}
    assert [p.name for p in exp.phases] == ["D_reg", "D", "G_reg", "G"]
    assert [s for s in range(40) if phases["D_reg"].active(s)] == [0, 16, 32]
    assert [s for s in range(13) if phases["G_reg"].active(s)] == [0, 4, 8, 12]
    assert all(phases["D"].active(s) and phases["G"].active(s) for s in range(40))
    assert phases["D_reg"].uses_data and not phases["G_reg"].uses_data


def test_adam_is_adjusted_by_c_for_the_configured_interval():
    exp = _experiment()
    for name, k in (("D", 16), ("G", 4)):
        group = exp.optimizers[name].param_groups[0]
        c = k / (k + 1)
        assert group["lr"] == pytest.approx(0.0025 * c)
        assert group["betas"] == pytest.approx((0.0, 0.99 ** c))
    exp = _experiment(phases={"D_reg": {"every": 8}})
    assert [p.every for p in exp.phases if p.name == "D_reg"] == [8]
    assert exp.optimizers["D"].param_groups[0]["lr"] == pytest.approx(0.0025 * 8 / 9)
    # no regulariser: no phase and the paper's plain settings
    exp = _experiment(algorithm={"r1_gamma": 0.0, "pl_weight": 0.0})
    assert [p.name for p in exp.phases] == ["D", "G"]
    assert exp.optimizers["D"].param_groups[0]["lr"] == pytest.approx(0.0025)
    assert lazy_adam(None) == PAPER_ADAM


def test_r1_phase_weighs_the_penalty_by_gamma_over_2_times_the_interval():
    exp = _experiment(algorithm={"r1_gamma": 3.0})
    algo: StyleGAN2 = exp.algorithm
    batch = {"x": torch.randn(8, 1, 8, 8)}
    loss, _ = algo.loss("D_reg", batch, 0)
    x = batch["x"].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(algo.D(x).sum(), x)
    r1 = grad.pow(2).sum(dim=(1, 2, 3)).mean()
    torch.testing.assert_close(loss, r1 * 3.0 / 2 * 16)
    assert algo._last["r1"] == pytest.approx(r1.item())
    loss.backward()  # differentiable for D's update
    assert algo.D.from_rgb.weight.grad is not None


# --------------------------------------------------------------------------- path length
def test_path_length_estimate_matches_the_full_jacobian():
    """||J_w^T y|| from one backward pass equals J^T y built from autograd's full Jacobian of the
    synthesis network (the RMS over the style layers of the per-layer norms)."""
    exp = _experiment()
    G = exp.algorithm.G.double()
    G.eval()  # no mixing: the styles are a function of z alone
    G.noise_mode = "none"
    z = torch.randn(3, 8, dtype=torch.double)
    noise = torch.Generator().manual_seed(5)
    got = path_lengths(G, z, torch.Generator().manual_seed(5))
    ws = G.styles(z).detach()
    img = G.synthesis(ws)
    y = torch.randn(img.shape, generator=noise).double() / math.sqrt(img.shape[2] * img.shape[3])
    jac = torch.autograd.functional.jacobian(G.synthesis, ws)       # (N, C, H, W, N, L, D)
    per_sample = torch.stack([torch.einsum("chw,chwld->ld", y[i], jac[i, :, :, :, i])
                              for i in range(len(z))])             # J_w^T y: (N, L, D)
    expected = per_sample.pow(2).sum(2).mean(1).sqrt()
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)


def test_pl_mean_is_an_ema_and_the_penalty_is_weighted_by_the_interval():
    exp = _experiment(algorithm={"pl_weight": 2.0, "pl_decay": 0.01, "pl_batch_shrink": 2})
    algo: StyleGAN2 = exp.algorithm
    algo.G.eval()
    algo.G.noise_mode = "none"
    means = []
    for _ in range(3):
        state = algo.noise.get_state()
        before = algo.pl_mean.item()
        loss, _ = algo.loss("G_reg", None, 0)
        after = algo.pl_mean.item()
        algo.noise.set_state(state)  # redraw the same z and y
        z = algo.G.sample_z(4, algo.noise)  # batch 8 / shrink 2
        lengths = path_lengths(algo.G, z, algo.noise).detach()
        a = lengths.mean().item()
        assert after == pytest.approx(before + 0.01 * (a - before), rel=1e-5)
        torch.testing.assert_close(loss.detach(), ((lengths - after) ** 2).mean() * 2.0 * 4,
                                   rtol=1e-5, atol=1e-7)
        means.append(after)
    assert 0 < means[0] < means[1] < means[2]


def test_regularisers_log_measured_values(tmp_path):
    Trainer(_cfg(train={"steps": 5, "log_every": 1}), tmp_path / "run", progress=False).fit()
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    first = dict(zip(header, rows[1].split(","), strict=True))
    assert float(first["r1"]) > 0 and float(first["pl_length"]) > 0 and float(first["pl_mean"]) > 0
    assert first["loss_D_reg"] and first["loss_G_reg"]


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize("key,value", [("r1_gamma", -1.0), ("pl_weight", "a"), ("pl_decay", 0.0),
                                       ("pl_batch_shrink", 0), ("nope", 1)])
def test_bad_options_are_one_line_errors(key, value):
    with pytest.raises(GanforgeError):
        _experiment(algorithm={key: value})


def test_path_length_needs_a_style_generator():
    with pytest.raises(GanforgeError, match="style-based"):
        Experiment(ExperimentConfig.from_dict({**TINY_SG2, "model": {"name": "dcgan", "width": 4}}), "cpu")
    exp = Experiment(ExperimentConfig.from_dict({**TINY_SG2, "model": {"name": "dcgan", "width": 4},
                                                 "algorithm": {"name": "stylegan2", "pl_weight": 0}}), "cpu")
    assert [p.name for p in exp.phases] == ["D_reg", "D", "G"]


def test_cli_refuses_a_size_that_is_not_a_power_of_two(tmp_path, capsys):
    from PIL import Image

    images, out, config = tmp_path / "images", tmp_path / "run", tmp_path / "sg2.yaml"
    images.mkdir()
    for i in range(4):
        Image.new("L", (12, 12), color=40 * i).save(images / f"{i}.png")
    data = {"name": "folder", "root": str(images), "size": 12, "channels": 1}
    config.write_text(json.dumps({**TINY_SG2, "data": data}))
    code = main(["train", "--config", str(config), "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) <= 2 and "power of two" in err[0]
    assert not out.exists()


def test_the_preset_builds_at_32_px():
    cfg = load_config("fashion-stylegan2")
    assert cfg.data["pad_to"] == 32 and cfg.algorithm["name"] == "stylegan2"
    exp = Experiment(cfg, "cpu", sample_shape=(1, 32, 32), num_classes=10)
    G = exp.algorithm.G
    assert G.num_ws == 8 and len(G.mapping.net) == 17  # PixelNorm + 8 x (dense, lrelu)
    assert G.sample(2, torch.Generator().manual_seed(0)).shape == (2, 1, 32, 32)


# --------------------------------------------------------------------------- resume
def test_resume_is_bit_identical_across_both_lazy_phases(tmp_path):
    """20 steps straight vs 10 + 10: the split falls between R1 steps 0 and 16 and between
    path-length steps 8 and 12."""
    full = Trainer(_cfg(), tmp_path / "full", progress=False)
    full.fit()
    Trainer(_cfg(train={"steps": 10}), tmp_path / "split", progress=False).fit()
    resumed = Trainer(_cfg(), tmp_path / "split", resume=True, progress=False)
    assert resumed.step == 10
    resumed.fit()
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "final.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "final.pt")
    assert a["step"] == b["step"] == 20
    _assert_same_state(a, b)
    for name, tensor in a["ema"]["G"]["model"].items():
        assert torch.equal(tensor, b["ema"]["G"]["model"][name]), name
    assert torch.equal(a["algorithm"]["pl_mean"], b["algorithm"]["pl_mean"])
    assert a["algorithm"]["pl_mean"] > 0
    assert torch.equal(a["nets"]["G"]["w_avg"], b["nets"]["G"]["w_avg"])
    # a loaded run's samples are a function of the seed: eval mode uses the fixed noise maps
    run = load_run(tmp_path / "full")
    first = run.sample(4, seed=1)
    torch.randn(3)  # the global RNG does not matter
    assert torch.equal(first, run.sample(4, seed=1))


# --------------------------------------------------------------------------- learning
@pytest.mark.slow
def test_stylegan2_learns_the_digits(tmp_path):
    """16 px digits, tiny widths, 600 steps (about 1 min of one CPU thread): the FID in the shipped
    digits classifier's feature space falls from about 420 (untrained G) to about 30."""
    from ganforge.data.base import build_dataset
    from ganforge.metrics.extractors import LeNetExtractor
    from ganforge.metrics.fid import fid_from_features
    from tests.conftest import train_tiny

    cfg = ExperimentConfig.from_dict({
        "seed": 0, "algorithm": {"name": "stylegan2", "r1_gamma": 0.1},
        "data": {"name": "digits", "size": 16},
        "model": {"name": "stylegan2", "z_dim": 16, "w_dim": 16, "mapping_layers": 8, "width": 8,
                  "max_width": 32},
        "train": {"steps": 600, "batch_size": 32, "log_every": 50, "sample_every": 600,
                  "checkpoint_every": 600, "num_fixed_samples": 16, "threads": 1},
    })
    extractor = LeNetExtractor("digits")
    real = extractor(build_dataset(cfg.data).x)[0]

    def fid(G) -> float:
        G.eval()
        return fid_from_features(real, extractor(G.sample(1000, torch.Generator().manual_seed(1)))[0])

    untrained = fid(Experiment(cfg, "cpu").algorithm.G)
    trained = fid(load_run(train_tiny(cfg, tmp_path / "run")).algorithm.G)
    assert untrained > 200 and trained < 0.25 * untrained and trained < 80, (untrained, trained)
