from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from ganforge.cli import main
from ganforge.config import ExperimentConfig
from ganforge.data import build_dataset
from ganforge.errors import GanforgeError
from ganforge.metrics.evaluate import Evaluator, evaluate_samples
from ganforge.metrics.fid import fid_from_features
from ganforge.metrics.registry import MetricContext, metric_columns, metric_names, resolve_best
from ganforge.train import Trainer
from ganforge.train.eval_callback import EvalCallback
from ganforge.viz.curves import read_metrics
from tests.conftest import TINY_RING


def test_perfect_ring_samples_score_like_real_data():
    ring = build_dataset({"name": "ring8"})
    x, _ = ring.sample(1000, torch.Generator().manual_seed(9))
    res = evaluate_samples(x, ring, "fid,prdc,modes", num_samples=1000)
    m, b = res["metrics"], res["baseline"]
    assert m["modes"] == 8 and b["modes"] == 8
    assert m["high_quality"] > 0.97 and m["reverse_kl"] < 0.02
    assert m["precision_raw"] > 0.9 and m["recall_raw"] > 0.9
    assert m["fid_raw"] < 0.05 and res["extractor"]["id"] == "raw"


def test_evaluator_fid_equals_direct_computation_on_digits():
    ds = build_dataset({"name": "digits"})
    ev = Evaluator(ds, "fid,is", num_samples=10_000, seed=3)
    assert ev.n == len(ds) // 2  # capped at half the real data
    fake = ds.x.flip(-1)
    res = ev.score(fake)
    fa, _ = ev.extractor(ev._real_a)
    ff, _ = ev.extractor(fake[: ev.n])
    assert res["fid_lenet_digits"] == pytest.approx(fid_from_features(fa, ff), rel=1e-9)
    assert res["fid_lenet_digits"] > 3 * ev.baseline()["fid_lenet_digits"]
    assert ev.baseline()["is_lenet_digits"] > 8  # real digits: confident, balanced


def test_reference_stats_cache(tmp_path):
    ring = build_dataset({"name": "ring8"})
    first = Evaluator(ring, "fid", num_samples=300, cache_dir=tmp_path)
    x, _ = ring.sample(300, torch.Generator().manual_seed(1))
    a = first.score(x)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    second = Evaluator(ring, "fid", num_samples=300, cache_dir=tmp_path)
    assert second.score(x) == a and second.baseline() == first.baseline()
    assert second._feats_a is None  # served from the cache


def test_inapplicable_metrics_and_best_are_user_errors():
    ring = build_dataset({"name": "ring8"})
    with pytest.raises(GanforgeError, match="logits"):
        Evaluator(ring, "is", num_samples=100)
    with pytest.raises(GanforgeError, match="mode metrics"):
        Evaluator(build_dataset({"name": "digits"}), "modes", num_samples=100)
    with pytest.raises(GanforgeError, match="unknown metric"):
        Evaluator(ring, "fd", num_samples=100)
    raw = MetricContext(extractor_id="raw", kind="points", modes="mixture")
    assert resolve_best("kid", metric_columns(["kid"], raw)) == ("kid_raw", False)
    assert resolve_best("precision", metric_columns(["fid", "prdc"], raw)) == ("precision_raw", True)
    assert resolve_best("reverse_kl", metric_columns(["modes"], raw)) == ("reverse_kl", False)
    with pytest.raises(GanforgeError, match="eval.best"):
        resolve_best("is", metric_columns(["fid"], raw))
    with pytest.raises(GanforgeError, match="eval.best"):  # a std is not a figure of merit
        resolve_best("kid_std", metric_columns(["kid"], raw))


def test_registry_directions_and_applicability():
    """Every registered metric names its columns and a direction; applicability is asked of the
    context (the dataset's declared capabilities), never of a dataset name."""
    assert {"fid", "kid", "is", "prdc", "modes", "class", "elbo", "iwae"} <= set(metric_names())
    lenet = MetricContext(extractor_id="lenet_mnist", has_logits=True, labelled=True)
    cols = metric_columns(["fid", "is", "class"], lenet)
    assert cols == {"fid_lenet_mnist": False, "is_lenet_mnist": True, "is_std_lenet_mnist": None,
                    "class_match_lenet_mnist": True, "intra_fid_lenet_mnist": False}
    stacked = MetricContext(extractor_id="lenet_mnist", has_logits=True, modes="stacked")
    assert metric_columns(["modes"], stacked) == {"modes_stacked_lenet_mnist": True,
                                                  "kl_stacked_lenet_mnist": False}
    from ganforge.metrics.registry import select_metrics

    assert "class" not in select_metrics(None, lenet)  # only for conditional samples
    assert "class" in select_metrics(None, MetricContext(extractor_id="lenet_mnist", has_logits=True,
                                                         labelled=True, conditional=True))
    assert select_metrics(None, lenet, source="model") == []  # a GAN has no likelihood
    with pytest.raises(GanforgeError, match="likelihood"):
        select_metrics(["iwae"], lenet)
    with pytest.raises(GanforgeError, match="no labels"):
        select_metrics(["class"], MetricContext(extractor_id="lenet_mnist", has_logits=True))


def _tiny_cfg(**eval_section):
    tree = copy.deepcopy(TINY_RING)
    tree["eval"] = {"every": 4, "num_samples": 200, **eval_section}
    return ExperimentConfig.from_dict(tree)


def test_eval_callback_logs_keeps_best_and_plots(tmp_path):
    cfg = _tiny_cfg(metrics=["fid", "modes"], best="fid")
    cb = EvalCallback.from_config(cfg.eval, cfg.data, cfg.seed)
    run = tmp_path / "run"
    Trainer(cfg, run, progress=False, callbacks=[cb]).fit()
    m = read_metrics(run / "metrics.csv")
    rows = np.isfinite(m["fid_raw"])
    assert list(m["step"][rows]) == [4, 8, 12]
    best = json.loads((run / "checkpoints" / "best.json").read_text())
    assert best["value"] == pytest.approx(np.nanmin(m["fid_raw"]), rel=1e-5)
    assert (run / "checkpoints" / "best.pt").is_file() and (run / "plots" / "eval_metrics.png").is_file()
    assert "fid_raw" in json.loads((run / "eval_baseline.json").read_text())["baseline"]


def test_cli_train_eval_every_and_evaluate(tmp_path, capsys):
    cfg_file = tmp_path / "tiny.yaml"
    import yaml

    cfg_file.write_text(yaml.safe_dump(TINY_RING))
    run = tmp_path / "run"
    assert main(["train", "--config", str(cfg_file), "--out", str(run), "--quiet", "--eval-every", "6",
                 "--set", "eval.num_samples=200", "--set", "eval.metrics=[fid,prdc]"]) == 0
    assert "fid_raw" in read_metrics(run / "metrics.csv")
    assert main(["evaluate", str(run), "-n", "300", "--metrics", "fid,kid,modes", "--cache",
                 str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert "real vs real" in out and "fid_raw" in out
    result = json.loads((run / "eval.json").read_text())
    assert result["generated_samples"] == 300 and result["extractor"]["id"] == "raw"
    assert set(result["baseline"]) == set(result["metrics"])
    samples = tmp_path / "s.npz"
    assert main(["sample", str(run), "-n", "300", "-o", str(samples)]) == 0
    assert main(["evaluate", "--samples", str(samples), "--ref", "ring8", "--metrics", "fid",
                 "-n", "300", "-o", str(tmp_path / "e.json"), "--cache", str(tmp_path / "cache")]) == 0
    again = json.loads((tmp_path / "e.json").read_text())
    assert again["metrics"]["fid_raw"] == pytest.approx(result["metrics"]["fid_raw"], rel=1e-9)


def test_cli_errors_write_nothing(tmp_path, capsys):
    run = tmp_path / "bad"
    assert main(["train", "ring8-mlp", "--out", str(run), "--quiet", "--eval-every", "5",
                 "--set", "eval.metrics=[is]"]) == 2
    assert "logits" in capsys.readouterr().err and not run.exists()
    assert main(["evaluate"]) == 2
    assert main(["evaluate", "--samples", str(tmp_path / "none.npz"), "--ref", "ring8"]) == 2
    assert not (tmp_path / "eval.json").exists()
