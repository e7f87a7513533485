import pytest
import torch

from ganforge.data import DATASETS, ArrayDataset, StreamDataset, build_dataset
from ganforge.errors import GanforgeError


def test_every_builtin_is_registered():
    for name in ["ring8", "grid25", "spiral", "swissroll", "moons", "toy2d", "digits", "mnist",
                 "fashion-mnist", "kmnist", "folder"]:
        assert name in DATASETS


def test_build_digits_from_a_config_section():
    ds = build_dataset({"name": "digits", "size": 16})
    assert isinstance(ds, ArrayDataset) and ds.x.shape == (1797, 1, 16, 16)


def test_build_toy_with_overrides():
    ds = build_dataset({"name": "grid25", "spacing": 1.0, "std": 0.1})
    assert isinstance(ds, StreamDataset) and ds.std == 0.1
    assert ds.centers.abs().max().item() == 2.0
    x, y = ds.sample(8, torch.Generator().manual_seed(0))
    assert x.shape == (8, 2) and y.shape == (8,)


def test_unknown_key_names_the_accepted_ones():
    with pytest.raises(GanforgeError) as err:
        build_dataset({"name": "digits", "sise": 16})
    assert str(err.value) == ("unknown key 'sise' for dataset 'digits'; "
                              "accepted keys are: name, size")


def test_unknown_dataset_lists_choices():
    with pytest.raises(GanforgeError, match="unknown dataset 'cifar'.*digits.*mnist"):
        build_dataset({"name": "cifar"})


def test_folder_needs_root():
    with pytest.raises(GanforgeError, match="dataset 'folder' needs key 'root'"):
        build_dataset({"name": "folder"})
