from __future__ import annotations

import pytest
import yaml

from ganforge.config import ExperimentConfig, list_presets, load_config, parse_override, presets_dir
from ganforge.errors import GanforgeError

REQUIRED_PRESETS = {"digits-dcgan", "mnist-mlp", "mnist-dcgan", "ring8-mlp", "grid25-mlp"}


def test_required_presets_ship_with_descriptions():
    presets = list_presets()
    assert REQUIRED_PRESETS <= set(presets)
    assert all(presets[name] for name in REQUIRED_PRESETS)


@pytest.mark.parametrize("name", sorted(REQUIRED_PRESETS))
def test_every_preset_resolves_and_builds_its_model(name):
    from ganforge.models import build

    cfg = load_config(name)
    shape = (2,) if cfg.data["name"] in ("ring8", "grid25") else (1, 28, 28)
    if cfg.data["name"] == "digits":
        shape = (1, cfg.data.get("size", 8), cfg.data.get("size", 8))
    G, D = build(cfg.model, shape)
    assert G.z_dim == cfg.model["z_dim"]


@pytest.mark.parametrize("name", sorted(list_presets()))
def test_every_shipped_preset_builds_its_experiment(name):
    """Networks, objective and stabilisers of every preset, without loading its data."""
    from ganforge.train import Experiment
    from ganforge.train.algorithms.base import algorithm_options, labels_are_classes
    from ganforge.train.algorithms.gan import GAN

    cfg = load_config(name)
    data = cfg.data["name"]
    size = cfg.data.get("pad_to") or cfg.data.get("size", 8 if data == "digits" else 28)
    shape = {"ring8": (2,), "grid25": (2,), "digits": (1, size, size), "table": (12,),
             "moving-mnist": (cfg.data.get("frames", 20), 1, size, size), "bach-chorales": (4, 64, 48),
             "moses": (cfg.data.get("max_atoms", 20), 8 + 4 * cfg.data.get("max_atoms", 20))}
    # image-to-image presets: (target shape, input shape) as their datasets declare them
    low = size // cfg.data.get("scale", 4)
    colour = {"super-resolution": ((3, size, size), (3, low, low)),
              "colorization": ((2, size, size), (1, size, size))}
    pairs = {"photo-patches": colour.get(cfg.data.get("task")),
             "masked-fashion": ((1, size, size), (1 + bool(cfg.data.get("mask_channel")), size, size))}
    if pairs.get(data):
        shape[data], cfg.algorithm["cond_shape"] = pairs[data][0], list(pairs[data][1])
    if cfg.algorithm["name"] == "smiles-lm":  # what a run reads from the data (its SMILES characters)
        cfg.algorithm.update(alphabet=list("()=1CNOc"), token_length=102)
    exp = Experiment(cfg, "cpu", sample_shape=shape.get(data, (1, size, size)),
                     num_classes=10 if labels_are_classes(cfg) or cfg.model.get("class_head") else None)
    algorithm = exp.algorithm
    assert type(algorithm.options) is type(algorithm).Options is type(algorithm_options(cfg))
    if isinstance(algorithm, GAN) and algorithm.self_conditioned:
        assert exp.num_classes == algorithm.options.stabilisers.self_condition
        assert algorithm.conditional in ("projection", "acgan") and not labels_are_classes(cfg)


def test_default_is_digits_dcgan():
    cfg = load_config()
    assert cfg.data["name"] == "digits" and cfg.model["name"] == "dcgan"


def test_resolution_order_preset_file_overrides(tmp_path):
    file = tmp_path / "exp.yaml"
    file.write_text(yaml.safe_dump({"train": {"steps": 7, "batch_size": 8}, "seed": 5}))
    cfg = load_config("ring8-mlp", file, ["train.steps=9", "train.lr_g=3e-4"])
    assert cfg.train.steps == 9          # override beats file
    assert cfg.train.batch_size == 8     # file beats preset
    assert cfg.optim["G"]["lr"] == pytest.approx(3e-4)  # "3e-4" is a number, not a string
    assert cfg.seed == 5
    assert cfg.model["name"] == "mlp"    # preset beats defaults


def test_changing_a_section_name_drops_the_old_keys():
    cfg = load_config("ring8-mlp", overrides=["model.name=dcgan"])
    assert cfg.model == {"name": "dcgan"}


def test_round_trip_through_yaml():
    cfg = load_config("digits-dcgan")
    again = ExperimentConfig.from_dict(yaml.safe_load(yaml.safe_dump(cfg.to_dict())))
    assert again == cfg


@pytest.mark.parametrize("override, fragment", [
    ("trian.steps=3", "unknown key 'trian'"),
    ("train.stpes=3", "unknown key 'train.stpes'"),
    ("train.steps=abc", "train.steps must be an integer"),
    ("train.steps=0", "at least 1"),
    ("train.ema_decay=1.5", "ema_decay"),
    ("steps", "key=value"),
])
def test_bad_overrides_name_the_problem(override, fragment):
    with pytest.raises(GanforgeError, match=fragment) as info:
        load_config("ring8-mlp", overrides=[override])
    assert "\n" not in str(info.value)


def test_unknown_preset_lists_the_choices():
    with pytest.raises(GanforgeError, match="unknown preset 'nope'.*ring8-mlp"):
        load_config("nope")


def test_invalid_yaml_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {steps: [\n")
    with pytest.raises(GanforgeError, match="not valid YAML"):
        load_config(config_file=bad)


def test_parse_override_types():
    assert parse_override("a.b=3") == ("a.b", 3)
    assert parse_override("a=true") == ("a", True)
    assert parse_override("a=[1, 2]") == ("a", [1, 2])
    assert parse_override("a=mnist") == ("a", "mnist")
    assert parse_override("a=null") == ("a", None)


def test_presets_dir_is_the_repo_configs_folder_in_a_checkout():
    assert (presets_dir() / "digits-dcgan.yaml").is_file()
