"""Differentiable image distortions for a robust watermark, on images in [-1, 1].

The three attacks of the benchmark, each usable alone (fixed strength) or drawn at random per
training batch by :class:`Augment`:

* :func:`gaussian_noise`: ``x + sigma * eps``, eps ~ N(0, I), clipped to [-1, 1];
* :func:`gaussian_blur`: a separable Gaussian kernel (radius ceil(2 sigma)), reflect padding;
* :func:`resize_down_up`: bilinear (antialiased) down to ``scale`` x the side, then back up.

Every function keeps the shape and keeps values in [-1, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def gaussian_noise(x: torch.Tensor, sigma: float | torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """``clip(x + sigma * eps, -1, 1)``; ``sigma`` a number or one per image (N,)."""
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if sigma.dim() == 1:
        sigma = sigma.view(-1, *([1] * (x.dim() - 1)))
    eps = torch.randn(x.shape, generator=generator).to(x)
    return (x + sigma * eps).clamp(-1.0, 1.0)


def _kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Normalised 1-D Gaussian kernels (len(sigma), 2 radius + 1)."""
    t = torch.arange(-radius, radius + 1, dtype=sigma.dtype, device=sigma.device)
    k = torch.exp(-0.5 * (t.view(1, -1) / sigma.clamp_min(1e-6).view(-1, 1)) ** 2)
    return k / k.sum(1, keepdim=True)


def gaussian_blur(x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    """Gaussian blur of images (N, C, H, W); ``sigma`` (pixels) a number or one per image (N,).
    A sigma of 0 leaves the image as it is."""
    n, c, h, w = x.shape
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).flatten()
    if sigma.numel() == 1:
        sigma = sigma.expand(n)
    top = float(sigma.max()) if n else 0.0
    if top <= 0:
        return x
    radius = max(1, min(math.ceil(2 * top), min(h, w) - 1))
    k = _kernels(sigma, radius)
    k = torch.where((sigma > 0).view(-1, 1), k, F.one_hot(torch.tensor(radius), 2 * radius + 1).to(k))
    k = k.repeat_interleave(c, 0)  # one kernel per (image, channel), as groups
    y = F.pad(x.reshape(1, n * c, h, w), (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, k.view(n * c, 1, 1, -1), groups=n * c)
    y = F.conv2d(y, k.view(n * c, 1, -1, 1), groups=n * c)
    return y.view(n, c, h, w)


def resize_down_up(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Bilinear resize to ``round(scale * side)`` (antialiased) and back to the original size."""
    h, w = x.shape[-2:]
    small = (max(1, round(h * scale)), max(1, round(w * scale)))
    if small == (h, w):
        return x
    y = F.interpolate(x, size=small, mode="bilinear", align_corners=False, antialias=True)
    return F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False).clamp(-1.0, 1.0)


@dataclass
class Augment:
    """Random distortions of a training batch: each of noise, blur and resize is applied to an
    image with probability ``p``, with a strength drawn uniformly (noise sigma in
    [0, ``noise``], blur sigma in [``blur[0]``, ``blur[1]``], one resize scale per batch in
    [``scale[0]``, ``scale[1]``])."""

    p: float = 0.5
    noise: float = 0.12
    blur: tuple[float, float] = (0.3, 1.2)
    scale: tuple[float, float] = (0.5, 0.9)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = len(x)

        def draw(lo: float, hi: float, size: int = n) -> torch.Tensor:
            return (lo + (hi - lo) * torch.rand(size, generator=generator)).to(x)

        def chosen() -> torch.Tensor:
            return (torch.rand(n, generator=generator) < self.p).to(x.device).view(-1, 1, 1, 1)

        scale = float(draw(*self.scale, 1))
        x = torch.where(chosen(), resize_down_up(x, scale), x)
        mask = chosen().view(-1)
        x = gaussian_blur(x, draw(*self.blur) * mask)
        mask = chosen().view(-1)
        return gaussian_noise(x, draw(0.0, self.noise) * mask, generator)
