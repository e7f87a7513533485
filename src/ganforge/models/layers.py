"""Small building blocks shared by model families."""

from __future__ import annotations

import torch
from torch import nn

from ganforge.errors import GanforgeError


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


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al. 2016, "Improved Techniques for Training GANs",
    sec. 3.2).

    With a learned tensor T in R^{A x B x C} (A = ``in_features``, B = ``kernels``,
    C = ``kernel_dim``; stored as an (A, B * C) matrix), for features f(x_i) in R^A:

        M_i = f(x_i) T                         in R^{B x C}
        c_b(x_i, x_j) = exp(-||M_{i,b} - M_{j,b}||_L1)
        o(x_i)_b = sum_{j != i} c_b(x_i, x_j)  in R^B

    ``forward`` returns o(x) of shape (N, B) (``out_features`` = B); concatenate it to the
    features yourself. A batch collapsed to one point has o = N - 1 for every kernel, while a
    spread batch has o near 0, which lets the discriminator see a lack of variety. Inputs with more
    than two dimensions are flattened to (N, A). Cost and memory are O(N^2 B C) (written with
    broadcasting rather than ``torch.cdist``, which has no double backward for gradient penalties).
    """

    def __init__(self, in_features: int, kernels: int = 50, kernel_dim: int = 5) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("kernels", kernels), ("kernel_dim", kernel_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise GanforgeError(f"minibatch discrimination {name}={value!r} is not a positive integer",
                                    f"give {name} as an integer >= 1")
        self.in_features, self.kernels, self.kernel_dim = in_features, kernels, kernel_dim
        self.out_features = kernels
        self.T = nn.Parameter(torch.randn(in_features, kernels * kernel_dim) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        m = (x.flatten(1) @ self.T).reshape(n, self.kernels, self.kernel_dim)  # (N, B, C)
        l1 = (m[:, None] - m[None, :]).abs().sum(dim=3)                        # (N, N, B)
        c = torch.exp(-l1)
        off_diagonal = 1 - torch.eye(n, device=x.device, dtype=c.dtype)
        return (c * off_diagonal[:, :, None]).sum(dim=1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, kernels={self.kernels}, kernel_dim={self.kernel_dim}"


class ConditionalBatchNorm(nn.Module):
    """Class-conditional batch normalisation (de Vries et al. 2017; Miyato & Koyama 2018).

        out = gamma_y * (x - E[x]) / sqrt(Var[x] + eps) + beta_y

    BatchNorm without its own affine parameters (``nn.BatchNorm2d`` for ``dims=2``, inputs
    (N, C, H, W); ``nn.BatchNorm1d`` for ``dims=1``, inputs (N, C) or (N, C, L)), followed by a
    per-class scale gamma_y and shift beta_y looked up from embeddings (initialised to 1 and 0)
    and broadcast over the spatial dimensions. ``y`` holds one class index per sample.
    """

    def __init__(self, num_features: int, num_classes: int, dims: int = 2, *, eps: float = 1e-5,
                 momentum: float | None = 0.1) -> None:
        super().__init__()
        if dims not in (1, 2):
            raise GanforgeError(f"conditional batch norm dims={dims!r} is not 1 or 2",
                                "use dims=2 for images (N, C, H, W), dims=1 for (N, C) or (N, C, L)")
        for name, value in (("num_features", num_features), ("num_classes", num_classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise GanforgeError(f"conditional batch norm {name}={value!r} is not a positive integer",
                                    f"give {name} as an integer >= 1")
        self.num_features, self.num_classes, self.dims = num_features, num_classes, dims
        norm = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
        self.bn = norm(num_features, eps=eps, momentum=momentum, affine=False)
        self.gamma = nn.Embedding(num_classes, num_features)
        self.beta = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = self.bn(x)
        shape = (x.shape[0], self.num_features, *([1] * (x.dim() - 2)))
        return self.gamma(y).reshape(shape) * out + self.beta(y).reshape(shape)

    @classmethod
    def from_batchnorm(cls, bn: nn.BatchNorm1d | nn.BatchNorm2d, num_classes: int) -> ConditionalBatchNorm:
        """The conditional version of ``bn``: same num_features, eps, momentum and running
        statistics, with bn's affine weight and bias (1 and 0 if it has none) in every class row,
        on bn's device and dtype. Every class then computes exactly what ``bn`` computes."""
        if not isinstance(bn, nn.BatchNorm1d | nn.BatchNorm2d):
            raise GanforgeError(f"from_batchnorm needs an nn.BatchNorm1d or nn.BatchNorm2d, got "
                                f"{type(bn).__name__}", "pass the BatchNorm layer to make conditional")
        dims = 2 if isinstance(bn, nn.BatchNorm2d) else 1
        new = cls(bn.num_features, num_classes, dims, eps=bn.eps, momentum=bn.momentum)
        like = next((t for t in [*bn.parameters(), *bn.buffers()] if t.is_floating_point()), None)
        if like is not None:
            new = new.to(like.device, like.dtype)
        if not bn.track_running_stats:
            new.bn = type(bn)(bn.num_features, eps=bn.eps, momentum=bn.momentum, affine=False,
                              track_running_stats=False)
        with torch.no_grad():
            if bn.affine:
                new.gamma.weight.copy_(bn.weight.detach().expand(num_classes, -1))
                new.beta.weight.copy_(bn.bias.detach().expand(num_classes, -1))
            if bn.track_running_stats:
                new.bn.running_mean.copy_(bn.running_mean)
                new.bn.running_var.copy_(bn.running_var)
                new.bn.num_batches_tracked.copy_(bn.num_batches_tracked)
        return new.train(bn.training)

    def extra_repr(self) -> str:
        return f"num_features={self.num_features}, num_classes={self.num_classes}, dims={self.dims}"
