"""Gradient penalties on the discriminator's input gradient, for Lipschitz / zero-centred
regularisation. Both return differentiable scalars built with ``create_graph=True``, so adding
them to the discriminator's loss back-propagates through the input gradient into D's weights.

``D`` maps a batch of samples (N, ...) to outputs; outputs are summed before differentiating,
which gives each sample's own gradient as long as D treats samples independently (for a packed
PacGAN discriminator the gradient of a pack's output lands on each of its m members).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ganforge.errors import GanforgeError

Critic = Callable[[Tensor], Tensor]


def _input_gradient(D: Critic, x: Tensor) -> Tensor:
    """grad_x sum_i D(x)_i with a graph, flattened to (N, features)."""
    x = x.detach().requires_grad_(True)
    out = D(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(1)


def gradient_penalty(D: Critic, real: Tensor, fake: Tensor, alpha: Tensor | None = None,
                     generator: torch.Generator | None = None, pack: int = 1) -> Tensor:
    """The WGAN-GP penalty (Gulrajani et al., 2017, eq. 3), without its weight lambda.

    x_hat = alpha x + (1 - alpha) x_fake,   alpha ~ U[0, 1] drawn once per sample
    GP    = E_{x_hat}[(||grad_{x_hat} D(x_hat)||_2 - 1)^2]

    The norm is over all of a sample's features; the expectation is the batch mean. ``alpha``
    (shape (N,)) may be given, e.g. in tests; otherwise it is drawn from ``generator`` (or the
    global RNG) on ``real``'s device.

    ``pack`` m > 1: for a PacGAN critic that judges m consecutive samples at once (CTGAN's), one
    alpha per pack and the norm over the pack's m samples together (the pack is the critic's
    input), the expectation over packs; ``alpha`` then has one entry per pack.
    """
    if real.shape != fake.shape:
        raise GanforgeError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} batches differ "
                            "in shape", "interpolate between batches of the same size")
    n = real.shape[0]
    if n % pack:
        raise GanforgeError(f"a batch of {n} samples does not split into packs of {pack}",
                            f"use a batch size that is a multiple of {pack}")
    if alpha is None:
        alpha = torch.rand(n // pack, generator=generator, dtype=real.dtype).to(real.device)
    alpha = alpha.repeat_interleave(pack) if pack > 1 else alpha
    alpha = alpha.reshape(n, *([1] * (real.dim() - 1))).to(real.dtype)
    x_hat = alpha * real.detach() + (1 - alpha) * fake.detach()
    norms = torch.linalg.vector_norm(_input_gradient(D, x_hat).reshape(n // pack, -1), dim=1)
    return (norms - 1).pow(2).mean()


def r1_penalty(D: Critic, real: Tensor) -> Tensor:
    """The R1 penalty (Mescheder et al., 2018, eq. 9), without its weight gamma / 2.

    R1 = E_{x ~ p_data}[||grad_x D(x)||_2^2]

    D(x) is the raw output (the logit). The regularised discriminator loss is
    L_D + (gamma / 2) * R1, the convention of Mescheder et al. and StyleGAN.
    """
    return _input_gradient(D, real).pow(2).sum(dim=1).mean()
