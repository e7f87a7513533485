"""Stacked MNIST (Metz et al. 2017; VEEGAN, PacGAN): three MNIST digits stacked as the R, G and B
channels of one image, so 10 x 10 x 10 = 1,000 modes.

Each image takes its three digits independently and uniformly from the chosen MNIST split with a
seeded ``torch.Generator``; its label is 100 * d_R + 10 * d_G + d_B (0..999).
"""

from __future__ import annotations

import torch

from ganforge.data.base import ArrayDataset, register_dataset
from ganforge.data.mnist import NATIVE_SIZE, load_idx_dataset
from ganforge.errors import GanforgeError


@register_dataset("stacked-mnist")
def stacked_mnist(root: str | None = None, split: str = "train", size: int = NATIVE_SIZE,
                  n: int | None = None, seed: int = 0, download: bool = False) -> ArrayDataset:
    """``n`` (default: the split's size) float32 images (n, 3, size, size) in [-1, 1], labels
    0..999; the MNIST files are read (or downloaded) as for ``mnist``."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise GanforgeError(f"data.n must be a positive int, got {n!r}", "set data.n to e.g. 25600")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise GanforgeError(f"data.seed must be an int, got {seed!r}", "set data.seed to e.g. 0")
    base = load_idx_dataset("mnist", root, split, size, download)
    count = len(base) if n is None else n
    idx = torch.randint(len(base), (count, 3), generator=torch.Generator().manual_seed(seed))
    x = base.x[:, 0][idx]  # (n, 3, H, W)
    digits = base.y[idx]
    y = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
    dataset = ArrayDataset(x, y, name="stacked-mnist", num_classes=1000, extractor="lenet_mnist",
                           modes="stacked")
    dataset.digits = digits
    return dataset
