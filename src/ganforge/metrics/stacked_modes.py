"""Mode counts on Stacked MNIST (1,000 modes), the protocol of VEEGAN / PacGAN.

Each generated image's three channels are classified by the shipped MNIST digit classifier; the
mode is 100 d_R + 10 d_G + d_B. Reported: ``modes`` = number of the 1,000 modes hit by at least one
sample, and ``kl`` = KL(p_gen || uniform) = sum_m p_m log(1000 p_m) with p_m the share of samples
in mode m (0 log 0 = 0): 0 when every mode is equally frequent, log 1000 ~ 6.91 for one mode.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import xlogy

from ganforge.errors import GanforgeError

NUM_MODES = 1000


def stacked_mode_metrics(digits: torch.Tensor | np.ndarray) -> dict[str, object]:
    """``digits``: int (N, 3) per-channel digit predictions -> modes, kl and the histogram."""
    d = np.asarray(torch.as_tensor(digits).cpu(), dtype=np.int64)
    if d.ndim != 2 or d.shape[1] != 3 or len(d) == 0 or d.min() < 0 or d.max() > 9:
        raise GanforgeError(f"expected (N, 3) digits in 0..9, got shape {d.shape}",
                            "classify the three channels of Stacked MNIST images")
    hist = np.bincount(d[:, 0] * 100 + d[:, 1] * 10 + d[:, 2], minlength=NUM_MODES)
    p = hist / hist.sum()
    return {"modes": int((hist > 0).sum()), "kl": float(xlogy(p, p * NUM_MODES).sum()),
            "mode_histogram": hist.tolist()}


def stacked_mnist_modes(samples: torch.Tensor, extractor=None) -> dict[str, object]:
    """Mode metrics of (N, 3, H, W) Stacked MNIST samples in [-1, 1], classified by
    ``extractor`` (default: the shipped ``lenet_mnist``)."""
    from ganforge.metrics.extractors import LeNetExtractor

    extractor = extractor or LeNetExtractor("mnist")
    if samples.ndim != 4 or samples.shape[1] != 3:
        raise GanforgeError(f"Stacked MNIST samples must be (N, 3, H, W), got {tuple(samples.shape)}",
                            "generate three-channel images")
    return stacked_mode_metrics(extractor.classify_channels(samples))
