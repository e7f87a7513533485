"""lerp / slerp / interpolation_path against closed forms and scipy's geometric_slerp."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial import geometric_slerp

from ganforge.errors import GanforgeError
from ganforge.latent import angle, interpolate, interpolation_path, lerp, slerp

T = torch.linspace(0.0, 1.0, 9)


def _pair(d: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(d, generator=g), torch.randn(d, generator=g)


def _rotation_reference(z0: np.ndarray, z1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Equal-norm endpoints: rotate z0 by t * Omega in the plane of z0 and z1 (Gram-Schmidt)."""
    r = np.linalg.norm(z0)
    e1 = z0 / r
    w = z1 - (z1 @ e1) * e1
    e2 = w / np.linalg.norm(w)
    omega = np.arctan2(z1 @ e2, z1 @ e1)
    return r * (np.cos(t * omega)[:, None] * e1 + np.sin(t * omega)[:, None] * e2)


def test_endpoints_are_exact_for_both_methods():
    z0, z1 = _pair()
    for fn in (slerp, lerp):
        path = fn(z0, z1, T)
        assert path.shape == (len(T), 16) and path.dtype == z0.dtype
        assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)


def test_lerp_midpoint_is_the_mean_and_points_are_affine_in_t():
    z0, z1 = _pair()
    path = lerp(z0, z1, T)
    torch.testing.assert_close(path[4], (z0 + z1) / 2)
    expected = (1 - T[:, None]) * z0 + T[:, None] * z1
    torch.testing.assert_close(path, expected)


def test_slerp_on_equal_norms_follows_the_great_circle():
    z0, z1 = (z.double() for z in _pair(d=32, seed=1))
    z1 = z1 * (z0.norm() / z1.norm())  # equal norms
    path = slerp(z0, z1, T).numpy()
    t = T.double().numpy()
    # Constant norm, constant angular speed, and on the circle in the plane of z0 and z1.
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), z0.norm().item(), rtol=1e-12)
    omega = angle(z0, z1).item()
    np.testing.assert_allclose(angle(torch.from_numpy(path), z0.expand(9, -1)).numpy(), t * omega,
                               atol=1e-10)
    np.testing.assert_allclose(path, _rotation_reference(z0.numpy(), z1.numpy(), t), atol=1e-10)
    # scipy's geometric_slerp walks the unit circle; scale it by the common norm.
    r = z0.norm().item()
    ref = r * geometric_slerp(z0.numpy() / r, z1.numpy() / r, t)
    np.testing.assert_allclose(path, ref, atol=1e-10)


def test_slerp_matches_whites_formula_for_unequal_norms():
    z0, z1 = _pair(d=8, seed=2)
    a, b = z0.double().numpy(), z1.double().numpy()
    omega = np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))
    t = T.double().numpy()[:, None]
    ref = np.sin((1 - t) * omega) / np.sin(omega) * a + np.sin(t * omega) / np.sin(omega) * b
    np.testing.assert_allclose(slerp(z0.double(), z1.double(), T).numpy(), ref, atol=1e-12)
    # Midpoint norm: slerp keeps the codes on the shell where N(0, I) puts them, lerp does not.
    z0, z1 = _pair(d=512, seed=3)
    assert slerp(z0, z1, [0.5]).norm() > 0.9 * z0.norm()
    assert lerp(z0, z1, [0.5]).norm() < 0.8 * z0.norm()


@pytest.mark.parametrize("factor", [2.0, -3.0])
def test_slerp_falls_back_to_lerp_for_parallel_and_antiparallel_codes(factor):
    z0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    z1 = factor * z0
    path = slerp(z0, z1, T)
    assert torch.isfinite(path).all()
    torch.testing.assert_close(path, lerp(z0, z1, T))
    assert torch.isfinite(slerp(torch.zeros(3), torch.ones(3), T)).all()


def test_batched_pairs_equal_pairs_one_at_a_time():
    g = torch.Generator().manual_seed(4)
    Z0, Z1 = torch.randn(5, 6, generator=g), torch.randn(5, 6, generator=g)
    for fn in (slerp, lerp):
        batched = fn(Z0, Z1, T)
        assert batched.shape == (len(T), 5, 6)
        for b in range(5):
            torch.testing.assert_close(batched[:, b], fn(Z0[b], Z1[b], T))


def test_path_through_keyframes():
    g = torch.Generator().manual_seed(5)
    keys = torch.randn(4, 6, generator=g)
    steps = 5
    path = interpolation_path(list(keys), steps, "slerp")
    assert path.shape == ((4 - 1) * (steps - 1) + 1, 6)
    for k in range(4):
        assert torch.equal(path[k * (steps - 1)], keys[k])
    # Each segment is the slerp between its two keyframes.
    torch.testing.assert_close(path[4:9], slerp(keys[1], keys[2], torch.linspace(0, 1, steps)))
    torch.testing.assert_close(interpolation_path(keys[:2], 3, "lerp")[1], keys[:2].mean(0))


@pytest.mark.parametrize("call", [
    lambda k: interpolation_path(k, 1),
    lambda k: interpolation_path(k[:1], 4),
    lambda k: interpolation_path(k, 4, "cubic"),
    lambda k: interpolate(k[0], k[1], T, "nearest"),
    lambda k: slerp(k[0], k[1, :3], T),
    lambda k: lerp(k[0], k[1], torch.zeros(2, 2)),
])
def test_bad_arguments_raise_ganforge_error(call):
    with pytest.raises(GanforgeError):
        call(torch.randn(3, 6))
