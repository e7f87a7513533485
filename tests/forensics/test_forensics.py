"""ganforge.forensics: the spectrum maths against independent references, the augmentations, the
CNN, a learning check on deliberately artefacted fakes, the combined detector, and `ganforge
detect` end to end."""

from __future__ import annotations

import csv
import json
import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ganforge import Trainer, build_dataset, load_config
from ganforge.errors import GanforgeError
from ganforge.forensics import (
    CNNDetector,
    CombinedDetector,
    ForensicCNN,
    SpectrumDetector,
    azimuthal_average,
    blur_jpeg_augment,
    evaluate,
    fit_detector,
    gaussian_blur,
    jpeg_round_trip,
    load_detector,
    power_spectrum,
    radial_spectrum,
    random_resize,
    save_detector,
    to_grey,
    train_detector,
)
from ganforge.forensics.augment import P_RESIZE
from ganforge.forensics.cli import main
from ganforge.forensics.spectrum import LOG_EPS, radial_bin_count


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------- spectrum maths


def loop_azimuthal_average(power: np.ndarray) -> np.ndarray:
    """The reference: visit every pixel, add it to the ring its rounded distance falls in."""
    h, w = power.shape
    cy, cx = h // 2, w // 2
    n_bins = int(round(math.hypot(max(cy, h - 1 - cy), max(cx, w - 1 - cx)))) + 1
    sums, counts = [0.0] * n_bins, [0] * n_bins
    for i in range(h):
        for j in range(w):
            k = int(round(math.hypot(i - cy, j - cx)))
            sums[k] += float(power[i, j])
            counts[k] += 1
    return np.array([s / c if c else 0.0 for s, c in zip(sums, counts, strict=True)])


def loop_dft_power(image: np.ndarray) -> np.ndarray:
    """|DFT|^2 by the defining double sum (orthonormal), zero frequency moved to (H//2, W//2)."""
    h, w = image.shape
    out = np.zeros((h, w))
    for u in range(h):
        for v in range(w):
            f = sum(image[m, n] * np.exp(-2j * np.pi * (u * m / h + v * n / w))
                    for m in range(h) for n in range(w)) / math.sqrt(h * w)
            out[(u + h // 2) % h, (v + w // 2) % w] = abs(f) ** 2
    return out


@pytest.mark.parametrize("shape", [(9, 12), (8, 8), (7, 5), (28, 28)])
def test_azimuthal_average_matches_a_direct_loop(shape):
    power = np.random.default_rng(0).random((3, *shape))
    got = azimuthal_average(power)
    assert got.shape == (3, radial_bin_count(*shape))
    for k in range(3):
        np.testing.assert_allclose(got[k], loop_azimuthal_average(power[k]), rtol=1e-12)


def test_azimuthal_average_of_a_radially_symmetric_function_is_its_radial_profile():
    h = w = 28
    r = np.hypot(*np.meshgrid(np.arange(h) - h // 2, np.arange(w) - w // 2, indexing="ij"))
    profile = np.cos(np.arange(radial_bin_count(h, w)) / 3.0) + 2.0
    np.testing.assert_allclose(azimuthal_average(profile[np.rint(r).astype(int)]), profile, rtol=1e-12)
    # a smooth g(r): each ring average lies within half a bin's variation of g(k)
    g = np.exp(-r / 6.0)
    avg = azimuthal_average(g)
    k = np.arange(len(avg))
    assert np.all(np.abs(avg - np.exp(-k / 6.0)) <= 0.5 / 6.0 * np.exp(-(k - 0.5).clip(0) / 6.0) + 1e-12)


def test_power_spectrum_matches_the_defining_dft_sum_and_parseval():
    image = np.random.default_rng(1).normal(size=(5, 6))
    np.testing.assert_allclose(power_spectrum(image), loop_dft_power(image), rtol=1e-9, atol=1e-12)
    batch = np.random.default_rng(2).normal(size=(4, 1, 16, 16))
    np.testing.assert_allclose(power_spectrum(batch).sum((-2, -1)), (batch ** 2).sum((1, 2, 3)))


def test_a_constant_image_has_all_its_power_at_dc():
    c, h, w = 0.3, 28, 28
    power = power_spectrum(np.full((1, 1, h, w), c))[0]
    assert power[h // 2, w // 2] == pytest.approx(c ** 2 * h * w)
    power[h // 2, w // 2] = 0
    assert np.abs(power).max() < 1e-20
    spectrum = radial_spectrum(np.full((2, 1, h, w), c))
    assert spectrum[:, 0] == pytest.approx(math.log(c ** 2 * h * w + LOG_EPS))
    np.testing.assert_allclose(spectrum[:, 1:], math.log(LOG_EPS), rtol=1e-6)


@pytest.mark.parametrize("size", [28, 27, 16])
@pytest.mark.parametrize(("fy", "fx"), [(0, 1), (0, 5), (3, 0), (4, 4), (2, 7)])
def test_a_pure_sinusoid_peaks_at_its_frequency_bin(size, fy, fx):
    i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    image = np.cos(2 * np.pi * (fy * i + fx * j) / size + 0.4)
    expected = round(math.hypot(fy, fx))
    assert np.argmax(azimuthal_average(power_spectrum(image))) == expected
    assert np.argmax(radial_spectrum(image[None, None])[0]) == expected


def test_spectrum_shapes_and_grey_conversion():
    x = torch.rand(5, 3, 16, 12) * 2 - 1
    assert radial_spectrum(x).shape == (5, radial_bin_count(16, 12))
    grey = to_grey(x)
    np.testing.assert_allclose(grey, 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2], atol=1e-6)
    np.testing.assert_allclose(radial_spectrum(x), radial_spectrum(grey[:, None]))
    assert radial_spectrum(x[:, :1]).shape == radial_spectrum(x[:, 0]).shape == (5, 11)
    assert (radial_bin_count(28, 28), radial_bin_count(8, 8), radial_bin_count(32, 32)) == (21, 7, 24)


# --------------------------------------------------------------------------- augmentation


def test_gaussian_blur_matches_scipy_and_keeps_shape_and_range():
    from scipy.ndimage import gaussian_filter

    x = torch.rand(3, 2, 16, 16, dtype=torch.float64) * 2 - 1
    got = gaussian_blur(x, 1.0)
    assert got.shape == x.shape and got.dtype == x.dtype
    # torch's "reflect" padding is scipy's "mirror"; radius ceil(3 sigma) = int(3 sigma + 0.5) at 1
    ref = gaussian_filter(x.numpy(), sigma=(0, 0, 1.0, 1.0), mode="mirror", truncate=3.0)
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-12)
    assert got.min() >= x.min() - 1e-12 and got.max() <= x.max() + 1e-12
    torch.testing.assert_close(gaussian_blur(x, 0.0), x)
    per_image = gaussian_blur(x, torch.tensor([0.0, 1.0, 0.5]))
    torch.testing.assert_close(per_image[0], x[0])
    torch.testing.assert_close(per_image[1], got[1])
    const = torch.full((1, 1, 8, 8), 0.25)
    torch.testing.assert_close(gaussian_blur(const, 2.5), const)


def test_jpeg_round_trip_keeps_shape_range_and_loses_more_at_low_quality():
    digits = build_dataset({"name": "digits", "size": 32}).x[:16]
    for x in (digits, digits.repeat(1, 3, 1, 1) * torch.tensor([1.0, 0.5, -0.2])[:, None, None]):
        hi, lo = jpeg_round_trip(x, 100), jpeg_round_trip(x, 10)
        assert hi.shape == lo.shape == x.shape and hi.dtype == x.dtype
        assert hi.min() >= -1 and hi.max() <= 1
        levels = (hi + 1) * 127.5
        torch.testing.assert_close(levels, levels.round(), atol=1e-4, rtol=0)  # on the 8-bit grid
        assert (hi - x).abs().mean() < 0.02 < (lo - x).abs().mean()
    per_image = jpeg_round_trip(digits[:2], np.array([100, 10]))
    torch.testing.assert_close(per_image[1], jpeg_round_trip(digits[1:2], 10)[0])


def test_blur_jpeg_augment_keeps_shape_and_range_and_is_seeded():
    x = build_dataset({"name": "digits", "size": 16}).x[:64]
    out = blur_jpeg_augment(x, np.random.default_rng(0))
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    changed = (out - x).abs().flatten(1).max(1).values > 1e-6
    assert 0.5 < changed.float().mean() < 0.95  # P(blur or JPEG) = 0.75
    torch.testing.assert_close(out, blur_jpeg_augment(x, np.random.default_rng(0)))
    torch.testing.assert_close(blur_jpeg_augment(x, np.random.default_rng(1), 0.0, 0.0), x)
    assert ((blur_jpeg_augment(x, np.random.default_rng(1), 1.0, 1.0) - x).abs().flatten(1).max(1).values
            > 1e-6).all()


def test_random_resize_keeps_shape_and_range_and_removes_the_finest_detail():
    x = build_dataset({"name": "digits", "size": 16}).x[:32]
    out = random_resize(x, 0.5)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= x.min() - 1e-6 and out.max() <= x.max() + 1e-6
    assert ((out - x).abs().flatten(1).max(1).values > 1e-3).all()  # every image changed
    torch.testing.assert_close(random_resize(x, 1.0), x, rtol=0, atol=0)  # identity at factor 1
    torch.testing.assert_close(random_resize(x, 0.99), x, rtol=0, atol=0)  # round(0.99 * 16) = 16
    const = torch.full((2, 3, 12, 10), -0.4)
    torch.testing.assert_close(random_resize(const, 0.6), const)
    # a pixel-level checkerboard (the Nyquist frequency) is averaged away; a slow ramp survives
    i, j = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    checker = (0.5 * (-1.0) ** (i + j)).float()[None, None]
    ramp = (j / 15.0 - 0.5).float()[None, None]
    assert random_resize(checker, 0.5).abs().max() < 0.05
    assert (random_resize(ramp, 0.5) - ramp).abs().max() < 0.1
    # one factor per image: each image as if resized alone
    per_image = random_resize(x[:3], np.array([1.0, 0.5, 0.75]))
    torch.testing.assert_close(per_image[0], x[0])
    torch.testing.assert_close(per_image[1], random_resize(x[1:2], 0.5)[0])
    torch.testing.assert_close(per_image[2], random_resize(x[2:3], 0.75)[0])


def test_blur_jpeg_augment_with_resize_is_seeded_and_leaves_the_other_draws_alone():
    x = build_dataset({"name": "digits", "size": 16}).x[:64]
    out = blur_jpeg_augment(x, np.random.default_rng(0), p_resize=0.5)
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    torch.testing.assert_close(out, blur_jpeg_augment(x, np.random.default_rng(0), p_resize=0.5))
    assert not torch.allclose(out, blur_jpeg_augment(x, np.random.default_rng(1), p_resize=0.5))
    # resizing alone, every image: changed, and exactly random_resize at the drawn factors
    only = blur_jpeg_augment(x, np.random.default_rng(2), 0.0, 0.0, p_resize=1.0)
    assert ((only - x).abs().flatten(1).max(1).values > 1e-6).float().mean() > 0.9
    rng = np.random.default_rng(2)
    rng.random(64), rng.uniform(0, 1, 64), rng.random(64), rng.integers(30, 101, 64), rng.random(64)
    torch.testing.assert_close(only, random_resize(x, rng.uniform(0.5, 1.0, 64)))
    # the resize draws come after the blur and JPEG ones: an identity resize changes nothing else
    identity = blur_jpeg_augment(x, np.random.default_rng(3), p_resize=1.0, factor=(1.0, 1.0))
    torch.testing.assert_close(identity, blur_jpeg_augment(x, np.random.default_rng(3)))


BAD_AUGMENT = [
    ({"p_blur": 1.5}, "p_blur must lie in [0, 1]"),
    ({"p_jpeg": -0.1}, "p_jpeg must lie in [0, 1]"),
    ({"p_resize": 2.0}, "p_resize must lie in [0, 1]"),
    ({"p_resize": float("nan")}, "p_resize must be finite"),
    ({"factor": (0.0, 1.0)}, "resize factor range (0.0, 1.0) does not lie in (0, 1]"),
    ({"factor": (0.5, 1.5)}, "resize factor range (0.5, 1.5) does not lie in (0, 1]"),
    ({"factor": (0.9, 0.5)}, "with low <= high"),
    ({"factor": 0.5}, "must be a (low, high) pair"),
    ({"sigma": (-1.0, 1.0)}, "blur sigma range"),
    ({"quality": (0, 100)}, "JPEG quality range"),
]


@pytest.mark.parametrize("kwargs, fragment", BAD_AUGMENT, ids=[b[1] for b in BAD_AUGMENT])
def test_bad_augmentation_settings_are_one_line_errors_naming_the_fix(kwargs, fragment):
    x = torch.zeros(2, 1, 8, 8)
    for call in (lambda: blur_jpeg_augment(x, np.random.default_rng(0), **kwargs),
                 lambda: CNNDetector((1, 8, 8), **kwargs),
                 lambda: fit_detector("combined", x, x, **kwargs)):
        with pytest.raises(GanforgeError) as err:
            call()
        message = str(err.value)
        assert fragment in message and "\n" not in message and "; pass " in message, message
    with pytest.raises(GanforgeError, match=r"resize factor 1.5 is not in \(0, 1\]; downscale by"):
        random_resize(x, 1.5)
    with pytest.raises(GanforgeError, match="resize factor 0 is not in"):
        random_resize(x, np.array([0.5, 0.0]))


def test_quantise_8bit_rounds_to_png_levels():
    from ganforge.forensics.images import quantise_8bit

    x = torch.rand(4, 1, 8, 8) * 2.2 - 1.1
    q = quantise_8bit(x)
    levels = (q + 1) * 127.5
    torch.testing.assert_close(levels, levels.round(), atol=1e-4, rtol=0)
    assert (q - x.clamp(-1, 1)).abs().max() <= 1 / 255 + 1e-6
    torch.testing.assert_close(quantise_8bit(q), q)


# --------------------------------------------------------------------------- CNN


def test_cnn_logits_shape_and_gradients_reach_every_parameter():
    net = ForensicCNN(3, width=4)
    x = torch.rand(6, 3, 16, 16) * 2 - 1
    logits = net(x)
    assert logits.shape == (6,)
    F.binary_cross_entropy_with_logits(logits, torch.tensor([0.0, 1.0] * 3)).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_cnn_input_gradient_matches_finite_differences():
    torch.manual_seed(0)
    net = ForensicCNN(1, width=2).double()
    x = (torch.rand(2, 1, 8, 8, dtype=torch.float64) * 2 - 1).requires_grad_()
    assert torch.autograd.gradcheck(net, (x,), eps=1e-6, atol=1e-5)


# --------------------------------------------------------------------------- learning check


def checkerboard_fakes(x: torch.Tensor, leak: float = 0.3) -> torch.Tensor:
    """A deliberately artefacted 'generator': halve the image, then up-sample by zero insertion
    and a 3x3 kernel outer([a, 1, a]) with a != 1/2 (not a partition of unity), which leaves the
    checkerboard pattern of a badly initialised transposed convolution."""
    low = F.avg_pool2d(x, 2)
    up = torch.zeros(len(x), x.shape[1], 2 * low.shape[2], 2 * low.shape[3])
    up[:, :, ::2, ::2] = low
    k = torch.tensor([leak, 1.0, leak])
    return F.conv2d(F.pad(up, (1, 1, 1, 1), mode="reflect"), torch.outer(k, k)[None, None]).clamp(-1, 1)


@pytest.mark.parametrize("kind, params", [("spectrum", {}), ("cnn", {"epochs": 3, "width": 8})])
def test_detectors_spot_checkerboard_upsampling_artefacts(kind, params):
    digits = build_dataset({"name": "digits", "size": 16}).x
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(0))
    real, fake = digits[order[:900]], checkerboard_fakes(digits[order[900:]])
    detector, report = train_detector(kind, real, fake, seed=0, **params)
    assert report["auc"] > 0.9 and report["accuracy"] > 0.8, report
    assert report["held_out_real"] == 180 and report["held_out_generated"] == 179


def test_spectrum_detector_is_the_sklearn_model_and_round_trips_without_pickle(tmp_path):
    digits = build_dataset({"name": "digits", "size": 16}).x
    real, fake = digits[:300], checkerboard_fakes(digits[300:600], leak=0.45)
    x = torch.cat([real, fake])
    y = np.r_[np.zeros(300), np.ones(300)]
    det = SpectrumDetector((1, 16, 16)).fit(x, y)
    np.testing.assert_allclose(det.predict_proba(x), det.sklearn_model.predict_proba(det.features(x))[:, 1],
                               rtol=1e-10, atol=1e-12)
    save_detector(tmp_path / "m", det, {"note": "test"})
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["detector.json", "detector.pt"]
    tensors = torch.load(tmp_path / "m" / "detector.pt", weights_only=True)
    assert set(tensors) == {"mean", "scale", "coef", "intercept"}
    loaded, info = load_detector(tmp_path / "m")
    assert info["detector"] == "spectrum" and info["image_shape"] == [1, 16, 16] and info["note"] == "test"
    np.testing.assert_array_equal(loaded.predict_proba(x), det.predict_proba(x))

    cnn = CNNDetector((1, 16, 16), width=4, epochs=1).fit(x[::10], y[::10])
    save_detector(tmp_path / "c", cnn, {})
    loaded, _ = load_detector(tmp_path / "c")
    np.testing.assert_allclose(loaded.predict_proba(x), cnn.predict_proba(x), rtol=1e-6)


def test_combined_detector_is_the_mean_of_its_parts_and_round_trips(tmp_path):
    digits = build_dataset({"name": "digits", "size": 16}).x
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(0))
    real, fake = digits[order[:600]], checkerboard_fakes(digits[order[600:1200]])  # a spectral cue
    real_test, fake_test = digits[order[1200:1500]], checkerboard_fakes(digits[order[1500:]])
    cnn_params = {"epochs": 2, "width": 8}
    det = fit_detector("combined", real, fake, seed=4, **cnn_params)
    assert isinstance(det, CombinedDetector) and det.cnn.p_resize == P_RESIZE
    report = evaluate(det, real_test, fake_test)
    assert report["auc"] > 0.9 and report["accuracy"] > 0.75, report
    x = torch.cat([real_test, fake_test])
    p = det.predict_proba(x)
    parts = det.spectrum.predict_proba(x), det.cnn.predict_proba(x)
    np.testing.assert_allclose(p, 0.5 * (parts[0] + parts[1]), rtol=1e-12)
    assert ((p >= 0) & (p <= 1)).all()
    np.testing.assert_allclose(1 / (1 + np.exp(-det.decision_function(x))), p, rtol=1e-9)
    # its parts are the spectrum and cnn detectors fitted alone with the same seed
    spectrum = fit_detector("spectrum", real, fake, seed=4)
    cnn = fit_detector("cnn", real, fake, seed=4, p_resize=P_RESIZE, **cnn_params)
    np.testing.assert_array_equal(det.spectrum.predict_proba(x), spectrum.predict_proba(x))
    np.testing.assert_array_equal(det.cnn.predict_proba(x), cnn.predict_proba(x))
    np.testing.assert_array_equal(CombinedDetector.from_parts(spectrum, cnn).predict_proba(x), p)

    save_detector(tmp_path / "m", det, {"note": "combined"})
    tensors = torch.load(tmp_path / "m" / "detector.pt", weights_only=True)
    assert {k.split(".")[0] for k in tensors} == {"spectrum", "cnn"} and "spectrum.coef" in tensors
    loaded, info = load_detector(tmp_path / "m")
    assert info["detector"] == "combined" and info["settings"]["cnn"]["p_resize"] == P_RESIZE
    assert isinstance(loaded, CombinedDetector) and loaded.cnn.p_resize == P_RESIZE
    np.testing.assert_allclose(loaded.predict_proba(x), p, rtol=1e-6)


def test_combined_parts_of_different_shapes_are_refused():
    with pytest.raises(GanforgeError, match="combine detectors trained on images of one shape"):
        CombinedDetector.from_parts(SpectrumDetector((1, 8, 8)), CNNDetector((1, 16, 16)))


# --------------------------------------------------------------------------- CLI


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """DCGAN on 8x8 digits, 5 steps, no EMA."""
    overrides = {"seed": 0, "data.size": 8, "model.width": 4, "model.z_dim": 8, "train.steps": 5,
                 "train.batch_size": 8, "train.log_every": 1, "train.sample_every": 1000,
                 "train.checkpoint_every": 1000, "train.num_fixed_samples": 4, "train.threads": 1,
                 "train.ema_decay": None}
    path = tmp_path_factory.mktemp("forensics") / "run"
    before = torch.get_num_threads()
    try:
        Trainer(load_config("digits-dcgan", overrides=overrides), path, progress=False).fit()
    finally:
        torch.set_num_threads(before)
    return path


@pytest.fixture(scope="session")
def spectrum_model(tiny_run, tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("forensics") / "model"
    assert main(["train", "--real", "digits", "--data", "size=8", "--fake", str(tiny_run), "-o", str(out),
                 "-n", "200", "--seed", "3"]) == 0
    return out


@pytest.fixture(scope="session")
def inputs(tmp_path_factory):
    """Bad and good inputs outside the output folder: an empty folder, a folder of 32x32 RGB
    PNGs, a 3x32x32 .npz, a non-empty folder, and a pickled detector.pt."""
    d = tmp_path_factory.mktemp("inputs")
    (d / "empty").mkdir()
    (d / "rgb").mkdir()
    Image.new("RGB", (32, 32), (10, 200, 30)).save(d / "rgb" / "a.png")
    np.savez(d / "rgb32.npz", x=np.zeros((4, 3, 32, 32), np.float32))
    np.savez(d / "big.npz", x=np.full((4, 1, 8, 8), 3.0, np.float32))
    (d / "full").mkdir()
    (d / "full" / "keep.txt").write_text("mine")
    (d / "pickled").mkdir()
    (d / "pickled" / "detector.json").write_text(json.dumps(
        {"format": "ganforge-detector", "detector": "spectrum", "image_shape": [1, 8, 8], "settings": {}}))
    with open(d / "pickled" / "detector.pt", "wb") as fh:
        pickle.dump({"coef": np.zeros(7)}, fh, protocol=2)  # not a weights-only torch file
    return d


def test_train_writes_detector_and_provenance(spectrum_model, tiny_run, capsys):
    info = json.loads((spectrum_model / "detector.json").read_text())
    assert info["detector"] == "spectrum" and info["image_shape"] == [1, 8, 8]
    assert info["channels"] == 1 and info["height"] == info["width"] == 8
    assert 0.0 <= info["held_out_auc"] <= 1.0 and 0.0 <= info["held_out_accuracy"] <= 1.0
    runs = info["training"]["runs"]
    assert len(runs) == 1 and runs[0]["run_dir"] == str(tiny_run.absolute()) and runs[0]["step"] == 5
    assert info["training"]["real"]["name"] == "digits" and info["training"]["real"]["images_used"] == 200
    assert info["training"]["train_real"] + info["training"]["held_out_real"] == 200
    assert sorted(p.name for p in spectrum_model.parent.iterdir()) == ["model"]  # no temporary left


def test_score_a_run_an_npz_and_a_folder(spectrum_model, tiny_run, tmp_path, capsys):
    from ganforge.train import load_run

    capsys.readouterr()
    out = tmp_path / "run.csv"
    assert main(["score", str(spectrum_model), str(tiny_run), "-n", "30", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "30 samples of run" in printed and "mean P(generated)" in printed
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 30 and [r["image"] for r in rows[:2]] == ["0", "1"]
    p = np.array([float(r["p_generated"]) for r in rows])
    assert ((p >= 0) & (p <= 1)).all()
    assert f"mean P(generated) {p.mean():.3f}" in printed

    samples = load_run(tiny_run).sample(30, seed=0).numpy()  # what the run scoring drew
    np.savez(tmp_path / "s.npz", x=samples)
    assert main(["score", str(spectrum_model), str(tmp_path / "s.npz"), "-o", str(tmp_path / "npz.csv")]) == 0
    p_npz = np.array([float(r["p_generated"]) for r in csv.DictReader((tmp_path / "npz.csv").open())])
    np.testing.assert_allclose(p_npz, p, atol=2e-6)

    folder = tmp_path / "pngs"
    folder.mkdir()
    pixels = ((samples[:5, 0] + 1) * 127.5).round().astype(np.uint8)
    for i, a in enumerate(pixels):
        Image.fromarray(a, "L").save(folder / f"img{i}.png")
    assert main(["score", str(spectrum_model), str(folder), "-o", str(tmp_path / "f.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "f.csv").open()))
    assert [r["image"] for r in rows] == [f"img{i}.png" for i in range(5)]
    # every image is scored on 8-bit levels, so the PNGs score as the samples they were saved from
    np.testing.assert_allclose([float(r["p_generated"]) for r in rows], p[:5], atol=2e-6)
    assert "5 images in" in capsys.readouterr().out
    assert main(["score", str(spectrum_model), str(folder)]) == 0  # no -o: print only


def test_cnn_detector_end_to_end(tiny_run, tmp_path, capsys):
    out = tmp_path / "cnn"
    out.mkdir()  # an existing empty folder is fine
    assert main(["train", "--real", "digits", "--data", "size=8", "--fake", str(tiny_run), str(tiny_run),
                 "-o", str(out), "--detector", "cnn", "--epochs", "1", "-n", "60"]) == 0
    info = json.loads((out / "detector.json").read_text())
    assert info["detector"] == "cnn" and info["settings"]["epochs"] == 1
    assert [r["images"] for r in info["training"]["runs"]] == [30, 30]
    state = torch.load(out / "detector.pt", weights_only=True)
    ForensicCNN(1, info["settings"]["width"]).load_state_dict(state)
    assert main(["score", str(out), str(tiny_run), "-n", "8"]) == 0
    assert "by the cnn detector" in capsys.readouterr().out


def test_combined_detector_end_to_end(tiny_run, tmp_path, capsys):
    out = tmp_path / "combined"
    assert main(["train", "--real", "digits", "--data", "size=8", "--fake", str(tiny_run), "-o", str(out),
                 "--detector", "combined", "--epochs", "1", "-n", "40"]) == 0
    info = json.loads((out / "detector.json").read_text())
    assert info["detector"] == "combined" and info["settings"]["cnn"]["epochs"] == 1
    assert main(["score", str(out), str(tiny_run), "-n", "8"]) == 0
    assert "by the combined detector" in capsys.readouterr().out


ERRORS = [
    (["train", "--real", "digits", "--data", "size=8", "--fake", "{d}/no-such-run", "-o", "{d}/m"],
     "does not exist"),
    (["train", "--real", "digits", "--data", "size=8", "--fake", "{run}", "-o", "{d}/m", "-n", "0"],
     "-n must be at least 10, got 0"),
    (["train", "--real", "digits", "--data", "size=8", "--fake", "{run}", "-o", "{in}/full"],
     "exists and is not empty"),
    (["train", "--real", "{in}/empty", "--fake", "{run}", "-o", "{d}/m"], "no .png/.jpg/.jpeg images found"),
    (["train", "--real", "digits", "--data", "size=16", "--fake", "{run}", "-o", "{d}/m"],
     "the real images are 1x16x16 but the runs generate 1x8x8"),
    (["train", "--real", "{in}/rgb32.npz", "--fake", "{run}", "-o", "{d}/m"],
     "the real images are 3x32x32 but the runs generate 1x8x8"),
    (["train", "--real", "{in}/big.npz", "--fake", "{run}", "-o", "{d}/m"], "not [-1, 1]"),
    (["train", "--real", "{run}", "--fake", "{run}", "-o", "{d}/m"], "is a run directory"),
    (["train", "--real", "{d}/nowhere/", "--fake", "{run}", "-o", "{d}/m"], "does not exist"),
    (["train", "--real", "nosuchdata", "--fake", "{run}", "-o", "{d}/m"], "unknown dataset"),
    (["train", "--real", "digits", "--data", "size=8", "--fake", "{run}", "-o", "{d}/m", "--epochs", "2"],
     "--epochs applies to the cnn detector"),
    (["train", "--real", "digits", "--data", "size=8", "--fake", "{run}", "-o", "{d}/m", "--detector", "cnn",
      "--epochs", "0"], "--epochs must be at least 1"),
    (["train", "--real", "digits", "--fake", "{run}", "-o", "{d}/m", "--detector", "svm"], "invalid choice"),
    (["train", "--real", "digits", "--fake", "{run}", "-o", "{d}/m", "--ema", "--checkpoint", "nope"],
     "unknown checkpoint"),
    (["score", "{model}", "{in}/rgb32.npz"], "detector expects 1x8x8 images, got 3x32x32"),
    (["score", "{model}", "{in}/rgb"], "detector expects 1x8x8 images, got 3x32x32 (a.png)"),
    (["score", "{model}", "{in}/empty"], "no .png/.jpg/.jpeg images found"),
    (["score", "{model}", "{in}/big.npz", "-o", "{d}/s.csv"], "not [-1, 1]"),
    (["score", "{d}/no-model", "{run}"], "detector folder"),
    (["score", "{in}/empty", "{run}"], "holds no detector"),
    (["score", "{in}/pickled", "{run}", "-o", "{d}/s.csv"], "cannot read the detector"),
    (["score", "{model}", "{run}", "-o", "{d}/s.txt"], "must end in .csv"),
    (["score", "{model}", "{run}", "-o", "{d}/missing/s.csv"], "does not exist"),
    (["score", "{model}", "{run}", "-n", "0", "-o", "{d}/s.csv"], "-n must be at least 1"),
    (["score", "{model}", "{d}/missing.npz", "-o", "{d}/s.csv"], "does not exist"),
    (["score", "{model}", "{run}", "--ema", "-o", "{d}/s.csv"], "trained without EMA"),
]


@pytest.mark.parametrize("argv, fragment", ERRORS, ids=[e[1] for e in ERRORS])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(argv, fragment, tiny_run, spectrum_model, inputs,
                                                         tmp_path, capsys):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    before = sorted(p.relative_to(inputs).as_posix() for p in inputs.rglob("*"))
    fill = {"d": out_dir, "run": tiny_run, "model": spectrum_model, "in": inputs}
    capsys.readouterr()
    assert main([a.format(**fill) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ganforge: error: "), err
    assert fragment in err[0], err[0]
    assert list(out_dir.iterdir()) == []  # no output, no temporary file
    assert sorted(p.relative_to(inputs).as_posix() for p in inputs.rglob("*")) == before


def test_wired_into_the_main_cli(spectrum_model, tiny_run, capsys):
    from ganforge import cli

    assert cli.main(["detect", "score", str(spectrum_model), str(tiny_run), "-n", "10"]) == 0
    assert "generated" in capsys.readouterr().out
    assert cli.main(["detect", "score", str(spectrum_model), str(tiny_run), "-n", "0"]) == 2
