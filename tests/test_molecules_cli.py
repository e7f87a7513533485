"""Molecules from the command line: ``ganforge train`` on a user's SMILES file (an unparsable line
among them, skipped and counted), ``sample`` writing .smi / .png / .npz, ``latent interpolate`` to
.smi, ``evaluate`` with the MOSES metrics, and every bad input (one line, exit 2, nothing
written)."""

from __future__ import annotations

import gzip
import json
import sys

import pytest
import torch
import yaml
from PIL import Image

from ganforge.cli import main
from tests.conftest import one_error_line

pytest.importorskip("rdkit")

from ganforge.data.chem import mol_from_smiles  # noqa: E402
from ganforge.data.molecules import MoleculeDataset  # noqa: E402
from ganforge.metrics.molecules import MOSES_KEYS  # noqa: E402
from tests.train.test_molecules import SMILES, TINY_MOLGAN  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread(one_thread, tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    yield


@pytest.fixture(scope="module")
def smiles_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("smiles") / "mols.smi"
    path.write_text(
        "smiles\n" + "\n".join(SMILES[:20]) + "\nthis-is-not-a-smiles\n" + "\n".join(SMILES[20:]) + "\n"
    )
    return path


def _config(path, algorithm: dict, model: dict, **data) -> dict:
    return {
        "seed": 0,
        "algorithm": algorithm,
        "phases": {"D": {"repeat": 2}} if algorithm["name"] == "molgan" else {},
        "data": {"name": "smiles", "path": str(path), "max_atoms": 15, "test_fraction": 0.25, **data},
        "model": model,
        "train": {"steps": 3, "batch_size": 8, "log_every": 1, "sample_every": 3, "checkpoint_every": 3},
    }


def _train(work, config: dict) -> int:
    (work / "cfg.yaml").write_text(yaml.safe_dump(config))
    return main(["train", "--config", str(work / "cfg.yaml"), "--out", str(work / "run"), "--quiet"])


@pytest.fixture(scope="module")
def run(tmp_path_factory, smiles_file):
    work = tmp_path_factory.mktemp("molgan-run")
    torch.set_num_threads(1)
    algorithm = {
        "name": "molgan",
        "loss": {"name": "wgan-gp"},
        "reward": {"qed": 1.0},
        "adversarial_weight": 0.5,
    }
    assert _train(work, _config(smiles_file, algorithm, TINY_MOLGAN)) == 0
    return work / "run"


def test_train_sample_interpolate_and_evaluate_a_smiles_file(run, tmp_path, capsys):
    capsys.readouterr()
    for suffix in (".smi", ".png", ".npz"):
        assert main(["sample", str(run), "-n", "12", "-o", str(tmp_path / f"s{suffix}")]) == 0
    out = capsys.readouterr().out
    assert "12 molecules from step 3" in out and "invalid" in out
    lines = (tmp_path / "s.smi").read_text().split()
    assert lines and all(mol_from_smiles(s) is not None for s in lines)  # invalid ones are not written
    assert Image.open(tmp_path / "s.png").size[0] > 0
    assert main(["latent", str(run), "interpolate", "--steps", "4", "-o", str(tmp_path / "path.smi")]) == 0
    assert len((tmp_path / "path.smi").read_text().split()) <= 4
    capsys.readouterr()
    assert main(["evaluate", str(run), "-n", "30", "-o", str(tmp_path / "e.json")]) == 0
    result = json.loads((tmp_path / "e.json").read_text())
    assert set(MOSES_KEYS) <= set(result["metrics"])
    assert result["baseline"]["valid"] == 1.0 and result["baseline"]["novelty"] == 0.0  # training molecules
    assert result["metrics"]["valid"] == 1.0  # valency-aware decoding: every non-empty graph is a molecule


def test_the_charrnn_baseline_from_the_command_line(smiles_file, tmp_path, capsys):
    model = {"name": "charrnn", "embed": 8, "hidden": 16, "layers": 1, "dropout": 0.0}
    assert _train(tmp_path, _config(smiles_file, {"name": "smiles-lm"}, model)) == 0
    assert "skipped: 1 unparsable" in capsys.readouterr().out
    assert main(["sample", str(tmp_path / "run"), "-n", "40", "-o", str(tmp_path / "s.npz")]) == 0
    capsys.readouterr()
    assert main(["latent", str(tmp_path / "run"), "interpolate", "-o", str(tmp_path / "p.smi")]) == 2
    one_error_line(capsys, "latent space")
    assert not (tmp_path / "p.smi").exists()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "is empty"),
        (b"\x00\x01\x02binary\xff\xfe", "not text"),
        (b"smiles\nnot-a-molecule\nC1CC\n", "no line"),
    ],
)
def test_bad_smiles_files_are_one_line_errors(tmp_path, capsys, content, words):
    path = tmp_path / "bad.smi"
    path.write_bytes(content)
    model = {"name": "charrnn", "embed": 8, "hidden": 16, "layers": 1}
    assert _train(tmp_path, _config(path, {"name": "smiles-lm"}, model)) == 2
    one_error_line(capsys, words)
    assert not (tmp_path / "run").exists()


def test_max_atoms_below_every_molecule_is_a_one_line_error(smiles_file, tmp_path, capsys):
    model = {"name": "charrnn", "embed": 8, "hidden": 16, "layers": 1}
    assert _train(tmp_path, _config(smiles_file, {"name": "smiles-lm"}, model, max_atoms=1)) == 2
    one_error_line(capsys, "max_atoms")
    assert not (tmp_path / "run").exists()


def test_a_gzipped_csv_with_a_smiles_column(tmp_path):
    path = tmp_path / "mols.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("id,SMILES\n" + "".join(f"{i},{s}\n" for i, s in enumerate(SMILES)))
    from ganforge.data import build_dataset

    data = build_dataset({"name": "smiles", "path": str(path), "max_atoms": 15})
    assert len(data) + len(data.test_smiles) == len(SMILES)


def test_atoms_outside_a_trained_runs_vocabulary_are_skipped_and_counted(run, capsys):
    from ganforge.errors import GanforgeError
    from ganforge.train.run import load_run

    vocab = load_run(run).algorithm.vocab
    assert "P" not in vocab.atom_types
    data = MoleculeDataset.from_smiles(["CCO", "CP(C)C", "c1ccccc1"], vocab=vocab, test_fraction=0.0)
    assert sorted(data.smiles) == ["CCO", "c1ccccc1"]
    assert data.skipped["unknown atom"] == 1 and "kept 2 of 3" in capsys.readouterr().out
    with pytest.raises(GanforgeError) as err:
        MoleculeDataset.from_smiles(["CP(C)C", "OP(O)(O)=O"], vocab=vocab, test_fraction=0.0)
    assert "\n" not in str(err.value)


def test_without_rdkit_a_molecule_run_is_a_one_line_error(smiles_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "rdkit", None)
    model = {"name": "charrnn", "embed": 8, "hidden": 16, "layers": 1}
    assert _train(tmp_path, _config(smiles_file, {"name": "smiles-lm"}, model)) == 2
    one_error_line(capsys, "RDKit", "ganforge[chem]")
    assert not (tmp_path / "run").exists()
