"""The vectors data kind (shape (D,), its writers and preview) and the columns dataset (numeric
CSV columns as vectors), down to a tiny training run and `ganforge sample` through the CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.conftest import one_error_line

from ganforge.cli import main
from ganforge.data import build_dataset, datasets_of_kind
from ganforge.data.kinds import Samples, get_kind, kind_of_shape
from ganforge.data.vectors import VectorDataset, write_vectors_csv
from ganforge.errors import GanforgeError
from ganforge.maths.tails import hill_estimator

TABLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "tables"
PNG = b"\x89PNG\r\n\x1a\n"


def _csv(tmp_path: Path, n: int = 200) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "t.csv"
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["income", "age", "city", "weight"])
        for i in range(n):
            income = "" if i % 50 == 7 else f"{1000 * (rng.pareto(2.0) + 1):.2f}"
            out.writerow([income, int(rng.integers(18, 90)), "ab"[i % 2], f"{rng.normal(70, 5):.1f}"])
    return path


def test_the_kind_claims_every_vector_but_points_in_the_plane():
    assert kind_of_shape((2,)).name == "points-2d"
    for d in (1, 3, 40):
        assert kind_of_shape((d,)).name == "vectors"
    assert set(get_kind("vectors").writers) == {".npz", ".csv", ".png"}
    assert "columns" in datasets_of_kind("vectors")


def test_the_writers(tmp_path):
    x = torch.tensor([[1.5, -2.0, 3.25], [0.0, 1e-4, 7.0]])
    kind = get_kind("vectors")
    rows = kind.writer("s.csv").write(Samples(x), tmp_path / "s.csv").read_text().splitlines()
    assert rows == ["x0,x1,x2", "1.5,-2,3.25", "0,9.99999975e-05,7"]
    named = write_vectors_csv(Samples(x), tmp_path / "n.csv", names=["a", "b", "c"])
    assert named.read_text().splitlines()[0] == "a,b,c"
    with pytest.raises(GanforgeError, match="2 column names for samples of 3 values"):
        write_vectors_csv(Samples(x), tmp_path / "bad.csv", names=["a", "b"])
    with np.load(kind.writer("s.npz").write(Samples(x), tmp_path / "s.npz")) as f:
        np.testing.assert_array_equal(f["x"], x.numpy())
    one_d = torch.from_numpy(np.random.default_rng(0).pareto(2.0, (500, 1))).float()
    for name, samples in (("h.png", Samples(one_d)), ("s.png", Samples(x))):
        assert kind.preview(samples, tmp_path / name).read_bytes()[:8] == PNG


def test_the_columns_dataset_reads_scales_and_drops_missing_rows(tmp_path):
    path = _csv(tmp_path)
    data = build_dataset({"name": "columns", "path": str(path), "columns": ["income", "weight"]})
    assert isinstance(data, VectorDataset) and data.kind == "vectors" and data.extractor == "raw"
    assert data.sample_shape == (2,) and data.names == ("income", "weight")  # declared, not points-2d
    assert data.dropped == 4 and len(data) == 196 and data.scales == (1.0, 1.0)
    import pandas as pd

    frame = pd.read_csv(path).dropna()
    np.testing.assert_allclose(data.x.numpy(), frame[["income", "weight"]].to_numpy(), rtol=1e-6)
    scaled = build_dataset({"name": "columns", "path": str(path), "columns": ["income"], "scale": "median"})
    assert scaled.sample_shape == (1,) and scaled.scales[0] == pytest.approx(frame["income"].median())
    assert float(scaled.x.abs().median()) == pytest.approx(1.0, abs=0.02)
    assert hill_estimator(scaled.x.numpy()) == pytest.approx(hill_estimator(data.x[:, 0].numpy()), rel=1e-5)
    every = build_dataset({"name": "columns", "path": str(path)})  # every numeric column
    assert every.names == ("income", "age", "weight")
    assert len(build_dataset({"name": "columns", "path": str(path), "max_rows": 50})) <= 50


@pytest.mark.parametrize("section, words", [
    ({"columns": ["city"]},
     "no numeric column 'city'; choose among its numeric columns: income, age, weight"),
    ({"columns": ["salary"]}, "no numeric column 'salary'"),
    ({"columns": []}, "non-empty list of column names"),
    ({"columns": "income"}, "data.columns"),
    ({"scale": "log"}, "data.scale='log' is not a scaling"),
    ({"max_rows": 1}, "data.max_rows=1"),
])
def test_bad_settings_are_one_line_errors(tmp_path, section, words):
    with pytest.raises(GanforgeError) as err:
        build_dataset({"name": "columns", "path": str(_csv(tmp_path)), **section})
    assert words in str(err.value) and "\n" not in str(err.value)


def test_a_zero_median_column_cannot_be_median_scaled(tmp_path):
    path = tmp_path / "z.csv"
    path.write_text("a\n" + "0\n" * 10 + "5\n")
    with pytest.raises(GanforgeError, match="median absolute value 0"):
        build_dataset({"name": "columns", "path": str(path), "scale": "median"})


@pytest.mark.parametrize("file, column", [("nasscds.csv", "weight"), ("gss_wages.csv", "realrinc"),
                                          ("cps.csv", "earnings"), ("credit.csv", "Income")])
def test_the_shared_tables_load(file, column):
    if not (TABLES / file).is_file():
        pytest.skip(f"{file} not found beside the repo (../shared/data/tables)")
    data = build_dataset({"name": "columns", "path": str(TABLES / file), "columns": [column],
                          "scale": "median"})
    assert data.sample_shape == (1,) and len(data) > 1000 and torch.isfinite(data.x).all()
    assert float(data.x.abs().median()) == pytest.approx(1.0, abs=0.05)


def test_a_tiny_run_trains_on_a_column_and_samples_through_the_cli(tmp_path, capsys):
    torch.set_num_threads(1)
    path, run = _csv(tmp_path), tmp_path / "run"
    sets = [f"data.path={path}", "data.columns=[income]", "data.scale=median", "model.z_dim=2",
            "model.g_hidden=[8]", "model.d_hidden=[8]", "model.prior=student-t", "model.prior_df=2",
            "train.batch_size=32", "train.log_every=2", "train.sample_every=3",
            "train.checkpoint_every=3", "train.num_fixed_samples=64"]
    argv = ["train", "ring8-mlp", "--set", "data.name=columns", "--out", str(run), "--steps", "6",
            "--quiet"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0, capsys.readouterr().err
    assert (run / "samples" / "step_0000006.png").read_bytes()[:8] == PNG  # the kind's histogram
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "7", "-o", str(tmp_path / "s.csv")]) == 0
    rows = (tmp_path / "s.csv").read_text().splitlines()
    assert rows[0] == "x0" and len(rows) == 8 and all(np.isfinite(float(r)) for r in rows[1:])
    assert main(["sample", str(run), "-n", "5", "-o", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as f:
        assert f["x"].shape == (5, 1)
    capsys.readouterr()
    assert main(["sample", str(run), "-o", str(tmp_path / "s.txt")]) == 2
    one_error_line(capsys, "must end in .csv or .gif or .mid or .mp4 or .npz or .png or .smi or .wav")
