"""Small building blocks shared by model families."""

from __future__ import annotations

import torch
from torch import nn


class MinibatchStdDev(nn.Module):
    """Minibatch standard deviation (Karras et al. 2018, "Progressive Growing of GANs", sec. 3).

    Splits the batch into groups of ``group_size``, computes the standard deviation of every
    feature over each group, averages it to one scalar per group and appends it as an extra
    constant channel (or feature) to every sample of the group:

        s_g = mean_{c,h,w} sqrt(Var_{i in g}[x_i] + eps),   out = concat(x, s_g)

    A collapsed batch (all samples alike) has s_g ~ 0, which the discriminator can see; this
    gives the generator a gradient towards variety. Works on (N, C, H, W) and (N, F) inputs.
    """

    def __init__(self, group_size: int = 4, eps: float = 1e-8) -> None:
        super().__init__()
        self.group_size = group_size
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        group = min(self.group_size, n)
        if n % group:
            group = 1 if n < 2 else next(g for g in range(group, 0, -1) if n % g == 0)
        grouped = x.reshape(group, n // group, *x.shape[1:])          # (G, M, ...)
        std = torch.sqrt(grouped.var(dim=0, unbiased=False) + self.eps)  # (M, ...)
        stat = std.flatten(1).mean(dim=1)                              # (M,)
        stat = stat.repeat(group)                                      # sample i -> group i % M
        shape = (n, 1, *x.shape[2:]) if x.dim() > 2 else (n, 1)
        return torch.cat([x, stat.reshape(n, *([1] * (x.dim() - 1))).expand(shape)], dim=1)
