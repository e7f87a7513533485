"""The blur + JPEG augmentation of Wang et al. (CVPR 2020, "CNN-generated images are surprisingly
easy to spot... for now"), plus a random resize: while the detector trains, each image is, with
probability 0.5, blurred by a Gaussian of random sigma, and, with probability 0.5, round-tripped
through JPEG at a random quality. It makes the detector rely on cues that survive ordinary
post-processing.

Wang et al. draw sigma ~ U[0, 3] for 224-256 px images and quality ~ U{30, ..., 100}; the
default sigma range here, U[0, 1], is scaled down for the 8-64 px images ganforge works with
(sigma 3 would wipe out a 28 px digit). Images are float tensors (N, C, H, W) in [-1, 1], C = 1
(grey JPEG) or 3 (RGB JPEG).

Resizing is the third everyday post-processing step (images are rescaled whenever they are shared
or shown), and a resampling filter wipes out exactly the high-frequency traces of up-sampling that
a detector trained on pristine images keys on (Durall et al. 2020). :func:`random_resize`
(``p_resize`` of :func:`blur_jpeg_augment`) therefore downscales an image by a factor ~ U[0.5, 1]
(bilinear with antialiasing) and scales it back to its size, so the detector also learns cues that
survive a resampling. A factor acts alike at any image size, so unlike the blur's sigma the
range needs no scaling for small images: 0.5 leaves a 32 px image 16 px, still a recognisable
garment or digit. Its default probability in :func:`blur_jpeg_augment` is 0 (the
blur + JPEG draws of earlier versions stay reproducible); new code paths switch it on with
:data:`P_RESIZE`.

Every setting is checked (:func:`check_augment_settings`): a bad value is a one-line
:class:`~ganforge.errors.GanforgeError` naming the fix.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ganforge.errors import GanforgeError

#: default sigma range (pixels) of the random Gaussian blur
BLUR_SIGMA = (0.0, 1.0)
#: default JPEG quality range (inclusive) of the random JPEG round trip
JPEG_QUALITY = (30, 100)
#: default range of the random resize's scale factor (1 = unchanged)
RESIZE_FACTOR = (0.5, 1.0)
#: the resize probability of new code paths (the combined detector, benchmarks/forensics.py LOFO)
P_RESIZE = 0.5


def gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Normalised 1-D Gaussian kernels (N, 2 radius + 1), one per sigma (N,); sigma 0 is the
    identity kernel (a unit impulse)."""
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    s = sigma.double().clamp_min(1e-12)[:, None]
    k = torch.exp(-0.5 * (t[None] / s) ** 2)
    return k / k.sum(1, keepdim=True)


def gaussian_blur(x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    """Blur each image of ``x`` (N, C, H, W) by a Gaussian of standard deviation ``sigma``
    (pixels; a number, or one per image (N,)), separably, with reflect padding
    (``... c b | a b c d | c b ...``). The kernel is truncated at 3 sigma (of the largest sigma,
    and at most the image size minus one). Shape and dtype are kept; since each output pixel is
    a convex combination of input pixels, so is the value range."""
    n, c, h, w = x.shape
    sigma = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1).expand(n) if n else torch.zeros(0)
    if n == 0 or float(sigma.max()) <= 0:
        return x.clone()
    radius = max(1, min(math.ceil(3 * float(sigma.max())), h - 1, w - 1))
    k = gaussian_kernels(sigma, radius).to(x.dtype)  # (N, K)
    k = k.repeat_interleave(c, 0)[:, None]  # (N * C, 1, K): one group per image channel
    y = x.reshape(1, n * c, h, w)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="reflect"), k[:, :, None, :], groups=n * c)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), k[:, :, :, None], groups=n * c)
    return y.reshape(n, c, h, w)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[-1, 1] float images (N, C, H, W) -> uint8 (N, H, W, C), rounding to the nearest level."""
    return ((x.detach().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def jpeg_round_trip(x: torch.Tensor, quality: int | np.ndarray) -> torch.Tensor:
    """Encode each image of ``x`` (N, C, H, W) in [-1, 1] as a JPEG with Pillow at ``quality``
    (1..100; a number, or one per image) and decode it again: grey JPEG for C = 1, RGB for
    C = 3. The result is in [-1, 1], on the 8-bit grid (k / 127.5 - 1), same shape and dtype."""
    n, c = x.shape[:2]
    if c not in (1, 3):
        raise ValueError(f"JPEG needs 1 or 3 channels, got {c}")
    qualities = np.broadcast_to(np.asarray(quality, dtype=np.int64), (n,))
    pixels = to_uint8(x)
    out = np.empty_like(pixels)
    for i in range(n):
        im = Image.fromarray(pixels[i, :, :, 0] if c == 1 else pixels[i], "L" if c == 1 else "RGB")
        buffer = io.BytesIO()
        im.save(buffer, format="JPEG", quality=int(qualities[i]))
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            array = np.asarray(decoded.convert("L" if c == 1 else "RGB"))
        out[i] = array[:, :, None] if c == 1 else array
    y = torch.from_numpy(out).permute(0, 3, 1, 2).to(x.dtype) / 127.5 - 1.0
    return y.to(x.device)


def _number(value, what: str, fix: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise GanforgeError(f"{what} must be a number, got {value!r}", fix) from None
    if not math.isfinite(number):
        raise GanforgeError(f"{what} must be finite, got {value!r}", fix)
    return number


def _pair(value, what: str, fix: str) -> tuple[float, float]:
    try:
        low, high = value
    except (TypeError, ValueError):
        raise GanforgeError(f"{what} must be a (low, high) pair, got {value!r}", fix) from None
    return _number(low, what, fix), _number(high, what, fix)


def check_augment_settings(p_blur: float = 0.5, p_jpeg: float = 0.5, p_resize: float = 0.0,
                           sigma: tuple[float, float] = BLUR_SIGMA, quality: tuple[int, int] = JPEG_QUALITY,
                           factor: tuple[float, float] = RESIZE_FACTOR) -> None:
    """Refuse (one-line GanforgeError) probabilities outside [0, 1], a blur sigma range that is
    not 0 <= low <= high, a JPEG quality range outside 1..100 and a resize factor range outside
    (0, 1] (or with low > high)."""
    for name, p in (("p_blur", p_blur), ("p_jpeg", p_jpeg), ("p_resize", p_resize)):
        fix = f"pass a probability between 0 and 1 as {name}, e.g. 0.5 (0 switches it off)"
        if not 0.0 <= _number(p, name, fix) <= 1.0:
            raise GanforgeError(f"{name} must lie in [0, 1], got {p!r}", fix)
    fix = f"pass a blur sigma range (low, high) with 0 <= low <= high, e.g. {BLUR_SIGMA}"
    low, high = _pair(sigma, "the blur sigma range", fix)
    if not 0.0 <= low <= high:
        raise GanforgeError(f"the blur sigma range {tuple(sigma)} is not 0 <= low <= high", fix)
    fix = f"pass a JPEG quality range (low, high) with 1 <= low <= high <= 100, e.g. {JPEG_QUALITY}"
    low, high = _pair(quality, "the JPEG quality range", fix)
    if not (1 <= low <= high <= 100 and low == int(low) and high == int(high)):
        raise GanforgeError(f"the JPEG quality range {tuple(quality)} is not whole numbers "
                            "1 <= low <= high <= 100", fix)
    fix = (f"pass a resize factor range (low, high) with 0 < low <= high <= 1, e.g. {RESIZE_FACTOR} "
           "(1 = unchanged)")
    low, high = _pair(factor, "the resize factor range", fix)
    if not 0.0 < low <= high <= 1.0:
        raise GanforgeError(f"the resize factor range {tuple(factor)} does not lie in (0, 1] with "
                            "low <= high", fix)


def random_resize(x: torch.Tensor, factor: float | torch.Tensor | np.ndarray) -> torch.Tensor:
    """Downscale each image of ``x`` (N, C, H, W) by ``factor`` (in (0, 1]; a number, or one per
    image (N,)) to round(factor H) x round(factor W) pixels (at least 1), bilinearly with
    antialiasing (a triangle filter as wide as the scale, so the small image does not alias), and
    scale it back to H x W bilinearly. A factor that leaves the size unchanged (e.g. 1) leaves the
    image unchanged. Shape and dtype are kept; both resamplings take convex combinations of
    pixels, so the value range is kept too (the result is clamped to [-1, 1] against rounding)."""
    n, c, h, w = x.shape
    factors = np.broadcast_to(np.asarray(factor, dtype=np.float64).reshape(-1), (n,)) if n else np.zeros(0)
    if n and not (np.all(np.isfinite(factors)) and factors.min() > 0 and factors.max() <= 1):
        bad = factors[~((factors > 0) & (factors <= 1))][0]
        raise GanforgeError(f"resize factor {float(bad):g} is not in (0, 1]",
                            "downscale by a factor 0 < f <= 1 (1 = unchanged)")
    sizes = [(max(1, round(f * h)), max(1, round(f * w))) for f in factors]
    out = x.clone()
    for size in sorted(set(sizes)):
        if size == (h, w):
            continue
        idx = torch.tensor([i for i, s in enumerate(sizes) if s == size], dtype=torch.long)
        small = F.interpolate(x[idx], size=size, mode="bilinear", align_corners=False, antialias=True)
        out[idx] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False).clamp(-1, 1)
    return out


def blur_jpeg_augment(x: torch.Tensor, rng: np.random.Generator, p_blur: float = 0.5,
                      p_jpeg: float = 0.5, sigma: tuple[float, float] = BLUR_SIGMA,
                      quality: tuple[int, int] = JPEG_QUALITY, p_resize: float = 0.0,
                      factor: tuple[float, float] = RESIZE_FACTOR) -> torch.Tensor:
    """Wang et al.'s training augmentation on a batch ``x`` (N, C, H, W) in [-1, 1]: each image
    independently is resized with probability ``p_resize`` (:func:`random_resize`, factor ~
    U[factor]), then blurred with probability ``p_blur`` (sigma ~ U[sigma]) and then, with
    probability ``p_jpeg``, JPEG round-tripped (quality ~ U{quality[0], ..., quality[1]}): the
    order in which an image is rescaled, softened and finally saved. Draws from ``rng`` only (the
    resize's draws after the others', and none at ``p_resize`` 0, so the blur + JPEG draws are
    those of the version without resizing); returns a new tensor of the same shape, in [-1, 1].
    Bad settings are a one-line GanforgeError (:func:`check_augment_settings`)."""
    check_augment_settings(p_blur, p_jpeg, p_resize, sigma, quality, factor)
    n = len(x)
    blur = rng.random(n) < p_blur
    sigmas = rng.uniform(sigma[0], sigma[1], n)
    jpeg = rng.random(n) < p_jpeg
    qualities = rng.integers(quality[0], quality[1] + 1, n)
    out = x.clone()
    if p_resize > 0:
        resize = rng.random(n) < p_resize
        factors = rng.uniform(factor[0], factor[1], n)
        if resize.any():
            idx = torch.from_numpy(np.flatnonzero(resize))
            out[idx] = random_resize(out[idx], factors[resize])
    if blur.any():
        idx = torch.from_numpy(np.flatnonzero(blur))
        out[idx] = gaussian_blur(out[idx], torch.from_numpy(sigmas[blur]))
    if jpeg.any():
        idx = torch.from_numpy(np.flatnonzero(jpeg))
        out[idx] = jpeg_round_trip(out[idx], qualities[jpeg])
    return out
