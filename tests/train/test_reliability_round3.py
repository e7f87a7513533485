"""Nothing lost on kill -9, without exception (issue 32, part 4): each case a kill test of the
existing kind (an exception where the kill lands), then the resume or the rerun."""

from __future__ import annotations

import csv

import pytest
import torch

from ganforge.cli import main
from ganforge.config import ExperimentConfig
from ganforge.errors import GanforgeError
from ganforge.train import Callback, Trainer
from ganforge.train.checkpoint import load_checkpoint
from tests.conftest import TINY_RING
from tests.train.test_trainer import _assert_same_state


def _cfg(**train) -> ExperimentConfig:
    return ExperimentConfig.from_dict({**TINY_RING, "train": {**TINY_RING["train"], **train}})


def _steps(run) -> list[int]:
    with (run / "metrics.csv").open() as fh:
        return [int(row["step"]) for row in csv.DictReader(fh)]


class _Crash(Callback):
    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_end(self, trainer):
        if trainer.step == self.at:
            raise RuntimeError("kill -9")


def test_a_run_killed_before_its_first_periodic_checkpoint_resumes_without_repeated_rows(tmp_path):
    """It resumes from the step-0 last.pt: the rows it logged after step 0 are dropped, not kept
    beside their repeats (digits-dcgan: step 25 five times, 16 rows instead of 12)."""
    cfg = _cfg(checkpoint_every=100, log_every=1)
    with pytest.raises(RuntimeError, match="kill -9"):
        Trainer(cfg, tmp_path / "cut", progress=False, callbacks=[_Crash(5)]).fit()
    assert _steps(tmp_path / "cut") == [1, 2, 3, 4]  # killed at step 5, before its row
    assert load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")["step"] == 0
    Trainer(cfg, tmp_path / "cut", resume=True, progress=False).fit()
    assert _steps(tmp_path / "cut") == list(range(1, 13))


@pytest.mark.parametrize("dies_writing", ["last.pt", "step_0000006.pt"])
def test_a_kill_between_the_two_checkpoint_writes_loses_no_snapshot(tmp_path, monkeypatch, dies_writing):
    cfg = _cfg(checkpoint_every=6)
    Trainer(cfg, tmp_path / "full", progress=False).fit()
    real_save = Trainer.save

    def save(self, name):
        if name == dies_writing and self.step == 6:
            raise RuntimeError("kill -9")
        return real_save(self, name)

    monkeypatch.setattr(Trainer, "save", save)
    with pytest.raises(RuntimeError, match="kill -9"):
        Trainer(cfg, tmp_path / "cut", progress=False).fit()
    monkeypatch.setattr(Trainer, "save", real_save)
    Trainer(cfg, tmp_path / "cut", resume=True, progress=False).fit()
    names = sorted(p.name for p in (tmp_path / "cut" / "checkpoints").glob("*.pt"))
    assert names == sorted(p.name for p in (tmp_path / "full" / "checkpoints").glob("*.pt"))
    for name in ("step_0000006.pt", "final.pt"):  # and they hold what the uninterrupted run holds
        _assert_same_state(load_checkpoint(tmp_path / "full" / "checkpoints" / name),
                           load_checkpoint(tmp_path / "cut" / "checkpoints" / name))


TINY_MLP = ["ring8-mlp", "--steps", "4", "--quiet", "--set", "model.g_hidden=[8]",
            "--set", "model.d_hidden=[8]"]


@pytest.mark.parametrize("again", [["train", "--resume", "{run}", "--quiet"],
                                   ["train", *TINY_MLP, "--out", "{run}"]])
def test_a_run_killed_before_anything_was_checkpointed_starts_again(tmp_path, capsys, again):
    """Killed between its config and its step-0 checkpoint: both --resume and a rerun with the
    same --out start it again (both were refused, the message suggesting --resume)."""
    run = tmp_path / "run"
    assert main(["train", *TINY_MLP, "--out", str(run)]) == 0
    # what a process killed before its step-0 checkpoint leaves: its config, the metrics header,
    # the lock file and a half-written checkpoint (a kill -9 runs no clean-up)
    for path in [*(run / "checkpoints").iterdir(), *(run / "samples").iterdir(), *(run / "plots").iterdir()]:
        path.unlink()
    (run / "checkpoints" / ".last.pt.4242.0badc0de.tmp").write_bytes(b"half")
    (run / "metrics.csv").write_text((run / "metrics.csv").read_text().splitlines()[0] + "\n")
    (run / ".lock").write_text("4242")
    capsys.readouterr()
    assert main([a.format(run=run) for a in again]) == 0, capsys.readouterr().err
    assert load_checkpoint(run / "checkpoints" / "final.pt")["step"] == 4
    assert _steps(run)[-1] == 4 and len(_steps(run)) == len(set(_steps(run)))


def test_a_foreign_file_still_protects_a_run_directory_without_checkpoints(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    assert main(["train", "ring8-mlp", "--steps", "2", "--quiet", "--out", str(run)]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert (run / "notes.txt").read_text() == "mine"


def test_skip_says_what_it_dropped_and_a_phase_that_never_updated_is_an_error(tmp_path, capsys,
                                                                             monkeypatch):
    bad = {"optim": {"G": {"lr": 1e6}, "D": {"lr": 1e6}}}
    cfg = ExperimentConfig.from_dict({**TINY_RING, **bad, "train": {**TINY_RING["train"],
                                                                     "on_nonfinite": "skip"}})
    Trainer(cfg, tmp_path / "some", progress=False).fit()
    err = capsys.readouterr().err
    assert "ganforge: warning: train.on_nonfinite=skip dropped" in err and "updates of phase" in err
    # every D update non-finite: D never trained, and the run does not pass for finished
    cfg = ExperimentConfig.from_dict({**TINY_RING, "train": {**TINY_RING["train"], "on_nonfinite": "skip"}})
    trainer = Trainer(cfg, tmp_path / "never", progress=False)
    original = trainer.algorithm.phase_loss

    def nan_d(phase, batch, step):
        value, stats = original(phase, batch, step)
        return (value * float("nan"), stats) if phase.name == "D" else (value, stats)

    trainer.algorithm.phase_loss = nan_d
    with pytest.raises(GanforgeError, match=r"dropped every update of phase D \(12 of 12 updates of "
                                            r"phase D\): its networks never trained"):
        trainer.fit()
    assert not (tmp_path / "never" / "checkpoints" / "final.pt").exists()
    assert load_checkpoint(tmp_path / "never" / "checkpoints" / "last.pt")["step"] == 12


def test_a_run_starts_from_its_seed_whether_its_data_trained_or_loaded_a_text_encoder(tmp_path, one_thread):
    """fashion-captions and captioned-folder train a text encoder on first use and load it from
    a cache after: the run's networks start from the same weights either way (they did not: the
    encoder's training moved the global random stream), and whatever drew from it before."""
    from ganforge.train import Experiment
    from tests.data.test_captioned import _folder, _write_csv

    names = _folder(tmp_path / "imgs")
    _write_csv(tmp_path / "imgs" / "captions.csv", [(n, f"a block number {i}") for i, n in enumerate(names)])
    cfg = ExperimentConfig.from_dict({
        "data": {"name": "captioned-folder", "root": str(tmp_path / "imgs"), "size": 8, "encoder_epochs": 2,
                 "cache_dir": str(tmp_path / "cache")},
        "model": {"name": "mlp", "g_hidden": [8], "d_hidden": [8]}, "train": {"batch_size": 4}})
    first = Experiment(cfg, "cpu")                       # trains the encoder
    assert not first.dataset.encoder_report["cached"]
    torch.rand(7)                                        # anything drawn in between
    second = Experiment(cfg, "cpu")                      # loads it from the cache
    assert second.dataset.encoder_report["cached"]
    for name, net in first.networks.items():
        for a, b in zip(net.parameters(), second.networks[name].parameters(), strict=True):
            assert torch.equal(a, b), name
