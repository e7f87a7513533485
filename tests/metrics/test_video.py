"""Metrics of video prediction and generation: per-horizon scores against hand computations,
closed forms and scikit-image, the streamed report and its baselines on moving squares, and the
generation scores (frame-feature FD, temporal consistency) on moving digits."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

from ganforge.errors import GanforgeError
from ganforge.metrics.video import (
    PREDICTION_METRICS,
    frame_features_fd,
    frame_mse,
    frame_psnr,
    frame_ssim,
    gradient_energy_ratio,
    prediction_report,
    sharpness_difference,
    temporal_consistency,
    temporal_gap,
)

SIDE = 8  # the moving squares' side


def blur(x: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """A separable Gaussian blur of (..., H, W) frames (replicate padding)."""
    radius = int(3 * sigma)
    k = torch.exp(-torch.arange(-radius, radius + 1, dtype=x.dtype) ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    y = x.reshape(-1, 1, *x.shape[-2:])
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))
    return y.reshape(x.shape)


def render(top: torch.Tensor, left: torch.Tensor, size: int = 32) -> torch.Tensor:
    """(B, T, 1, size, size) frames in [-1, 1] of one square at (top, left) (B, T) each."""
    clips = -torch.ones(*top.shape, 1, size, size)
    for i in range(top.shape[0]):
        for k in range(top.shape[1]):
            r, c = int(top[i, k]), int(left[i, k])
            clips[i, k, 0, r:r + SIDE, c:c + SIDE] = 1.0
    return clips


def moving_squares(n: int = 12, t: int = 10, seed: int = 0) -> torch.Tensor:
    """(n, t, 1, 32, 32) clips of a square moving one pixel a frame along both axes, never
    touching an edge."""
    g = torch.Generator().manual_seed(seed)
    start = torch.randint(10, 15, (n, 2), generator=g)
    vel = torch.randint(0, 2, (n, 2), generator=g) * 2 - 1
    steps = torch.arange(t)
    return render(start[:, :1] + vel[:, :1] * steps, start[:, 1:] + vel[:, 1:] * steps)


def extrapolate(past: torch.Tensor, horizon: int) -> torch.Tensor:
    """The perfect predictor of :func:`moving_squares`: the square's velocity from the last two
    observed frames, carried on."""
    def corner(frames: torch.Tensor) -> torch.Tensor:  # (B, 2): the square's top-left pixel
        on = frames[:, 0] > 0
        return torch.stack([on.any(2).float().argmax(1), on.any(1).float().argmax(1)], 1)

    last, before = corner(past[:, -1]), corner(past[:, -2])
    steps = torch.arange(1, horizon + 1)
    pos = last[:, None, :] + (last - before)[:, None, :] * steps[None, :, None]
    return render(pos[..., 0], pos[..., 1])


def moving_digits(n: int = 40, t: int = 8, size: int = 64, digit: int = 24, seed: int = 0) -> torch.Tensor:
    """Moving-MNIST-like clips (n, t, 1, size, size) in [-1, 1]: one of scikit-learn's digits,
    upsampled to ``digit`` pixels, moving 1-3 pixels a frame and bouncing off the edges."""
    from sklearn.datasets import load_digits

    g = torch.Generator().manual_seed(seed)
    imgs = torch.from_numpy(load_digits().images).float()[:, None] / 16.0
    imgs = F.interpolate(imgs, size=(digit, digit), mode="bilinear", align_corners=False).clamp(0, 1)
    which = torch.randint(len(imgs), (n,), generator=g)
    clips = torch.zeros(n, t, 1, size, size)
    span = size - digit
    for i in range(n):
        pos = torch.randint(span + 1, (2,), generator=g).float()
        vel = (torch.rand(2, generator=g) * 2 + 1) * torch.where(torch.rand(2, generator=g) < 0.5, -1.0, 1.0)
        for k in range(t):
            top, left = int(pos[0]), int(pos[1])
            clips[i, k, 0, top:top + digit, left:left + digit] = imgs[which[i], 0]
            pos = pos + vel
            for a in range(2):
                if not 0 <= pos[a] <= span:
                    vel[a], pos[a] = -vel[a], pos[a].clamp(0, span)
    return clips * 2 - 1


@pytest.fixture(scope="module")
def digits_clips() -> torch.Tensor:
    return moving_digits()


# ----------------------------------------------------------------------- per-horizon metrics


def test_frame_mse_sums_the_squared_errors_of_a_frame():
    truth = -torch.ones(2, 3, 1, 16, 16)
    pred = truth.clone()
    pred[0, 0, 0, :1, :3] = 1.0      # clip 0: 3 wrong pixels at t=0, 10 at t=2
    pred[0, 2, 0, :2, :5] = 1.0
    pred[1, 0, 0, :1, :5] = 1.0      # clip 1: 5 wrong pixels at t=0, one half-wrong pixel at t=1
    pred[1, 1, 0, 4, 4] = 0.0
    np.testing.assert_allclose(frame_mse(pred, truth), [(3 + 5) / 2, 0.25 / 2, 10 / 2], rtol=0, atol=1e-12)
    assert frame_mse(pred, truth).dtype == np.float64 and frame_mse(pred, truth).shape == (3,)


def test_frame_psnr_matches_the_closed_form_and_caps_a_perfect_frame():
    truth = torch.rand(3, 4, 1, 8, 8, generator=torch.Generator().manual_seed(0)) - 0.5
    offsets = torch.tensor([0.1, 0.2, 0.4, 0.0]).view(1, 4, 1, 1, 1)
    # an offset d in [-1, 1] is d / 2 in [0, 1]: MSE = d^2 / 4, PSNR = 10 log10(4 / d^2)
    expected = [10 * math.log10(4 / d ** 2) for d in (0.1, 0.2, 0.4)] + [100.0]
    np.testing.assert_allclose(frame_psnr(truth + offsets, truth), expected, rtol=1e-5)
    assert np.isfinite(frame_psnr(truth, truth)).all()


def test_frame_ssim_matches_scikit_image_frame_by_frame():
    g = torch.Generator().manual_seed(1)
    truth = blur(torch.rand(3, 4, 1, 24, 24, generator=g) * 2 - 1, 1.0)
    pred = (truth + 0.3 * torch.randn(truth.shape, generator=g)).clamp(-1, 1)
    t01, p01 = ((truth.double() + 1) / 2).numpy(), ((pred.double() + 1) / 2).numpy()
    reference = [np.mean([structural_similarity(t01[i, k, 0], p01[i, k, 0], data_range=1.0)
                          for i in range(3)]) for k in range(4)]
    np.testing.assert_allclose(frame_ssim(pred, truth), reference, rtol=1e-10)
    np.testing.assert_allclose(frame_ssim(truth, truth), 1.0)
    rgb_t, rgb_p = truth.expand(-1, -1, 3, -1, -1), pred.flip(2).expand(-1, -1, 3, -1, -1)
    ref_rgb = np.mean([structural_similarity(((rgb_t[i, 0].double() + 1) / 2).numpy(),
                                             ((rgb_p[i, 0].double() + 1) / 2).numpy(), data_range=1.0,
                                             channel_axis=0) for i in range(3)])
    assert frame_ssim(rgb_p, rgb_t)[0] == pytest.approx(ref_rgb, rel=1e-10)


def test_gradient_energy_ratio_is_one_for_the_truth_and_below_one_when_blurred():
    # by hand: a step 0 -> 1 (in [0, 1]) has one squared difference 1 a row, the same step over two
    # pixels two of (1/2)^2: half the energy (the absolute differences would sum to 1 in both)
    step = torch.tensor([-1.0, -1.0, 1.0, 1.0]).expand(1, 1, 1, 3, 4)
    ramp = torch.tensor([-1.0, 0.0, 1.0, 1.0]).expand(1, 1, 1, 3, 4)
    np.testing.assert_allclose(gradient_energy_ratio(ramp, step), [0.5], rtol=1e-12)
    truth = moving_squares(6)
    np.testing.assert_allclose(gradient_energy_ratio(truth, truth), 1.0, rtol=0, atol=0)
    blurred = gradient_energy_ratio(blur(truth), truth)
    assert blurred.shape == (10,) and (blurred < 0.9).all()
    noisy = (truth + 0.2 * torch.randn(truth.shape, generator=torch.Generator().manual_seed(2))).clamp(-1, 1)
    assert (gradient_energy_ratio(noisy, truth) > 1).all()


def sharpness_reference(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mathieu et al.'s sharpness difference of one frame (H, W) in [0, 1], written as loops."""
    h, w = truth.shape
    total = 0.0
    for i in range(1, h):
        for j in range(1, w):
            gy = abs(truth[i, j] - truth[i - 1, j]) + abs(truth[i, j] - truth[i, j - 1])
            gx = abs(pred[i, j] - pred[i - 1, j]) + abs(pred[i, j] - pred[i, j - 1])
            total += abs(gy - gx)
    return 10 * math.log10(1 / (total / ((h - 1) * (w - 1))))


def test_sharpness_difference_follows_the_papers_formula_and_prefers_the_sharp_frame():
    g = torch.Generator().manual_seed(3)
    truth, pred = (torch.rand(2, 3, 1, 7, 9, generator=g) * 2 - 1 for _ in range(2))
    t01, p01 = ((truth.double() + 1) / 2).numpy(), ((pred.double() + 1) / 2).numpy()
    reference = [np.mean([sharpness_reference(p01[i, k, 0], t01[i, k, 0]) for i in range(2)])
                 for k in range(3)]
    np.testing.assert_allclose(sharpness_difference(pred, truth), reference, rtol=1e-10)
    squares = moving_squares(6)
    exact, blurred = sharpness_difference(squares, squares), sharpness_difference(blur(squares), squares)
    assert (exact == 100.0).all() and (blurred < exact - 50).all()
    assert (blurred < sharpness_difference(blur(squares, 0.5), squares)).all()


@pytest.mark.parametrize(("pred", "truth", "words"), [
    (torch.zeros(2, 3, 1, 8, 8), torch.zeros(2, 4, 1, 8, 8), "differ in shape"),
    (torch.zeros(3, 1, 8, 8), torch.zeros(3, 1, 8, 8), "(N, T, C, H, W)"),
    (np.zeros((2, 3, 1, 8, 8)), torch.zeros(2, 3, 1, 8, 8), "ndarray"),
    (torch.zeros(0, 3, 1, 8, 8), torch.zeros(0, 3, 1, 8, 8), "no clips"),
    (torch.zeros(2, 3, 1, 1, 8), torch.zeros(2, 3, 1, 1, 8), "2x2"),
])
def test_per_horizon_metrics_refuse_bad_clips_in_one_line(pred, truth, words):
    for metric in (frame_mse, frame_psnr, frame_ssim, gradient_energy_ratio, sharpness_difference):
        with pytest.raises(GanforgeError) as err:
            metric(pred, truth)
        assert words in str(err.value) and "\n" not in str(err.value)


# ------------------------------------------------------------------------------------- report


def test_report_of_a_perfect_predictor_against_the_baselines():
    clips = moving_squares()
    report = prediction_report(lambda past: extrapolate(past, 5), clips, observed=5)
    json.dumps(report, allow_nan=False)
    assert report["horizons"] == [1, 2, 3, 4, 5] and report["sequences"] == 12 and report["observed"] == 5
    assert set(report["metrics"]) == set(report["mean"]) == set(PREDICTION_METRICS)
    m = report["metrics"]
    assert m["mse"] == [0.0] * 5 and m["psnr"] == [100.0] * 5 and m["ssim"] == pytest.approx([1.0] * 5)
    assert m["gradient_energy_ratio"] == [1.0] * 5 and m["sharpness_difference"] == [100.0] * 5
    copy = report["baselines"]["copy_last"]
    # a square of side 8 shifted by h pixels along both axes: 2 (64 - (8 - h)^2) wrong pixels
    assert copy["metrics"]["mse"] == pytest.approx([2 * (SIDE ** 2 - (SIDE - h) ** 2) for h in range(1, 6)])
    assert np.all(np.diff(copy["metrics"]["mse"]) > 0) and np.all(np.diff(copy["metrics"]["psnr"]) < 0)
    assert copy["mean"]["mse"] == pytest.approx(np.mean(copy["metrics"]["mse"]))
    assert copy["metrics"]["gradient_energy_ratio"] == pytest.approx([1.0] * 5)  # sharp, but wrong
    mean_frame = report["baselines"]["mean_frame"]
    mean_of_past = clips[:, :5].double().mean(dim=1, keepdim=True).expand(-1, 5, -1, -1, -1)
    expected = frame_mse(mean_of_past, clips[:, 5:])
    np.testing.assert_allclose(mean_frame["metrics"]["mse"], expected, rtol=1e-12)
    assert all(v < 1 for v in mean_frame["metrics"]["gradient_energy_ratio"])  # the mean is blurred
    for base in (copy, mean_frame):
        assert all(b > 0 for b in base["metrics"]["mse"]) and base["mean"]["ssim"] < 1


def test_report_streams_batches_and_callables_to_the_same_numbers():
    clips = moving_squares(n=7)
    seen: list[tuple[int, ...]] = []

    def predict(past: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(past.shape))
        return blur(extrapolate(past, 4))

    whole = prediction_report(predict, clips[:, :9], observed=5, batch_size=100)
    assert seen == [(7, 5, 1, 32, 32)]
    chunked = prediction_report(predict, clips[:, :9], observed=5, batch_size=3)
    assert seen[1:] == [(3, 5, 1, 32, 32), (3, 5, 1, 32, 32), (1, 5, 1, 32, 32)]
    called = prediction_report(predict, lambda a, b: clips[a:b, :9], observed=5, batch_size=2, n=7)
    for other in (chunked, called):
        for section in ("metrics", "mean"):
            for key in PREDICTION_METRICS:
                np.testing.assert_allclose(other[section][key], whole[section][key], rtol=1e-12)
                np.testing.assert_allclose(other["baselines"]["copy_last"][section][key],
                                           whole["baselines"]["copy_last"][section][key], rtol=1e-12)
    first = prediction_report(predict, clips[:, :9], observed=5, n=4, baselines=False)
    assert first["sequences"] == 4 and first["baselines"] == {}
    np.testing.assert_allclose(first["metrics"]["mse"], frame_mse(blur(extrapolate(clips[:4, :5], 4)),
                                                                  clips[:4, 5:9]), rtol=1e-12)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"observed": 10}, "leaves nothing to predict"),
    ({"observed": 0}, "observed=0"),
    ({"observed": 3, "batch_size": 0}, "batch_size=0"),
    ({"observed": 3, "n": 13}, "more than the 12 sequences"),
    ({"observed": 3, "predict": lambda past: past}, "expected the next frames"),
    ({"observed": 3, "predict": lambda past: past.numpy()}, "ndarray"),
    ({"observed": 3, "sequences": lambda a, b: moving_squares()[a:b]}, "need their number n"),
    ({"observed": 3, "sequences": lambda a, b: moving_squares()[:2], "n": 6}, "batch(0, 6)"),
    ({"observed": 3, "sequences": [1, 2]}, "got list"),
])
def test_report_refuses_bad_arguments_in_one_line(kwargs, words):
    args = {"predict": lambda past: extrapolate(past, 7), "sequences": moving_squares(), **kwargs}
    with pytest.raises(GanforgeError) as err:
        prediction_report(**args)
    assert words in str(err.value) and "\n" not in str(err.value)


# --------------------------------------------------------------------------------- generation


def test_frame_features_fd_is_zero_for_identical_sets_symmetric_and_grows_with_changes(digits_clips):
    same = frame_features_fd(digits_clips, digits_clips.clone())
    g = torch.Generator().manual_seed(4)
    noisy = (digits_clips + 0.5 * torch.randn(digits_clips.shape, generator=g)).clamp(-1, 1)
    shifted = torch.roll(digits_clips, 6, dims=-1)
    d_noisy, d_shifted = frame_features_fd(digits_clips, noisy), frame_features_fd(digits_clips, shifted)
    assert abs(same) < 1e-5 and d_noisy > 1.0 and d_shifted > 1.0
    assert frame_features_fd(noisy, digits_clips) == pytest.approx(d_noisy, rel=1e-6)
    assert frame_features_fd(digits_clips, noisy, batch_size=37) == pytest.approx(d_noisy, rel=1e-6)
    with pytest.raises(GanforgeError, match="unknown extractor"):
        frame_features_fd(digits_clips, noisy, extractor_name="nope")


def test_temporal_consistency_orders_frozen_real_and_flickering_clips(digits_clips):
    frozen = digits_clips[:, :1].expand_as(digits_clips).clone()
    g = torch.Generator().manual_seed(5)
    flicker = torch.stack([digits_clips[torch.randperm(len(digits_clips), generator=g), k]
                           for k in range(digits_clips.shape[1])], dim=1)
    scores = {name: temporal_consistency(c) for name, c in
              (("frozen", frozen), ("real", digits_clips), ("flicker", flicker))}
    for key in ("frame_change", "identity_drift"):
        assert scores["frozen"][key] == pytest.approx(0.0, abs=1e-9)
        assert scores["frozen"][key] < scores["real"][key] < scores["flicker"][key]
    # the frame change by hand: mean over clips and pairs of the per-pixel squared change in [0, 1]
    u = (digits_clips.double() + 1) / 2
    by_hand = float(((u[:, 1:] - u[:, :-1]) ** 2).mean())
    assert scores["real"]["frame_change"] == pytest.approx(by_hand, rel=1e-12)
    assert temporal_consistency(digits_clips, batch_size=20) == pytest.approx(scores["real"], rel=1e-9)

    gap = temporal_gap(scores["flicker"], scores["real"])
    assert gap["frame_change_ratio"] > 1 and gap["identity_drift_ratio"] > 1
    assert gap["frame_change_log_gap"] == pytest.approx(abs(math.log(gap["frame_change_ratio"])))
    same = temporal_gap(digits_clips, scores["real"])
    assert same["frame_change_ratio"] == pytest.approx(1.0)
    assert same["identity_drift_log_gap"] == pytest.approx(0.0, abs=1e-9)
    still = temporal_gap(scores["frozen"], scores["real"])
    assert still["frame_change_ratio"] < 1e-6 and math.isfinite(still["frame_change_log_gap"])
    json.dumps(still, allow_nan=False)
    with pytest.raises(GanforgeError, match="at least 2 frames"):
        temporal_consistency(digits_clips[:, :1])
    with pytest.raises(GanforgeError, match="identity_drift"):
        temporal_gap({"frame_change": 1.0}, scores["real"])
