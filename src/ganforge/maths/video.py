"""Losses of video prediction (Mathieu, Couprie and LeCun 2016, "Deep multi-scale video prediction
beyond mean square error"), written as pure torch functions on images or clips whose last two
dimensions are (H, W).

The image gradients are backward differences along the rows (i) and the columns (j)::

    dy[..., i, j] = Y[..., i, j] - Y[..., i-1, j]     i = 1..H-1,  shape (..., H-1, W)
    dx[..., i, j] = Y[..., i, j] - Y[..., i, j-1]     j = 1..W-1,  shape (..., H, W-1)

The gradient difference loss compares their magnitudes in the prediction and the target, which
penalises a blurred prediction (small gradients where the target has edges) even when its mean
squared error is small.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from ganforge.errors import GanforgeError


def image_gradients(x: Tensor) -> tuple[Tensor, Tensor]:
    """Backward differences of ``x`` (..., H, W) along its last two dimensions.

    dy[..., i, j] = x[..., i, j] - x[..., i-1, j]   (shape (..., H-1, W))
    dx[..., i, j] = x[..., i, j] - x[..., i, j-1]   (shape (..., H, W-1))

    Returns ``(dy, dx)``; differentiable.
    """
    if x.dim() < 2:
        raise GanforgeError(f"image gradients need (..., H, W) tensors, got shape {tuple(x.shape)}",
                            "pass images or clips with height and width as the last two dimensions")
    return x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]


def _power(d: Tensor, alpha: float) -> Tensor:
    """d^alpha for d >= 0, with gradient 0 (not inf or NaN) where d = 0 for any alpha > 0."""
    if alpha == 1.0:
        return d
    positive = d > 0
    safe = torch.where(positive, d, torch.ones_like(d))
    return torch.where(positive, safe ** alpha, torch.zeros_like(d))


def gradient_difference_loss(pred: Tensor, target: Tensor, alpha: float = 1.0) -> Tensor:
    """The gradient difference loss (Mathieu, Couprie and LeCun 2016, eq. 5), averaged.

    The paper's loss of a prediction Y^ of a frame Y is the sum

        L_gdl(Y^, Y) = sum_{i,j} | |Y_{i,j} - Y_{i-1,j}| - |Y^_{i,j} - Y^_{i-1,j}| |^alpha
                               + | |Y_{i,j-1} - Y_{i,j}| - |Y^_{i,j-1} - Y^_{i,j}| |^alpha

    over the pixels where each difference is defined ((H-1) x W row terms, H x (W-1) column
    terms). Here it is the **mean** of those (H-1) W + H (W-1) terms over every frame of the
    leading dimensions (batch, time, channels: any ``pred``/``target`` of one shape (..., H, W)),
    i.e. the paper's sum divided by the number of terms, so that its weight against the other
    losses does not scale with the image size. It is 0 when ``pred`` equals ``target`` up to a
    constant (the gradients are unchanged) and positive for a blurred ``pred``. Differentiable in
    both arguments (where a difference is exactly 0 its gradient is taken as 0).
    """
    if not isinstance(alpha, numbers.Real) or isinstance(alpha, bool) or not math.isfinite(alpha) \
            or alpha <= 0:
        raise GanforgeError(f"gradient difference loss: alpha={alpha!r} is not a finite number > 0",
                            "use alpha=1 or alpha=2 (the paper's choices)")
    if pred.shape != target.shape:
        raise GanforgeError(f"gradient difference loss: prediction {tuple(pred.shape)} and target "
                            f"{tuple(target.shape)} differ in shape", "compare frames of one shape")
    if pred.dim() < 2 or pred.shape[-2] < 2 or pred.shape[-1] < 2 or pred.numel() == 0:
        raise GanforgeError(f"gradient difference loss needs frames (..., H, W) with H, W >= 2, got "
                            f"shape {tuple(pred.shape)}", "pass images or clips of at least 2x2 pixels")
    pdy, pdx = image_gradients(pred)
    tdy, tdx = image_gradients(target)
    rows = _power((tdy.abs() - pdy.abs()).abs(), float(alpha))
    cols = _power((tdx.abs() - pdx.abs()).abs(), float(alpha))
    return (rows.sum() + cols.sum()) / (rows.numel() + cols.numel())


__all__ = ["gradient_difference_loss", "image_gradients"]
