"""scikit-learn's 8x8 handwritten digits: small, bundled with scikit-learn, no download needed."""

from __future__ import annotations

import torch

from ganforge.data.base import ArrayDataset, register_dataset
from ganforge.data.transforms import resize_images
from ganforge.errors import GanforgeError

DIGITS_SIZES = (8, 16, 32)


@register_dataset("digits")
def digits(size: int = 8) -> ArrayDataset:
    """All 1,797 images of ``sklearn.datasets.load_digits`` as float32 (N, 1, size, size) in
    [-1, 1] (the 0..16 intensities map linearly, 0 -> -1, 16 -> 1) with int64 labels 0..9.

    ``size`` is 8 (native), 16 or 32; larger sizes are bilinear upsamplings of the 8x8 images.
    """
    if size not in DIGITS_SIZES or isinstance(size, bool):
        raise GanforgeError(f"digits cannot be loaded at size {size!r}",
                            f"set data.size to one of {', '.join(map(str, DIGITS_SIZES))}")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images).float().unsqueeze(1) / 8.0 - 1.0
    x = resize_images(x, size)
    y = torch.from_numpy(bunch.target).long()
    return ArrayDataset(x, y, name="digits", num_classes=10, extractor="lenet_digits",
                        classes=tuple(str(d) for d in range(10)))
