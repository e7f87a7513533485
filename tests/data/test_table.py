"""Tables (:mod:`ganforge.data.table`): type inference, missing values, the reversible transform
and its mixture, the seeded split, bounded CSV reading, the transform's state, the ``table`` kind's
writers. Tiny synthetic tables built here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ganforge.data import table as T
from ganforge.data.kinds import get_kind
from ganforge.data.table import TableDataset, TableTransformer, infer_schema, read_csv, split_rows
from ganforge.data.writers import Samples


def _mixed(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "height": rng.normal(170, 10, n).round(2),                     # continuous, 2 decimals
        "children": rng.integers(0, 4, n),                              # 4 whole values: categorical
        "age": rng.integers(18, 90, n),                                 # many whole values: integer
        "colour": rng.choice(["red", "green", "blue"], n),              # text: categorical
        "smoker": rng.choice(["yes", "no"], n),                         # yes/no: boolean
    })


# ---------------------------------------------------------------------- types
def test_types_are_inferred_from_the_values():
    schema = infer_schema(_mixed())
    assert schema.types == {"height": "continuous", "children": "categorical", "age": "integer",
                            "colour": "categorical", "smoker": "boolean"}
    assert schema.column("children").categories == [0, 1, 2, 3]
    assert schema.column("colour").categories == ["blue", "green", "red"]
    height = schema.column("height")
    assert height.decimals == 2 and height.minimum < 170 < height.maximum


def test_the_integer_category_threshold_is_ten_distinct_values():
    ten = pd.DataFrame({"k": np.arange(100) % 10})
    eleven = pd.DataFrame({"k": np.arange(110) % 11})
    assert infer_schema(ten).types == {"k": "categorical"}
    assert infer_schema(eleven).types == {"k": "integer"}
    assert infer_schema(eleven, integer_categories=11).types == {"k": "categorical"}


def test_declared_types_override_the_inferred_ones():
    schema = infer_schema(_mixed(), {"children": "integer", "age": "categorical", "height": "continuous"})
    assert schema.types["children"] == "integer" and schema.types["age"] == "categorical"
    assert schema.column("children").decimals == 0 and schema.column("age").categories[0] >= 18
    data = TableDataset.from_frame(_mixed(), columns={"age": "continuous"})
    assert data.schema.types["age"] == "continuous"


# ---------------------------------------------------------------------- missing values
def _with_missing(n: int = 200) -> pd.DataFrame:
    frame = _mixed(n)
    frame["colour"] = frame["colour"].astype(object)
    frame.loc[::7, "colour"] = np.nan
    frame.loc[::5, "height"] = np.nan
    return frame


def test_missing_values_are_kept():
    frame = _with_missing()
    schema = infer_schema(frame)
    colour, height = schema.column("colour"), schema.column("height")
    assert colour.missing and colour.categories == ["blue", "green", "red", None]
    assert height.missing and schema.types["height"] == "continuous"
    t = TableTransformer(schema).fit(frame)
    assert [s.role for s in t.spans if s.column == "height"] == ["value", "mode", "missing"]
    back = t.inverse(t.transform(frame))
    assert back["height"].isna().tolist() == frame["height"].isna().tolist()
    assert back["colour"].isna().tolist() == frame["colour"].isna().tolist()
    assert not schema.column("age").missing


# ---------------------------------------------------------------------- the transform
def test_the_inverse_is_exact_for_categories_and_within_rounding_for_numbers():
    frame = _mixed(400)
    schema = infer_schema(frame)
    t = TableTransformer(schema, seed=1).fit(frame)
    x = t.transform(frame)
    assert x.shape == (400, t.width) and x.dtype == np.float32
    back = t.inverse(x)
    assert list(back.columns) == list(frame.columns)
    for name in ("children", "colour", "smoker"):
        assert back[name].tolist() == frame[name].tolist(), name
    for name in ("height", "age"):
        column = schema.column(name)
        error = np.abs(back[name].to_numpy(float) - frame[name].to_numpy(float))
        close = error <= 0.5 * 10.0 ** -column.decimals
        assert close.mean() >= 0.995, (name, close.mean())
        assert back[name].min() >= column.minimum and back[name].max() <= column.maximum
    assert np.issubdtype(back["age"].dtype, np.integer)
    # softmax spans are one-hots, tanh spans lie in [-0.99, 0.99]
    offset = 0
    for span in t.spans:
        part = x[:, offset:offset + span.width]
        if span.activation == "softmax":
            assert np.array_equal(part.sum(1), np.ones(len(x))) and set(np.unique(part)) <= {0.0, 1.0}
        else:
            assert np.abs(part).max() <= 0.99
        offset += span.width


def test_the_mixture_finds_well_separated_modes_and_drops_light_ones():
    rng = np.random.default_rng(0)
    true_means = np.array([-10.0, 0.0, 10.0])
    values = np.concatenate([rng.normal(m, 1.0, 400) for m in true_means])
    frame = pd.DataFrame({"v": values.round(3)})
    t = TableTransformer(infer_schema(frame)).fit(frame)
    code = t.codes["v"]
    assert 3 <= len(code.means) <= 5  # 10 allowed; weights below 0.005 dropped
    # the three heaviest kept modes sit at the true means (within 0.2 std)
    mixture_means = np.sort(np.asarray(code.means))
    for m in true_means:
        assert np.min(np.abs(mixture_means - m)) < 0.2, (m, mixture_means)
    for s, m in zip(code.stds, code.means, strict=True):
        if np.min(np.abs(true_means - m)) < 0.2:
            assert 0.5 < s < 1.5, (m, s)


# ---------------------------------------------------------------------- the split
def test_the_split_is_seeded_disjoint_and_covering():
    train, test = split_rows(100, 0.2, seed=3)
    again_train, again_test = split_rows(100, 0.2, seed=3)
    other_train, _ = split_rows(100, 0.2, seed=4)
    assert np.array_equal(train, again_train) and np.array_equal(test, again_test)
    assert not np.array_equal(train, other_train)
    assert len(test) == 20 and len(train) == 80
    assert set(train).isdisjoint(test) and set(train) | set(test) == set(range(100))
    data = TableDataset.from_frame(_mixed(50), test_fraction=0.2, split_seed=3)
    assert len(data) == 40 and len(data.test_frame) == 10
    assert data.train_frame.equals(_mixed(50).iloc[split_rows(50, 0.2, 3)[0]].reset_index(drop=True))


# ---------------------------------------------------------------------- bounded reading
@pytest.fixture
def numbered_csv(tmp_path):
    path = tmp_path / "rows.csv"
    pd.DataFrame({"id": np.arange(1000), "v": np.arange(1000) * 0.5, "c": ["a", "b"] * 500}).to_csv(
        path, index=False)
    return path


def test_read_csv_keeps_a_seeded_uniform_sample_when_the_file_is_longer(numbered_csv, monkeypatch):
    whole = read_csv(numbered_csv)
    assert len(whole) == 1000 and list(whole.columns) == ["id", "v", "c"]
    monkeypatch.setattr(T, "CHUNK_ROWS", 64)  # many chunks
    kept = read_csv(numbered_csv, max_rows=100, seed=5)
    assert len(kept) == 100 and kept["id"].is_unique
    assert set(kept["id"]) <= set(range(1000))
    assert (kept["v"] == kept["id"] * 0.5).all() and (kept["c"] == np.where(kept["id"] % 2, "b", "a")).all()
    assert kept.equals(read_csv(numbered_csv, max_rows=100, seed=5))
    assert not kept["id"].equals(read_csv(numbered_csv, max_rows=100, seed=6)["id"])
    # spread over the file, not the first rows: every tenth of it holds some
    assert set(kept["id"] // 100) == set(range(10))
    assert kept["id"].max() > 900 and kept["id"].min() < 100
    # the same sample read in one chunk
    monkeypatch.setattr(T, "CHUNK_ROWS", 50_000)
    assert len(read_csv(numbered_csv, max_rows=100, seed=5)) == 100
    assert read_csv(numbered_csv, drop=["id"]).columns.tolist() == ["v", "c"]


# ---------------------------------------------------------------------- state
def test_the_transform_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    frame = _with_missing(150)
    t = TableTransformer(infer_schema(frame, target="colour"), seed=2).fit(frame)
    torch.save({"table": t.state_dict()}, tmp_path / "t.pt")
    state = torch.load(tmp_path / "t.pt", weights_only=True)["table"]
    u = TableTransformer.from_state(state)
    assert u.schema.target == "colour" and u.spans == t.spans
    x = t.transform(frame)
    assert np.array_equal(u.transform(frame), x)
    pd.testing.assert_frame_equal(u.inverse(x), t.inverse(x))


# ---------------------------------------------------------------------- the kind
def test_the_table_kind_writes_csv_with_the_header_and_png_marginals(tmp_path):
    frame = _mixed(60)
    kind = get_kind("table")
    assert set(kind.writers) == {".csv", ".png"}
    samples = Samples(torch.zeros(60, 0), table=frame, reference=frame, types=infer_schema(frame).types,
                      title="rows")
    kind.writer(tmp_path / "s.csv").write(samples, tmp_path / "s.csv")
    kind.writer(tmp_path / "s.png").write(samples, tmp_path / "s.png")
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0] == "height,children,age,colour,smoker" and len(lines) == 61
    back = pd.read_csv(tmp_path / "s.csv")
    for name in ("colour", "smoker"):
        assert back[name].tolist() == frame[name].tolist()
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
