"""``ganforge robust``: the whole chain on a small IDX dataset, and every bad input as one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.cli import main
from ganforge.config import ExperimentConfig
from ganforge.data.idx import write_idx
from ganforge.robust.classifier import load_classifier, save_part
from tests.conftest import one_error_line, train_tiny
from tests.robust.conftest import blocks, needs_torchattacks

pytestmark = needs_torchattacks


def run(*parts: object) -> int:
    """``ganforge`` with the words of each string part and each path part as one argument."""
    argv: list[str] = []
    for part in parts:
        argv += part.split() if isinstance(part, str) else [str(part)]
    return main(argv)


def _generator(root: Path, dataset: str, out: Path) -> Path:
    tree = {"seed": 0, "algorithm": {"name": "gan", "loss": {"name": "wgan-gp", "gp_weight": 10}},
            "data": {"name": dataset, "root": str(root), "size": 28},
            "model": {"name": "mlp", "z_dim": 8, "g_hidden": [32], "d_hidden": [32]},
            "train": {"steps": 6, "batch_size": 16, "log_every": 3, "sample_every": 100,
                      "checkpoint_every": 100}}
    return train_tiny(ExperimentConfig.from_dict(tree), out)


@pytest.fixture(scope="module")
def chain(idx_root, tmp_path_factory):
    """classifier, PGD-trained classifier, APE-GAN, detector and a generator run, all via the CLI."""
    work = tmp_path_factory.mktemp("chain")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    base = ("robust classifier --root", idx_root, "--epochs 1")
    assert run(*base, "-o", work / "clf.pt") == 0
    assert run(*base, "-n 300 --adversarial-eps 0.2 --adv-steps 2 -o", work / "pgdat.pt") == 0
    trained = ("--root", idx_root, "--epochs 1 -n 300 --classifier", work / "clf.pt")
    assert run("robust ape-gan", *trained, "--eps 0.3 -o", work / "ape.pt") == 0
    assert run("robust detector", *trained, "-o", work / "det.pt") == 0
    _generator(idx_root, "fashion-mnist", work / "gen")
    torch.set_num_threads(threads)
    return work


def test_the_chain_trains_every_part_and_scores_every_defence(chain, idx_root, capsys):
    out = chain / "scores.json"
    code = run("robust evaluate --classifier", chain / "clf.pt", "--root", idx_root, "--defense none",
               "--defense", f"defense-gan={chain / 'gen'}", "--defense", f"ape-gan={chain / 'ape.pt'}",
               "--defense", f"pgd-at={chain / 'pgdat.pt'}",
               "--attack fgsm:0.3 --attack pgd:0.2 --pgd-steps 3 -n 24 --adaptive-n 6",
               "--steps 4 --restarts 2 --eot 2 --detector", chain / "det.pt", "--json", out)
    assert code == 0
    printed = capsys.readouterr().out
    assert "defense-gan" in printed and "ROC AUC" in printed
    record = json.loads(out.read_text())
    cells = {(c["defense"], c["attack"], c["threat"]): c for c in record["cells"]}
    assert len(cells) == 4 * (1 + 2 * 2)
    assert cells[("defense-gan", "pgd3-0.2", "adaptive")]["n"] == 6  # --adaptive-n: the slow attack
    assert cells[("ape-gan", "pgd3-0.2", "adaptive")]["n"] == 24  # a differentiable defence: all images
    # without a defence the white-box attack is the same whichever threat model
    none = [cells[("none", "fgsm-0.3", threat)]["accuracy"] for threat in ("oblivious", "adaptive")]
    assert none[0] == none[1]
    assert {r["detector"] for r in record["detection"]} == {"detector", "defense-gan error"}
    clf = load_classifier(chain / "clf.pt")
    assert clf.meta["dataset"] == "fashion-mnist" and 0 <= clf.meta["test_accuracy"] <= 1


def _bad(capsys, parts: tuple, written: Path | None, *fragments: str) -> None:
    assert run(*parts) == 2
    one_error_line(capsys, *fragments)
    if written is not None:
        assert not written.exists()


def test_bad_attacks_defences_and_outputs_are_one_line_errors(chain, idx_root, capsys):
    ev = ("robust evaluate --classifier", chain / "clf.pt", "--root", idx_root, "-n 8")
    out = chain / "bad.json"
    _bad(capsys, (*ev, "--attack fgsm:1.5 --json", out), out, "outside (0, 1]")
    _bad(capsys, (*ev, "--attack jsma:0.1 --json", out), out, "unknown attack 'jsma:0.1'")
    _bad(capsys, (*ev, "--defense magnet --json", out), out, "unknown defence 'magnet'")
    _bad(capsys, (*ev, "--defense ape-gan --json", out), out, "needs its trained part")
    _bad(capsys, (*ev, "--defense", f"pgd-at={chain / 'clf.pt'}", "--json", out), out,
         "was not adversarially trained")
    _bad(capsys, (*ev, "--defense", f"ape-gan={chain / 'clf.pt'}"), None, "holds a classifier, not a ape-gan")
    _bad(capsys, (*ev, "--threat blackbox"), None, "unknown threat model 'blackbox'")
    _bad(capsys, (*ev, "--json", chain / "out.txt"), chain / "out.txt", "does not end in .json")
    _bad(capsys, (*ev, "--data mnist"), None, "trained on fashion-mnist, not mnist")
    train = ("robust classifier --root", idx_root)
    _bad(capsys, (*train, "--adversarial-eps 2 -o", chain / "x.pt"), chain / "x.pt", "outside (0, 1]")
    _bad(capsys, (*train, "-o", chain / "x.txt"), chain / "x.txt", "does not end in .pt")
    _bad(capsys, ("robust classifier --data cifar10 -o", chain / "x.pt"), chain / "x.pt",
         "unknown dataset 'cifar10'")


def test_a_classifier_for_other_image_sizes_is_refused(chain, idx_root, capsys):
    wide = chain / "wide.pt"
    clf = load_classifier(chain / "clf.pt")
    save_part(clf, wide, "classifier", {**clf.meta, "shape": [1, 32, 32]})
    _bad(capsys, ("robust evaluate --classifier", wide, "--root", idx_root), None,
         "shape [1, 32, 32]", "28x28")
    (chain / "text.pt").write_text("hello")
    _bad(capsys, ("robust ape-gan --classifier", chain / "text.pt", "--root", idx_root, "-o", chain / "a.pt"),
         chain / "a.pt", "not a ganforge classifier file")


def test_a_generator_trained_on_another_dataset_is_refused(chain, idx_root, tmp_path, capsys):
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    for stem, (x, y) in (("train", blocks(64, 5)), ("t10k", blocks(16, 6))):
        write_idx(mnist / f"{stem}-images-idx3-ubyte.gz", (x[:, 0].numpy() * 255).astype(np.uint8))
        write_idx(mnist / f"{stem}-labels-idx1-ubyte.gz", y.numpy().astype(np.uint8))
    gen = _generator(mnist, "mnist", tmp_path / "mnist-gen")
    out = tmp_path / "o.json"
    _bad(capsys, ("robust evaluate --classifier", chain / "clf.pt", "--root", idx_root, "--defense",
                  f"defense-gan={gen}", "--json", out), out,
         "trained on mnist, the classifier on fashion-mnist")


def test_a_missing_torchattacks_is_one_line_and_writes_nothing(chain, idx_root, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchattacks", None)
    out = chain / "never.pt"
    _bad(capsys, ("robust ape-gan --classifier", chain / "clf.pt", "--root", idx_root, "-o", out), out,
         "torchattacks", "pip install --no-deps torchattacks")
    _bad(capsys, ("robust evaluate --classifier", chain / "clf.pt", "--root", idx_root), None, "torchattacks")
