"""Data kinds as plug-ins: the built-in kinds, what datasets and algorithms declare, and a kind
defined in this file that trains and samples through the unchanged CLI (its collation, its
preview figure, its writer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tests.conftest import TINY_RING, one_error_line

from ganforge._io import atomic_write_text
from ganforge.cli import main
from ganforge.config import ExperimentConfig
from ganforge.data import ArrayDataset
from ganforge.data.kinds import (
    KINDS,
    DataKind,
    Samples,
    Writer,
    collate_rows,
    get_kind,
    kind_of_shape,
    writable_suffixes,
)
from ganforge.data.paired import PairedDataset
from ganforge.data.unpaired import UnpairedDataset
from ganforge.data.writers import write_npz
from ganforge.errors import GanforgeError
from ganforge.metrics.registry import metric_names
from ganforge.train import Trainer, load_run
from ganforge.train.algorithms.base import algorithm_class


def test_the_built_in_kinds_and_their_writers():
    assert {"image", "points-2d", "paired", "unpaired", "captioned", "table", "vectors",
            "sequence", "pianoroll", "graph"} <= set(KINDS)
    assert writable_suffixes() == [".csv", ".gif", ".mid", ".mp4", ".npz", ".png", ".smi", ".wav"]
    # what `ganforge train` suggests writing samples to
    assert (get_kind("image").suggested, get_kind("table").suggested, get_kind("pianoroll").suggested,
            get_kind("graph").suggested) == (".png", ".csv", ".mid", ".smi")
    assert kind_of_shape((1, 8, 8)).name == "image" and kind_of_shape((2,)).name == "points-2d"
    assert kind_of_shape((12,)).name == kind_of_shape((1,)).name == "vectors"  # any other (D,)
    assert kind_of_shape((20, 1, 64, 64)).name == "sequence"  # clips (T, C, H, W)
    assert get_kind("image").writer("g.png").grouped and not get_kind("image").writer("s.npz").grouped
    for name in ("image", "points-2d", "captioned"):
        assert set(get_kind(name).metrics) <= set(metric_names()), name
    with pytest.raises(GanforgeError, match=r"a run of paired data writes \.npz or \.png files, not s\.csv"):
        get_kind("paired").writer("s.csv")
    with pytest.raises(GanforgeError, match=r"no data kind holds samples of shape \(4, 3\)"):
        kind_of_shape((4, 3))
    with pytest.raises(GanforgeError, match="unknown data kind 'point-cloud'"):
        get_kind("point-cloud")
    assert set(get_kind("graph").metrics) <= set(metric_names())  # molecules: the MOSES metrics


def test_datasets_and_algorithms_declare_their_kinds():
    x = torch.zeros(4, 1, 8, 8)
    assert ArrayDataset(x).kind == "image" and ArrayDataset(torch.zeros(4, 2)).kind == "points-2d"
    assert PairedDataset(x, x).kind == "paired" and UnpairedDataset(x, x).kind == "unpaired"
    assert ArrayDataset(torch.zeros(4, 12)).kind == "vectors"
    assert ArrayDataset(torch.zeros(4, 4, 3)).kind is None  # no registered kind holds (4, 3)
    names = ("gan", "pix2pix", "cyclegan", "stackgan", "ctgan", "tvae", "copula")
    declared = {name: algorithm_class(name).data_kind for name in names}
    assert declared == {"gan": None, "pix2pix": "paired", "cyclegan": "unpaired", "stackgan": "captioned",
                        "ctgan": "table", "tvae": "table", "copula": "table"}


def test_the_npz_writer_keeps_labels_and_captions_and_stores_floats_as_float32(tmp_path):
    samples = Samples(torch.zeros(2, 2, dtype=torch.float64),
                      {"y": np.array([1, 2]), "caption": np.array(["a", "b"]), "cond": torch.ones(2, 1)})
    with np.load(write_npz(samples, tmp_path / "s.npz")) as f:
        assert f["x"].dtype == np.float32 and f["cond"].dtype == np.float32
        assert f["y"].dtype == np.int64 and list(f["caption"]) == ["a", "b"]


# ---------------------------------------------------------------------- a kind defined here
def _write_csv(samples: Samples, path: Path) -> Path:
    rows = samples.x.flatten(1).numpy()
    return atomic_write_text(path, "".join(",".join(f"{v:.5f}" for v in row) + "\n" for row in rows))


def _preview(samples: Samples, path: Path) -> Path:
    from ganforge.viz import save_grid

    return save_grid(samples.x.view(-1, 1, 4, 3).clamp(-1, 1), path)  # each as a 4 x 3 image


@pytest.fixture
def frames_kind(monkeypatch):
    """Frames of 4 x 3 readings, flattened (12,): a kind the package does not have, registered
    for one test."""
    drawn: list[int] = []

    def collate(tensors, index):
        drawn.append(len(index))
        return collate_rows(tensors, index)

    kind = DataKind("frames-test", {".csv": Writer(_write_csv)}, shape=lambda shape: shape == (12,),
                    collate=collate, preview_writer=Writer(_preview))
    monkeypatch.delitem(KINDS, "vectors")  # the package's kind of every (D,) would claim (12,) first
    monkeypatch.setitem(KINDS, kind.name, kind)
    return drawn


def test_a_new_kind_trains_and_samples_through_the_unchanged_cli(frames_kind, tmp_path, capsys):
    torch.set_num_threads(1)
    frames = ArrayDataset(torch.rand(64, 12) * 2 - 1, name="frames")
    assert frames.kind == "frames-test"
    run = tmp_path / "run"
    cfg = ExperimentConfig.from_dict({**TINY_RING, "train": {**TINY_RING["train"], "steps": 4}})
    Trainer(cfg, run, progress=False, dataset=frames).fit()
    assert frames_kind == [32] * 4                                # the kind collated every batch
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == ["step_0000004.png"]  # its preview
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "5", "-o", str(tmp_path / "s.csv")]) == 0
    assert f"wrote 5 samples from step 4 to {tmp_path / 's.csv'}" in capsys.readouterr().out
    rows = (tmp_path / "s.csv").read_text().splitlines()
    assert len(rows) == 5 and all(len(row.split(",")) == 12 for row in rows)
    # the same through the Python API
    loaded = load_run(run)
    drawn = loaded.draw(5)
    loaded.kind.writer(tmp_path / "t.csv").write(drawn, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text() == (tmp_path / "s.csv").read_text()
    # what the kind cannot write is one line naming what it can, and nothing is written
    assert main(["sample", str(run), "-o", str(tmp_path / "s.png")]) == 2
    one_error_line(capsys, "a run of frames-test data writes .csv files, not")
    assert not (tmp_path / "s.png").exists()
