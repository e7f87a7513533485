"""The one metric registry: every metric declares its source, the runs it applies to and the
capabilities it needs; plans, defaults and one-line refusals follow from those declarations, and
the metrics that joined it (paired, restoration, cycle, PPL) compute what their functions do."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from ganforge.cli import main
from ganforge.config import ExperimentConfig
from ganforge.data.paired import PairedDataset
from ganforge.errors import GanforgeError
from ganforge.metrics.capabilities import (
    REQUIREMENTS,
    RUN_KINDS,
    LikelihoodModel,
    Translator,
    provided_by,
    run_kind,
)
from ganforge.metrics.paired import evaluate_translation, mean_scores
from ganforge.metrics.ppl import evaluate_ppl
from ganforge.metrics.registry import (
    METRICS,
    SOURCES,
    MetricContext,
    MetricSpec,
    ModelInputs,
    compute_metrics,
    get_metric,
    metric_columns,
    plan_metrics,
    register_metric,
    select_metrics,
)
from ganforge.metrics.restoration import colourfulness, high_frequency_ratio, y_scores
from ganforge.metrics.unpaired import cycle_l1
from ganforge.models import build
from ganforge.train import Trainer

TRANSLATION = MetricContext(run="translation", channels=3)


def test_every_metric_declares_its_source_runs_needs_and_columns():
    assert {"fid", "kid", "is", "prdc", "modes", "class", "elbo", "iwae", "l1", "psnr", "ssim", "ppl",
            "ychannel", "sharpness", "colourfulness", "cycle"} <= set(METRICS)
    for name, spec in METRICS.items():
        assert spec.source in SOURCES and spec.runs <= set(RUN_KINDS) and spec.needs <= set(REQUIREMENTS)
        assert spec.compute is not None and spec.description, name
        ctx = MetricContext(run=sorted(spec.runs)[0], provides=spec.needs, channels=3)
        assert spec.columns(ctx) and all(d in (True, False, None) for d in spec.columns(ctx).values())
    for bad in (MetricSpec("x", lambda ctx: {}, source="pixels"),
                MetricSpec("x", lambda ctx: {}, runs={"gan"}),
                MetricSpec("x", lambda ctx: {}, needs={"telepathy"})):
        with pytest.raises(ValueError):
            register_metric(bad)
    assert "x" not in METRICS
    with pytest.raises(RuntimeError, match="twice"):
        register_metric(METRICS["fid"])


def test_plans_and_defaults_follow_the_kind_of_run_and_what_it_provides():
    gan, vae = MetricContext(), MetricContext(provides=frozenset({"likelihood"}))
    assert plan_metrics(None, gan) == {"samples": None}
    assert plan_metrics(None, vae) == {"samples": None, "model": None}
    assert plan_metrics(None, TRANSLATION) == {"pairs": None}
    assert select_metrics(None, TRANSLATION) == ["l1", "psnr", "ssim"]  # FID only when asked for
    assert plan_metrics("fid,l1,ychannel", TRANSLATION) == {"samples": ["fid"], "pairs": ["l1", "ychannel"]}
    with pytest.raises(GanforgeError, match="does not apply to an image-to-image run") as err:
        plan_metrics("kid", TRANSLATION)
    assert "choose from: fid, l1, psnr, ssim" in str(err.value) and "cycle" not in str(err.value)
    with pytest.raises(GanforgeError, match="does not apply to a generative run"):
        plan_metrics("l1", gan)
    with pytest.raises(GanforgeError, match=r"perceptual path length \(ppl\) need a style-based generator"):
        plan_metrics("ppl", MetricContext(run_name="gan"))
    assert plan_metrics("ppl", MetricContext(provides=frozenset({"style"}))) == {"model": ["ppl"]}
    with pytest.raises(GanforgeError, match="cycle metrics"):
        plan_metrics("cycle", TRANSLATION)
    with pytest.raises(GanforgeError, match="RGB"):  # the data's check, once they are known
        select_metrics(["ychannel"], MetricContext(run="translation", channels=1))


class _Likely:
    """Bounds that depend on k, recording every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def log_likelihood_bounds(self, x, k, generator):
        self.calls.append((len(x), k))
        v = x.flatten(1).double().abs().sum(1)
        return {"neg_elbo": v, "recon_nll": v - 1, "kl": torch.ones_like(v), "nll_iwae": v - 1 / k}


class _Shift(nn.Module):
    def __init__(self, by: float) -> None:
        super().__init__()
        self.by = by

    def forward(self, x, generator=None):
        return (x + self.by).clamp(-1, 1)


class _Translator:
    """translate(x, network) applies network (default G_AB); G_BA is the inverse (cycle)."""

    def __init__(self, inverse: bool = True) -> None:
        self.G_AB = _Shift(0.25)
        if inverse:
            self.G_BA = _Shift(-0.125)

    def translate(self, x, network=None, generator=None, batch_size=256):
        return (self.G_AB if network is None else network)(x)


def test_capabilities_are_protocols_checked_with_isinstance():
    import ganforge.train.algorithms  # noqa: F401  (registers the algorithms)
    from ganforge.train.algorithms.base import ALGORITHMS

    assert provided_by(_Likely()) == {"likelihood"} and run_kind(_Likely()) == "generative"
    assert provided_by(_Translator()) == {"cycle"} and run_kind(_Translator()) == "translation"
    assert provided_by(_Translator(inverse=False)) == frozenset()
    style, _ = build({"name": "stylegan2", "z_dim": 4, "w_dim": 4, "mapping_layers": 2, "width": 2,
                      "max_width": 4}, (1, 8, 8))
    plain, _ = build({"name": "dcgan", "z_dim": 4, "width": 2}, (1, 8, 8))
    assert provided_by(generator=style) == {"style"} and provided_by(generator=plain) == frozenset()
    assert issubclass(ALGORITHMS.get("vae"), LikelihoodModel)
    assert not issubclass(ALGORITHMS.get("gan"), LikelihoodModel)
    assert issubclass(ALGORITHMS.get("pix2pix"), Translator)
    assert not issubclass(ALGORITHMS.get("gan"), Translator)


def test_elbo_and_iwae_come_from_one_pass_over_the_held_out_images():
    algo, x = _Likely(), torch.linspace(-1, 1, 250 * 4).view(250, 1, 2, 2)
    inputs = ModelInputs(algorithm=algo, held_out=lambda: (x, {"name": "toy"}), names=["elbo", "iwae"],
                         importance_samples=7)
    values = compute_metrics(["elbo", "iwae"], inputs)
    assert algo.calls == [(100, 7), (100, 7), (50, 7)]
    v = x.flatten(1).double().abs().sum(1)
    assert values == pytest.approx({"neg_elbo": float(v.mean()), "recon_nll": float(v.mean() - 1), "kl": 1.0,
                                    "nll_iwae": float(v.mean() - 1 / 7)})
    assert set(values) == set(metric_columns(["elbo", "iwae"], MetricContext()))
    assert inputs.info["likelihood"]["images"] == 250 and inputs.info["likelihood"]["data"] == {"name": "toy"}
    alone = _Likely()  # elbo alone is the k = 1 bound
    compute_metrics(["elbo"], ModelInputs(algorithm=alone, held_out=lambda: (x, {"name": "toy"}),
                                          names=["elbo"], importance_samples=7))
    assert {k for _, k in alone.calls} == {1}


def _pairs(channels: int, n: int = 6) -> PairedDataset:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, channels, 16, 16, generator=gen) * 2 - 1
    return PairedDataset(x, (x + 0.3 * torch.randn(x.shape, generator=gen)).clamp(-1, 1), name="noisy")


def test_translation_metrics_from_the_registry_equal_their_functions():
    algo, ds = _Translator(), _pairs(3)
    out = algo.translate(ds.cond)
    result = evaluate_translation(algo, ds, metrics=["l1", "ychannel", "sharpness", "colourfulness", "cycle"],
                                  provides=provided_by(algo))
    y = y_scores(out, ds.x)
    assert result["metrics"] == pytest.approx({
        "l1": mean_scores(out, ds.x)["l1"], "psnr_y": float(y["psnr"].mean()),
        "ssim_y": float(y["ssim"].mean()), "hf_ratio": high_frequency_ratio(out, ds.x),
        "colourfulness": float(colourfulness(out).mean()),
        "colourfulness_target": float(colourfulness(ds.x).mean()), "cycle_l1": cycle_l1(algo, ds.cond)},
        rel=1e-12)
    assert evaluate_translation(algo, ds)["metrics"] == mean_scores(out, ds.x)  # the defaults: l1, psnr, ssim
    with pytest.raises(GanforgeError, match="RGB"):
        evaluate_translation(algo, _pairs(1), metrics=["ychannel"])
    with pytest.raises(GanforgeError, match="cycle metrics"):
        evaluate_translation(algo, ds, metrics=["cycle"])  # the caller did not say the run provides it


def test_ppl_is_a_model_metric_of_a_style_based_generator():
    torch.manual_seed(0)
    G, _ = build({"name": "stylegan2", "z_dim": 8, "w_dim": 8, "mapping_layers": 2, "width": 2,
                  "max_width": 4}, (1, 32, 32))
    value = get_metric("ppl").compute(ModelInputs(generator=G, n=20, seed=3))
    assert value == evaluate_ppl(G, 20, seed=3) and math.isfinite(value["ppl_w_lenet_fashion"])
    assert set(value) == set(metric_columns(["ppl"], MetricContext(provides=frozenset({"style"}))))


def test_cli_evaluate_refuses_a_metric_the_run_cannot_give_in_one_line(tmp_path, capsys):
    run = tmp_path / "gan"
    assert main(["train", "ring8-mlp", "--steps", "2", "--quiet", "--out", str(run)]) == 0
    capsys.readouterr()
    # a capability the run lacks is worded by the run (train's require), naming the capability
    lacks_style = "cannot score metric 'ppl': its generator MLPGenerator is not a style-based generator"
    for metric, words in (("ppl", lacks_style + " (capability StyleMixing"),
                          ("cycle", "does not apply to a generative run"), ("l1", "choose from: fid,")):
        assert main(["evaluate", str(run), "--metrics", metric]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err
    assert not (run / "eval.json").exists()


def test_cli_evaluate_gives_restoration_metrics_of_a_super_resolution_run(tmp_path, capsys):
    pytest.importorskip("skimage")
    torch.set_num_threads(1)
    cfg = ExperimentConfig.from_dict({
        "seed": 0, "algorithm": {"name": "srgan", "adversarial": False},
        "data": {"name": "photo-patches", "task": "super-resolution", "size": 16, "scale": 4,
                 "n_patches": 32},
        "model": {"name": "srgan", "scale": 4, "width": 4, "blocks": 1, "d_width": 4},
        "train": {"steps": 2, "batch_size": 4, "sample_every": 2, "checkpoint_every": 2,
                  "num_fixed_samples": 4}})
    Trainer(cfg, tmp_path / "sr", progress=False).fit()
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(tmp_path / "sr"), "-n", "6", "--metrics", "psnr,ychannel,colourfulness",
                 "-o", str(out)]) == 0
    result = json.loads(out.read_text())
    assert list(result["metrics"]) == ["psnr", "psnr_y", "ssim_y", "colourfulness", "colourfulness_target"]
    assert result["images"] == 6 and set(result["baselines"]) == {"blank"}
    assert all(np.isfinite(v) for v in result["metrics"].values())
    assert "psnr_y" in capsys.readouterr().out
