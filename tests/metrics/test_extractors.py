from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics.classifier import load_classifier, read_provenance, sha256_file, weights_dir
from ganforge.metrics.extractors import (
    InceptionExtractor,
    LeNetExtractor,
    RawExtractor,
    auto_extractor_name,
    build_extractor,
    find_inception_weights,
)
from tests.conftest import SHARED_MNIST, needs_mnist


def test_shipped_weights_are_small_and_documented():
    for name, floor in (("mnist", 0.985), ("digits", 0.97)):
        prov = read_provenance(name)
        path = weights_dir() / f"lenet_{name}.pt"
        assert path.stat().st_size < 1_000_000
        assert prov["sha256"] == sha256_file(path)
        assert prov["held_out_accuracy"] >= floor
        for key in ("data", "split", "seed", "epochs", "n_train", "n_held_out"):
            assert key in prov


def test_digits_classifier_reaches_its_recorded_held_out_accuracy():
    from ganforge.metrics.train_classifier import accuracy, split_digits

    model, prov = load_classifier("digits")
    _, (x, y), _ = split_digits(prov["seed"])
    acc = accuracy(model, x, y)
    # recorded on one CPU model: another's rounding may flip one borderline prediction
    assert acc == pytest.approx(prov["held_out_accuracy"], abs=1.5 / len(y))
    assert acc >= 0.97


@needs_mnist
def test_mnist_classifier_reaches_its_recorded_held_out_accuracy():
    from ganforge.metrics.train_classifier import accuracy, split_mnist

    model, prov = load_classifier("mnist")
    _, (x, y), _ = split_mnist(SHARED_MNIST, prov["seed"])
    acc = accuracy(model, x, y)
    assert acc == pytest.approx(prov["held_out_accuracy"], abs=1.5 / len(y))
    assert acc >= 0.985


def test_tampered_weights_fail_the_checksum(tmp_path):
    for name in ("lenet_digits.pt", "lenet_digits.json"):
        shutil.copy(weights_dir() / name, tmp_path / name)
    data = bytearray((tmp_path / "lenet_digits.pt").read_bytes())
    data[-10] ^= 0xFF
    (tmp_path / "lenet_digits.pt").write_bytes(bytes(data))
    with pytest.raises(GanforgeError, match="sha256"):
        load_classifier("digits", tmp_path)
    (tmp_path / "lenet_digits.pt").unlink()
    with pytest.raises(GanforgeError, match="missing"):
        load_classifier("digits", tmp_path)


def test_extractor_shapes_and_resizing():
    ext = LeNetExtractor("digits")
    x = torch.rand(7, 1, 8, 8) * 2 - 1
    f, lg = ext(x, batch_size=3)
    assert f.shape == (7, 64) and lg.shape == (7, 10)
    f32, _ = ext(torch.nn.functional.interpolate(x, size=32, mode="bilinear"))
    assert f32.shape == (7, 64)
    mnist = LeNetExtractor("mnist")
    f, lg = mnist(torch.rand(4, 3, 28, 28) * 2 - 1)
    assert f.shape == (4, 192) and lg.shape == (4, 1000)
    np.testing.assert_allclose(torch.logsumexp(lg, 1).numpy(), 0.0, atol=1e-5)  # joint log-probs
    f, lg = RawExtractor()(torch.randn(5, 2))
    assert f.shape == (5, 2) and lg is None


def test_auto_extractor_asks_the_dataset_not_its_name():
    from ganforge.data import ArrayDataset, build_dataset
    from ganforge.data.mnist import SOURCES

    assert auto_extractor_name(build_dataset({"name": "ring8"})) == "raw"
    assert auto_extractor_name(build_dataset({"name": "digits"})) == "lenet_digits"
    assert SOURCES["mnist"].extractor == "lenet_mnist"
    assert SOURCES["fashion-mnist"].extractor == "lenet_fashion"
    # a dataset named like a known one but declaring nothing gets InceptionV3 (images) or raw
    impostor = ArrayDataset(torch.zeros(4, 1, 8, 8), name="digits")
    assert auto_extractor_name(impostor) == "inception"
    assert auto_extractor_name(ArrayDataset(torch.zeros(4, 3), name="mnist")) == "raw"
    declared = ArrayDataset(torch.zeros(4, 1, 8, 8), name="my-scans", extractor="lenet_digits")
    assert auto_extractor_name(declared) == "lenet_digits"
    with pytest.raises(GanforgeError, match="unknown extractor"):
        build_extractor("vgg")


def test_extractors_are_a_registry_with_one_lenet_per_shipped_classifier():
    from ganforge.data import build_dataset
    from ganforge.metrics.extractors import EXTRACTORS
    from ganforge.weights import ARCHITECTURES

    assert EXTRACTORS.names() == sorted(["raw", "inception", *(f"lenet_{n}" for n in ARCHITECTURES)])
    for name in ARCHITECTURES:
        extractor = build_extractor(f"lenet_{name}")
        assert isinstance(extractor, LeNetExtractor) and extractor.id == f"lenet_{name}"
    assert isinstance(build_extractor("auto", build_dataset({"name": "ring8"})), RawExtractor)
    assert build_extractor("auto", build_dataset({"name": "digits"})).id == "lenet_digits"
    with pytest.raises(GanforgeError, match="choose one of: auto, inception, lenet_digits"):
        build_extractor("lenet_kmnist")


def test_missing_inception_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv("GANFORGE_INCEPTION", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(GanforgeError, match="inception-2015-12-05.pt"):
        find_inception_weights()
    with pytest.raises(GanforgeError, match="not found"):
        InceptionExtractor(tmp_path / "nope.pt")


def _inception_or_skip():
    try:
        return find_inception_weights()
    except GanforgeError:
        pytest.skip("InceptionV3 weights not available (see docs/evaluation.md)")


def test_inception_features_when_weights_are_present():
    _inception_or_skip()
    ext = InceptionExtractor()
    f, _ = ext(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert f.shape == (2, 2048) and torch.isfinite(f).all()
    assert json.dumps(ext.describe())
