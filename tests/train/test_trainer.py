from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from ganforge.config import ExperimentConfig
from ganforge.errors import GanforgeError
from ganforge.train import Trainer, load_run
from ganforge.train.checkpoint import load_checkpoint
from tests.conftest import REPO, TINY_DIGITS, TINY_RING


def _cfg(tree, **train):
    tree = {**tree, "train": {**tree["train"], **train}}
    return ExperimentConfig.from_dict(tree)


def _assert_same_state(a, b):
    for key in ("G", "D"):
        for name, tensor in a["nets"][key].items():
            assert torch.equal(tensor, b["nets"][key][name]), f"{key}.{name} differs"
        for idx, st in a["optimizers"][key]["state"].items():
            for name, tensor in st.items():
                other = b["optimizers"][key]["state"][idx][name]
                assert torch.equal(torch.as_tensor(tensor), torch.as_tensor(other))


TINY_RING_LINEAR = {**TINY_RING, "train": {**TINY_RING["train"], "lr_schedule": "linear"}}


@pytest.mark.parametrize("tree", [TINY_RING, TINY_DIGITS], ids=["ring8-mlp", "digits-dcgan-ema"])
def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, tree):
    steps = tree["train"]["steps"]
    full = Trainer(_cfg(tree), tmp_path / "full", progress=False)
    full.fit()
    half = Trainer(_cfg(tree, steps=steps // 2), tmp_path / "split", progress=False)
    half.fit()
    resumed = Trainer(_cfg(tree), tmp_path / "split", resume=True, progress=False)
    assert resumed.step == steps // 2
    resumed.fit()
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "final.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "final.pt")
    assert a["step"] == b["step"] == steps
    _assert_same_state(a, b)
    for net in a["ema"]:
        for name, tensor in a["ema"][net]["model"].items():
            assert torch.equal(tensor, b["ema"][net]["model"][name])
    # metrics.csv holds each logged step once, in order, covering the uninterrupted run's steps
    # (plus the row the shorter first run wrote at its own last step)
    def steps_logged(run):
        with (tmp_path / run / "metrics.csv").open() as fh:
            return [int(r["step"]) for r in csv.DictReader(fh)]
    split = steps_logged("split")
    assert split == sorted(set(split))
    assert set(steps_logged("full")) <= set(split) <= set(steps_logged("full")) | {steps // 2}


def test_a_different_seed_gives_different_weights(tmp_path):
    a = Trainer(_cfg(TINY_RING), tmp_path / "a", progress=False)
    a.fit()
    b = Trainer(ExperimentConfig.from_dict({**TINY_RING, "seed": 4}), tmp_path / "b",
                progress=False)
    b.fit()
    wa, wb = a.algorithm.G.state_dict(), b.algorithm.G.state_dict()
    assert any(not torch.equal(wa[k], wb[k]) for k in wa)


def test_run_directory_contents(tmp_path):
    run = Trainer(_cfg(TINY_DIGITS), tmp_path / "run", progress=False).fit()
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["name"] == "dcgan"
    with (run / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    for row in rows:
        assert 0.0 <= float(row["real_score"]) <= 1.0 and 0.0 <= float(row["fake_score"]) <= 1.0
        assert float(row["grad_norm_G"]) > 0 and float(row["grad_norm_D"]) > 0
        assert float(row["lr_G"]) == pytest.approx(2e-4)
        assert int(row["images_seen"]) == int(row["step"]) * 16
    assert (run / "samples" / "step_0000003.png").is_file()
    assert {p.name for p in (run / "plots").iterdir()} == {"losses.png", "scores.png",
                                                         "grad_norms.png"}
    assert {p.name for p in (run / "checkpoints").iterdir()} >= {"last.pt", "final.pt",
                                                              "step_0000003.pt"}
    state = torch.load(run / "checkpoints" / "final.pt", weights_only=True)
    assert {"nets", "ema", "optimizers", "rng", "data", "step", "algorithm", "stage"} <= set(state)
    assert set(state["nets"]) == set(state["optimizers"]) == {"G", "D"} and set(state["ema"]) == {"G"}


def test_two_dimensional_runs_plot_the_discriminator_field(tmp_path):
    run = Trainer(_cfg(TINY_RING), tmp_path / "run", progress=False).fit()
    assert (run / "samples" / "step_0000012.png").stat().st_size > 1000


def test_refuses_to_overwrite_a_run(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "something").write_text("x")
    with pytest.raises(GanforgeError, match="already exists"):
        Trainer(_cfg(TINY_RING), tmp_path / "run", progress=False)


def test_load_run_samples_without_the_dataset(tmp_path):
    Trainer(_cfg(TINY_DIGITS), tmp_path / "run", progress=False).fit()
    run = load_run(tmp_path / "run")
    x = run.sample(10, seed=1)
    assert x.shape == (10, 1, 8, 8) and x.abs().max() <= 1
    assert torch.equal(x, run.sample(10, seed=1))
    assert not torch.equal(run.sample(10, ema=True, seed=1), x)
    assert run.experiment.dataset is None


def test_ctrl_c_saves_and_exits_cleanly_then_resumes(tmp_path):
    cfg_file = tmp_path / "slow.yaml"
    tree = {**TINY_RING, "train": {**TINY_RING["train"], "steps": 100000, "log_every": 5,
                                   "checkpoint_every": 100000, "sample_every": 100000}}
    cfg_file.write_text(yaml.safe_dump(tree))
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "ganforge.cli", "train", "--config",
                             str(cfg_file), "--out", str(out), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 60
    while not (out / "metrics.csv").exists() and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "interrupted at step" in stdout and "--resume" in stdout
    state = load_checkpoint(out / "checkpoints" / "last.pt")
    assert 0 < state["step"] < 100000
    assert not (out / "checkpoints" / "final.pt").exists()
    assert not [p for p in (out / "checkpoints").iterdir() if p.name.startswith(".")]


def test_callbacks_add_columns_and_force_a_log_row(tmp_path):
    from ganforge.train import Callback

    class CountModes(Callback):
        columns = ("probe",)

        def __init__(self):
            self.calls = []

        def on_step_end(self, trainer):
            self.calls.append(trainer.step)
            return {"probe": trainer.step * 10.0} if trainer.step == 5 else None

    cb = CountModes()
    run = Trainer(_cfg(TINY_RING), tmp_path / "run", progress=False, callbacks=[cb]).fit()
    assert cb.calls == list(range(1, 13))
    with (run / "metrics.csv").open() as fh:
        rows = {int(r["step"]): r for r in csv.DictReader(fh)}
    assert set(rows) == {3, 5, 6, 9, 12}       # log_every=3 plus the callback's step 5
    assert rows[5]["probe"] == "50" and rows[6]["probe"] == ""


def test_linear_schedule_decays_both_rates_to_zero(tmp_path):
    cfg = _cfg(TINY_RING_LINEAR, lr_g=1e-3, lr_d=4e-3, log_every=1)
    run = Trainer(cfg, tmp_path / "run", progress=False).fit()
    with (run / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    steps = cfg.train.steps
    for row in rows:  # the row of step s reports the rate used for update s, i.e. factor 1 - (s-1)/T
        factor = 1 - (int(row["step"]) - 1) / steps
        assert float(row["lr_G"]) == pytest.approx(1e-3 * factor, rel=1e-5)
        assert float(row["lr_D"]) == pytest.approx(4e-3 * factor, rel=1e-5)
    assert float(rows[-1]["lr_G"]) == pytest.approx(1e-3 / steps, rel=1e-5)


def test_linear_schedule_holds_the_base_rates_until_lr_decay_start(tmp_path):
    cfg = _cfg(TINY_RING_LINEAR, lr_g=1e-3, lr_d=4e-3, log_every=1, lr_decay_start=4)
    run = Trainer(cfg, tmp_path / "run", progress=False).fit()
    with (run / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    steps, start = cfg.train.steps, 4
    for row in rows:  # update s (logged at step s + 1) uses factor 1 - (s - start) / (T - start)
        s = int(row["step"]) - 1
        factor = 1.0 if s < start else 1 - (s - start) / (steps - start)
        assert float(row["lr_G"]) == pytest.approx(1e-3 * factor, rel=1e-5)
        assert float(row["lr_D"]) == pytest.approx(4e-3 * factor, rel=1e-5)
    assert [float(r["lr_G"]) for r in rows[:5]] == pytest.approx([1e-3] * 5)


def test_a_run_shorter_than_lr_decay_start_keeps_the_base_rates(tmp_path):
    cfg = _cfg(TINY_RING_LINEAR, lr_g=1e-3, log_every=1, lr_decay_start=50)
    run = Trainer(cfg, tmp_path / "run", progress=False).fit()
    with (run / "metrics.csv").open() as fh:
        assert {float(r["lr_G"]) for r in csv.DictReader(fh)} == {1e-3}


def test_schedule_steps_out_of_range_are_refused():
    with pytest.raises(GanforgeError, match="train.lr_decay_start"):
        _cfg(TINY_RING_LINEAR, lr_decay_start=-1)
    from ganforge.train import Experiment

    with pytest.raises(GanforgeError, match="algorithm.penalty_until"):  # checked by the gan algorithm
        Experiment(_cfg(TINY_RING_LINEAR, penalty_until=-5))


def test_penalty_until_drops_the_gradient_penalties_from_that_step(tmp_path):
    """Before ``penalty_until`` D minimises its loss plus R1 (the loss's and the stabiliser's);
    from it on, plain D loss: the r1 column turns 0 and the objective's penalty is not called."""
    from ganforge.train.objectives import NonSaturatingR1

    tree = {**TINY_RING, "algorithm": {"name": "gan", "loss": {"name": "r1", "gamma": 1.0},
                                       "stabilisers": {"r1": 0.5}}}
    cfg = _cfg(tree, log_every=1, penalty_until=5)
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    calls = []
    original = NonSaturatingR1.d_penalty

    def spy(self, D, real, fake):
        calls.append(trainer.step)
        return original(self, D, real, fake)

    NonSaturatingR1.d_penalty = spy
    try:
        trainer.fit()
    finally:
        NonSaturatingR1.d_penalty = original
    assert calls == [0, 1, 2, 3, 4]
    with (tmp_path / "run" / "metrics.csv").open() as fh:
        r1 = {int(r["step"]): float(r["r1"]) for r in csv.DictReader(fh)}
    assert all(r1[s] > 0 for s in range(1, 6)) and all(r1[s] == 0 for s in range(6, 13))


def test_dropping_the_penalty_equals_training_without_it(tmp_path):
    """After ``penalty_until`` an update is exactly the plain non-saturating update: resuming a
    run at that step with loss r1 / penalty_until gives the same weights as with loss
    non-saturating."""
    tree = {**TINY_RING, "algorithm": {"name": "gan", "loss": {"name": "r1", "gamma": 1.0}}}
    Trainer(_cfg(tree, steps=6), tmp_path / "a", progress=False).fit()
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    Trainer(_cfg(tree, penalty_until=6), tmp_path / "a", resume=True, progress=False).fit()
    plain = {**TINY_RING, "algorithm": {"name": "gan", "loss": {"name": "non-saturating"}}}
    Trainer(_cfg(plain), tmp_path / "b", resume=True, progress=False).fit()
    _assert_same_state(load_checkpoint(tmp_path / "a" / "checkpoints" / "final.pt"),
                       load_checkpoint(tmp_path / "b" / "checkpoints" / "final.pt"))


def test_unknown_schedule_is_refused():
    with pytest.raises(GanforgeError, match="lr_schedule"):
        _cfg(TINY_RING, lr_schedule="cosine")


def test_an_interrupted_run_resumes_bit_identically_with_a_decaying_schedule(tmp_path):
    from ganforge.train import Callback

    class StopAt(Callback):  # what Ctrl-C does: finish the step, save last.pt, stop
        def on_step_end(self, trainer):
            if trainer.step == 5:
                trainer._stop_requested = True

    cfg = _cfg(TINY_RING_LINEAR)
    Trainer(cfg, tmp_path / "full", progress=False).fit()
    Trainer(cfg, tmp_path / "split", progress=False, callbacks=[StopAt()]).fit()
    assert load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")["step"] == 5
    Trainer(cfg, tmp_path / "split", resume=True, progress=False).fit()
    _assert_same_state(load_checkpoint(tmp_path / "full" / "checkpoints" / "final.pt"),
                       load_checkpoint(tmp_path / "split" / "checkpoints" / "final.pt"))


def test_tensorboard_logging_or_a_clear_error_without_it(tmp_path):
    import importlib.util

    cfg = _cfg(TINY_RING, tensorboard=True, steps=3)
    if importlib.util.find_spec("tensorboard") is None:
        with pytest.raises(GanforgeError, match=r"pip install 'ganforge\[tensorboard\]'"):
            Trainer(cfg, tmp_path / "run", progress=False).fit()
        assert not (tmp_path / "run").exists()
    else:
        run = Trainer(cfg, tmp_path / "run", progress=False).fit()
        assert list((run / "tensorboard").glob("events.out.tfevents.*"))


def test_a_callback_failing_in_setup_leaves_no_run_directory(tmp_path):
    from ganforge.train import Callback

    class NeedsWeights(Callback):
        def setup(self, trainer):
            raise GanforgeError("weights file missing", "download it")

    with pytest.raises(GanforgeError, match="weights file missing"):
        Trainer(_cfg(TINY_RING), tmp_path / "run", progress=False, callbacks=[NeedsWeights()])
    assert not (tmp_path / "run").exists()
