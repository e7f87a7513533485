"""Interpolation between latent codes: linear (lerp) and spherical (slerp).

For z ~ N(0, I_d) in high dimension, ||z|| concentrates around sqrt(d): almost every code lies
near a sphere. A straight line between two codes cuts through the inside of that sphere, where
the generator saw (almost) no codes during training, so its midpoint ``(z0 + z1) / 2`` has norm
about ``sqrt(d / 2)``. Spherical interpolation (White, 2016, "Sampling Generative Networks")
follows the great circle instead and keeps equal-norm endpoints' norm all the way.

Every function takes the fractions ``t`` as a 1-D tensor (or a sequence of floats) and returns
the path with ``t`` as the *leading* axis: shape ``(len(t), *z0.shape)``, i.e. ``(T, z_dim)`` for
one pair of codes and ``(T, B, z_dim)`` for a batch of ``B`` pairs. Values of ``t`` outside
[0, 1] extrapolate.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ganforge.errors import GanforgeError

METHODS = ("slerp", "lerp")

#: Below this value of sin(Omega) the great circle through z0 and z1 is numerically undefined
#: (parallel or antiparallel codes) and :func:`slerp` falls back to :func:`lerp`.
SLERP_EPS = 1e-6


def _fractions(t: torch.Tensor | Sequence[float] | float) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=torch.float64)
    if t.dim() == 0:
        t = t.reshape(1)
    if t.dim() != 1:
        raise GanforgeError(f"t must be a 1-D tensor of fractions, got shape {tuple(t.shape)}",
                            "pass e.g. torch.linspace(0, 1, 8)")
    return t


def _pair(z0: torch.Tensor, z1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    z0, z1 = torch.as_tensor(z0), torch.as_tensor(z1)
    if z0.shape != z1.shape or z0.dim() not in (1, 2):
        raise GanforgeError(
            f"z0 and z1 must both have shape (z_dim,) or (B, z_dim), got {tuple(z0.shape)} "
            f"and {tuple(z1.shape)}", "pass two codes (or two batches of codes) of the same shape")
    return z0, z1


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor | Sequence[float]) -> torch.Tensor:
    """Linear interpolation ``z(t) = (1 - t) z0 + t z1`` for every fraction in ``t``.

    ``z0`` and ``z1`` have shape (z_dim,) or (B, z_dim) (B pairs at once); the result has shape
    ``(len(t), *z0.shape)`` and the dtype of ``z0``. ``z(0) = z0``, ``z(1) = z1`` and
    ``z(1/2) = (z0 + z1) / 2``.
    """
    z0, z1 = _pair(z0, z1)
    t = _fractions(t).reshape(-1, *([1] * z0.dim()))
    a, b = z0.to(torch.float64), z1.to(device=z0.device, dtype=torch.float64)
    t = t.to(z0.device)
    return ((1.0 - t) * a + t * b).to(z0.dtype)


def angle(z0: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
    """The angle Omega in [0, pi] between ``z0`` and ``z1`` along the last axis (float64).

    Computed as ``Omega = 2 atan2(||u0 - u1||, ||u0 + u1||)`` with ``u = z / ||z||``, which is
    accurate near 0 and pi, unlike ``arccos(u0 . u1)``. A zero code counts as orthogonal to all.
    """
    a, b = torch.as_tensor(z0).to(torch.float64), torch.as_tensor(z1).to(torch.float64)
    tiny = torch.finfo(torch.float64).tiny
    ua = a / torch.linalg.vector_norm(a, dim=-1, keepdim=True).clamp_min(tiny)
    ub = b / torch.linalg.vector_norm(b, dim=-1, keepdim=True).clamp_min(tiny)
    zero = (a == 0).all(-1) | (b == 0).all(-1)
    omega = 2.0 * torch.atan2(torch.linalg.vector_norm(ua - ub, dim=-1),
                              torch.linalg.vector_norm(ua + ub, dim=-1))
    return torch.where(zero, torch.full_like(omega, torch.pi / 2), omega)


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor | Sequence[float]) -> torch.Tensor:
    """Spherical linear interpolation (Shoemake, 1985; White, 2016) for every fraction in ``t``::

        z(t) = sin((1 - t) Omega) / sin(Omega) * z0  +  sin(t Omega) / sin(Omega) * z1

    with Omega = :func:`angle` (z0, z1) the angle between the codes. For codes of equal norm r,
    ``z(t)`` runs along the great circle of radius r through z0 and z1 at constant angular speed
    (``||z(t)|| = r`` and ``angle(z0, z(t)) = t Omega``); for unequal norms the same weights blend
    the norms smoothly. When ``sin(Omega) < SLERP_EPS`` (parallel or antiparallel codes, where the
    great circle is undefined) the pair falls back to :func:`lerp`.

    ``z0`` and ``z1`` have shape (z_dim,) or (B, z_dim) (each pair gets its own Omega); the result
    has shape ``(len(t), *z0.shape)`` and the dtype of ``z0``; the maths runs in float64, so
    ``z(0) = z0`` and ``z(1) = z1`` exactly.
    """
    z0, z1 = _pair(z0, z1)
    a, b = z0.to(torch.float64), z1.to(device=z0.device, dtype=torch.float64)
    t = _fractions(t).to(z0.device).reshape(-1, *([1] * z0.dim()))
    omega = angle(a, b).unsqueeze(-1)  # (*batch, 1)
    sin_omega = torch.sin(omega)
    degenerate = sin_omega < SLERP_EPS
    safe = torch.where(degenerate, torch.ones_like(sin_omega), sin_omega)
    w0 = torch.where(degenerate, 1.0 - t, torch.sin((1.0 - t) * omega) / safe)
    w1 = torch.where(degenerate, t, torch.sin(t * omega) / safe)
    return (w0 * a + w1 * b).to(z0.dtype)


def interpolate(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor | Sequence[float],
                method: str = "slerp") -> torch.Tensor:
    """:func:`slerp` or :func:`lerp` by name."""
    if method not in METHODS:
        raise GanforgeError(f"unknown interpolation method {method!r}",
                            f"choose one of: {', '.join(METHODS)}")
    return (slerp if method == "slerp" else lerp)(z0, z1, t)


def interpolation_path(z_list: Sequence[torch.Tensor] | torch.Tensor, steps: int,
                       method: str = "slerp") -> torch.Tensor:
    """A path through the keyframes ``z_list`` (K >= 2 codes of shape (z_dim,), or a (K, z_dim)
    tensor), ``steps`` points per segment *including both ends*.

    Segment k runs from keyframe k to keyframe k + 1 at ``t = linspace(0, 1, steps)``; adjacent
    segments share their keyframe, so the path has ``(K - 1) (steps - 1) + 1`` codes, shape
    ``(that, z_dim)``, and passes through every keyframe exactly: row ``k (steps - 1)`` is
    keyframe k. Repeat the first keyframe at the end for a closed loop.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise GanforgeError(f"steps must be an integer of at least 2, got {steps!r}",
                            "pass e.g. steps=8 (both keyframes count)")
    if isinstance(z_list, torch.Tensor):
        keys = z_list
    else:
        codes = [torch.as_tensor(z) for z in z_list]
        shapes = {tuple(z.shape) for z in codes}
        keys = torch.stack(codes) if len(shapes) == 1 else torch.empty(0)
    if keys.dim() != 2 or len(keys) < 2:
        raise GanforgeError(f"an interpolation path needs at least 2 keyframe codes of shape (z_dim,), "
                            f"got shape {tuple(keys.shape)}", "pass two or more codes")
    t = torch.linspace(0.0, 1.0, steps, dtype=torch.float64)
    # All segments at once: (steps, K - 1, z_dim) -> (K - 1, steps, z_dim).
    segments = interpolate(keys[:-1], keys[1:], t, method).transpose(0, 1)
    # Pin the keyframes exactly (lerp's (1 - t) z0 + t z1 is exact at the ends; be explicit).
    segments[:, 0], segments[:, -1] = keys[:-1], keys[1:]
    return torch.cat([segments[0], *(seg[1:] for seg in segments[1:])])
