"""CTGAN's networks (Xu et al. 2019, "Modeling Tabular Data using Conditional GAN", sec. 4.4).

The generator reads a code z ~ N(0, I) beside the conditional vector c and grows through
residual blocks, each appending its output to its input::

    h_0 = z (+) c;   h_i = h_{i-1} (+) ReLU(BN(W_i h_{i-1}))     (i = 1, 2: 256 units each)
    out = W h_2     raw outputs, one slice per span of the table's transform:
                    tanh for a normalised value alpha, (Gumbel-)softmax for a one-hot

so the generator's output has the transform's layout (:class:`ganforge.data.table.Span`). The
critic judges ``pac`` rows at once (PacGAN, Lin et al. 2018: mode collapse shows in a pack):
the rows (each with its conditional vector) are concatenated ``pac`` by ``pac``::

    D(r_1 (+) ... (+) r_pac) = W_3 Drop(LReLU(W_2 Drop(LReLU(W_1 x))))      (0.2 slope, 0.5 drop)

The layout is given as ``layout``: [[width, activation, role], ...] (activation ``tanh`` or
``softmax``), and ``cond_dim`` the conditional vector's width, both read from the data by the
``ctgan`` algorithm (which restores them for a loaded run).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.models._checks import positive_int, positive_ints, probability
from ganforge.models.base import Discriminator, Generator, register_model

ACTIVATIONS = ("tanh", "softmax")
Layout = Sequence[Sequence]


def check_layout(layout: Layout | None, width: int) -> list[tuple[int, str]]:
    """``layout`` as (width, activation) pairs that cover exactly ``width`` values."""
    if layout is None:
        return [(width, "tanh")]
    spans = [(int(w), str(a)) for w, a, *_ in layout]
    if any(w < 1 or a not in ACTIVATIONS for w, a in spans) or sum(w for w, _ in spans) != width:
        raise GanforgeError(f"the table layout {spans[:4]}... does not cover {width} values",
                            "let the ctgan algorithm read the layout from the data")
    return spans


def row_width(sample_shape: tuple[int, ...], model: str) -> int:
    """D of rows (D,); a one-line error for samples of any other shape."""
    if len(sample_shape) != 1:
        raise GanforgeError(f"model {model} makes table rows, not samples of shape {tuple(sample_shape)}",
                            "use it on a table (data.name=table)")
    return int(sample_shape[0])


def layer_widths(values: Any, key: str, model: str) -> tuple[int, ...]:
    """A non-empty list of layer widths, each an int >= 1."""
    widths = positive_ints(values, key, model)
    if not widths:
        raise GanforgeError(f"model {model!r}: {key} is empty", f"set model.{key} to e.g. [256, 256]")
    return widths


def gumbel_noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard Gumbel noise -log(-log U), drawn on CPU from ``generator`` then moved."""
    u = torch.rand(like.shape, generator=generator).clamp_(1e-10, 1 - 1e-10)
    return (-torch.log(-torch.log(u))).to(like.device, like.dtype)


class SpanLayout:
    """Index tables that apply every span's operation in a few tensor ops, whatever the number
    of spans. The softmax spans' columns (``soft``) are handled as one (N, n_soft) block: a
    per-span softmax is exp(x - m) / (exp(x - m) M)[:, span], with M the (n_soft, S) indicator
    of which span a column is in and m each span's maximum (detached: any constant per span
    gives the same softmax); ``blocks`` gathers them into a padded (N, S, W) block (pad columns
    read -inf) for argmaxes."""

    def __init__(self, spans: Sequence[tuple[int, str]]) -> None:
        self.spans = list(spans)
        width = sum(w for w, _ in spans)
        widest = max((w for w, a in spans if a == "softmax"), default=1)
        tanh, soft, block, valid, span_of, start = [], [], [], [], [], 0
        for w, activation in spans:
            columns = list(range(start, start + w))
            if activation == "tanh":
                tanh += columns
            else:
                span_of += [len(block)] * w
                soft += columns
                block.append(columns + [width] * (widest - w))  # index `width`: the -inf pad
                valid += [True] * w + [False] * (widest - w)
            start += w
        self.width = width
        self.tanh = torch.tensor(tanh, dtype=torch.long)
        self.soft = torch.tensor(soft, dtype=torch.long)
        self.block = torch.tensor(block, dtype=torch.long).reshape(-1, widest)
        self.valid = torch.tensor(valid, dtype=torch.bool)
        self.span_of = torch.tensor(span_of, dtype=torch.long)
        self.member = F.one_hot(self.span_of, len(block)).float() if block else torch.zeros(0, 0)
        order = torch.tensor(tanh + soft, dtype=torch.long)
        self.inverse = torch.empty_like(order)
        self.inverse[order] = torch.arange(len(order))

    def blocks(self, x: torch.Tensor, pad: float = float("-inf")) -> torch.Tensor:
        """The softmax spans of ``x`` (N, D) as a padded (N, S, W) block."""
        padded = torch.cat([x, x.new_full((len(x), 1), pad)], dim=1)
        return padded.index_select(1, self.block.flatten()).view(len(x), *self.block.shape)

    def _shifted_exp(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(exp(x_soft - m), m): m (N, S) each span's maximum in ``x`` (N, D), detached."""
        m = self.blocks(x.detach()).amax(2)
        return torch.exp(x.index_select(1, self.soft) - m.index_select(1, self.span_of)), m

    def softmax(self, x: torch.Tensor) -> torch.Tensor:
        """(N, n_soft): the softmax of every span of ``x`` (N, D), the spans' columns in order."""
        e, _ = self._shifted_exp(x)
        return e / (e @ self.member.to(e.dtype)).index_select(1, self.span_of)

    def one_hot(self, x: torch.Tensor) -> torch.Tensor:
        """(N, n_soft): the one-hot of every span's argmax in ``x`` (N, D)."""
        blocks = self.blocks(x.detach())
        hot = F.one_hot(blocks.argmax(2), blocks.shape[2]).to(x.dtype)
        return hot.reshape(len(x), -1)[:, self.valid]

    def assemble(self, tanh_part: torch.Tensor, soft_part: torch.Tensor) -> torch.Tensor:
        """(N, D) from the tanh columns and the softmax spans' columns, in the layout's order."""
        return torch.cat([tanh_part, soft_part], dim=1).index_select(1, self.inverse)

    def cross_entropy(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(N, S): CE(one-hot span of ``target``, span of ``logits``) for every softmax span,
        log sum_k exp(l_k) - l_target (0 - log sum for a span where ``target`` is all zeros)."""
        e, m = self._shifted_exp(logits)
        member = self.member.to(e.dtype)
        log_norm = m + torch.log(e @ member)
        picked = (logits.index_select(1, self.soft) * target.index_select(1, self.soft)) @ member
        return log_norm - picked

    def span_sums(self, x: torch.Tensor) -> torch.Tensor:
        """(N, S): the sum of every softmax span of ``x`` (N, D)."""
        return x.index_select(1, self.soft) @ self.member.to(x.dtype)

    def to(self, device: torch.device) -> SpanLayout:
        for name in ("tanh", "soft", "block", "valid", "span_of", "member", "inverse"):
            setattr(self, name, getattr(self, name).to(device))
        return self


def activate(raw: torch.Tensor, spans: Sequence[tuple[int, str]] | SpanLayout, *, tau: float = 0.2,
             generator: torch.Generator | None = None, hard: bool = False) -> torch.Tensor:
    """Every span's activation: tanh, or the Gumbel-softmax softmax((logits + g) / tau) with
    g ~ Gumbel(0, 1) (Jang et al. 2017), whose argmax is an exact draw from softmax(logits);
    ``hard`` returns that draw as a one-hot."""
    layout = spans if isinstance(spans, SpanLayout) else SpanLayout(spans).to(raw.device)
    noisy = (raw + gumbel_noise(raw, generator)) / tau
    soft = layout.one_hot(noisy) if hard else layout.softmax(noisy)
    return layout.assemble(torch.tanh(raw.index_select(1, layout.tanh)), soft)


class Residual(nn.Module):
    """h (+) ReLU(BN(W h)): the block appends its output to its input."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.relu(self.bn(self.fc(h))), h], dim=1)


class CTGANGenerator(Generator):
    """z (+) cond -> residual blocks -> raw outputs; ``forward`` returns them activated (tanh and
    Gumbel-softmax at ``tau``; ``hard`` one-hots when sampling). The conditional vector is the
    ``y`` of the generator contract (a float (N, cond_dim) tensor; zeros when None)."""

    def __init__(self, out_dim: int, cond_dim: int, spans: list[tuple[int, str]], *, z_dim: int = 128,
                 hidden: Sequence[int] = (256, 256), tau: float = 0.2) -> None:
        super().__init__()
        self.z_dim, self.cond_dim, self.out_shape = z_dim, cond_dim, (out_dim,)
        self.spans, self.tau = spans, tau
        self.layout = SpanLayout(spans)
        blocks, width = [], z_dim + cond_dim
        for units in hidden:
            blocks.append(Residual(width, units))
            width += units
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Linear(width, out_dim)
        #: where forward's Gumbel noise comes from (None: the global RNG); the algorithm sets it
        self.noise: torch.Generator | None = None
        self.hard = False

    def raw(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is None:
            cond = z.new_zeros(len(z), self.cond_dim)
        return self.out(self.blocks(torch.cat([z, cond.to(z.dtype)], dim=1)))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return activate(self.raw(z, y), self.layout, tau=self.tau, generator=self.noise, hard=self.hard)

    def _apply(self, fn, recurse: bool = True):  # the layout's index tables follow the device
        out = super()._apply(fn, recurse)
        self.layout.to(self.out.weight.device)
        return out


class PacDiscriminator(Discriminator):
    """The PacGAN critic over rows (+) their conditional vectors, ``pac`` rows a pack; its logits
    are one per pack (N / pac,)."""

    flat_input = True

    def __init__(self, in_dim: int, *, pac: int = 10, hidden: Sequence[int] = (256, 256),
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.in_shape, self.pac = (in_dim,), pac
        layers: list[nn.Module] = []
        width = in_dim * pac
        for units in hidden:
            layers += [nn.Linear(width, units), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
            width = units
        self.trunk = nn.Sequential(*layers)
        self.feature_dim = width
        self.head = nn.Linear(width, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if len(x) % self.pac:
            raise GanforgeError(f"a batch of {len(x)} rows does not split into packs of {self.pac}",
                                f"make train.batch_size a multiple of algorithm.pac={self.pac}")
        return self.trunk(x.reshape(len(x) // self.pac, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)


@register_model("ctgan")
def build_ctgan(sample_shape: tuple[int, ...], num_classes: int | None = None, *, z_dim: int = 128,
                generator_dims: Sequence[int] = (256, 256), discriminator_dims: Sequence[int] = (256, 256),
                pac: int = 10, dropout: float = 0.5, tau: float = 0.2, cond_dim: int = 0,
                layout: Layout | None = None, prior: str = "normal",
                prior_df: float = 3.0) -> tuple[CTGANGenerator, PacDiscriminator]:
    """CTGAN's residual generator and PacGAN critic for rows of ``sample_shape`` (D,) (see the
    module docstring); ``num_classes`` is not used (the conditional vector is ``cond_dim``).
    ``prior``/``prior_df``: the latent distribution (``student-t`` for a heavy-tailed latent,
    :mod:`ganforge.maths.priors`; the mode-specific normalisation still bounds each value to its
    mode's +-4 sigma)."""
    positive_int(z_dim, "z_dim", "ctgan")
    positive_int(pac, "pac", "ctgan")
    layer_widths(generator_dims, "generator_dims", "ctgan")
    layer_widths(discriminator_dims, "discriminator_dims", "ctgan")
    probability(dropout, "dropout", "ctgan")
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not tau > 0:
        raise GanforgeError(f"model 'ctgan': tau={tau!r} is not a temperature > 0",
                            "set model.tau to e.g. 0.2")
    width = row_width(sample_shape, "ctgan")
    spans = check_layout(layout, width)
    G = CTGANGenerator(width, cond_dim, spans, z_dim=z_dim, hidden=generator_dims, tau=tau)
    G.set_prior(prior, prior_df)
    D = PacDiscriminator(width + cond_dim, pac=pac, hidden=discriminator_dims, dropout=dropout)
    return G, D
