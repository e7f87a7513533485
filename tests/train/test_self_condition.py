"""Self-conditioned GAN (ganforge.train.self_condition): clustering, label matching, the label
prior, its use in training, resume and sampling, bad input, and a small learning check."""

from __future__ import annotations

import copy
import itertools
import json

import numpy as np
import pytest
import torch
import yaml
from scipy.stats import chisquare
from sklearn.cluster import KMeans

from ganforge import Trainer, load_config, load_run
from ganforge.cli import main
from ganforge.config import ExperimentConfig
from ganforge.data.base import ArrayDataset, build_dataset
from ganforge.errors import GanforgeError
from ganforge.metrics.modes import mode_metrics
from ganforge.models.compose import compose
from ganforge.train.self_condition import SelfConditioning, match_labels, proportional_labels

SELF_COND_RING = {
    "seed": 5,
    "data": {"name": "ring8", "radius": 1.0, "std": 0.01},
    "model": {"name": "mlp", "z_dim": 2, "g_hidden": [16], "d_hidden": [16],
              "conditional": "projection", "g_conditioning": "concat"},
    "algorithm": {"name": "gan", "stabilisers": {"self_condition": 12, "self_condition_pool": 600}},
    "train": {"steps": 8, "batch_size": 32, "log_every": 2, "sample_every": 4,
              "checkpoint_every": 4, "num_fixed_samples": 40},
}


def _tree(**overrides) -> dict:
    """SELF_COND_RING with dotted ``section.key`` (or ``section.sub.key``) overrides."""
    tree = copy.deepcopy(SELF_COND_RING)
    for dotted, value in overrides.items():
        *sections, key = dotted.split(".")
        node = tree
        for section in sections:
            node = node[section]
        node[key] = value
    return tree


def _cfg(**overrides) -> ExperimentConfig:
    return ExperimentConfig.from_dict(_tree(**overrides))


# --------------------------------------------------------------------------- pure functions


def test_match_labels_is_the_best_permutation():
    rng = np.random.default_rng(0)
    k = 4
    old = rng.integers(k, size=300)
    # the same partition under a permutation, with 10% of the labels disturbed
    perm = np.array([2, 0, 3, 1])
    new = perm[old]
    noisy = rng.random(300) < 0.1
    new[noisy] = rng.integers(k, size=noisy.sum())
    matched = match_labels(old, new, k)
    # brute force over all k! relabellings of `new`: the matching maximises the agreement
    best = max(itertools.permutations(range(k)), key=lambda p: (np.array(p)[new] == old).sum())
    assert (matched == np.array(best)[new]).all()
    assert (matched == old).mean() > 0.9
    assert (match_labels(old, old, k) == old).all()


def test_proportional_labels_follow_the_prior():
    prior = torch.tensor([0.5, 0.25, 0.125, 0.125])
    counts = torch.bincount(proportional_labels(prior, 800), minlength=4)
    assert counts.tolist() == [400, 200, 100, 100]
    uniform = proportional_labels(torch.full((5,), 0.2), 10)
    assert torch.bincount(uniform).tolist() == [2] * 5
    odd = torch.bincount(proportional_labels(torch.tensor([0.7, 0.3]), 7), minlength=2)
    assert (odd.double() - 7 * torch.tensor([0.7, 0.3])).abs().max() <= 1.0


# --------------------------------------------------------------------------- clustering


def _grid_pool(n=2000, seed=0):
    cfg = load_config("grid25-selfcond")
    return build_dataset(cfg.data).materialise(n, seed=seed)


def test_clusters_of_the_initial_discriminator_lie_inside_single_modes():
    pool = _grid_pool()
    torch.manual_seed(0)
    _, D = compose({"name": "mlp", "z_dim": 2, "g_hidden": [64], "d_hidden": [64, 64, 64],
                    "conditional": "projection", "g_conditioning": "concat"}, (2,), 50)
    sc = SelfConditioning(pool, 50, every=None, seed=0, device=torch.device("cpu"))
    sc.cluster(D)
    labels, modes = sc.data.y, pool.y  # pool.y: the true mode of each point (never used in training)
    assert (sc.data.x == pool.x).all()
    for k in labels.unique():
        assert len(modes[labels == k].unique()) == 1  # every cluster is pure
    assert len(modes.unique()) == 25 and len(labels.unique()) == 50
    counts = torch.bincount(labels, minlength=50).float()
    assert torch.allclose(sc.prior, counts / counts.sum())
    assert torch.allclose(sc.prior.sum(), torch.tensor(1.0))


def test_clustering_again_with_the_same_features_keeps_every_label():
    pool = _grid_pool(600)
    torch.manual_seed(1)
    _, D = compose({"name": "mlp", "z_dim": 2, "d_hidden": [32], "conditional": "projection",
                    "g_conditioning": "concat"}, (2,), 30)
    sc = SelfConditioning(pool, 30, every=5, seed=0, device=torch.device("cpu"))
    sc.cluster(D)
    first = sc.data.y.clone()
    sc.cluster(D)  # another k-means seed: its cluster ids are permuted, then matched back
    assert sc.rounds == 2
    raw = KMeans(30, n_init=1, random_state=1).fit_predict(sc.features(D))
    assert (raw == first.numpy()).mean() < 0.2  # unmatched, the ids mean nothing
    assert (sc.data.y.numpy() == match_labels(first.numpy(), raw, 30)).all()
    # 30 clusters over 25 modes: both runs split 5 modes, not always the same way
    assert (sc.data.y == first).float().mean() > 0.85
    assert [sc.due(s) for s in (0, 4, 5, 10)] == [False, False, True, True]


def test_features_do_not_depend_on_the_label_fed():
    torch.manual_seed(0)
    _, D = compose({"name": "mlp", "z_dim": 2, "d_hidden": [8], "conditional": "projection",
                    "g_conditioning": "concat"}, (2,), 3)
    x = torch.randn(10, 2)
    h0 = D.evaluate(x, torch.zeros(10, dtype=torch.long)).features
    h2 = D.evaluate(x, torch.full((10,), 2)).features
    assert torch.equal(h0, h2)


# --------------------------------------------------------------------------- training


def test_training_uses_the_clusters_never_the_datasets_labels(tmp_path):
    cfg = _cfg()
    pool = build_dataset(cfg.data).materialise(600, seed=0)
    shuffled = ArrayDataset(pool.x, pool.y[torch.randperm(600)], num_classes=8)
    runs = []
    for i, data in enumerate((pool, shuffled)):
        trainer = Trainer(cfg, tmp_path / f"run{i}", progress=False, dataset=data)
        assert trainer.exp.num_classes == 12
        assert trainer.batches.dataset is trainer.algorithm.self_conditioning.data
        for _ in range(4):
            trainer.train_step()
        runs.append(trainer)
    assert torch.equal(runs[0].algorithm.train_data.y, runs[1].algorithm.train_data.y)
    for a, b in zip(runs[0].algorithm.G.parameters(), runs[1].algorithm.G.parameters(), strict=True):
        assert torch.equal(a, b)


def test_generator_labels_are_drawn_from_the_cluster_sizes(tmp_path):
    trainer = Trainer(_cfg(), tmp_path / "run", progress=False)
    exp = trainer.algorithm
    prior = exp.label_prior
    assert torch.equal(prior, exp.self_conditioning.prior) and not torch.allclose(
        prior, torch.full_like(prior, 1 / 12))
    draws = exp.labels_for(20_000, torch.Generator().manual_seed(0))
    observed = torch.bincount(draws, minlength=12).numpy()
    assert chisquare(observed, prior.double().numpy() * 20_000).pvalue > 1e-3
    fixed = torch.bincount(trainer.algorithm.fixed_y, minlength=12).double()
    assert (fixed - 40 * prior.double()).abs().max() <= 1.0


def test_reclustering_runs_on_schedule_and_resume_continues_exactly(tmp_path):
    cfg = _cfg(**{"algorithm.stabilisers.self_condition_every": 3})
    whole = Trainer(cfg, tmp_path / "whole", progress=False)
    whole.fit()
    assert whole.algorithm.self_conditioning.rounds == 1 + 2  # at the start, then before steps 3 and 6

    half = _cfg(**{"algorithm.stabilisers.self_condition_every": 3, "train.steps": 4})
    Trainer(half, tmp_path / "split", progress=False).fit()
    resumed = Trainer(cfg, tmp_path / "split", progress=False, resume=True)
    assert resumed.algorithm.self_conditioning.rounds == 2
    resumed.fit()
    assert torch.equal(resumed.algorithm.train_data.y, whole.algorithm.train_data.y)
    assert torch.equal(resumed.algorithm.label_prior, whole.algorithm.label_prior)
    mine, theirs = resumed.algorithm.G.state_dict(), whole.algorithm.G.state_dict()
    for a, b in zip(mine.values(), theirs.values(), strict=True):
        assert torch.equal(a, b)
    mine, theirs = resumed.algorithm.D.state_dict(), whole.algorithm.D.state_dict()
    for a, b in zip(mine.values(), theirs.values(), strict=True):
        assert torch.equal(a, b)



def test_resume_refuses_a_config_that_changes_self_conditioning(tmp_path):
    # 8 clusters and ring8's own 8 mode labels build the same networks: only the state differs
    Trainer(_cfg(**{"algorithm.stabilisers.self_condition": 8, "train.steps": 4}), tmp_path / "run",
            progress=False).fit()
    labelled = _cfg(**{"algorithm.stabilisers.self_condition": 0})
    with pytest.raises(GanforgeError, match="disagree on self-conditioning"):
        Trainer(labelled, tmp_path / "run", progress=False, resume=True)


def test_a_saved_run_samples_in_proportion_to_the_clusters(tmp_path):
    trainer = Trainer(_cfg(), tmp_path / "run", progress=False)
    trainer.fit()
    run = load_run(tmp_path / "run")
    assert torch.equal(run.algorithm.label_prior, trainer.algorithm.label_prior)
    labels = run.labels(600)
    assert (torch.bincount(labels, minlength=12).double() - 600 * run.algorithm.label_prior).abs().max() <= 1
    assert run.sample(600).shape == (600, 2)
    assert main(["sample", str(tmp_path / "run"), "-n", "30", "-o", str(tmp_path / "s.png")]) == 0
    # cluster ids are not the dataset's classes: no class-match metrics for a self-conditioned run
    assert main(["evaluate", str(tmp_path / "run"), "-n", "200", "-o", str(tmp_path / "e.json")]) == 0
    metrics = json.loads((tmp_path / "e.json").read_text())["metrics"]
    assert "modes" in metrics and not any(k.startswith("class_match") for k in metrics), metrics


@pytest.mark.parametrize(("overrides", "fragment"), [
    ({"algorithm.stabilisers.self_condition": 1}, "must be 0 (off) or at least 2 clusters"),
    ({"algorithm.stabilisers.self_condition": -3}, "must be 0 (off) or at least 2 clusters"),
    ({"algorithm.stabilisers.self_condition_every": 0}, "self_condition_every must be at least 1"),
    ({"algorithm.stabilisers.self_condition_pool": 0}, "self_condition_pool must be at least 1"),
    ({"model.conditional": "concat"}, "features do not see the label"),
    ({"model.conditional": None, "model.g_conditioning": None}, "features do not see the label"),
    ({"algorithm.stabilisers.self_condition_pool": 10}, "12 clusters for only 10"),
])
def test_bad_self_conditioning_fails_cleanly_before_writing(tmp_path, capsys, overrides, fragment):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(_tree(**overrides)))
    out = tmp_path / "run"
    assert main(["train", "--config", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert not out.exists()


def test_self_conditioned_preset_covers_the_grid_in_a_short_run(tmp_path):
    """A learning check: 2,000 steps (a fifth of the preset) already cover all 25 modes evenly
    (seed 0: 25 modes, 71 % high quality, reverse KL 0.06; the unconditional grid25-modes preset
    reaches 17.7 modes, 5.7 % and 0.95 in 2,500 steps, benchmarks/results/toy2d.json)."""
    cfg = load_config("grid25-selfcond", overrides={"train.steps": 2000, "train.lr_decay_start": 1000})
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    while trainer.step < cfg.train.steps:
        trainer.train_step()
    exp = trainer.algorithm
    with torch.no_grad():
        x = exp.G(exp.G.sample_z(2500, torch.Generator().manual_seed(1)),
                  exp.labels_for(2500, torch.Generator().manual_seed(2)))
    m = mode_metrics(x, exp.dataset.centers, exp.dataset.std)
    assert m["modes"] == 25 and m["reverse_kl"] < 0.1 and m["high_quality"] > 0.5, m
