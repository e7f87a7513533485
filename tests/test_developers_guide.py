"""DEVELOPERS.md's worked examples, run: every ```python / ```yaml block whose first line is
``# example: ...`` is executed in order, and what it defines (a GAN family, a capability, an
algorithm that declares it, a metric, a dataset) is trained, sampled and evaluated through the
public Python API. The registries are restored afterwards."""

from __future__ import annotations

import csv
import re
import sys
import types
from pathlib import Path

import pytest
import torch
import yaml

from ganforge.config import ExperimentConfig, load_config
from ganforge.data import DATASETS, build_dataset
from ganforge.errors import GanforgeError
from ganforge.metrics.registry import METRICS
from ganforge.metrics.runs import EvalSettings, evaluate_run
from ganforge.models.base import MODELS
from ganforge.train import Trainer, load_run
from ganforge.train.algorithms.base import ALGORITHMS, families_with

GUIDE = Path(__file__).resolve().parents[1] / "DEVELOPERS.md"
BLOCK = re.compile(r"```(python|yaml)\n(# example: ([^(\n]+).*?)```", re.S)


def _examples() -> dict[str, tuple[str, str]]:
    """name -> (language, code) of every example block, in the guide's order."""
    return {m.group(3).strip(): (m.group(1), m.group(2)) for m in BLOCK.finditer(GUIDE.read_text())}


@pytest.fixture(scope="module")
def guide():
    """The namespace the python examples ran in (each sees the ones before it)."""
    examples = _examples()
    assert list(examples) == ["family", "family preset", "capability", "algorithm", "metric", "dataset"]
    module = types.ModuleType("developers_guide")  # dataclasses look their module up
    sys.modules[module.__name__] = module
    try:
        for language, code in examples.values():
            if language == "python":
                exec(compile(code, str(GUIDE), "exec"), module.__dict__)  # noqa: S102  our own guide
        module.preset = yaml.safe_load(examples["family preset"][1])
        yield module.__dict__
    finally:
        del sys.modules[module.__name__]
        MODELS.unregister("tiny")
        ALGORITHMS.unregister("autoencoder")
        DATASETS.unregister("bars")
        METRICS.pop("mean_gap", None)


def _csv_column(run_dir: Path, column: str) -> list[float]:
    with (run_dir / "metrics.csv").open() as fh:
        return [float(row[column]) for row in csv.DictReader(fh) if row.get(column)]


def test_the_tiny_family_learns_the_ring_from_its_preset(guide, tmp_path, one_thread):
    preset = tmp_path / "ring8-tiny.yaml"
    preset.write_text(yaml.safe_dump(guide["preset"]))
    cfg = load_config(config_file=preset, overrides={"train.sample_every": 1500,
                                                     "train.checkpoint_every": 1500})
    untrained = Trainer(cfg, tmp_path / "untrained", progress=False)
    before = untrained.algorithm.sample(2000, torch.Generator().manual_seed(0))
    Trainer(cfg, tmp_path / "run", progress=False).fit()
    after = load_run(tmp_path / "run").sample(2000, seed=0)
    # the ring has radius 2: the samples' distance from it shrinks as G learns
    gap = lambda x: float((x.norm(dim=1) - 2.0).abs().mean())  # noqa: E731
    assert gap(after) < 0.4 * gap(before), (gap(before), gap(after))


def test_the_autoencoder_declares_its_capability_and_learns(guide, tmp_path, one_thread):
    cfg = ExperimentConfig.from_dict({
        "algorithm": {"name": "autoencoder", "noise": 0.1}, "data": {"name": "digits", "size": 8},
        "model": {"name": "vae-mlp", "z_dim": 8, "hidden": [64]},
        "train": {"steps": 300, "batch_size": 64, "log_every": 10, "sample_every": 300,
                  "checkpoint_every": 300}})
    Trainer(cfg, tmp_path / "ae", progress=False).fit()
    mse = _csv_column(tmp_path / "ae", "mse")
    assert mse[-1] < 0.6 * mse[0], (mse[0], mse[-1])
    run = load_run(tmp_path / "ae")
    x = build_dataset({"name": "digits", "size": 8}).x[:64]
    assert guide["reconstruction_error"](run, x) < mse[0]
    assert families_with(guide["Reconstructs"]) == ["autoencoder"]
    assert run.sample(4, seed=0).shape == (4, 1, 8, 8)  # the decoder draws samples, too
    # a run without the capability gets the one line that names it and the family that has it
    gan = ExperimentConfig.from_dict({"data": {"name": "ring8"}, "model": {"name": "mlp", "g_hidden": [8],
                                                                          "d_hidden": [8]},
                                      "train": {"steps": 1, "sample_every": 1, "checkpoint_every": 1}})
    Trainer(gan, tmp_path / "gan", progress=False).fit()
    with pytest.raises(GanforgeError, match=r"cannot reconstruct images: .* \(capability Reconstructs, "
                                            r"which these families have: autoencoder\)"):
        guide["reconstruction_error"](load_run(tmp_path / "gan"), x)
    with pytest.raises(GanforgeError, match="algorithm.noise=-1.0 is not a finite number >= 0"):
        Trainer(ExperimentConfig.from_dict({**cfg.to_dict(), "algorithm": {"name": "autoencoder",
                                                                           "noise": -1}}),
                tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad").exists()


def test_the_metric_is_evaluated_through_the_one_path(guide, tmp_path, one_thread):
    cfg = load_config("ring8-mlp", overrides={"train.steps": 2, "model.g_hidden": [8], "model.d_hidden": [8]})
    Trainer(cfg, tmp_path / "run", progress=False).fit()
    result = evaluate_run(load_run(tmp_path / "run"), "mean_gap", EvalSettings(n=200), say=lambda line: None)
    value = result["metrics"]["mean_gap"]
    assert 0 <= value < 10 and "mean_gap" in result["baseline"]
    assert result["baseline"]["mean_gap"] < 0.2  # two halves of the real data have nearly one mean


def test_the_dataset_trains_the_family(guide, tmp_path, one_thread):
    data = build_dataset({"name": "bars", "size": 8, "n": 64})
    assert data.fields == ("x", "y") and data.kind == "image" and data.num_classes == 2
    rows = (data.x[data.y == 0] > 0).sum(dim=3).amax(dim=(1, 2))
    assert bool((rows == 8).all())  # a horizontal bar fills one row
    cfg = ExperimentConfig.from_dict({"data": {"name": "bars", "size": 8, "n": 64},
                                      "model": {"name": "tiny"},
                                      "train": {"steps": 20, "batch_size": 16, "sample_every": 20,
                                                "checkpoint_every": 20}})
    Trainer(cfg, tmp_path / "bars", progress=False).fit()
    assert load_run(tmp_path / "bars").sample(3, seed=0).shape == (3, 1, 8, 8)
