"""TVAE's networks (Xu et al. 2019, sec. 4.3, the variational autoencoder beside CTGAN) on the
same table transform.

    encoder   r (D,) -> ReLU(W_1 r) -> ReLU(W_2 .) -> mu(r), log sigma^2(r)     (128 units each)
    decoder   z (E,) -> ReLU(W_1 z) -> ReLU(W_2 .) -> raw outputs (D,), one slice per span
    sigma     one learnt standard deviation per output (the Gaussian likelihood of every
              normalised value alpha), kept in [0.01, 1] by the algorithm after each step

The likelihood of a row is Gaussian for each tanh span (alpha ~ N(tanh(out), sigma^2)) and
categorical for each softmax span (softmax(out)); see :mod:`ganforge.train.algorithms.tvae`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ganforge.models._checks import positive_int
from ganforge.models.base import Generator, register_model
from ganforge.models.ctgan import Layout, SpanLayout, check_layout, layer_widths, row_width


def _mlp(in_dim: int, dims: Sequence[int]) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for units in dims:
        layers += [nn.Linear(in_dim, units), nn.ReLU()]
        in_dim = units
    return nn.Sequential(*layers), in_dim


class TVAEEncoder(nn.Module):
    """q(z | r) = N(mu(r), diag sigma^2(r)): ``forward`` returns (mu, logvar)."""

    def __init__(self, in_dim: int, *, z_dim: int = 128, hidden: Sequence[int] = (128, 128)) -> None:
        super().__init__()
        self.trunk, width = _mlp(in_dim, hidden)
        self.mu = nn.Linear(width, z_dim)
        self.logvar = nn.Linear(width, z_dim)

    def forward(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(r)
        return self.mu(h), self.logvar(h)


class TVAEDecoder(Generator):
    """p(r | z): raw outputs (N, D) (``raw``) and the learnt ``sigma`` (D,); ``forward`` returns a
    row in the transform's layout: tanh(out) + sigma eps for a value (eps ~ N(0, 1), as the
    reference samples), the one-hot of argmax for a one-hot span."""

    def __init__(self, out_dim: int, spans: list[tuple[int, str]], *, z_dim: int = 128,
                 hidden: Sequence[int] = (128, 128)) -> None:
        super().__init__()
        self.z_dim, self.out_shape, self.spans = z_dim, (out_dim,), spans
        self.trunk, width = _mlp(z_dim, hidden)
        self.out = nn.Linear(width, out_dim)
        self.sigma = nn.Parameter(torch.full((out_dim,), 0.1))
        self.layout = SpanLayout(spans)
        #: where forward's value noise comes from (None: the global RNG); the algorithm sets it
        self.noise: torch.Generator | None = None

    def raw(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.trunk(z))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        raw, layout = self.raw(z), self.layout
        values = raw.index_select(1, layout.tanh)
        eps = torch.randn(values.shape, generator=self.noise).to(values.device, values.dtype)
        sigma = self.sigma.index_select(0, layout.tanh)
        return layout.assemble(torch.tanh(values) + sigma * eps, layout.one_hot(raw))

    def _apply(self, fn, recurse: bool = True):  # the layout's index tables follow the device
        out = super()._apply(fn, recurse)
        self.layout.to(self.out.weight.device)
        return out


@register_model("tvae")
def build_tvae(sample_shape: tuple[int, ...], num_classes: int | None = None, *, z_dim: int = 128,
               compress_dims: Sequence[int] = (128, 128), decompress_dims: Sequence[int] = (128, 128),
               layout: Layout | None = None) -> tuple[TVAEEncoder, TVAEDecoder]:
    """TVAE's encoder and decoder for rows of ``sample_shape`` (D,); ``layout`` as for ctgan."""
    positive_int(z_dim, "z_dim", "tvae")
    layer_widths(compress_dims, "compress_dims", "tvae")
    layer_widths(decompress_dims, "decompress_dims", "tvae")
    width = row_width(sample_shape, "tvae")
    spans = check_layout(layout, width)
    return (TVAEEncoder(width, z_dim=z_dim, hidden=compress_dims),
            TVAEDecoder(width, spans, z_dim=z_dim, hidden=decompress_dims))
