"""The stabilisers and conditional variants inside the training loop: wiring, maths of each term
as the trainer applies it, exact resume, and a small learning check for conditional models."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganforge import build_dataset
from ganforge.cli import main
from ganforge.config import ExperimentConfig, load_config
from ganforge.errors import GanforgeError
from ganforge.metrics.modes import mode_metrics
from ganforge.train import Trainer, load_run
from ganforge.train.checkpoint import load_checkpoint
from tests.conftest import TINY_DIGITS, TINY_RING
from tests.train.test_trainer import _assert_same_state


def _tree(base, *, train=None, **sections):
    """``base`` with ``sections`` merged in; ``loss`` and ``stabilisers`` are the gan algorithm's
    options."""
    tree = {**base, "train": {**base["train"], **(train or {})}}
    for key, value in sections.items():
        if key in ("loss", "stabilisers"):
            algorithm = {"name": "gan", **tree.get("algorithm", {})}
            tree["algorithm"] = {**algorithm, key: {**algorithm.get(key, {}), **value}}
        else:
            tree[key] = {**tree.get(key, {}), **value}
    return tree


def _rows(run_dir):
    with (run_dir / "metrics.csv").open() as fh:
        return list(csv.DictReader(fh))


EVERYTHING_DIGITS = _tree(
    TINY_DIGITS,
    model={"conditional": "acgan"},
    stabilisers={"spectral_norm": True, "minibatch_std": True, "minibatch_discrimination": True,
                 "mbd_kernels": 4, "mbd_kernel_dim": 3, "label_smoothing": 0.1, "r1": 1.0,
                 "historical_averaging_d": 1e-3, "historical_averaging_g": 1e-3,
                 "feature_matching": 0.5, "feature_matching_mode": "add",
                 "diffaugment": "color,translation,cutout", "instance_noise": 0.2,
                 "instance_noise_anneal": 5},  # explicit: the default follows train.steps
)
EVERYTHING_RING = _tree(
    TINY_RING,
    model={"conditional": "projection", "g_conditioning": "concat"},
    stabilisers={"pack": 1, "r1": 0.5, "historical_averaging_g": 1e-2, "feature_matching": 1.0,
                 "instance_noise": 0.1, "instance_noise_anneal": 6},
)
PACKED_RING = _tree(TINY_RING, stabilisers={"pack": 4, "spectral_norm": True, "minibatch_std": True})


@pytest.mark.parametrize("tree", [EVERYTHING_DIGITS, EVERYTHING_RING, PACKED_RING],
                         ids=["digits-acgan-all", "ring-projection", "ring-pacgan-sn"])
def test_resume_is_bit_identical_with_stabilisers_and_conditioning(tmp_path, tree):
    steps = tree["train"]["steps"]
    Trainer(ExperimentConfig.from_dict(tree), tmp_path / "full", progress=False).fit()
    half = _tree(tree, train={"steps": steps // 2})
    Trainer(ExperimentConfig.from_dict(half), tmp_path / "split", progress=False).fit()
    Trainer(ExperimentConfig.from_dict(tree), tmp_path / "split", resume=True, progress=False).fit()
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "final.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "final.pt")
    _assert_same_state(a, b)
    for key in ("history_g", "history_d"):
        if a["algorithm"]["stabilisers"][key] is not None:
            for name, t in a["algorithm"]["stabilisers"][key]["averages"].items():
                assert torch.equal(t, b["algorithm"]["stabilisers"][key]["averages"][name])


def test_every_term_is_logged_and_finite(tmp_path):
    Trainer(ExperimentConfig.from_dict(EVERYTHING_DIGITS), tmp_path / "run", progress=False).fit()
    rows = _rows(tmp_path / "run")
    for column in ("label_smoothing", "r1", "hist_avg_D", "hist_avg_G", "feature_matching", "ac_D",
                   "ac_G", "instance_noise"):
        values = [float(r[column]) for r in rows]
        assert values and all(np.isfinite(values)), column
    assert float(rows[-1]["hist_avg_G"]) > 0  # the weights moved away from their running mean


def test_instance_noise_anneals_linearly_to_zero(tmp_path):
    tree = _tree(TINY_RING, stabilisers={"instance_noise": 0.3, "instance_noise_anneal": 9},
                 train={"log_every": 1})
    Trainer(ExperimentConfig.from_dict(tree), tmp_path / "run", progress=False).fit()
    noise = {int(r["step"]): float(r["instance_noise"]) for r in _rows(tmp_path / "run")}
    for step, value in noise.items():  # the row of step s reports the std used by update s - 1
        assert value == pytest.approx(max(0.0, 0.3 * (1 - (step - 1) / 9)), abs=1e-6)


def test_feature_matching_replace_mode_makes_it_the_whole_generator_loss(tmp_path):
    tree = _tree(TINY_RING, stabilisers={"feature_matching": 2.0}, train={"log_every": 1})
    Trainer(ExperimentConfig.from_dict(tree), tmp_path / "run", progress=False).fit()
    for row in _rows(tmp_path / "run"):
        assert float(row["loss_G"]) == pytest.approx(float(row["feature_matching"]), rel=1e-5)


def test_label_smoothing_is_the_bce_with_a_soft_real_target(tmp_path):
    """The trainer's D loss with smoothing s equals BCE(D(x), 1 - s) + BCE(D(G(z)), 0)."""
    tree = _tree(TINY_RING, stabilisers={"label_smoothing": 0.2})
    trainer = Trainer(ExperimentConfig.from_dict(tree), tmp_path / "run", progress=False)
    captured = {}
    original = trainer.algorithm.D.evaluate

    def spy(x, y=None):
        out = original(x, y)
        captured.setdefault("outs", []).append(out.logits.detach())
        return out

    trainer.algorithm.D.evaluate = spy
    stats = trainer.train_step()
    real_logits, fake_logits = captured["outs"][:2]
    expected = (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, 0.8))
                + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    assert stats["loss_D"] == pytest.approx(float(expected), rel=1e-5)


def test_ema_without_warmup_keeps_a_constant_decay(tmp_path):
    tree = _tree(TINY_DIGITS, train={"ema_warmup": False, "steps": 1})
    trainer = Trainer(ExperimentConfig.from_dict(tree), tmp_path / "run", progress=False)
    before = {k: v.clone() for k, v in trainer.exp.emas["G"].model.state_dict().items()}
    trainer.train_step()
    after, live = trainer.exp.emas["G"].model.state_dict(), trainer.algorithm.G.state_dict()
    name = "net.project.0.weight"  # theta_ema = 0.9 theta_ema + 0.1 theta from the first update
    torch.testing.assert_close(after[name], 0.9 * before[name] + 0.1 * live[name])


def test_ttur_gives_each_network_its_own_learning_rate(tmp_path):
    tree = _tree(TINY_RING, train={"lr_g": 1e-4, "lr_d": 4e-4})
    trainer = Trainer(ExperimentConfig.from_dict(tree), tmp_path / "run", progress=False)
    trainer.train_step()
    assert trainer.exp.optimizers["G"].param_groups[0]["lr"] == 1e-4
    assert trainer.exp.optimizers["D"].param_groups[0]["lr"] == 4e-4


@pytest.mark.parametrize(("overrides", "match"), [
    ({"algorithm": {"loss": {"name": "hinge"}, "stabilisers": {"label_smoothing": 0.1}}}, "cross-entropy"),
    ({"algorithm": {"stabilisers": {"label_smoothing": 1.0}}}, "label_smoothing must lie"),
    ({"algorithm": {"stabilisers": {"diffaugment": "colour"}}}, "colour"),
    ({"algorithm": {"stabilisers": {"diffaugment": "color"}}}, "images"),
    ({"algorithm": {"stabilisers": {"pack": 0}}}, "algorithm.stabilisers.pack must be at least 1"),
    ({"algorithm": {"stabilisers": {"feature_matching_mode": "sum"}}}, "feature_matching_mode"),
    ({"algorithm": {"stabilisers": {"spectral_nrom": True}}},
     "unknown key 'algorithm.stabilisers.spectral_nrom'"),
    ({"algorithm": {"stabilisers": {"pack": "two"}}}, "algorithm.stabilisers.pack must be an integer"),
    ({"model": {"conditional": "acgan"}, "data": {"name": "spiral"}}, "needs labelled data"),
])
def test_bad_stabiliser_settings_fail_before_anything_is_written(tmp_path, overrides, match):
    tree = {**TINY_RING, **{k: {**TINY_RING.get(k, {}), **v} if k != "data" else v
                           for k, v in overrides.items()}}
    with pytest.raises(GanforgeError, match=match) as err:
        Trainer(ExperimentConfig.from_dict(tree), tmp_path / "run", progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()


def test_conditional_cli_sample_writes_labels_and_class_grids(tmp_path, capsys):
    run = tmp_path / "run"
    tree = _tree(TINY_DIGITS, model={"conditional": "projection"})
    Trainer(ExperimentConfig.from_dict(tree), run, progress=False).fit()
    assert main(["sample", str(run), "-n", "12", "--class", "7", "-o", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as f:
        assert f["x"].shape == (12, 1, 8, 8) and f["y"].tolist() == [7] * 12
    assert main(["sample", str(run), "-n", "20", "-o", str(tmp_path / "grid.png")]) == 0
    from PIL import Image

    with Image.open(tmp_path / "grid.png") as im:  # 10 class rows of 2 samples
        assert im.size[1] > im.size[0] * 3
    capsys.readouterr()
    assert main(["evaluate", str(run), "-n", "200", "--metrics", "fid,class",
                 "--cache", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert "class_match_lenet_digits" in out and "intra_fid_lenet_digits" in out
    assert main(["sample", str(run), "--class", "10", "-o", str(tmp_path / "bad.npz")]) == 2
    assert "out of range" in capsys.readouterr().err and not (tmp_path / "bad.npz").exists()
    plain = tmp_path / "plain"
    Trainer(ExperimentConfig.from_dict(TINY_DIGITS), plain, progress=False).fit()
    assert main(["sample", str(plain), "--class", "1", "-o", str(tmp_path / "p.npz")]) == 2
    assert "not class-conditional" in capsys.readouterr().err


@pytest.mark.parametrize("conditional", ["concat", "acgan", "projection"])
def test_conditional_mlp_learns_to_put_each_label_on_its_own_mode(tmp_path, one_thread, conditional):
    """ring8 with the mode index as label: after a short run, samples asked for mode k land
    nearest to centre k far more often than chance (1/8)."""
    overrides = {"model.conditional": conditional, "model.g_conditioning": "concat", "train.steps": 1500,
                 "train.sample_every": 10_000, "train.checkpoint_every": 10_000, "train.log_every": 100}
    cfg = load_config("ring8-mlp", overrides=overrides)
    Trainer(cfg, tmp_path / "run", progress=False).fit()
    run = load_run(tmp_path / "run")
    y = run.labels(800)
    x = run.sample(800, labels=y)
    centers = build_dataset({"name": "ring8"}).centers
    match = (torch.cdist(x, centers).argmin(1) == y).float().mean().item()
    assert match > 0.9, (conditional, match)
    assert mode_metrics(x, centers, 0.02)["modes"] >= 6
