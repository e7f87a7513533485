"""Minibatch discrimination and conditional batch norm against loop and hand-computed references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.maths import r1_penalty
from ganforge.models.layers import ConditionalBatchNorm, MinibatchDiscrimination


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ------------------------------------------------------------------------ minibatch discrimination


def reference_minibatch_features(f: np.ndarray, T: np.ndarray, kernels: int, kernel_dim: int) -> np.ndarray:
    """o(x_i)_b = sum_{j != i} exp(-sum_c |M_{i,b,c} - M_{j,b,c}|), M_i = f_i T, with plain loops."""
    n = len(f)
    M = [(f[i] @ T).reshape(kernels, kernel_dim) for i in range(n)]
    out = np.zeros((n, kernels))
    for i in range(n):
        for j in range(n):
            if j == i:
                continue
            for b in range(kernels):
                out[i, b] += math.exp(-sum(abs(M[i][b, c] - M[j][b, c]) for c in range(kernel_dim)))
    return out


@pytest.mark.parametrize("n, in_features, kernels, kernel_dim", [(6, 4, 3, 2), (5, 7, 4, 5), (2, 3, 1, 1)])
def test_minibatch_discrimination_matches_the_double_loop(n, in_features, kernels, kernel_dim):
    layer = MinibatchDiscrimination(in_features, kernels, kernel_dim).double()
    assert layer.T.shape == (in_features, kernels * kernel_dim)
    assert layer.out_features == kernels
    f = randn(n, in_features, seed=1)
    out = layer(f)
    assert out.shape == (n, kernels)
    expected = reference_minibatch_features(f.numpy(), layer.T.detach().numpy(), kernels, kernel_dim)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-12, atol=1e-300)


def test_minibatch_features_differ_when_a_batch_collapses_to_one_point():
    n = 16
    layer = MinibatchDiscrimination(32, kernels=10, kernel_dim=5)
    spread = torch.randn(n, 32)
    collapsed = spread[:1].expand(n, 32)
    assert torch.equal(layer(collapsed), torch.full((n, 10), float(n - 1)))  # every c_b = exp(0) = 1
    assert layer(spread).mean() < 0.1 * (n - 1)


def test_minibatch_discrimination_flattens_feature_maps():
    layer = MinibatchDiscrimination(2 * 3 * 3, kernels=4, kernel_dim=3).double()
    x = randn(5, 2, 3, 3, seed=2)
    torch.testing.assert_close(layer(x), layer(x.flatten(1)), rtol=0, atol=0)


def test_minibatch_discrimination_passes_gradients_to_T_and_the_input_twice_over():
    layer = MinibatchDiscrimination(6, kernels=4, kernel_dim=3).double()
    x = randn(8, 6, seed=3).requires_grad_(True)
    layer(x).sum().backward()
    for grad in (x.grad, layer.T.grad):
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    # an R1 / gradient penalty differentiates through the input gradient (double backward)
    head = nn.Linear(4, 1).double()
    layer.zero_grad()
    r1_penalty(lambda v: head(layer(v)), randn(8, 6, seed=4)).backward()
    assert torch.isfinite(layer.T.grad).all() and layer.T.grad.abs().sum() > 0


def test_minibatch_discrimination_validates_its_sizes():
    with pytest.raises(GanforgeError, match="kernels=0"):
        MinibatchDiscrimination(4, kernels=0)
    with pytest.raises(GanforgeError, match="in_features"):
        MinibatchDiscrimination(2.5)


# -------------------------------------------------------------------------- conditional batch norm


def hand_batch_norm(x: np.ndarray, eps: float) -> np.ndarray:
    """(x - mean) / sqrt(biased var + eps) per channel, over the batch and spatial positions."""
    axes = (0, *range(2, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


@pytest.mark.parametrize("dims, shape", [(2, (6, 3, 4, 5)), (1, (7, 4)), (1, (5, 3, 6))])
def test_conditional_bn_at_init_is_affine_free_batch_norm(dims, shape):
    cbn = ConditionalBatchNorm(shape[1], num_classes=5, dims=dims).double()
    plain = (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(shape[1], affine=False).double()
    x = randn(*shape, seed=5)
    y = torch.arange(shape[0]) % 5
    out = cbn(x, y)
    torch.testing.assert_close(out, plain(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out.detach().numpy(), hand_batch_norm(x.numpy(), 1e-5), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(cbn.bn.running_mean, plain.running_mean)  # the same running statistics
    torch.testing.assert_close(cbn.bn.running_var, plain.running_var)


@pytest.mark.parametrize("dims, shape", [(2, (6, 3, 2, 2)), (1, (6, 3))])
def test_each_class_gets_its_own_scale_and_shift(dims, shape):
    classes, c = 3, shape[1]
    cbn = ConditionalBatchNorm(c, classes, dims=dims).double()
    gamma = randn(classes, c, seed=6)
    beta = randn(classes, c, seed=7)
    with torch.no_grad():
        cbn.gamma.weight.copy_(gamma)
        cbn.beta.weight.copy_(beta)
    x = randn(*shape, seed=8)
    y = torch.tensor([0, 2, 1, 1, 0, 2])
    out = cbn(x, y).detach().numpy()
    normed = hand_batch_norm(x.numpy(), 1e-5)
    for i, label in enumerate(y.tolist()):
        g = gamma[label].numpy().reshape(c, *([1] * (len(shape) - 2)))
        b = beta[label].numpy().reshape(c, *([1] * (len(shape) - 2)))
        np.testing.assert_allclose(out[i], g * normed[i] + b, rtol=1e-9, atol=1e-12)


def test_conditional_bn_gradients_reach_only_the_classes_in_the_batch():
    cbn = ConditionalBatchNorm(3, 4)
    x = torch.randn(6, 3, 4, 4, requires_grad=True)
    (cbn(x, torch.tensor([0, 0, 2, 2, 0, 2])) * torch.randn(6, 3, 4, 4)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    used = cbn.gamma.weight.grad.abs().sum(1)
    assert used[0] > 0 and used[2] > 0 and used[1] == 0 and used[3] == 0


@pytest.mark.parametrize("kind", [nn.BatchNorm2d, nn.BatchNorm1d])
def test_from_batchnorm_copies_settings_affine_parameters_and_statistics(kind):
    bn = kind(4, eps=1e-3, momentum=0.2).double()
    shape = (8, 4, 3, 3) if kind is nn.BatchNorm2d else (8, 4)
    with torch.no_grad():
        bn.weight.copy_(randn(4, seed=9))
        bn.bias.copy_(randn(4, seed=10))
    for seed in range(3):
        bn(randn(*shape, seed=20 + seed) * 2 + 1)  # non-trivial running statistics
    cbn = ConditionalBatchNorm.from_batchnorm(bn, num_classes=3)
    assert (cbn.bn.eps, cbn.bn.momentum, cbn.dims) == (1e-3, 0.2, 2 if kind is nn.BatchNorm2d else 1)
    assert cbn.gamma.weight.dtype == torch.float64
    for row in range(3):
        assert torch.equal(cbn.gamma.weight[row], bn.weight) and torch.equal(cbn.beta.weight[row], bn.bias)
    x = randn(*shape, seed=11)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    bn.eval()
    cbn.eval()
    torch.testing.assert_close(cbn(x, y), bn(x), rtol=1e-12, atol=1e-12)  # running statistics
    bn.train()
    cbn.train()
    torch.testing.assert_close(cbn(x, y), bn(x), rtol=1e-12, atol=1e-12)  # batch statistics
    torch.testing.assert_close(cbn.bn.running_mean, bn.running_mean)
    assert cbn.bn.num_batches_tracked == bn.num_batches_tracked


def test_from_batchnorm_of_an_affine_free_bn_starts_at_one_and_zero():
    cbn = ConditionalBatchNorm.from_batchnorm(nn.BatchNorm1d(5, affine=False), 2)
    assert torch.equal(cbn.gamma.weight, torch.ones(2, 5)) and torch.equal(cbn.beta.weight, torch.zeros(2, 5))


def test_conditional_bn_validates_its_arguments():
    with pytest.raises(GanforgeError, match="dims=3"):
        ConditionalBatchNorm(4, 2, dims=3)
    with pytest.raises(GanforgeError, match="num_classes=0"):
        ConditionalBatchNorm(4, 0)
    with pytest.raises(GanforgeError, match="LayerNorm"):
        ConditionalBatchNorm.from_batchnorm(nn.LayerNorm(4), 2)
