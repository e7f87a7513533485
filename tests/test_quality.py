"""The quality the shipped presets must reach (slow: `pytest -m slow`).

These train the real presets end to end with their own step budgets, exactly as
`ganforge train` does, and score the final generator.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganforge import Trainer, load_config, load_run
from tests.conftest import SHARED_MNIST, needs_mnist

pytestmark = pytest.mark.slow


def digits_classifier():
    """scikit-learn's MLPClassifier on all 1,797 real digits (pixels / 16). On a 30% held-out
    split it reaches 98.1% accuracy with mean top-class probability 0.98 (the real-data ceiling)."""
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    digits = load_digits()
    return MLPClassifier((128,), max_iter=2000, random_state=0).fit(digits.data / 16.0, digits.target)


def digit_scores(images: torch.Tensor, classifier) -> tuple[float, np.ndarray]:
    """Mean top-class probability and the class shares of generated images in [-1, 1]."""
    if images.shape[-1] != 8:
        images = F.adaptive_avg_pool2d(images, 8)  # area-average back to the digits' 8x8 grid
    pixels = ((images.clamp(-1, 1) + 1) / 2).reshape(len(images), -1).numpy()
    proba = classifier.predict_proba(pixels)
    shares = np.bincount(proba.argmax(1), minlength=10) / len(images)
    return float(proba.max(1).mean()), shares


def test_default_preset_makes_convincing_digits_of_every_class(tmp_path):
    """The first run's target (benchmarks/first_run.py reports the same numbers): 2,000 samples of
    the generator `ganforge sample` uses and of the EMA generator (the run's sample grids) get
    >= 95 % of held-out real digits' mean top-class probability under at least two of the three
    independent scorers of :mod:`ganforge.metrics.digit_scorers`, and every digit is the top
    class of >= 6 % of the samples under each scorer. The wall time (README: under three
    minutes) is measured by the benchmark, not asserted here."""
    from ganforge.metrics.digit_scorers import convincing, relative_scores

    start = time.perf_counter()
    Trainer(load_config(), tmp_path / "run", progress=False).fit()
    minutes = (time.perf_counter() - start) / 60
    run = load_run(tmp_path / "run")
    for ema in (False, True):
        summary = relative_scores(run.sample(2000, ema=ema, seed=123))
        print(f"default preset ({minutes:.2f} min), {'EMA ' if ema else ''}G: " + ", ".join(
            f"{name} {s['confidence']:.3f} = {s['ratio']:.3f} of real, rarest digit {s['min_share']:.3f}"
            for name, s in summary.items()))
        assert convincing(summary), summary


def test_self_conditioned_digits_preset_is_sharper_and_more_even(tmp_path):
    """digits-selfcond (the default run, conditioned on 20 clusters of D's features): measured
    seeds 0/1 at 0.944/0.957 mean top-class probability with every digit at 7.5-11.8 % /
    9.1-10.7 % of the samples, against 0.886/0.888 and 6.5-13.8 % / 6.0-12.6 % unconditioned."""
    Trainer(load_config("digits-selfcond"), tmp_path / "run", progress=False).fit()
    run = load_run(tmp_path / "run")
    samples = run.sample(1000, seed=123)  # labels drawn in proportion to the clusters' sizes
    confidence, shares = digit_scores(samples, digits_classifier())
    print(f"digits-selfcond: mean top-class probability {confidence:.3f}, "
          f"class shares {np.round(shares, 3).tolist()}")
    assert confidence >= 0.92
    assert shares.min() >= 0.06 and shares.max() <= 0.14


def test_ring8_preset_covers_all_eight_modes(tmp_path):
    cfg = load_config("ring8-mlp")
    Trainer(cfg, tmp_path / "run", progress=False).fit()
    samples = load_run(tmp_path / "run").sample(2500, seed=123)
    dataset = __import__("ganforge").build_dataset(cfg.data)
    distances = torch.cdist(samples, dataset.centers)
    nearest = distances.argmin(1)
    close = distances.min(1).values <= 3 * dataset.std
    modes = torch.unique(nearest[close]).numel()
    print(f"ring8-mlp: {modes}/8 modes, {close.float().mean():.3f} within 3 std")
    assert modes == 8
    assert close.float().mean() >= 0.90


@pytest.mark.parametrize(("preset", "hq"), [("ring8-selfcond", 0.98), ("grid25-selfcond", 0.97)])
def test_self_conditioned_presets_meet_the_mode_collapse_targets(tmp_path, preset, hq):
    """The issue's targets for the best preset (PacGAN protocol, 2,500 samples): every mode,
    >= 98 % (ring) / 97 % (grid) high quality, reverse KL <= 0.02 (the 60 s budget is measured
    by benchmarks/toy2d.py, not here)."""
    from ganforge.metrics.modes import mode_metrics

    cfg = load_config(preset)
    Trainer(cfg, tmp_path / "run", progress=False).fit()
    run = load_run(tmp_path / "run")
    dataset = __import__("ganforge").build_dataset(cfg.data)
    labels = run.algorithm.labels_for(2500, torch.Generator().manual_seed(1))
    m = mode_metrics(run.sample(2500, seed=123, labels=labels), dataset.centers, dataset.std)
    print(f"{preset}: {m['modes']} modes, {m['high_quality']:.3f} high quality, "
          f"KL {m['reverse_kl']:.4f}")
    assert m["modes"] == len(dataset.centers)
    assert m["high_quality"] >= hq and m["reverse_kl"] <= 0.02


@needs_mnist
@pytest.mark.parametrize("preset", ["mnist-projection", "mnist-acgan"])
def test_conditional_mnist_presets_draw_the_requested_class(tmp_path, preset):
    """Issue target: class-match accuracy >= 95% on MNIST for the projection and AC variants at
    the preset's budget, scored by the shipped LeNet MNIST classifier (not the model's own D)."""
    from ganforge.metrics.extractors import build_extractor

    cfg = load_config(preset, overrides={"data.root": str(SHARED_MNIST), "data.split": "test",
                                         "data.download": False})
    Trainer(cfg, tmp_path / "run", progress=False).fit()
    run = load_run(tmp_path / "run")
    labels = run.labels(2000)
    x = run.sample(2000, seed=1, labels=labels)
    _, logits = build_extractor("lenet_mnist", "mnist", (1, 28, 28))(x)
    match = float((logits.argmax(1) == labels).float().mean())
    assert match >= 0.95, f"{preset}: class-match {match:.3f}"
