"""Tensor helpers that feed images to the shipped classifiers (:mod:`ganforge.weights`): low in
the layers, so text encoders, datasets and metrics share them (:mod:`ganforge.data.transforms`
re-exports them beside the datasets' own helpers)."""

from __future__ import annotations

import torch

from ganforge.errors import GanforgeError


def centre_crop(x: torch.Tensor, side: int) -> torch.Tensor:
    """The central ``side`` x ``side`` window of images ``x`` (N, C, H, W), H, W >= side: undoes
    :func:`ganforge.data.transforms.pad_images` (e.g. 32x32 padded Fashion-MNIST back to the 28x28
    a LeNet reads)."""
    h, w = x.shape[-2:]
    if h < side or w < side:
        raise GanforgeError(f"images of {h}x{w} are smaller than the classifier's {side}x{side}",
                            "score images at least the classifier's size")
    top, left = (h - side) // 2, (w - side) // 2
    return x[..., top:top + side, left:left + side]
