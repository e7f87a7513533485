"""The video algorithms through the shared Trainer: the frame predictor's loss against a hand
computation, its options' one-line errors, the MSE-only run without D, bit-identical resume, a
loaded run predicting without data, MoCoGAN's phases and sampling, and short learning checks.

The data are Moving-MNIST-style clips of scikit-learn's digits (8x8 digits in 24x24 frames),
so nothing is downloaded."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganforge.config import ExperimentConfig
from ganforge.data.digits import digits
from ganforge.data.sequence import MovingDigits
from ganforge.errors import GanforgeError
from ganforge.maths.video import gradient_difference_loss
from ganforge.metrics.video import prediction_report
from ganforge.train import Experiment, Trainer, load_run
from ganforge.train.algorithms.base import PredictsFrames, has
from tests.train._image_to_image import assert_same_networks, resumed_checkpoints, tiny_config

FRAMES, SIZE = 8, 24
PREDICTOR = {
    "seed": 3,
    "algorithm": {
        "name": "frame-predictor",
        "observed": 4,
        "gdl_weight": 1.0,
        "adversarial_weight": 0.05,
        "context": 2,
    },
    "data": {"name": "moving-mnist"},  # replaced by the tiny clips passed to the Trainer
    "model": {"name": "convlstm", "hidden": [8], "kernel": 3, "patch": 4, "d_width": 4, "d_scales": 2},
    "train": {
        "steps": 6,
        "batch_size": 4,
        "log_every": 1,
        "sample_every": 3,
        "checkpoint_every": 3,
        "num_fixed_samples": 3,
    },
}
MOCOGAN = {
    "seed": 4,
    "algorithm": {"name": "mocogan"},
    "data": {"name": "moving-mnist"},
    "model": {"name": "mocogan", "content_dim": 6, "motion_dim": 4, "noise_dim": 3, "width": 4, "d_width": 4},
    "train": {
        "steps": 4,
        "batch_size": 4,
        "log_every": 1,
        "sample_every": 2,
        "checkpoint_every": 2,
        "num_fixed_samples": 4,
    },
}


def small_digits() -> np.ndarray:
    """scikit-learn's digits as uint8 8x8 images."""
    x = digits(size=8).x[:, 0]
    return ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()


@pytest.fixture(scope="module")
def clips() -> MovingDigits:
    return MovingDigits(small_digits(), frames=FRAMES, size=SIZE, num_digits=1)


@pytest.fixture(scope="module")
def square_clips() -> MovingDigits:
    """Clips with power-of-2 sides, as MoCoGAN draws."""
    return MovingDigits(small_digits(), frames=FRAMES, size=16, num_digits=1)


def _cfg(base: dict, **changes) -> ExperimentConfig:
    return tiny_config(base, **changes)


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


# ---------------------------------------------------------------------- the predictor's loss
def test_generator_loss_is_the_documented_sum(clips) -> None:
    exp = Experiment(_cfg(PREDICTOR), "cpu", dataset=clips)
    algorithm = exp.algorithm
    batch = {"x": clips.sample(3, torch.Generator().manual_seed(0))[0]}
    torch.manual_seed(0)
    loss, stats = algorithm.g_loss(batch, 0)
    x = batch["x"]
    predicted = algorithm.G.rollout(x, 4)
    future = predicted[:, 3:]
    d_fake = algorithm.D(torch.cat([x[:, 2:4], future], dim=1))
    expected = (
        F.mse_loss(predicted, x[:, 1:])
        + gradient_difference_loss(future, x[:, 4:])
        + 0.05 * F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
    )
    torch.testing.assert_close(loss, expected)
    assert stats["mse"] == pytest.approx(F.mse_loss(predicted, x[:, 1:]).item(), rel=1e-5)
    assert stats["mse_future"] == pytest.approx(F.mse_loss(future, x[:, 4:]).item(), rel=1e-5)


def test_discriminator_sees_context_then_future(clips) -> None:
    algorithm = Experiment(_cfg(PREDICTOR), "cpu", dataset=clips).algorithm
    x = clips.sample(2, torch.Generator().manual_seed(1))[0]
    real, fake = algorithm._clip_pair(x, torch.zeros(2, 4, 1, SIZE, SIZE))
    torch.testing.assert_close(real, x[:, 2:])
    torch.testing.assert_close(fake[:, :2], x[:, 2:4])
    assert torch.all(fake[:, 2:] == 0)


def test_mse_only_run_has_no_discriminator(tmp_path, clips) -> None:
    cfg = _cfg(PREDICTOR, algorithm={"gdl_weight": 0.0, "adversarial_weight": 0.0})
    Trainer(cfg, tmp_path / "run", progress=False, dataset=clips).fit()
    run = load_run(tmp_path / "run")
    assert set(run.algorithm.networks) == {"G"}
    assert has(run, PredictsFrames)
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0]
    assert "loss_D" not in header and "mse_future" in header


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"observed": 8}, "observed=8 leaves nothing"),
        ({"context": 5}, "context=5 exceeds"),
        ({"observed": 0}, "observed=0"),
        ({"l2_weight": 0.0, "gdl_weight": 0.0, "adversarial_weight": 0.0}, "all 0"),
        ({"gdl_alpha": 0}, "gdl_alpha=0"),
        ({"adversarial_weight": -1}, "adversarial_weight=-1"),
    ],
)
def test_bad_options_are_one_line_errors(clips, changes, message) -> None:
    with pytest.raises(GanforgeError, match=message):
        Experiment(_cfg(PREDICTOR, algorithm=changes), "cpu", dataset=clips)


def test_model_mismatches_are_one_line_errors(clips) -> None:
    with pytest.raises(GanforgeError, match="d_frames is set by the algorithm"):
        Experiment(_cfg(PREDICTOR, model={"d_frames": 3}), "cpu", dataset=clips)
    with pytest.raises(GanforgeError, match="not a frame predictor"):
        Experiment(ExperimentConfig.from_dict({**PREDICTOR, "model": MOCOGAN["model"]}), "cpu", dataset=clips)


def test_resume_is_bit_identical(tmp_path, clips) -> None:
    full, split = resumed_checkpoints(lambda **c: _cfg(PREDICTOR, **c), tmp_path, clips, 3)
    assert_same_networks(full, split, ("G", "D"))


def test_a_loaded_run_predicts_without_its_data(tmp_path, clips) -> None:
    Trainer(_cfg(PREDICTOR), tmp_path / "run", progress=False, dataset=clips).fit()
    run = load_run(tmp_path / "run")
    algorithm = run.algorithm
    observed = clips.sample(2, torch.Generator().manual_seed(5))[0][:, :4]
    out = algorithm.predict(observed, horizon=6)
    assert out.shape == (2, 6, 1, SIZE, SIZE) and out.abs().max() <= 1
    torch.testing.assert_close(algorithm.predict(observed, horizon=6), out)
    samples = run.draw(5)
    assert samples.x.shape == (5, FRAMES, 1, SIZE, SIZE)
    assert set(samples.panels) == {"truth", "prediction"}
    torch.testing.assert_close(samples.panels["prediction"][:, :4], samples.panels["truth"][:, :4])
    with pytest.raises(GanforgeError, match="not clips of shape"):
        algorithm.predict(torch.zeros(1, 4, 1, 12, 12))


# ---------------------------------------------------------------------- MoCoGAN
def test_mocogan_trains_and_samples_clips(tmp_path, square_clips) -> None:
    Trainer(_cfg(MOCOGAN), tmp_path / "run", progress=False, dataset=square_clips).fit()
    run = load_run(tmp_path / "run")
    assert set(run.algorithm.networks) == {"G", "D_image", "D_video"}
    x = run.sample(6, seed=1)
    assert x.shape == (6, FRAMES, 1, 16, 16)
    torch.testing.assert_close(x, run.sample(6, seed=1))
    assert (tmp_path / "run" / "samples").is_dir()


def test_mocogan_resume_is_bit_identical(tmp_path, square_clips) -> None:
    full, split = resumed_checkpoints(lambda **c: _cfg(MOCOGAN, **c), tmp_path, square_clips, 2)
    assert_same_networks(full, split, ("G", "D_image", "D_video"))


def test_mocogan_refuses_a_predictor_model(clips) -> None:
    with pytest.raises(GanforgeError, match="not a MoCoGAN family"):
        Experiment(
            ExperimentConfig.from_dict({**MOCOGAN, "model": {"name": "convlstm"}}), "cpu", dataset=clips
        )


# ---------------------------------------------------------------------- learning checks
def _future_mse(algorithm, test: torch.Tensor) -> tuple[float, float]:
    report = prediction_report(lambda obs: algorithm.predict(obs), test, 4)
    return report["mean"]["mse"], report["baselines"]["copy_last"]["mean"]["mse"]


def test_predictor_learns_to_beat_copying_the_last_frame(tmp_path, clips) -> None:
    """A few hundred MSE steps on single bouncing digits beat copy-last-frame on held-out clips."""
    cfg = _cfg(
        PREDICTOR,
        algorithm={"gdl_weight": 0.0, "adversarial_weight": 0.0},
        model={"hidden": [16]},
        train={
            "steps": 250,
            "batch_size": 16,
            "sample_every": 1000,
            "checkpoint_every": 1000,
            "log_every": 50,
        },
    )
    trainer = Trainer(cfg, tmp_path / "run", progress=False, dataset=clips)
    test = MovingDigits(
        small_digits(), split="test", frames=FRAMES, size=SIZE, num_digits=1, test_sequences=64, seed=9
    ).fixed(64)
    before, copy_last = _future_mse(trainer.algorithm, test)
    trainer.fit()
    after, _ = _future_mse(trainer.algorithm, test)
    assert after < 0.8 * copy_last and after < 0.5 * before


def test_mocogan_learns_the_look_of_the_clips(tmp_path, square_clips) -> None:
    """A few hundred steps take G from grey noise to clips whose mean frame is near the data's.
    (Motion comes later: at this length the frames barely change; the benchmark measures it.)"""
    cfg = _cfg(MOCOGAN, model={"width": 8, "d_width": 8},
               train={"steps": 300, "batch_size": 16, "sample_every": 10**6, "checkpoint_every": 10**6,
                      "log_every": 50})
    trainer = Trainer(cfg, tmp_path / "run", progress=False, dataset=square_clips)
    real = square_clips.sample(256, torch.Generator().manual_seed(1))[0].mean(dim=(0, 1))

    def mean_frame_gap() -> float:
        fake = trainer.algorithm.sample_clips(256, torch.Generator().manual_seed(2))
        return float(((fake.mean(dim=(0, 1)) - real) ** 2).mean())

    before = mean_frame_gap()
    trainer.fit()
    assert mean_frame_gap() < 0.2 * before
