"""Datasets declare what they offer; algorithms, evaluation and extractors ask them."""

from __future__ import annotations

import pytest
import torch

from ganforge.data import ArrayDataset, build_dataset
from ganforge.data.mnist import SOURCES
from ganforge.train.batches import batches_for


@pytest.mark.parametrize("section, fields, kind, extractor, modes", [
    ({"name": "digits"}, ("x", "y"), "image", "lenet_digits", None),
    ({"name": "ring8"}, ("x", "y"), "points-2d", "raw", "mixture"),
    ({"name": "grid25"}, ("x", "y"), "points-2d", "raw", "mixture"),
    ({"name": "moons"}, ("x",), "points-2d", "raw", None),
    ({"name": "spiral"}, ("x",), "points-2d", "raw", None),
])
def test_builtin_datasets_declare_their_capabilities(section, fields, kind, extractor, modes):
    ds = build_dataset(section)
    assert (ds.fields, ds.kind, ds.extractor, ds.modes) == (fields, kind, extractor, modes)
    batch = batches_for(ds, 8, seed=0).next()
    assert tuple(batch) == fields and len(batch["x"]) == 8


def test_the_mnist_family_names_its_classifier():
    assert {name: s.extractor for name, s in SOURCES.items()} == {
        "mnist": "lenet_mnist", "fashion-mnist": "lenet_fashion", "kmnist": "lenet_mnist"}
    assert SOURCES["fashion-mnist"].classes[9] == "Ankle boot"


def test_a_materialised_mixture_keeps_what_the_mode_metrics_read():
    ring = build_dataset({"name": "ring8"})
    fixed = ring.materialise(100, seed=1)
    assert fixed.modes == "mixture" and torch.equal(fixed.centers, ring.centers) and fixed.std == ring.std


def test_user_arrays_declare_fields_from_their_tensors():
    unlabelled = ArrayDataset(torch.zeros(10, 1, 8, 8))
    assert unlabelled.fields == ("x",) and unlabelled.kind == "image" and unlabelled.extractor is None
    labelled = ArrayDataset(torch.zeros(10, 2), torch.zeros(10, dtype=torch.long), extractor="raw")
    assert labelled.fields == ("x", "y") and labelled.kind == "points-2d"
    assert labelled.capabilities()["num_classes"] == 1
