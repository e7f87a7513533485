"""``ganforge rare`` on trained runs: statistics by data kind, the CLI's outputs and its errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits

from ganforge.cli import main
from ganforge.config import ExperimentConfig
from ganforge.data.table import infer_schema
from ganforge.errors import GanforgeError
from ganforge.rare import STATISTICS, Context, RunSimulator, parse_event, rare_event
from ganforge.rare.events import parse_statistic
from ganforge.train import load_run
from ganforge.train.algorithms.base import LatentSimulation, families_with
from tests.conftest import TINY_RING, one_error_line, train_tiny

TABLE = {
    "seed": 0,
    "algorithm": {"name": "ctgan"},
    "data": {"name": "table"},
    "model": {"name": "ctgan", "z_dim": 4, "generator_dims": [16], "discriminator_dims": [16], "pac": 5},
    "train": {"steps": 20, "batch_size": 50, "log_every": 10, "sample_every": 1000, "checkpoint_every": 1000},
}


def _table_csv(path: Path, n: int = 300) -> Path:
    rng = np.random.default_rng(0)
    a = rng.choice(["x", "y"], n)
    pd.DataFrame({"a": a, "b": np.where(a == "x", rng.normal(0, 1, n), rng.normal(5, 1, n)).round(3)}).to_csv(
        path, index=False
    )
    return path


@pytest.fixture(scope="module")
def ring(tmp_path_factory) -> Path:
    tree = copy.deepcopy(TINY_RING)
    tree["train"]["steps"] = 40
    return train_tiny(ExperimentConfig.from_dict(tree), tmp_path_factory.mktemp("rare") / "ring")


@pytest.fixture(scope="module")
def table_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("rare-table")
    tree = copy.deepcopy(TABLE)
    tree["data"]["path"] = str(_table_csv(tmp / "t.csv"))
    return train_tiny(ExperimentConfig.from_dict(tree), tmp / "run")


def _rare(*args: object) -> int:
    return main(["rare", *map(str, args)])


# ----------------------------------------------------------------------------- statistics
def test_point_statistics_are_the_coordinates_and_distances():
    ctx = Context("points-2d", (2,))
    x = torch.tensor([[3.0, 4.0], [-1.0, 0.0]])
    assert parse_statistic("x", ctx)(x).tolist() == [3.0, -1.0]
    assert parse_statistic("y", ctx)(x).tolist() == [4.0, 0.0]
    assert parse_statistic("distance(0, 0)", ctx)(x).tolist() == [5.0, 1.0]
    assert parse_statistic("distance(3, 0)", ctx)(x).tolist() == [4.0, 4.0]


def test_image_statistics_read_intensities_in_zero_one():
    ctx = Context("image", (1, 4, 4))
    x = -torch.ones(2, 1, 4, 4)
    x[0, :, :2, :2] = 1.0  # a bright top-left quarter
    assert parse_statistic("mean", ctx)(x).tolist() == [0.25, 0.0]
    assert parse_statistic("region(0, 0, 2, 2)", ctx)(x).tolist() == [1.0, 0.0]
    assert parse_statistic("region(2, 2, 2, 2)", ctx)(x).tolist() == [0.0, 0.0]
    with pytest.raises(GanforgeError, match="region: H"):
        parse_statistic("region(2, 2, 3, 1)", ctx)


def test_the_class_statistic_is_the_shipped_classifiers_probability_on_real_digits():
    digits = load_digits()
    x = torch.from_numpy(digits.images[:300] / 16.0 * 2 - 1).float()[:, None]
    probs = torch.stack(
        [parse_statistic(f"class({k})", Context("image", (1, 8, 8)))(x) for k in range(10)], 1
    )
    truth = torch.from_numpy(digits.target[:300])
    assert torch.allclose(probs.sum(1), torch.ones(300, dtype=torch.float64), atol=1e-5)
    assert (probs.argmax(1) == truth).float().mean() > 0.9
    with pytest.raises(GanforgeError, match=r"name one: class\(K, mnist\|fashion\)"):
        parse_statistic("class(3)", Context("image", (1, 28, 28)))
    with pytest.raises(GanforgeError, match="reads 8x8"):
        parse_statistic("class(3, digits)", Context("image", (1, 28, 28)))


def test_table_statistics_read_columns_and_categories():
    frame = pd.DataFrame({"a": ["x", "y", "x", "y"] * 5, "b": np.arange(20.0)})
    ctx = Context("table", (0,), infer_schema(frame))
    assert parse_statistic("column(b)", ctx)(frame).tolist() == list(np.arange(20.0))
    assert parse_statistic("equals(a, y)", ctx)(frame).tolist() == [0.0, 1.0, 0.0, 1.0] * 5
    with pytest.raises(GanforgeError, match="not numeric"):
        parse_statistic("column(a)", ctx)
    with pytest.raises(GanforgeError, match="no category 'z'"):
        parse_statistic("equals(a, z)", ctx)


def test_events_join_terms_and_score_by_the_smallest_scaled_margin():
    ctx = Context("points-2d", (2,))
    event = parse_event("x > 1 & y <= 0", ctx)
    x = torch.tensor([[2.0, -1.0], [2.0, 1.0], [0.0, -1.0], [1.0, 0.0]])
    event.calibrate(torch.randn(1000, 2), 1000)
    score, hit = event.evaluate(x, 4)
    assert hit.tolist() == [True, False, False, False]  # x > 1 is strict, y <= 0 is not
    assert score[0] > 0 and score[1] < 0 and score[2] < 0
    assert all(0.8 < t.scale < 1.2 for t in event.terms)  # each term's spread under the prior


@pytest.mark.parametrize(
    "text, match",
    [
        ("x > abc", "is not a number"),
        ("x", "has no comparison"),
        ("foo > 1", "unknown for points-2d"),
        ("distance(a, 0) > 1", "is not a number"),
        ("x > inf", "not finite"),
        ("", "the event is empty"),
        ("nosuchmodule_xyz:f > 1", "cannot import module"),
        ("distance(1, 2, 3) > 1", "wrong number of arguments"),
    ],
)
def test_bad_events_are_one_line_errors(text, match):
    with pytest.raises(GanforgeError, match=match):
        parse_event(text, Context("points-2d", (2,)))


def test_user_statistics_by_module_and_function_name():
    event = parse_event("numpy:ravel > 0.5", Context("vectors", (1,)))
    score, hit = event.evaluate(torch.tensor([[0.2], [0.9]]), 2)
    assert hit.tolist() == [False, True]
    with pytest.raises(GanforgeError, match="returned 4 values for 2 samples"):
        parse_event("numpy:ravel > 0.5", Context("vectors", (2,))).evaluate(torch.zeros(2, 2), 2)


def test_every_kind_lists_its_statistics():
    assert {"x", "y", "distance(CX, CY)"} <= set(STATISTICS.usages("points-2d"))
    assert "class(K[, CLASSIFIER])" in STATISTICS.usages("image")
    assert "column(NAME)" in STATISTICS.usages("table")


# ----------------------------------------------------------------------------- runs and the CLI
def test_the_families_that_simulate_from_codes_declare_it():
    families = set(families_with(LatentSimulation))
    assert {"gan", "vae", "ctgan", "tvae", "progan"} <= families
    assert not {"copula", "pix2pix", "cyclegan"} & families


def test_the_python_api_estimates_an_event_of_a_trained_run(ring):
    run = load_run(ring)
    result = rare_event(run, "distance(0, 0) > 1.5", budget=20_000, seed=1)
    mc = rare_event(run, "distance(0, 0) > 1.5", method="mc", budget=200_000, seed=2)
    assert result.estimate.hits > 0 and mc.estimate.hits > 0
    assert abs(result.p - mc.p) < 3 * (result.estimate.std_error**2 + mc.estimate.std_error**2) ** 0.5
    again = rare_event(run, "distance(0, 0) > 1.5", budget=20_000, seed=1)
    assert again.p == result.p  # a seed fixes the estimate
    sim = RunSimulator(run)
    x = sim(result.codes, torch.Generator())
    assert (x.norm(dim=1) > 1.5).all() and torch.equal(x, result.scenarios)


def test_cli_writes_the_estimate_scenarios_and_json(ring, tmp_path, capsys):
    png, js, npz = tmp_path / "rare.png", tmp_path / "rare.json", tmp_path / "rare.npz"
    assert _rare(ring, "--event", "distance(0, 0) > 1.5", "--budget", "20000", "-o", png, "--json", js) == 0
    out = capsys.readouterr().out
    assert "relative error" in out and "naive MC" in out and png.stat().st_size > 0
    summary = json.loads(js.read_text())
    assert summary["calls"] == 20_000 and summary["p"] > 0 and summary["levels"]
    assert _rare(ring, "--event", "distance(0, 0) > 1.5", "--budget", "20000", "-o", npz, "--keep", "10") == 0
    with np.load(npz) as data:
        assert data["x"].shape == (10, 2) and data["weight"].shape == (10,) and data["z"].shape[0] == 10
        assert (np.linalg.norm(data["x"], axis=1) > 1.5).all() and (data["weight"] > 0).all()


def test_an_event_no_draw_reaches_warns_with_a_bound_and_writes_nothing(ring, tmp_path, capsys):
    out = tmp_path / "none.png"
    assert (
        main(["rare", str(ring), "--event", "x > 1000", "--method", "mc", "--budget", "5000", "-o", str(out)])
        == 0
    )
    err = capsys.readouterr().err
    assert "warning: no sample reached the event in 5000 generator calls: p < 0.0006" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--event", "x > abc"], ["threshold 'abc'", "is not a number"]),
        (["--event", "pixels > 1"], ["statistic 'pixels' is unknown for points-2d data", "distance(CX, CY)"]),
        (["--event", "x > 1", "--budget", "0"], ["--budget must be a positive whole number"]),
        (["--event", "x > 1", "--budget", "-5"], ["--budget must be a positive whole number"]),
        (["--event", "x > 1", "--method", "exact"], ["unknown rare-event method 'exact'"]),
        (["--event", "x > 1", "-o", "{tmp}/rows.csv"], ["writes .npz or .png files"]),
        (["--event", "x > 1", "--class", "2"], ["cannot sample class 2"]),
        (["--tail", "x", "-o", "{tmp}/qq.gif"], ["--tail writes a .png QQ figure"]),
    ],
)
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(ring, tmp_path, capsys, args, fragments):
    args = [a.format(tmp=tmp_path) for a in args]
    before = set(tmp_path.iterdir())
    assert main(["rare", str(ring), *args, "--json", str(tmp_path / "r.json")]) == 2
    one_error_line(capsys, *fragments)
    assert set(tmp_path.iterdir()) == before


def test_a_table_run_writes_rare_rows_with_their_weights(table_run, tmp_path, capsys):
    out = tmp_path / "rare.csv"
    assert (
        _rare(table_run, "--event", "column(b) > 6 & equals(a, y) > 0.5", "--budget", "20000", "-o", out) == 0
    )
    rows = pd.read_csv(out)
    assert list(rows.columns) == ["a", "b", "importance_weight"]
    assert (rows["b"] > 6).all() and (rows["a"] == "y").all() and (rows["importance_weight"] > 0).all()
    assert main(["rare", str(table_run), "--event", "column(a) > 1"]) == 2
    one_error_line(capsys, "column 'a' is categorical, not numeric", "equals(a, VALUE)")


def test_a_run_without_latent_codes_is_refused(tmp_path, capsys):
    cfg = ExperimentConfig.from_dict(
        {
            "seed": 0,
            "algorithm": {"name": "copula"},
            "data": {"name": "table", "path": str(_table_csv(tmp_path / "t.csv"))},
            "model": {"name": "copula"},
            "train": {"steps": 1, "log_every": 1, "sample_every": 1, "checkpoint_every": 1},
        }
    )
    run = train_tiny(cfg, tmp_path / "copula")
    assert main(["rare", str(run), "--event", "column(b) > 6"]) == 2
    one_error_line(capsys, "cannot estimate rare-event probabilities in latent space", "LatentSimulation")


@pytest.mark.parametrize("method", ["subset", "ce-mixture"])
def test_other_methods_run_on_table_rows_too(table_run, method):
    result = rare_event(load_run(table_run), "column(b) > 6", method=method, budget=16_000, seed=0)
    assert result.p > 0 and (result.scenarios["b"] > 6).all() and len(result.weights) == len(result.scenarios)
