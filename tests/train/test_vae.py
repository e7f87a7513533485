"""The VAE algorithm: trains on the ELBO through the shared Trainer, its held-out bounds, the CLI
and the latent tools on it, and its one-line errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from ganforge.cli import main
from ganforge.config import ExperimentConfig, load_config
from ganforge.errors import GanforgeError
from ganforge.train import Experiment, Trainer, load_run
from ganforge.train.checkpoint import load_checkpoint

TINY_VAE = {
    "seed": 2,
    "algorithm": {"name": "vae", "kl_warmup": 20},
    "data": {"name": "digits", "size": 8},
    "model": {"name": "vae-mlp", "z_dim": 4, "hidden": [64]},
    "optim": {"vae": {"lr": 3e-3}},
    "train": {"steps": 60, "batch_size": 64, "log_every": 10, "sample_every": 30,
              "checkpoint_every": 30, "num_fixed_samples": 16},
}


def _cfg(**changes) -> ExperimentConfig:
    tree = {**TINY_VAE}
    for key, value in changes.items():
        tree[key] = {**tree.get(key, {}), **value}
    return ExperimentConfig.from_dict(tree)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("vae") / "run"
    Trainer(_cfg(train={"steps": 300}), run, progress=False).fit()
    return run


def test_the_vae_learns_and_logs_its_elbo_terms(vae_run):
    with (vae_run / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {"loss_vae", "neg_elbo", "recon_nll", "kl", "kl_weight", "grad_norm_vae", "lr_vae"} <= set(rows[0])
    first, last = float(rows[0]["neg_elbo"]), float(rows[-1]["neg_elbo"])
    assert last < 0.7 * first, (first, last)  # -ELBO of 64 binarised pixels: 41 -> 25 nats
    assert float(rows[-1]["neg_elbo"]) == pytest.approx(
        float(rows[-1]["recon_nll"]) + float(rows[-1]["kl"]), rel=1e-4)
    assert float(rows[0]["kl_weight"]) < 1.0 and float(rows[-1]["kl_weight"]) == 1.0  # warm-up
    assert {p.name for p in (vae_run / "plots").iterdir()} == {"losses.png", "grad_norms.png"}
    state = load_checkpoint(vae_run / "checkpoints" / "final.pt")
    assert set(state["nets"]) == {"encoder", "decoder"} and set(state["optimizers"]) == {"vae"}


def test_held_out_bounds_iwae_below_the_negative_elbo(vae_run):
    run = load_run(vae_run)
    x = run.experiment.dataset.x if run.experiment.dataset is not None else None
    from ganforge.data import build_dataset

    x = build_dataset({"name": "digits", "size": 8}).x[:300]
    bounds = run.algorithm.log_likelihood_bounds(x, 200, torch.Generator().manual_seed(0))
    assert all(v.shape == (300,) for v in bounds.values())
    assert torch.allclose(bounds["neg_elbo"], bounds["recon_nll"] + bounds["kl"])
    assert bounds["nll_iwae"].mean() <= bounds["neg_elbo"].mean()
    assert (bounds["kl"] >= 0).all()
    # k = 1: the importance-weighted bound is a one-sample ELBO estimate (same expectation)
    one = run.algorithm.log_likelihood_bounds(x, 1, torch.Generator().manual_seed(1))
    assert float(one["nll_iwae"].mean()) == pytest.approx(float(one["neg_elbo"].mean()), rel=0.05)
    # the same generator seed gives the same bounds (a static binarisation of the test data)
    again = run.algorithm.log_likelihood_bounds(x, 200, torch.Generator().manual_seed(0))
    assert torch.equal(again["nll_iwae"], bounds["nll_iwae"])


def test_resume_is_bit_identical(tmp_path):
    Trainer(_cfg(), tmp_path / "full", progress=False).fit()
    Trainer(_cfg(train={"steps": 30}), tmp_path / "split", progress=False).fit()
    Trainer(_cfg(), tmp_path / "split", resume=True, progress=False).fit()
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "final.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "final.pt")
    for net in ("encoder", "decoder"):
        for name, t in a["nets"][net].items():
            assert torch.equal(t, b["nets"][net][name]), f"{net}.{name}"


def test_cli_evaluate_sample_and_latent_tools_work_on_a_vae_run(vae_run, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(vae_run), "--metrics", "elbo,iwae,fid", "-n", "200",
                 "--importance-samples", "50", "-o", str(out), "--cache", str(tmp_path / "c")]) == 0
    result = json.loads(out.read_text())
    m = result["metrics"]
    assert m["nll_iwae"] <= m["neg_elbo"] and "fid_lenet_digits" in m
    assert result["likelihood"]["importance_samples"] == 50
    assert main(["sample", str(vae_run), "-n", "16", "-o", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as f:
        assert f["x"].shape == (16, 1, 8, 8) and -1 <= f["x"].min() and f["x"].max() <= 1
    assert main(["sample", str(vae_run), "-n", "16", "-o", str(tmp_path / "s.png")]) == 0
    assert main(["latent", str(vae_run), "interpolate", "-o", str(tmp_path / "i.png")]) == 0
    assert main(["latent", str(vae_run), "arithmetic", "--a", "0", "--b", "1", "--c", "2",
                 "-o", str(tmp_path / "a.png")]) == 0
    for name in ("i.png", "a.png", "s.png"):
        assert (tmp_path / name).stat().st_size > 100
    # the manifold needs a 2-d latent
    capsys.readouterr()
    assert main(["latent", str(vae_run), "manifold", "-o", str(tmp_path / "m.png")]) == 2
    assert "2-d latent" in capsys.readouterr().err and not (tmp_path / "m.png").exists()


def test_manifold_of_a_two_dimensional_latent(tmp_path):
    from ganforge.latent.manifold import latent_manifold, manifold_codes

    codes = manifold_codes(4)
    assert codes.shape == (16, 2)
    assert torch.allclose(codes[:4, 1], codes[0, 1].expand(4)) and (codes[:4, 0].diff() > 0).all()
    assert codes[0, 1] > 0 > codes[-1, 1]  # z_2 decreases from the top row
    assert torch.allclose(codes[:, 0].mean(), torch.tensor(0.0), atol=1e-6)  # symmetric quantiles
    run = tmp_path / "run"
    Trainer(_cfg(model={"z_dim": 2}, train={"steps": 10}), run, progress=False).fit()
    assert latent_manifold(load_run(run).generator, 5).shape == (25, 1, 8, 8)
    assert main(["latent", str(run), "manifold", "-n", "6", "-o", str(tmp_path / "m.png")]) == 0
    from PIL import Image

    with Image.open(tmp_path / "m.png") as im:
        assert im.width > 6 * 8 and im.height > 6 * 8


def test_a_gaussian_decoder_vae_trains_on_points(tmp_path):
    cfg = ExperimentConfig.from_dict({
        "seed": 0, "algorithm": {"name": "vae"}, "data": {"name": "ring8"},
        "model": {"name": "vae-mlp", "z_dim": 2, "hidden": [32], "likelihood": "gaussian"},
        "train": {"steps": 150, "batch_size": 128, "log_every": 50, "sample_every": 150,
                  "checkpoint_every": 150, "num_fixed_samples": 100}})
    run = Trainer(cfg, tmp_path / "run", progress=False).fit()
    with (run / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert float(rows[-1]["neg_elbo"]) < float(rows[0]["neg_elbo"])
    assert load_run(run).sample(10).shape == (10, 2)


@pytest.mark.parametrize("changes, fragment", [
    ({"algorithm": {"loss": {"name": "hinge"}}}, "unknown key 'algorithm.loss' for algorithm 'vae'"),
    ({"algorithm": {"stabilisers": {"spectral_norm": True}}},
     r"unknown key 'algorithm.stabilisers' for algorithm 'vae' \(an option of algorithm bagan-gp, "
     r"biggan, dp-gan"),
    ({"model": {"name": "dcgan"}}, "is not a VAE family"),
    ({"algorithm": {"beta": -1.0}}, "algorithm.beta=-1.0"),
    ({"algorithm": {"binarize": "otsu"}}, "unknown algorithm.binarize 'otsu'"),
    ({"algorithm": {"warmup": 5}}, "unknown key 'algorithm.warmup' for algorithm 'vae'; drop it"),
    ({"optim": {"G": {"lr": 1e-3}}}, "unknown optimiser 'G' for algorithm 'vae'"),
    ({"phases": {"D": {"repeat": 2}}}, "unknown phase 'D' for algorithm 'vae'"),
])
def test_bad_vae_configs_are_one_line_errors(changes, fragment):
    tree = {**TINY_VAE, **{k: ({**TINY_VAE.get(k, {}), **v} if k != "model" or "name" not in v else v)
                            for k, v in changes.items()}}
    with pytest.raises(GanforgeError, match=fragment) as info:
        Experiment(ExperimentConfig.from_dict(tree))
    assert "\n" not in str(info.value)


def test_a_gan_refuses_a_vae_model_and_a_gan_run_refuses_likelihood_metrics(tmp_path, capsys):
    with pytest.raises(GanforgeError, match="is not a GAN family"):
        Experiment(load_config("digits-dcgan", overrides={"model": {"name": "vae-mlp"}}))
    gan = tmp_path / "gan"
    assert main(["train", "ring8-mlp", "--steps", "2", "--quiet", "--out", str(gan)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(gan), "--metrics", "iwae"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot score metric 'iwae'" in err[0] and not (gan / "eval.json").exists()
    assert "(capability HasLikelihood, which these families have: vae)" in err[0]


def test_the_fashion_vae_preset_builds():
    cfg = load_config("fashion-vae")
    assert cfg.algorithm["name"] == "vae" and cfg.data["name"] == "fashion-mnist"
    exp = Experiment(cfg, sample_shape=(1, 28, 28), num_classes=10)
    assert exp.algorithm.decoder.likelihood == "bernoulli"
