"""The blur + JPEG augmentation of Wang et al. (CVPR 2020, "CNN-generated images are surprisingly
easy to spot... for now"): while the detector trains, each image is, with probability 0.5,
blurred by a Gaussian of random sigma, and, with probability 0.5, round-tripped through JPEG at a
random quality. It makes the detector rely on cues that survive ordinary post-processing.

Wang et al. draw sigma ~ U[0, 3] for 224-256 px images and quality ~ U{30, ..., 100}; the
default sigma range here, U[0, 1], is scaled down for the 8-64 px images ganforge works with
(sigma 3 would wipe out a 28 px digit). Images are float tensors (N, C, H, W) in [-1, 1], C = 1
(grey JPEG) or 3 (RGB JPEG).
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

#: default sigma range (pixels) of the random Gaussian blur
BLUR_SIGMA = (0.0, 1.0)
#: default JPEG quality range (inclusive) of the random JPEG round trip
JPEG_QUALITY = (30, 100)


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


def blur_jpeg_augment(x: torch.Tensor, rng: np.random.Generator, p_blur: float = 0.5,
                      p_jpeg: float = 0.5, sigma: tuple[float, float] = BLUR_SIGMA,
                      quality: tuple[int, int] = JPEG_QUALITY) -> torch.Tensor:
    """Wang et al.'s training augmentation on a batch ``x`` (N, C, H, W) in [-1, 1]: each image
    independently is blurred with probability ``p_blur`` (sigma ~ U[sigma]) and then, with
    probability ``p_jpeg``, JPEG round-tripped (quality ~ U{quality[0], ..., quality[1]}).
    Draws from ``rng`` only; returns a new tensor of the same shape, in [-1, 1]."""
    n = len(x)
    blur = rng.random(n) < p_blur
    sigmas = rng.uniform(sigma[0], sigma[1], n)
    jpeg = rng.random(n) < p_jpeg
    qualities = rng.integers(quality[0], quality[1] + 1, n)
    out = x.clone()
    if blur.any():
        idx = torch.from_numpy(np.flatnonzero(blur))
        out[idx] = gaussian_blur(out[idx], torch.from_numpy(sigmas[blur]))
    if jpeg.any():
        idx = torch.from_numpy(np.flatnonzero(jpeg))
        out[idx] = jpeg_round_trip(out[idx], qualities[jpeg])
    return out
