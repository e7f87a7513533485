"""Bad table inputs through the CLI: each is exit status 2, one line on stderr naming the problem
and the fix, no traceback, and no run directory or output file left behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ganforge.cli import main

PRESET = Path(__file__).resolve().parents[1] / "configs" / "credit-ctgan.yaml"
TINY = ["--steps", "2", "--quiet", "--set", "train.batch_size=20", "--set", "data.target=null",
        "--set", "model.generator_dims=[8]", "--set", "model.discriminator_dims=[8]",
        "--set", "model.z_dim=4",
        "--set", "train.sample_every=100", "--set", "train.checkpoint_every=100"]


def _cli(capsys, *argv: str) -> str:
    """``ganforge argv`` exits 2 with one ``ganforge: error:`` line (problem; fix) and no traceback."""
    torch.set_num_threads(1)
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ganforge: error:") and "Traceback" not in err[0], err
    assert ";" in err[0], err[0]  # the problem, then the fix
    return err[0]


def _train(capsys, tmp_path: Path, csv: Path, *extra: str) -> str:
    out = tmp_path / "run"
    line = _cli(capsys, "train", "--config", str(PRESET), "--set", f"data.path={csv}", *TINY, *extra,
                "--out", str(out))
    assert not out.exists()
    return line


def _good(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.choice(["x", "y"], n)
    return pd.DataFrame({"a": a, "b": np.where(a == "x", rng.normal(0, 1, n), rng.normal(5, 1, n)).round(3),
                         "c": rng.choice(["p", "q", "r"], n)})


@pytest.mark.parametrize("text, fragments", [
    ("1,2,3\n4,5,6\n", ["has no header line", "add a first line naming the columns"]),
    ("a,b,c\n1,2,3\n4,5\n", ["line 3 has 2 fields, the header 3", "fix that row"]),
    ("", ["is empty", "header line"]),
    ("a,b,c\n", ["has a header but no rows", "rows of data"]),
])
def test_malformed_csv_files(tmp_path, capsys, text, fragments):
    csv = tmp_path / "t.csv"
    csv.write_text(text)
    line = _train(capsys, tmp_path, csv)
    for fragment in fragments:
        assert fragment in line, line


def test_a_file_that_is_not_utf8(tmp_path, capsys):
    csv = tmp_path / "t.csv"
    csv.write_bytes("name,town\nJos\u00e9,M\u00e1laga\nAna,Le\u00f3n\n".encode("latin-1"))
    line = _train(capsys, tmp_path, csv)
    assert "is not UTF-8 text" in line and "re-save it as UTF-8" in line


@pytest.mark.parametrize("change, extra, fragments", [
    (None, ["--set", "data.columns={nope: continuous}"],
     ["declares column 'nope'", "the columns are: a, b, c"]),
    (None, ["--set", "data.columns={b: decimal}"], ["data.columns.b='decimal' is not a column type"]),
    ("all_missing", [], ["column 'd' has no values", "data.drop=[d]"]),
    ("constant", [], ["column 'd' is constant", "data.drop=[d]"]),
    (None, ["--set", "data.max_categories=2"],
     ["column 'c' has 3 categories, more than data.max_categories=2", "raise data.max_categories"]),
    (None, ["--set", "data.target=nope"], ["data.target='nope' is not a column", "choose one of: a, b, c"]),
    (None, ["--set", "data.drop=[nope]"], ["data.drop names column 'nope'"]),
])
def test_bad_columns(tmp_path, capsys, change, extra, fragments):
    frame = _good()
    if change == "all_missing":
        frame["d"] = np.nan
    elif change == "constant":
        frame["d"] = 7
    frame.to_csv(tmp_path / "t.csv", index=False)
    line = _train(capsys, tmp_path, tmp_path / "t.csv", *extra)
    for fragment in fragments:
        assert fragment in line, line


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tab")
    _good().to_csv(root / "t.csv", index=False)
    torch.set_num_threads(1)
    assert main(["train", "--config", str(PRESET), "--set", f"data.path={root / 't.csv'}", *TINY,
                 "--out", str(root / "run")]) == 0
    return root / "run"


@pytest.mark.parametrize("condition, fragments", [
    ("nope=x", ["the table has no column 'nope'", "choose one of: a, b, c"]),
    ("a=z", ["column 'a' of this run's table has value 'z', which is not one of its categories",
             "choose one of: x, y"]),
    ("b=1.5", ["column 'b' is continuous", "condition on one of: a, c"]),
    ("foo", ["--condition 'foo' is not COLUMN=VALUE", "--condition sex=f"]),
    ("=x", ["is not COLUMN=VALUE"]),
])
def test_bad_conditions(run, tmp_path, capsys, condition, fragments):
    out = tmp_path / "s.csv"
    line = _cli(capsys, "sample", str(run), "-n", "5", "-o", str(out), "--condition", condition)
    for fragment in fragments:
        assert fragment in line, line
    assert not out.exists()


def test_a_column_named_twice_in_conditions(run, tmp_path, capsys):
    out = tmp_path / "s.csv"
    line = _cli(capsys, "sample", str(run), "-n", "5", "-o", str(out),
                "--condition", "a=x", "--condition", "a=y")
    assert "names column 'a' twice" in line and not out.exists()


def test_conditions_of_another_table(run, tmp_path, capsys):
    """A run trained on table A sampled with a column only table B has."""
    out = tmp_path / "s.csv"
    line = _cli(capsys, "sample", str(run), "-n", "5", "-o", str(out), "--condition", "Status=good")
    assert "the table has no column 'Status'" in line and "choose one of: a, b, c" in line
    assert not out.exists()


def test_a_table_run_writes_csv_or_png_only(run, tmp_path, capsys):
    out = tmp_path / "s.npz"
    line = _cli(capsys, "sample", str(run), "-n", "5", "-o", str(out))
    assert ".csv" in line and not out.exists()
