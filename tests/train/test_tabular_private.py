"""CTGAN with ``algorithm.privacy``: DP-SGD on its critic through the dp-gan machinery
(:mod:`ganforge.train.algorithms.private`): the budget is kept, ghost clipping computes the same
update as Opacus' materialised per-sample gradients, resume is exact, and what a private run
refuses or leaves out (packs, the conditional vector, real rows in snapshots)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.train import Experiment, Trainer, load_run
from ganforge.train.algorithms.ctgan import CTGAN as CTGANAlgorithm
from ganforge.train.checkpoint import load_checkpoint
from tests.train._image_to_image import assert_same_networks
from tests.train.test_tabular import CTGAN, _cfg, _train, _two_columns

pytest.importorskip("opacus")

PRIVATE = {"algorithm": {"name": "ctgan", "privacy": {"epsilon": 5.0, "delta": 1e-4}},
           "model": {"pac": 1}}


def _private(csv_path: Path, **sections: dict):
    merged = {key: {**PRIVATE.get(key, {}), **sections.get(key, {})} for key in {*PRIVATE, *sections}}
    return _cfg(CTGAN, csv_path, **merged)


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    return _two_columns(tmp_path_factory.mktemp("private") / "t.csv")


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv") as fh:
        return list(csv.DictReader(fh))


def test_a_private_run_spends_its_budget_and_no_more(table, tmp_path, capsys):
    run = _train(_private(table, train={"steps": 40, "log_every": 10}), tmp_path / "run")
    rows = _rows(run)
    assert "epsilon" in rows[0] and "real_batch" in rows[0]
    spent = [float(r["epsilon"]) for r in rows]
    assert spent == sorted(spent) and 0.8 * 5.0 < spent[-1] <= 5.0
    out = capsys.readouterr().out
    assert "ctgan: noise multiplier" in out and "-differentially private after 40 D updates" in out
    algorithm = load_run(run).algorithm
    assert algorithm.G.cond_dim == 0  # no conditional vector: its law is a function of the records
    rows_drawn = load_run(run).draw(20, conditions={"a": "y"}).table
    assert (rows_drawn["a"] == "y").all()  # conditions are kept by rejection alone


def test_training_past_the_budget_is_refused_and_a_larger_one_stops_before_exceeding_it(table, tmp_path):
    """A spent run refuses more updates; with a larger budget it keeps its noise multiplier and
    stops before the update that would exceed the new epsilon."""
    run = _train(_private(table, train={"steps": 20, "log_every": 5}), tmp_path / "run")
    with pytest.raises(GanforgeError, match="privacy budget is spent: epsilon 4.9"):
        Trainer(_private(table, train={"steps": 60, "log_every": 5}), run, resume=True, progress=False).fit()
    larger = _private(table, algorithm={"privacy": {"epsilon": 6.0, "delta": 1e-4}},
                      train={"steps": 60, "log_every": 5})
    trainer = Trainer(larger, run, resume=True, progress=False)
    trainer.fit()
    assert 20 < trainer.step < 60 and trainer.stop_reason.startswith("privacy budget spent")
    assert 5.0 < trainer.algorithm.epsilon <= 6.0


@pytest.mark.parametrize("noise", [0.0, 0.7])
def test_ghost_clipping_computes_the_same_update_as_per_sample_gradients(table, tmp_path, monkeypatch,
                                                                        noise):
    """Clipping every row's gradient (small max_grad_norm, so it bites) by ghost norms gives D
    the same weights as Opacus' materialised per-sample gradients, with and without noise."""
    privacy = {"epsilon": None, "noise_multiplier": noise, "max_grad_norm": 0.05, "delta": 1e-4}
    sections = {"algorithm": {"privacy": privacy},
                "model": {"dropout": 0.0}, "train": {"steps": 5}}
    weights = {}
    for ghost in (True, False):
        monkeypatch.setattr(CTGANAlgorithm, "ghost_clipping", ghost)
        run = _train(_private(table, **sections), tmp_path / f"ghost-{ghost}")
        weights[ghost] = load_run(run).algorithm.D.state_dict()
    for name, value in weights[True].items():
        torch.testing.assert_close(value, weights[False][name], rtol=1e-4, atol=1e-5, msg=name)


def test_a_private_run_resumes_exactly(table, tmp_path, one_thread):
    """With a given noise multiplier (a target epsilon would give the shorter run more noise)."""
    train = {"steps": 6, "log_every": 3, "checkpoint_every": 3}
    noise = {"privacy": {"epsilon": None, "noise_multiplier": 1.0, "delta": 1e-4}}
    Trainer(_private(table, algorithm=noise, train=train), tmp_path / "full", progress=False).fit()
    Trainer(_private(table, algorithm=noise, train={**train, "steps": 3}), tmp_path / "split",
            progress=False).fit()
    Trainer(_private(table, algorithm=noise, train=train), tmp_path / "split", resume=True,
            progress=False).fit()
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "final.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "final.pt")
    assert_same_networks(a, b, ("G", "D"))
    assert a["algorithm"]["dp"]["history"] == b["algorithm"]["dp"]["history"]
    assert torch.equal(a["algorithm"]["dp"]["noise"], b["algorithm"]["dp"]["noise"])


def test_packs_are_refused_and_snapshots_draw_no_records(table):
    with pytest.raises(GanforgeError, match="model.pac=10 cannot train with algorithm.privacy"):
        Experiment(_private(table, model={"pac": 10}), "cpu")
    exp = Experiment(_private(table), "cpu")
    assert exp.algorithm.snapshot_reference() is None
    with pytest.raises(GanforgeError, match="trains in one process"):
        exp.algorithm.check_distributable()
