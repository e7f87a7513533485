"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

The same random, differentiable transformation T is applied to every image the discriminator
sees, real and generated, in both players' updates:

    L_D = f(D(T(x))) + h(D(T(G(z)))),   L_G = g(D(T(G(z))))

Because T is differentiable, G's gradient flows through it. The transforms, applied in this
order when named in the policy (as the authors' reference code, per sample i):

    color        x <- x + (u_i - 0.5)                                   brightness, u_i ~ U[0, 1)
                 x <- (x - mean_c x) * 2 v_i + mean_c x                 saturation, v_i ~ U[0, 1)
                 x <- (x - mean_chw x) * (w_i + 0.5) + mean_chw x       contrast,   w_i ~ U[0, 1)
    translation  x'[h, w] = x[h - dy_i, w - dx_i] (zero outside),  dy_i, dx_i integers in
                 [-round(H/8), round(H/8)] and [-round(W/8), round(W/8)]
    cutout       zero a round(H/2) x round(W/2) rectangle (a square for square images) whose
                 centre is uniform over the image; the part outside the image is dropped

Random numbers are drawn on the CPU from ``generator`` (or torch's global CPU generator) and then
moved to the images' device, so a seed gives the same augmentation on CPU and GPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ganforge.errors import GanforgeError

POLICIES = ("color", "translation", "cutout")  # also the order of application

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def parse_policy(policy: Sequence[str] | str) -> tuple[str, ...]:
    """The transforms named by ``policy``, in the order they are applied (:data:`POLICIES`).

    ``policy`` is a comma-separated string (``"color,translation,cutout"``) or a sequence of names;
    names are case-insensitive, blanks are ignored and repeats count once. An empty policy
    (``""`` or ``[]``) means no augmentation.
    """
    if isinstance(policy, str):
        names = policy.split(",")
    elif isinstance(policy, Sequence) and all(isinstance(name, str) for name in policy):
        names = list(policy)
    else:
        raise GanforgeError(f"DiffAugment policy {policy!r} is not a string or a list of names",
                            f"use a comma-separated string of: {', '.join(POLICIES)}")
    names = [name.strip().lower() for name in names if name.strip()]
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise GanforgeError(f"unknown DiffAugment policy {', '.join(map(repr, unknown))}",
                            f"choose from: {', '.join(POLICIES)} (e.g. \"color,translation,cutout\")")
    return tuple(name for name in POLICIES if name in names)


def _uniform(n: int, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """(n, 1, 1, 1) draws of U[0, 1) on the CPU, moved to x's device and dtype."""
    return torch.rand(n, 1, 1, 1, generator=generator).to(x.device, x.dtype)


def _integers(low: int, high: int, n: int, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """(n,) integers uniform in [low, high) drawn on the CPU, moved to x's device."""
    return torch.randint(low, high, (n,), generator=generator).to(x.device)


def _color(x: Tensor, generator: torch.Generator | None) -> Tensor:
    n = x.shape[0]
    x = x + (_uniform(n, x, generator) - 0.5)
    mean = x.mean(dim=1, keepdim=True)  # over channels: a no-op for one channel
    x = (x - mean) * (_uniform(n, x, generator) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(n, x, generator) + 0.5) + mean


def _translation(x: Tensor, generator: torch.Generator | None) -> Tensor:
    n, c, h, w = x.shape
    max_dy, max_dx = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    dy = _integers(-max_dy, max_dy + 1, n, x, generator)
    dx = _integers(-max_dx, max_dx + 1, n, x, generator)
    # Out pixel (i, j) reads padded pixel (i - dy + 1, j - dx + 1); indices 0 and side + 1 of the
    # one-pixel zero padding stand for "outside the image", which clamping maps every overshoot to.
    rows = (torch.arange(h, device=x.device) - dy[:, None] + 1).clamp(0, h + 1)  # (N, H)
    cols = (torch.arange(w, device=x.device) - dx[:, None] + 1).clamp(0, w + 1)  # (N, W)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    out = padded.gather(2, rows[:, None, :, None].expand(n, c, h, w + 2))
    return out.gather(3, cols[:, None, None, :].expand(n, c, h, w))


def _cutout(x: Tensor, generator: torch.Generator | None) -> Tensor:
    n, _, h, w = x.shape
    size_h, size_w = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    # Centres as in the reference code: uniform over the image (one more position for even sizes).
    top = _integers(0, h + (1 - size_h % 2), n, x, generator) - size_h // 2
    left = _integers(0, w + (1 - size_w % 2), n, x, generator) - size_w // 2
    ys, xs = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    in_rows = (ys >= top[:, None]) & (ys < top[:, None] + size_h)  # (N, H)
    in_cols = (xs >= left[:, None]) & (xs < left[:, None] + size_w)  # (N, W)
    keep = ~(in_rows[:, :, None] & in_cols[:, None, :])
    return x * keep[:, None].to(x.dtype)


_TRANSFORMS = {"color": _color, "translation": _translation, "cutout": _cutout}


def diff_augment(x: Tensor, policy: Sequence[str] | str, generator: torch.Generator | None = None) -> Tensor:
    """Apply the DiffAugment ``policy`` (see :func:`parse_policy`) to images ``x`` of shape
    (N, C, H, W), with independent random parameters per sample; differentiable w.r.t. ``x``.

    ``generator`` is a CPU ``torch.Generator`` (None: torch's global CPU generator). Use one
    generator for real and fake batches: each call draws fresh parameters, as in the paper.
    """
    names = parse_policy(policy)
    if x.dim() != 4:
        raise GanforgeError(f"DiffAugment applies to images (N, C, H, W), not a batch of shape "
                            f"{tuple(x.shape)}", "switch augmentation off for point data")
    if not x.is_floating_point():
        raise GanforgeError(f"DiffAugment needs floating-point images, got {x.dtype}",
                            "convert the images to float first")
    if generator is not None and generator.device.type != "cpu":
        raise GanforgeError(f"DiffAugment draws its random numbers on the CPU, got a generator on "
                            f"{generator.device}", "pass a CPU torch.Generator")
    for name in names:
        x = _TRANSFORMS[name](x, generator)
    return x
