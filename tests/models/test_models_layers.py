from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.models import build
from ganforge.models.layers import MinibatchStdDev


def reference_minibatch_std(x: np.ndarray, group: int, eps: float = 1e-8) -> np.ndarray:
    """Per sample i: mean over features of the std over the group {j : j % M == i % M}."""
    n = len(x)
    m = n // group
    out = np.empty(n)
    for i in range(n):
        members = x[[j for j in range(n) if j % m == i % m]]
        out[i] = np.sqrt(members.var(axis=0) + eps).mean()
    return out


@pytest.mark.parametrize("shape, group", [((8, 3, 4, 4), 4), ((6, 5), 4), ((12, 2, 3, 3), 2)])
def test_minibatch_std_matches_the_definition(shape, group):
    x = torch.randn(*shape, dtype=torch.float64)
    out = MinibatchStdDev(group)(x)
    assert out.shape == (shape[0], shape[1] + 1, *shape[2:])
    assert torch.equal(out[:, : shape[1]], x)
    n = shape[0]
    used = group if n % group == 0 else next(g for g in range(group, 0, -1) if n % g == 0)
    expected = reference_minibatch_std(x.numpy().reshape(n, -1), used)
    extra = out[:, shape[1]].reshape(n, -1)
    assert np.allclose(extra.numpy(), expected[:, None])


def test_minibatch_std_sees_a_collapsed_batch():
    varied = torch.randn(16, 1, 8, 8)
    collapsed = varied[:1].expand(16, 1, 8, 8)
    layer = MinibatchStdDev()
    assert layer(varied)[:, 1].mean() > 0.5
    assert layer(collapsed)[:, 1].abs().max() < 1e-3


def test_dcgan_minibatch_std_option_changes_only_the_head_and_passes_gradients():
    _, plain = build({"name": "dcgan", "width": 8}, (1, 16, 16))
    _, with_std = build({"name": "dcgan", "width": 8, "minibatch_std": True}, (1, 16, 16))
    assert with_std.head.in_features == plain.head.in_features + 2 * 2
    x = torch.randn(8, 1, 16, 16, requires_grad=True)
    with_std(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
