"""Declared capabilities: what each family declares, how instances built without labels or a
truncation trick lack one, the one error of every "this run cannot do X" (the families it names
come from the registry), and no probing of algorithms or generators anywhere in the package."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import ganforge
from ganforge.config import ExperimentConfig, load_config
from ganforge.errors import GanforgeError
from ganforge.train import ALGORITHMS, Experiment
from ganforge.train.algorithms.base import (
    Algorithm,
    ClassConditioned,
    HasLikelihood,
    LatentSpace,
    StyleMixing,
    TableRows,
    TextConditioned,
    Translates,
    Truncatable,
    conditions_on_classes,
    families_with,
    has,
    require,
)
from tests.conftest import TINY_DIGITS, TINY_RING

BUILT_IN = {"gan", "vae", "dp-gan", "stackgan", "progan", "biggan", "stylegan2", "pix2pix", "cyclegan",
            "srgan", "colorize", "inpaint", "ctgan", "tvae", "copula"}
#: what each built-in family declares (its class bases)
DECLARED = {
    Translates: {"pix2pix", "cyclegan", "srgan", "colorize", "inpaint"},
    TextConditioned: {"stackgan"},
    ClassConditioned: {"gan", "dp-gan", "biggan", "stylegan2"},
    Truncatable: {"gan", "dp-gan", "biggan", "stylegan2"},
    StyleMixing: {"gan", "dp-gan", "biggan", "stylegan2"},
    LatentSpace: {"gan", "dp-gan", "biggan", "stylegan2", "progan", "vae"},
    HasLikelihood: {"vae"},
    TableRows: {"ctgan", "tvae", "copula"},
}


def _experiment(tree: dict, shape: tuple[int, ...], num_classes: int | None = None) -> Experiment:
    return Experiment(ExperimentConfig.from_dict(tree), "cpu", sample_shape=shape, num_classes=num_classes)


@pytest.mark.parametrize("capability", list(DECLARED), ids=lambda c: c.__name__)
def test_every_built_in_family_declares_its_capabilities_as_class_bases(capability):
    assert BUILT_IN <= set(ALGORITHMS.names())
    assert set(families_with(capability)) & BUILT_IN == DECLARED[capability]
    for name in BUILT_IN:
        assert issubclass(ALGORITHMS.get(name), capability) == (name in DECLARED[capability])


def test_a_gan_has_what_its_model_and_labels_give_it():
    plain = _experiment(TINY_RING, (2,)).algorithm
    assert has(plain, LatentSpace) and has(plain, Truncatable) is False and has(plain, StyleMixing) is False
    assert not has(plain, ClassConditioned) and not conditions_on_classes(plain)
    conditional = _experiment({**TINY_DIGITS, "model": {**TINY_DIGITS["model"], "conditional": "acgan"}},
                              (1, 8, 8), 10).algorithm
    assert has(conditional, ClassConditioned) and conditions_on_classes(conditional)
    # a self-conditioned run takes labels (clusters), but they are not the data's classes
    model = {**TINY_RING["model"], "conditional": "projection", "g_conditioning": "concat"}
    tree = {**TINY_RING, "model": model, "stabilisers": {"self_condition": 4}}
    clusters = _experiment(tree, (2,)).algorithm
    assert has(clusters, ClassConditioned) and not conditions_on_classes(clusters)
    styled = _experiment({**TINY_DIGITS, "model": {"name": "stylegan", "z_dim": 8, "w_dim": 8,
                                                   "mapping_layers": 1, "width": 4, "max_width": 8}},
                         (1, 8, 8)).algorithm
    assert has(styled, StyleMixing) and has(styled, Truncatable) and styled.truncation_trick == "w"


def test_require_is_the_one_error_naming_the_capability_and_the_families():
    algorithm = _experiment(TINY_RING, (2,)).algorithm
    assert require(algorithm, LatentSpace, "walk codes") is algorithm
    with pytest.raises(GanforgeError) as err:
        require(algorithm, TextConditioned, "draw --text captions")
    message = str(err.value)
    assert "\n" not in message and "algorithm 'gan' cannot draw --text captions" in message
    assert "gan has no text conditioning (capability TextConditioned" in message and "stackgan" in message
    with pytest.raises(GanforgeError, match=r"cannot sample class 3: it is not class-conditional "
                                            r"\(capability ClassConditioned, .*biggan, dp-gan, gan"):
        require(algorithm, ClassConditioned, "sample class 3")
    with pytest.raises(GanforgeError, match="its generator MLPGenerator has no truncation trick"):
        require(algorithm, Truncatable, "truncate", fix="drop --truncation")


class _Captioner(Algorithm, TextConditioned):
    """A family declared in this file: the error about text lists it as one that has it."""

    name = "captioner-test"

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        return torch.zeros(len(texts), 4)


def test_the_families_come_from_the_registry(monkeypatch):
    monkeypatch.setitem(ALGORITHMS._items, "captioner-test", _Captioner)
    assert families_with(TextConditioned) == ["captioner-test", "stackgan"]
    algorithm = _experiment(TINY_RING, (2,)).algorithm
    with pytest.raises(GanforgeError, match="which these families have: captioner-test, stackgan"):
        require(algorithm, TextConditioned, "draw captions")


def test_a_capability_is_a_contract_its_methods_must_meet():
    class Mute(Algorithm, TextConditioned):
        name = "mute"

    with pytest.raises(TypeError, match="encode_text"):
        Mute(ExperimentConfig.from_dict(TINY_RING), None, sample_shape=(2,), num_classes=None,
             device=torch.device("cpu"))


def test_an_image_to_image_run_leaves_its_config_as_given():
    cfg = load_config("fashion-pix2pix")
    before = dict(cfg.algorithm)
    exp = Experiment(cfg, "cpu", sample_shape=(1, 32, 32))
    assert cfg.algorithm == before and "cond_shape" not in cfg.algorithm
    assert exp.algorithm.restored_options(exp.algorithm.state_dict()) == {"cond_shape": [1, 32, 32]}


PROBE = re.compile(r"(getattr|hasattr)\([^)]*(algorithm|generator|\bG\b|self\.G)")


def test_no_module_probes_an_algorithm_or_a_generator_for_what_it_can_do():
    package = Path(ganforge.__file__).parent
    probes = [f"{path.relative_to(package)}:{i}: {line.strip()}"
              for path in sorted(package.rglob("*.py"))
              for i, line in enumerate(path.read_text().splitlines(), 1) if PROBE.search(line)]
    allowed = [p for p in probes if p.startswith("metrics/ppl.py")]  # PPL's own check, with its registry move
    assert probes == allowed, probes
