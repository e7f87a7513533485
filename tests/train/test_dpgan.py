"""Differentially private GAN training (algorithm dp-gan, Opacus): the accounting against Opacus'
own numbers, the DP step against an independent per-sample computation, the budget, resume,
the one-line errors and a learning check."""

from __future__ import annotations

import copy
import csv
import sys

import pytest
import torch
from torch import nn

pytest.importorskip("opacus")
pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: one thread is fastest

from ganforge.cli import main  # noqa: E402
from ganforge.config import ExperimentConfig  # noqa: E402
from ganforge.data.base import ArrayDataset  # noqa: E402
from ganforge.errors import GanforgeError  # noqa: E402
from ganforge.models.base import MODELS, Discriminator, register_model  # noqa: E402
from ganforge.models.compose import build  # noqa: E402
from ganforge.models.mlp import build_mlp  # noqa: E402
from ganforge.train import Callback, Trainer  # noqa: E402
from ganforge.train.checkpoint import load_checkpoint  # noqa: E402
from ganforge.train.trainer import Experiment  # noqa: E402

RING = {
    "seed": 5,
    "algorithm": {"name": "dp-gan", "pool": 2000, "privacy": {"epsilon": 4.0, "delta": 1e-5}},
    "data": {"name": "ring8"},
    "model": {"name": "mlp", "z_dim": 4, "g_hidden": [32], "d_hidden": [32]},
    "train": {"steps": 30, "batch_size": 32, "log_every": 5, "sample_every": 10**6,
              "checkpoint_every": 15, "num_fixed_samples": 16},
}


#: the keywords of :func:`_tree` that are options of the algorithm
OPTIONS = ("loss", "stabilisers", "privacy")


def _tree(**sections) -> dict:
    tree = copy.deepcopy(RING)
    for key, value in sections.items():  # model, data and loss are replaced, the others updated
        target = tree["algorithm"] if key in OPTIONS else tree
        if isinstance(value, dict) and isinstance(target.get(key), dict) and key not in ("model", "data"):
            target[key].update(value)
        else:
            target[key] = value
    return tree


def _cfg(**sections) -> ExperimentConfig:
    return ExperimentConfig.from_dict(_tree(**sections))


def _labelled_blobs(n: int = 600, seed: int = 0) -> ArrayDataset:
    """Four labelled Gaussian blobs in 2D: a small conditional dataset."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(4, (n,), generator=g)
    centres = torch.tensor([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]])
    return ArrayDataset(centres[y] + 0.05 * torch.randn(n, 2, generator=g), y, name="blobs")


def _rows(run) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------------------- accounting


def test_the_accountant_matches_opacus_rdp_reference_numbers():
    """batch 128 of 60,000, sigma 1.0, 450,000 steps, delta 1e-5: epsilon ~ 9.97 (Opacus 1.6 RDP,
    the setting of Abadi et al. 2016's MNIST experiments)."""
    points = ArrayDataset(torch.zeros(60_000, 2), name="zeros")
    cfg = _cfg(privacy={"epsilon": None, "noise_multiplier": 1.0}, train={"batch_size": 128})
    algo = Experiment(cfg, "cpu", dataset=points).algorithm
    assert algo.sample_rate == 128 / 60_000 and algo.noise_multiplier == 1.0
    assert algo.epsilon_after(450_000) == pytest.approx(9.97, abs=0.01)
    assert algo.epsilon_after(0) == 0.0
    eps = [algo.epsilon_after(k) for k in (1000, 10_000, 100_000)]
    assert eps == sorted(eps)
    # PRV (Gopi et al. 2021) is tighter than RDP on the same mechanism
    prv = Experiment(_cfg(privacy={"epsilon": None, "noise_multiplier": 1.0, "accountant": "prv"},
                          train={"batch_size": 128}), "cpu", dataset=points).algorithm
    assert prv.epsilon_after(10_000) < algo.epsilon_after(10_000)
    # the cached RDP arithmetic is the accountant's own, on a history of two (sigma, q) entries
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    for _ in range(3):
        accountant.step(noise_multiplier=1.0, sample_rate=128 / 60_000)
    accountant.history.append((2.0, 128 / 60_000, 5000))
    algo.accountant.history = list(accountant.history)
    assert algo.epsilon == accountant.get_epsilon(delta=1e-5)
    assert algo.epsilon_after(5003 + 7000) > algo.epsilon


def test_a_target_epsilon_sets_the_noise_for_the_run_and_is_met_exactly():
    algo = Experiment(_cfg(), "cpu").algorithm  # 30 D updates, q = 32 / 2000
    from opacus.accountants.utils import get_noise_multiplier

    assert algo.noise_multiplier == get_noise_multiplier(target_epsilon=4.0, target_delta=1e-5,
                                                         sample_rate=32 / 2000, steps=30)
    assert 4.0 - 0.01 <= algo.epsilon_after(30) <= 4.0
    assert algo.allowed_steps() >= 30 and algo.epsilon_after(algo.allowed_steps() + 1) > 4.0


# ---------------------------------------------------------------------------- the DP step


@pytest.mark.parametrize("model, extra", [
    ({"name": "mlp", "z_dim": 4, "g_hidden": [16], "d_hidden": [16, 8], "conditional": "concat"},
     {"loss": {"name": "hinge"}}),
    ({"name": "mlp", "z_dim": 4, "g_hidden": [16], "d_hidden": [16], "conditional": "projection",
      "g_batchnorm": True}, {"loss": {"name": "wgan", "clip": 0.1}}),
    ({"name": "mlp", "z_dim": 4, "g_hidden": [16], "d_hidden": [16], "conditional": "acgan",
      "ac_fake_loss": True}, {"stabilisers": {"label_smoothing": 0.1}}),
])
def test_without_noise_or_clipping_the_private_run_equals_its_non_private_twin(tmp_path, model, extra):
    """noise 0 and a huge clip norm: DP-SGD's (sum of per-sample gradients) / (2 batch) equals the
    twin's plain step on the same Poisson batches, rows and fakes (algorithm.private=false)."""
    data = _labelled_blobs()
    private = _cfg(model=model, **extra,
                   privacy={"epsilon": None, "noise_multiplier": 0.0, "max_grad_norm": 1e9})
    twin = _cfg(model=model, **extra, algorithm={"private": False}, privacy={"epsilon": None})
    runs = {}
    for name, cfg in (("private", private), ("twin", twin)):
        trainer = Trainer(cfg, tmp_path / name, progress=False, dataset=data)
        stats = [trainer.train_step() for _ in range(12)]
        runs[name] = (trainer.exp.networks, stats)
    for net in ("G", "D"):
        for (k, a), b in zip(runs["private"][0][net].state_dict().items(),
                             runs["twin"][0][net].state_dict().values(), strict=True):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-6), (net, k)
    assert [s["real_batch"] for s in runs["private"][1]] == [s["real_batch"] for s in runs["twin"][1]]
    assert len({s["real_batch"] for s in runs["twin"][1]}) > 1  # Poisson: the batch size varies
    # the comparison is not vacuous: clipping at a small norm changes the run
    clipped = _cfg(model=model, **extra,
                   privacy={"epsilon": None, "noise_multiplier": 0.0, "max_grad_norm": 1e-3})
    trainer = Trainer(clipped, tmp_path / "clipped", progress=False, dataset=data)
    for _ in range(12):
        trainer.train_step()
    assert not torch.allclose(trainer.exp.networks["D"].head.weight, runs["twin"][0]["D"].head.weight,
                              atol=1e-6)


def _d_inputs(D: nn.Module) -> tuple[list, object]:
    """Record every (x, y) that D.evaluate is called with."""
    seen = []
    inner = D.evaluate

    def evaluate(x, y=None):
        seen.append((x.detach().clone(), None if y is None else y.clone()))
        return inner(x, y)

    D.evaluate = evaluate
    return seen, inner


@pytest.mark.parametrize("conditional", [None, "concat"])
def test_every_per_sample_gradient_is_clipped_and_the_step_is_their_noisy_mean(conditional):
    """Opacus' per-sample gradients against a loop over the rows (autograd, no Opacus), the
    clipped sum against the DP step with noise 0, and with noise: the mean and spread of the noise."""
    clip = 0.05
    model = {"name": "mlp", "z_dim": 4, "g_hidden": [16], "d_hidden": [64], "conditional": conditional}
    cfg = _cfg(model=model, privacy={"epsilon": None, "noise_multiplier": 0.0, "max_grad_norm": clip})
    exp = Experiment(cfg, "cpu", dataset=_labelled_blobs(2000))
    algo, opt = exp.algorithm, exp.optimizers["D"]
    D, obj = algo.D, algo.objective
    reference = build(cfg.model, (2,), 4 if conditional else None)[1]  # D without Opacus' hooks
    reference.load_state_dict(D.state_dict())
    seen, _ = _d_inputs(D)
    for p in algo.G.parameters():
        p.requires_grad_(False)
    algo.begin_step(0)
    loss, stats = algo.loss("D", algo.record_batches.next(), 0)  # the Trainer draws the batch
    opt.zero_grad()
    loss.backward()
    n_real, (x, y) = int(stats["real_batch"]), seen[0]
    assert len(x) == n_real + cfg.train.batch_size  # one forward over real and fake rows together
    params = list(D.parameters())
    opacus_rows = torch.cat([p.grad_sample.flatten(1) for p in params], 1)
    zero = torch.zeros(1)
    manual = []
    for i in range(len(x)):
        logit = reference(x[i:i + 1], None if y is None else y[i:i + 1])
        row = obj.d_loss(logit, zero) if i < n_real else obj.d_loss(zero, logit)
        grads = torch.autograd.grad(row, list(reference.parameters()))
        manual.append(torch.cat([g.flatten() for g in grads]))
    manual = torch.stack(manual)
    assert torch.allclose(opacus_rows, manual, atol=1e-5, rtol=1e-4)
    norms = manual.norm(dim=1)
    assert (norms > clip).all()  # every row needs clipping at this bound, fakes included
    clipped = manual * (clip / (norms + 1e-6)).clamp(max=1.0)[:, None]
    assert (clipped.norm(dim=1) <= clip * (1 + 1e-5)).all()
    opt.pre_step()  # clip, noise (0), scale: D's gradient as its optimiser sees it
    step = torch.cat([p.grad.flatten() for p in params])
    assert torch.allclose(step, clipped.sum(0) / (2 * cfg.train.batch_size), atol=1e-7)
    assert step.norm() <= clip * len(x) / (2 * cfg.train.batch_size)
    assert algo.accounted_steps == 1
    # with noise: the gradient is the clipped mean plus N(0, (sigma C / (2 batch))^2) per weight
    opt.noise_multiplier = 2.0
    algo.begin_step(1)
    loss, stats = algo.loss("D", algo.record_batches.next(), 1)
    opt.zero_grad()
    loss.backward()
    rows = torch.cat([p.grad_sample.flatten(1) for p in params], 1)
    mean = (rows * (clip / (rows.norm(dim=1) + 1e-6)).clamp(max=1.0)[:, None]).sum(0)
    opt.pre_step()
    noise = torch.cat([p.grad.flatten() for p in params]) * (2 * cfg.train.batch_size) - mean
    assert abs(noise.mean()) < 0.3 * 2.0 * clip and noise.std() == pytest.approx(2.0 * clip, rel=0.2)


def test_the_generator_phase_leaves_no_per_sample_gradients_in_D(tmp_path):
    trainer = Trainer(_cfg(), tmp_path / "run", progress=False)
    trainer.train_step()
    trainer.train_step(only=("G",))
    assert all(getattr(p, "grad_sample", None) is None for p in trainer.algorithm.D.parameters())
    trainer.train_step()  # and the next D step still works
    assert trainer.algorithm.accounted_steps == 2


# ---------------------------------------------------------------------------- budget, resume, CLI


def test_epsilon_grows_in_metrics_and_training_stops_at_the_target(tmp_path, capsys):
    run = tmp_path / "run"
    Trainer(_cfg(), run, progress=False).fit()
    out = capsys.readouterr().out
    assert "after the 30 planned D updates (rdp accountant); the budget epsilon 4 allows 30" in out
    assert "dp-gan: (3.995, 1e-05)-differentially private after 30 D updates" in out
    eps = [float(r["epsilon"]) for r in _rows(run)]
    assert len(eps) == 6 and all(a < b for a, b in zip(eps, eps[1:], strict=False))
    state = load_checkpoint(run / "checkpoints" / "final.pt")["algorithm"]["dp"]
    assert sum(k for _, _, k in state["history"]) == 30
    assert 4.0 - 0.01 <= eps[-1] <= 4.0
    # the logged value is the accountant's at that row's step (6 digits), not a window mean
    algo = Experiment(_cfg(), "cpu").algorithm
    assert eps == pytest.approx([algo.epsilon_after(k) for k in (5, 10, 15, 20, 25, 30)], rel=1e-5)
    # the budget is spent: training the run further is refused before any update
    with pytest.raises(GanforgeError, match="privacy budget is spent: epsilon 3.99") as err:
        Trainer(_cfg(train={"steps": 60}), run, resume=True, progress=False).fit()
    assert "\n" not in str(err.value)
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 30
    # a larger budget: the run keeps its noise and stops before the update that would exceed it
    cfg = _cfg(train={"steps": 60}, privacy={"epsilon": 4.2})
    trainer = Trainer(cfg, run, resume=True, progress=False)
    trainer.fit()
    assert trainer.finished and 30 < trainer.step < 60
    assert trainer.algorithm.noise_multiplier == algo.noise_multiplier
    assert trainer.stop_reason.startswith("privacy budget spent: epsilon")
    assert f"stopped at step {trainer.step}: privacy budget spent" in capsys.readouterr().out
    assert trainer.algorithm.epsilon <= 4.2 < trainer.algorithm.epsilon_after(trainer.step + 1)
    assert float(_rows(run)[-1]["epsilon"]) == pytest.approx(trainer.algorithm.epsilon, rel=1e-5)
    eps = [float(r["epsilon"]) for r in _rows(run)]
    assert all(a < b for a, b in zip(eps, eps[1:], strict=False))
    # `ganforge info` shows the last row, epsilon included
    assert main(["info", str(run)]) == 0
    assert f"epsilon={_rows(run)[-1]['epsilon']}" in capsys.readouterr().out


def test_several_d_updates_per_g_update_are_each_accounted(tmp_path):
    """Bie et al.'s recipe (``phases.D.repeat`` n_D): the noise is planned for steps x n_D D
    updates, each draws its own Poisson batch and is one accountant step, and G moves once per
    step; the budget is met exactly as with one D update."""
    cfg = ExperimentConfig.from_dict({**_tree(), "phases": {"D": {"repeat": 4}},
                                      "train": {**RING["train"], "steps": 10, "log_every": 5}})
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    algo = trainer.algorithm
    single = Experiment(ExperimentConfig.from_dict({**_tree(), "train": {**RING["train"], "steps": 40}}),
                        "cpu").algorithm
    assert algo.noise_multiplier == pytest.approx(single.noise_multiplier)  # both plan 40 D updates
    g_before = [p.detach().clone() for p in algo.G.parameters()]
    trainer.train_step()
    assert algo.accounted_steps == 4 and algo.record_batches.draws == 4
    trainer.fit()
    assert algo.accounted_steps == 40 and 4.0 - 0.01 <= algo.epsilon <= 4.0
    assert any(not torch.equal(a, b) for a, b in zip(algo.G.parameters(), g_before, strict=True))
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "final.pt")["step"] == 10


def test_a_resumed_run_continues_the_accounting_exactly(tmp_path):
    class StopAt(Callback):  # what Ctrl-C does: finish the step, save last.pt, stop
        def on_step_end(self, trainer):
            if trainer.step == 12:
                trainer._stop_requested = True

    cfg = _cfg(privacy={"epsilon": None, "noise_multiplier": 0.8}, algorithm={"name": "dp-gan"},
               data={"name": "ring8"})
    data = _labelled_blobs(800)
    Trainer(cfg, tmp_path / "full", progress=False, dataset=data).fit()
    Trainer(cfg, tmp_path / "split", progress=False, dataset=data, callbacks=[StopAt()]).fit()
    assert load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")["step"] == 12
    Trainer(cfg, tmp_path / "split", resume=True, progress=False, dataset=data).fit()
    full = load_checkpoint(tmp_path / "full" / "checkpoints" / "final.pt")
    split = load_checkpoint(tmp_path / "split" / "checkpoints" / "final.pt")
    assert full["algorithm"]["dp"]["history"] == split["algorithm"]["dp"]["history"] == [[0.8, 32 / 800, 30]]
    for net in ("G", "D"):
        for k, v in full["nets"][net].items():
            assert torch.equal(v, split["nets"][net][k]), (net, k)
    epsilons = [[r["epsilon"] for r in _rows(tmp_path / run)] for run in ("full", "split")]
    assert epsilons[0] == epsilons[1] and len(epsilons[0]) == 6
    positions = [[(r["epoch"], r["images_seen"]) for r in _rows(tmp_path / run)] for run in ("full", "split")]
    assert positions[0] == positions[1] and full["images_seen"] == split["images_seen"]


def test_the_poisson_batches_are_drawn_by_the_trainer_so_images_and_epochs_are_counted(tmp_path):
    """The D phase's batch source is the Poisson sampler: the Trainer draws each batch, so
    ``images_seen`` is the sum of the real batches and ``epoch`` counts 1/q batches."""
    cfg = _cfg(algorithm={"pool": 200}, privacy={"epsilon": None, "noise_multiplier": 1.0},
               train={"steps": 14, "log_every": 7, "checkpoint_every": 7})
    stepped = Trainer(cfg, tmp_path / "stepped", progress=False)
    phase = stepped.exp.phases[0]
    assert phase.name == "D" and phase.batch_source is stepped.algorithm.record_batches
    assert stepped.epoch_source is phase.batch_source
    seen = [stepped.train_step()["real_batch"] for _ in range(7)]
    assert stepped.images_seen == sum(seen) > 0 and stepped.epoch_source.epoch == 7 * 32 // 200 == 1
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    trainer.fit()
    rows = _rows(tmp_path / "run")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert int(rows[-1]["images_seen"]) == trainer.images_seen > int(rows[0]["images_seen"]) == sum(seen)


def test_a_rollback_keeps_the_cost_of_the_discarded_updates(tmp_path):
    """train.on_nonfinite=rollback restores an earlier checkpoint: the updates it discards saw the
    data, so the accountant keeps them (and the sampler and noise are not replayed)."""
    trainer = Trainer(_cfg(train={"steps": 10, "checkpoint_every": 5}), tmp_path / "run", progress=False)
    trainer.fit()
    sampler = trainer.algorithm.poisson_generator.get_state()
    trainer._restore(tmp_path / "run" / "checkpoints" / "step_0000005.pt")
    assert trainer.step == 5 and trainer.algorithm.accounted_steps == 10
    assert torch.equal(trainer.algorithm.poisson_generator.get_state(), sampler)


# ---------------------------------------------------------------------------- one-line errors


def _buffered(sample_shape, num_classes=None):
    """An MLP pair whose D has a trainable layer with a running buffer (Opacus refuses it)."""
    G, _ = build_mlp(sample_shape, z_dim=4, g_hidden=[8], d_hidden=[8])

    class Running(nn.Linear):
        def __init__(self):
            super().__init__(2, 8)
            self.register_buffer("count", torch.zeros(()))

    class BufferedD(Discriminator):
        flat_input = True

        def __init__(self):
            super().__init__()
            self.in_shape, self.feature_dim = tuple(sample_shape), 8
            self.trunk, self.head = Running(), nn.Linear(8, 1)

        def features(self, x):
            return self.trunk(x.flatten(1))

    return G, BufferedD()


@pytest.fixture
def buffered_model():
    """The model Opacus refuses, registered for one test only (the registry is global)."""
    register_model("dp-buffered-test")(_buffered)
    yield
    MODELS._items.pop("dp-buffered-test", None)


@pytest.mark.parametrize("sections, match", [
    ({"privacy": {"epsilon": 0.0}}, "privacy.epsilon must be a finite number > 0"),
    ({"privacy": {"epsilon": -1.0}}, "privacy.epsilon must be a finite number > 0"),
    ({"privacy": {"delta": 0.0}}, r"privacy.delta must lie in \(0, 1\)"),
    ({"privacy": {"delta": 1e-3}}, r"privacy.delta=0.001 is not below 1/N = 0.0005 for the 2000 "),
    ({"privacy": {"max_grad_norm": 0.0}}, "privacy.max_grad_norm must be a finite number > 0"),
    ({"privacy": {"max_grad_norm": -2.0}}, "privacy.max_grad_norm must be a finite number > 0"),
    ({"privacy": {"accountant": "gdp"}},
     "unknown algorithm.privacy.accountant 'gdp'; choose one of: rdp, prv"),
    ({"privacy": {"noise_multiplier": 1.0}},
     "algorithm.privacy.epsilon and algorithm.privacy.noise_multiplier are both set"),
    ({"privacy": {"epsilon": None}},
     "algorithm dp-gan needs algorithm.privacy.epsilon or algorithm.privacy.noise_multiplier"),
    ({"algorithm": {"name": "gan"}}, r"unknown key 'algorithm.pool' for algorithm 'gan' \(an option of "
                                     r"algorithm dp-gan\)"),
    ({"algorithm": {"private": False}}, "algorithm.private=false trains without privacy"),
    ({"privacy": {"epsilon": 1e-6}}, "privacy.epsilon=1e-06 cannot be met over 30 D updates"),
    ({"loss": {"name": "wgan-gp"}}, "loss 'wgan-gp' adds a gradient penalty"),
    ({"stabilisers": {"minibatch_std": True}}, "algorithm.stabilisers.minibatch_std cannot train with "
                                               "differential privacy"),
    ({"stabilisers": {"spectral_norm": True}}, "stabilisers.spectral_norm cannot train"),
    ({"stabilisers": {"feature_matching": 1.0}}, "stabilisers.feature_matching cannot train"),
    ({"model": {"name": "dp-buffered-test"}}, "Opacus cannot train this discriminator privately"),
])
def test_every_bad_input_is_one_line(sections, match, buffered_model):
    with pytest.raises(GanforgeError, match=match) as err:
        Experiment(_cfg(**sections), "cpu")
    assert "\n" not in str(err.value) and "; " in str(err.value)


def test_the_cli_reports_a_bad_privacy_setting_in_one_line(tmp_path, capsys):
    cfg = tmp_path / "dp.yaml"
    import yaml

    cfg.write_text(yaml.safe_dump(_tree()))
    code = main(["train", "--config", str(cfg), "--out", str(tmp_path / "run"), "--quiet",
                 "--set", "algorithm.privacy.epsilon=-3"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "privacy.epsilon must be" in err
    assert not (tmp_path / "run").exists()


def test_batchnorm_in_D_is_replaced_by_groupnorm_in_one_printed_line(capsys):
    model = {"name": "dcgan", "z_dim": 4, "width": 4, "d_batchnorm": True}
    cfg = _cfg(model=model, data={"name": "digits", "size": 8}, privacy={"delta": 1e-4})
    algo = Experiment(cfg, "cpu").algorithm
    lines = [line for line in capsys.readouterr().out.splitlines() if "replaced" in line]
    assert lines == ["dp-gan: replaced BatchNorm2d in D by GroupNorm (batch statistics mix the records "
                     "of a batch; Opacus needs per-sample gradients)"]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in algo.D.modules())
    assert algo.networks["D"] is algo.D


def test_without_opacus_the_error_says_how_to_install_it(monkeypatch):
    for name in [m for m in sys.modules if m == "opacus" or m.startswith("opacus.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "opacus", None)
    with pytest.raises(GanforgeError) as err:
        Experiment(_cfg(), "cpu")
    assert str(err.value) == ('algorithm dp-gan needs Opacus, which is not installed; '
                              'install it with: pip install -e ".[privacy]"')


# ---------------------------------------------------------------------------- learning


def _energy_distance(G, real: torch.Tensor) -> float:
    """2 E|X - Y| - E|X - X'| - E|Y - Y'| between 1,000 samples and 1,000 records."""
    with torch.no_grad():
        x = G(G.sample_z(1000, torch.Generator().manual_seed(0)))
    y = real[:1000]
    return float(2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean())


def test_a_private_gan_learns_four_blobs(tmp_path):
    """(epsilon 10, delta 1e-5) over 500 steps on 2,000 records: G's samples, which start near
    the origin, move onto the four blobs around (1, 1)."""
    blobs = _labelled_blobs(2000)
    data = ArrayDataset(blobs.x + 1.0, blobs.y, name="blobs")
    cfg = _cfg(privacy={"epsilon": 10.0}, train={"steps": 500, "batch_size": 64})
    trainer = Trainer(cfg, tmp_path / "run", progress=False, dataset=data)
    before = _energy_distance(trainer.algorithm.G, data.x)
    while trainer.step < cfg.train.steps:
        trainer.train_step()
    after = _energy_distance(trainer.algorithm.G, data.x)
    assert 9.9 <= trainer.algorithm.epsilon <= 10.0
    assert after < 0.25 * before, (before, after)
