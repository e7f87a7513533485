"""The shipped Fashion-MNIST classifier (``lenet_fashion``) and the script that trains it."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ganforge.data.idx import write_idx
from ganforge.metrics.classifier import (
    ARCHITECTURES,
    LeNetFashion,
    load_classifier,
    read_provenance,
    sha256_file,
    weights_dir,
)
from ganforge.metrics.train_classifier import build_parser, main, train

SHARED_FASHION = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fashion-mnist"

needs_fashion = pytest.mark.skipif(
    not (SHARED_FASHION / "t10k-images-idx3-ubyte.gz").exists(),
    reason="real Fashion-MNIST not found beside the repo (../shared/data/fashion-mnist)")


def _strings(value: Any) -> Iterator[str]:
    """Every string among the (nested) keys and values of a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _write_fake_fashion(folder: Path, n_train: int = 96, n_test: int = 20) -> None:
    """Random 28x28 uint8 images with labels 0..9 as gzip IDX files of both splits."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz",
                  rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))


def test_shipped_fashion_weights_load_and_record_a_train_only_fit():
    model, prov = load_classifier("fashion")  # verifies the sha256
    path = weights_dir() / "lenet_fashion.pt"
    assert isinstance(model, LeNetFashion) and not model.training
    assert prov["sha256"] == sha256_file(path) and path.stat().st_size < 1_000_000
    assert prov["architecture"] == "LeNetFashion" and prov["seed"] == 0
    assert prov["train_split"] == "train" and prov["held_out_split"] == "test"
    assert prov["n_train"] == 60_000 and prov["n_held_out"] == 10_000
    assert prov["held_out_accuracy"] >= 0.90
    assert set(prov["idx_md5_decompressed"]) == {
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        assert model.features(x).shape == (3, 64) and model(x).shape == (3, 10)


@needs_fashion
def test_fashion_classifier_on_real_test_images(one_thread):
    from ganforge.data import build_dataset
    from ganforge.metrics.train_classifier import accuracy

    model, prov = load_classifier("fashion")
    test = build_dataset({"name": "fashion-mnist", "root": str(SHARED_FASHION), "split": "test"})
    x, y = test.x[:2000], test.y[:2000]
    assert accuracy(model, x, y) >= 0.88
    with torch.no_grad():
        feats = model.features(x)
    assert feats.shape == (2000, 64) and torch.isfinite(feats).all()
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):  # the same data was held out
        digest = hashlib.md5(gzip.decompress((SHARED_FASHION / f"{stem}.gz").read_bytes())).hexdigest()
        assert prov["idx_md5_decompressed"][stem] == digest


def test_script_accepts_fashion_and_defaults_root_to_the_cache(capsys):
    assert "fashion" in ARCHITECTURES
    args = build_parser().parse_args(["--dataset", "fashion", "--threads", "2"])
    assert args.dataset == "fashion" and args.root is None and args.threads == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "fashion" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--dataset", "cifar"])


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_shipped_provenance_holds_no_absolute_path(name):
    prov = read_provenance(name)
    home = str(Path.home())
    for text in _strings(prov):
        assert not text.startswith(("/", "~", "\\")) and home not in text, (name, text)


def test_train_end_to_end_on_a_tiny_fake_fashion_mnist(tmp_path, one_thread):
    root, out = tmp_path / "fashion-idx", tmp_path / "out"
    _write_fake_fashion(root)
    prov = train("fashion", seed=0, root=root, out=out, epochs=1)
    assert (out / "lenet_fashion.pt").is_file()
    assert json.loads((out / "lenet_fashion.json").read_text()) == prov
    model, loaded = load_classifier("fashion", out)
    assert loaded == prov and isinstance(model, LeNetFashion)
    assert prov["n_train"] == 96 and prov["n_held_out"] == 20 and prov["epochs"] == 1
    assert prov["train_split"] == "train" and prov["held_out_split"] == "test"
    digest = hashlib.md5(gzip.decompress((root / "train-images-idx3-ubyte.gz").read_bytes())).hexdigest()
    assert prov["idx_md5_decompressed"]["train-images-idx3-ubyte"] == digest
    assert not any(str(tmp_path) in text or text.startswith("/") for text in _strings(prov))


def test_cli_reads_the_cache_folder_by_default(tmp_path, monkeypatch, one_thread):
    monkeypatch.setenv("HOME", str(tmp_path))
    _write_fake_fashion(tmp_path / ".cache" / "ganforge" / "fashion-mnist", n_train=40, n_test=10)
    out = tmp_path / "out"
    main(["--dataset", "fashion", "--out", str(out), "--epochs", "1", "--threads", "1"])
    prov = json.loads((out / "lenet_fashion.json").read_text())
    assert prov["n_train"] == 40 and prov["sha256"] == sha256_file(out / "lenet_fashion.pt")
