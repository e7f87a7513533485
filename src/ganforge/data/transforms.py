"""Small tensor helpers shared by the image datasets."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ganforge._images import centre_crop

__all__ = ["centre_crop", "pad_images", "resize_images", "uint8_to_unit_range"]


def uint8_to_unit_range(pixels: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 intensities 0..255 -> float32 in [-1, 1] (0 -> -1, 255 -> 1)."""
    t = torch.as_tensor(pixels)
    return t.float() / 127.5 - 1.0


def resize_images(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinearly resize a float batch (N, C, H, W) to (N, C, size, size).

    Returns ``x`` unchanged when it already has that size. Downscaling is antialiased (plain
    bilinear would alias); the result is clamped so values stay in [-1, 1].
    """
    if tuple(x.shape[-2:]) == (size, size):
        return x
    if len(x) == 0:
        return x.new_zeros((0, x.shape[1], size, size))
    downscale = size < min(x.shape[-2:])
    out = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                        antialias=downscale)
    return out.clamp_(-1.0, 1.0)


def pad_images(x: torch.Tensor, size: int) -> torch.Tensor:
    """Centre a batch (N, C, H, W) of side <= ``size`` on a ``size`` x ``size`` background of -1
    (an odd margin puts the extra pixel after): 28x28 Fashion-MNIST -> 32x32 adds 2 px a side."""
    top, left = (size - x.shape[-2]) // 2, (size - x.shape[-1]) // 2
    return F.pad(x, (left, size - x.shape[-1] - left, top, size - x.shape[-2] - top), value=-1.0)
