"""Imbalanced training sets and the registered ``imbalanced`` dataset."""

from __future__ import annotations

import pytest
import torch

from ganforge.config import load_config
from ganforge.data import build_dataset
from ganforge.data.imbalanced import class_counts, imbalanced_indices, make_imbalanced
from ganforge.errors import GanforgeError


def _labels(per_class: int = 100, k: int = 4) -> torch.Tensor:
    return torch.arange(k).repeat(per_class)  # interleaved classes


def test_rare_classes_keep_their_fraction_others_stay_whole():
    y = _labels()
    keep = imbalanced_indices(y, [1, 3], 0.05, seed=0)
    assert class_counts(y[keep], 4) == [100, 5, 100, 5]
    assert torch.equal(keep, torch.sort(keep).values)  # original order kept


def test_seeded_and_deterministic():
    y = _labels()
    a = imbalanced_indices(y, [2], 0.1, seed=0)
    assert torch.equal(a, imbalanced_indices(y, [2], 0.1, seed=0))
    assert not torch.equal(a, imbalanced_indices(y, [2], 0.1, seed=1))


def test_per_class_cuts_first_so_the_ratio_is_the_fraction_and_min_count_floors():
    y = _labels(200)
    keep = imbalanced_indices(y, [0], 0.1, per_class=50)
    assert class_counts(y[keep], 4) == [5, 50, 50, 50]
    keep = imbalanced_indices(y, [0], 0.001, min_count=3)
    assert class_counts(y[keep], 4)[0] == 3


def test_make_imbalanced_returns_matching_pairs():
    x = torch.arange(400, dtype=torch.float32).view(400, 1, 1, 1)
    y = _labels()
    xs, ys = make_imbalanced(x, y, [0], 0.1)
    assert torch.equal(ys, y[xs.flatten().long()])


@pytest.mark.parametrize(("rare", "fraction", "fragment"), [
    ([4], 0.1, "not a class index"), ([], 0.1, "non-empty"), ([1, 1], 0.1, "without repeats"),
    ([1], 0.0, "fraction"), ([1], 1.5, "fraction"), ("1", 0.1, "list of class indices")])
def test_bad_arguments_are_one_line_errors(rare, fraction, fragment):
    with pytest.raises(GanforgeError, match=fragment):
        imbalanced_indices(_labels(), rare, fraction)


def test_registered_dataset_wraps_a_base_and_keeps_its_declarations():
    base = build_dataset({"name": "digits", "size": 8})
    ds = build_dataset({"name": "imbalanced", "base": {"name": "digits", "size": 8},
                        "rare_classes": [3], "fraction": 0.1, "seed": 0})
    n3 = class_counts(base.y, 10)[3]
    assert class_counts(ds.y, 10)[3] == round(0.1 * n3)
    assert len(ds) == len(base) - n3 + round(0.1 * n3)
    assert (ds.name, ds.num_classes, ds.classes, ds.extractor) == (
        base.name, base.num_classes, base.classes, base.extractor)


@pytest.mark.parametrize(("section", "fragment"), [
    ({"base": {"name": "ring8"}, "rare_classes": [0], "fraction": 0.1}, "labelled in-memory"),
    ({"base": "digits", "rare_classes": [0], "fraction": 0.1}, "data.base"),
    ({"base": {"name": "digits"}, "rare_classes": [0], "fraction": 0.1, "colour": 1}, "unknown key"),
    ({"base": {"name": "digits"}, "fraction": 0.1}, "rare_classes"),
])
def test_bad_sections_are_one_line_errors(section, fragment):
    with pytest.raises(GanforgeError, match=fragment):
        build_dataset({"name": "imbalanced", **section})


@pytest.mark.parametrize("conditional", ["acgan", "projection"])
def test_presets_load_and_name_the_imbalanced_data(conditional):
    cfg = load_config(f"fashion-imbalanced-{conditional}")
    assert cfg.data["name"] == "imbalanced" and cfg.data["base"]["name"] == "fashion-mnist"
    assert cfg.model["conditional"] == conditional
    cfg = load_config(f"fashion-imbalanced-{conditional}",
                      overrides={"data.base.root": "/somewhere", "data.fraction": 0.05})
    assert cfg.data["base"]["root"] == "/somewhere" and cfg.data["fraction"] == 0.05
