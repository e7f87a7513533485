"""Music from the command line: ``ganforge train`` on a folder of the user's MIDI files (real
chorales exported by music21, a corrupt file among them), ``sample`` writing MIDI / PNG / WAV /
NPZ, ``evaluate`` on the folder's held-out pieces, and every bad input (one line, exit 2, nothing
written)."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import torch
import yaml

from ganforge.cli import main
from ganforge.data.music import read_midi_rolls, soundfont
from ganforge.data.pianoroll import RollGrid, roll_to_notes
from tests.conftest import one_error_line

music21 = pytest.importorskip("music21")

CHORALES = ("bach/bwv66.6", "bach/bwv269", "bach/bwv347", "bach/bwv153.1", "bach/bwv86.6", "bach/bwv267")
MODEL = {"name": "roll-lstm", "embed": 4, "hidden": 16, "layers": 1}


@pytest.fixture(autouse=True)
def _one_thread(one_thread, tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    yield


@pytest.fixture(scope="module")
def midi_folder(tmp_path_factory):
    """Six chorales as MIDI files, and one file that is not MIDI (skipped and counted)."""
    folder = tmp_path_factory.mktemp("midi")
    for name in CHORALES:
        music21.corpus.parse(name).write("midi", fp=folder / f"{name.split('/')[1]}.mid")
    (folder / "broken.mid").write_bytes(b"MThd not really a midi file")
    return folder


def _config(folder, **data) -> dict:
    return {"seed": 0, "algorithm": {"name": "pianoroll-lm"},
            "data": {"name": "music-folder", "path": str(folder), "test_fraction": 0.34, **data},
            "model": MODEL, "train": {"steps": 3, "batch_size": 4, "log_every": 1, "sample_every": 3,
                                      "checkpoint_every": 3}}


def _train(work, config: dict) -> int:
    (work / "cfg.yaml").write_text(yaml.safe_dump(config))
    return main(["train", "--config", str(work / "cfg.yaml"), "--out", str(work / "run"), "--quiet"])


@pytest.fixture(scope="module")
def run(tmp_path_factory, midi_folder):
    work = tmp_path_factory.mktemp("music-run")
    torch.set_num_threads(1)
    assert _train(work, _config(midi_folder)) == 0
    return work / "run"


def test_train_sample_and_evaluate_a_midi_folder(run, tmp_path, capsys):
    capsys.readouterr()
    audio = shutil.which("fluidsynth") is not None and soundfont() is not None
    for suffix in (".mid", ".png", ".npz") + ((".wav",) if audio else ()):
        assert main(["sample", str(run), "-n", "3", "-o", str(tmp_path / f"s{suffix}")]) == 0
    with np.load(tmp_path / "s.npz") as f:
        x, grid = f["x"], f["grid"]
    assert x.shape == (3, 4, 64, 48) and grid.tolist() == [4, 4, 4, 36, 48]
    grid = RollGrid(*grid.tolist())
    back = read_midi_rolls(tmp_path / "s.mid", grid, 4)
    assert [roll_to_notes(r, 36) for r in back] == [roll_to_notes(r, 36) for r in x]
    if audio:
        assert (tmp_path / "s.wav").read_bytes()[:4] == b"RIFF"
    capsys.readouterr()
    assert main(["evaluate", str(run), "-n", "20", "-o", str(tmp_path / "e.json")]) == 0
    result = json.loads((tmp_path / "e.json").read_text())
    assert {"empty_bars", "in_key", "parallel_fifths", "pitch_class_distance"} <= set(result["metrics"])
    assert result["baseline"]["polyphony"] == pytest.approx(4.0, abs=0.2)  # held-out chorales: four voices
    assert result["generated_samples"] == 20


def test_a_corrupt_file_is_skipped_and_counted(run, capsys):
    text = (run / "config.yaml").read_text()
    assert "music-folder" in text
    assert main(["evaluate", str(run), "-n", "5", "--metrics", "in_key"]) == 0
    assert "1 unreadable" in capsys.readouterr().out


@pytest.mark.parametrize("data, fragment", [
    ({"bars": 200}, "no piece has 200"),
    ({"transpose": "up"}, "transpose"),
    ({"steps_per_quarter": 0}, "steps_per_quarter=0"),
])
def test_bad_data_options_are_one_line(tmp_path, midi_folder, capsys, data, fragment):
    assert _train(tmp_path, _config(midi_folder, **data)) == 2
    one_error_line(capsys, fragment)
    assert not (tmp_path / "run").exists()


def test_a_folder_of_only_corrupt_files_is_one_line(tmp_path, capsys):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.mid").write_bytes(b"nonsense")
    (tmp_path / "bad" / "b.musicxml").write_text("<not-a-score/>")
    assert _train(tmp_path, _config(tmp_path / "bad")) == 2
    one_error_line(capsys, "unreadable")
    assert not (tmp_path / "run").exists()


def test_bad_outputs_are_one_line_and_write_nothing(run, tmp_path, capsys, monkeypatch):
    capsys.readouterr()
    assert main(["sample", str(run), "-o", str(tmp_path / "s.gif")]) == 2
    one_error_line(capsys, ".mid")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["sample", str(run), "-o", str(tmp_path / "s.wav")]) == 2
    one_error_line(capsys, "fluidsynth", "fluid-soundfont-gm")
    assert main(["evaluate", str(run), "--metrics", "fid"]) == 2
    one_error_line(capsys, "fid")
    assert list(tmp_path.iterdir()) == [tmp_path / "cache"] or not list(tmp_path.iterdir())


def test_without_music21_the_error_names_the_extra(tmp_path, midi_folder, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "music21", None)
    assert _train(tmp_path, _config(midi_folder)) == 2
    one_error_line(capsys, "music21", "ganforge[music]")
    assert not (tmp_path / "run").exists()
