"""BigGAN (Brock et al. 2019, "Large Scale GAN Training for High Fidelity Natural Image Synthesis")
for square images whose side S is a power of two >= 8, widths scaled down, mechanisms kept.

The table, for S = 32 (w = ``width``, d = ``d_width``, C = image channels; the layout of the
paper's CIFAR-10 architecture, appendix B)::

    G: z (z_dim) split into 1 + L chunks, L = log2(S / 4) up-blocks (hierarchical latent)
       z_0 -> SNLinear -> 4x4x4w
       ResUp(4w -> 4w, cond_1) -> 8x8      cond_l = [shared(y), z_l]  (class-conditional BN)
       ResUp(4w -> 4w, cond_2) -> 16x16 -> self-attention (``attention`` = 16)
       ResUp(4w -> 4w, cond_3) -> 32x32
       BN, ReLU, SNConv 3x3 -> C, tanh
    D: ResDown(C -> 4d) -> 16x16 -> self-attention (``attention`` = 16)
       ResDown(4d -> 4d) -> 8x8, Res(4d -> 4d), Res(4d -> 4d)
       ReLU, global sum pool -> h (4d);  D(x, y) = w^T h + b + <embed(y), h>  (projection)

ResUp:   x -> CBN -> ReLU -> up x2 -> conv3x3 -> CBN -> ReLU -> conv3x3, + conv1x1(up x2 (x)).
ResDown: x -> [ReLU] -> conv3x3 -> ReLU -> conv3x3 -> avgpool2, + shortcut (conv1x1, avgpool2);
         the first block has no leading ReLU and pools before its shortcut conv, as in the paper.

Every G conv and linear and every D conv, linear and embedding is spectrally normalised
(Miyato et al. 2018; torch's one power iteration per training forward). G's shared class
embedding is not, as in the authors' code. The class-conditional model is ``model.conditional:
projection``: G then conditions itself (shared embedding, conditional BN; the composer leaves it
alone, :attr:`BigGANGenerator.conditions_itself`) and the composer's projection head
(:class:`~ganforge.models.compose.ComposedDiscriminator`) reads D's pooled features. Without
``model.conditional`` the same networks are built without classes: each CBN reads its z chunk
only, and D is w^T h + b.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.models._checks import flag, positive_int, square_power_of_two
from ganforge.models.base import Discriminator, Generator, register_model
from ganforge.models.compose import _check_labels, apply_spectral_norm

#: the side of G's first feature map
BOTTOM = 4


# --------------------------------------------------------------------------- shared blocks


class HierarchicalBatchNorm(nn.Module):
    """BigGAN's conditional BatchNorm (sec. 3, appendix B): BatchNorm without affine parameters,
    then a per-sample gain and bias that are linear in the block's conditioning vector c
    (c = [shared(y), z_l], or z_l alone for an unconditional G)::

        out = (1 + W_gamma c) * (x - E[x]) / sqrt(Var[x] + eps) + W_beta c

    W_gamma, W_beta are bias-free linear maps (spectrally normalised by the builder), so a
    zero c gives plain BatchNorm."""

    def __init__(self, channels: int, cond_dim: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=eps, momentum=momentum, affine=False)
        self.gain = nn.Linear(cond_dim, channels, bias=False)
        self.bias = nn.Linear(cond_dim, channels, bias=False)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma = 1 + self.gain(cond)[:, :, None, None]
        beta = self.bias(cond)[:, :, None, None]
        return gamma * self.bn(x) + beta


class SelfAttention(nn.Module):
    """SAGAN's self-attention (Zhang et al. 2019, sec. 3), used by BigGAN in G and D::

        f = W_f x,  g = W_g x  (C/8 channels),  h = W_h x  (C/2),   all 1x1 convs
        beta_{j,i} = softmax_i(f(x_j)^T g(x_i))        (attention of position j over positions i)
        o_j = W_v sum_i beta_{j,i} h(x_i)              (W_v: 1x1 conv C/2 -> C)
        y = x + gamma o,   gamma a learned scalar initialised at 0

    so the block starts as the identity and learns how much non-local evidence to use. As in the
    released SAGAN and BigGAN code, the keys g and values h are 2x2 max-pooled: each of the HW
    queries reads HW/4 positions (4x less compute, same receptive field)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        key, value = max(1, channels // 8), max(1, channels // 2)
        self.f = nn.Conv2d(channels, key, 1, bias=False)
        self.g = nn.Conv2d(channels, key, 1, bias=False)
        self.h = nn.Conv2d(channels, value, 1, bias=False)
        self.v = nn.Conv2d(value, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """beta (N, HW, HW/4): row j is query position j's softmax over the pooled positions."""
        query = self.f(x).flatten(2)                                     # (N, C/8, HW)
        key = F.max_pool2d(self.g(x), 2).flatten(2)                      # (N, C/8, HW/4)
        return torch.softmax(query.transpose(1, 2) @ key, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, height, width = x.shape
        value = F.max_pool2d(self.h(x), 2).flatten(2)                    # (N, C/2, HW/4)
        o = (value @ self.attention(x).transpose(1, 2)).reshape(n, -1, height, width)
        return x + self.gamma * self.v(o)


# --------------------------------------------------------------------------- generator


class UpBlock(nn.Module):
    """G's residual up-block: CBN-ReLU-up-conv3x3-CBN-ReLU-conv3x3 plus conv1x1(up(x))."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int) -> None:
        super().__init__()
        self.bn1 = HierarchicalBatchNorm(c_in, cond_dim)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.bn2 = HierarchicalBatchNorm(c_out, cond_dim)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, cond)), scale_factor=2.0, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), cond)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class BigGANGenerator(Generator):
    """(z, y) -> images (N, C, S, S) in [-1, 1]; ``y`` (N,) class labels when ``num_classes``
    is set, else None. z is split into ``len(blocks) + 1`` equal chunks: chunk 0 feeds the input
    linear layer and chunk l the two CBNs of up-block l (:meth:`conditioning`)."""

    #: the composer must not wrap this generator or swap its BatchNorms: it takes y itself
    conditions_itself = True
    truncation = "z"

    def __init__(self, z_dim: int, out_shape: tuple[int, int, int], width: int,
                 num_classes: int | None, embed_dim: int, attention: int | None) -> None:
        super().__init__()
        self.z_dim, self.out_shape, self.num_classes = z_dim, tuple(out_shape), num_classes
        channels, side, _ = out_shape
        n_blocks = int(math.log2(side // BOTTOM))
        self.chunk = z_dim // (n_blocks + 1)
        cond_dim = self.chunk + (embed_dim if num_classes else 0)
        c = 4 * width
        self.shared = nn.Embedding(num_classes, embed_dim) if num_classes else None
        self.linear = nn.Linear(self.chunk, c * BOTTOM * BOTTOM)
        self.blocks = nn.ModuleList(UpBlock(c, c, cond_dim) for _ in range(n_blocks))
        #: the self-attention layer after the block whose output side is ``attention``
        self.attention_after = None if attention is None else int(math.log2(attention // BOTTOM)) - 1
        self.attention = SelfAttention(c) if attention is not None else None
        self.to_image = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(),
                                      nn.Conv2d(c, channels, 3, padding=1), nn.Tanh())

    def conditioning(self, z: torch.Tensor,
                     y: torch.Tensor | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(z_0, [cond_1, ..., cond_L]) with cond_l = [shared(y), z_l] (z_l alone without classes)."""
        if self.num_classes is None:
            if y is not None:
                raise GanforgeError("this BigGAN is unconditional (trained without "
                                    "model.conditional), so it takes no class labels",
                                    "drop the labels (--class), or train with model.conditional=projection")
        else:
            y = _check_labels(y, self.num_classes, len(z), "generator")
        chunks = list(z.split(self.chunk, dim=1))
        if self.shared is None:
            return chunks[0], chunks[1:]
        e = self.shared(y)
        return chunks[0], [torch.cat([e, zl], dim=1) for zl in chunks[1:]]

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        z0, conds = self.conditioning(z, y)
        h = self.linear(z0).view(len(z), -1, BOTTOM, BOTTOM)
        for index, (block, cond) in enumerate(zip(self.blocks, conds, strict=True)):
            h = block(h, cond)
            if index == self.attention_after:
                h = self.attention(h)
        return self.to_image(h)


# --------------------------------------------------------------------------- discriminator


class DownBlock(nn.Module):
    """D's residual block: [ReLU]-conv3x3-ReLU-conv3x3-[avgpool2] plus a shortcut (conv1x1 and
    pooling when the shape changes; the first block pools first, the others convolve first)."""

    def __init__(self, c_in: int, c_out: int, *, down: bool, preactivation: bool) -> None:
        super().__init__()
        self.down, self.preactivation = down, preactivation
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if (c_in != c_out or down) else None

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.down else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self._pool(self.conv2(F.relu(self.conv1(h))))
        if self.shortcut is None:
            return h + x
        sc = self._pool(self.shortcut(x)) if self.preactivation else self.shortcut(self._pool(x))
        return h + sc


class BigGANDiscriminator(Discriminator):
    """Images (N, C, S, S) -> h = sum over positions of ReLU(features) (N, 4d) -> ``head``.
    Down-blocks halve the side to 8 (S = 32: two of them), then two more blocks at 8x8;
    self-attention after the block whose output side is ``attention``."""

    #: every weight layer of this D is spectrally normalised, so the composer normalises the
    #: layers it adds (projection embedding, head) too
    spectrally_normalised = True

    def __init__(self, in_shape: tuple[int, int, int], width: int, attention: int | None) -> None:
        super().__init__()
        self.in_shape = tuple(in_shape)
        channels, side, _ = in_shape
        c = 4 * width
        n_down = int(math.log2(side // 8))
        blocks: list[nn.Module] = []
        for index in range(n_down + 2):
            blocks.append(DownBlock(channels if index == 0 else c, c, down=index < n_down,
                                    preactivation=index > 0))
            if attention is not None and side >> min(index + 1, n_down) == attention:
                blocks.append(SelfAttention(c))
                attention = None  # one layer, after the first block at that side
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = c
        self.head = nn.Linear(c, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.blocks(x)).sum(dim=(2, 3))


# --------------------------------------------------------------------------- builder


@register_model("biggan")
def build_biggan(
    sample_shape: tuple[int, ...],
    num_classes: int | None = None,
    *,
    z_dim: int = 120,
    width: int = 64,
    d_width: int | None = None,
    embed_dim: int = 128,
    attention: int | None = 16,
    g_attention: bool = True,
    d_attention: bool = True,
) -> tuple[BigGANGenerator, BigGANDiscriminator]:
    """The BigGAN pair for images (C, S, S), S a power of two >= 8 (see the module docstring).

    ``width`` is w (G has 4w channels), ``d_width`` d (D has 4d; default w). ``z_dim`` is split
    into log2(S/4) + 1 equal chunks, so it must be a multiple of that count.
    ``embed_dim`` is the shared class embedding's size. ``attention`` is the side at which the
    self-attention layers sit (null: none), each switched off by ``g_attention``/``d_attention``.
    ``num_classes`` (set by the composer only for ``model.conditional``) makes G class-conditional.
    Weights: orthogonal initialisation of every conv and linear (BigGAN's), embeddings N(0, 1),
    then spectral norm on every layer but G's shared embedding.
    """
    shape = square_power_of_two(sample_shape, 'biggan', 8)
    side = shape[1]
    width = positive_int(width, "width", "biggan")
    d_width = width if d_width is None else positive_int(d_width, "d_width", "biggan")
    embed_dim = positive_int(embed_dim, "embed_dim", "biggan")
    z_dim = positive_int(z_dim, "z_dim", "biggan")
    slots = int(math.log2(side // BOTTOM)) + 1
    if z_dim % slots:
        raise GanforgeError(f"model 'biggan': z_dim={z_dim} does not split into {slots} equal chunks "
                            f"(one per up-block and one for the input layer at {side}x{side})",
                            f"set model.z_dim to a multiple of {slots}, e.g. "
                            f"{slots * max(1, z_dim // slots)}")
    g_attention = flag(g_attention, "g_attention", "biggan")
    d_attention = flag(d_attention, "d_attention", "biggan")
    if attention is not None:
        attention = positive_int(attention, "attention", "biggan")
        if attention & (attention - 1) or not 8 <= attention <= side:
            raise GanforgeError(f"model 'biggan': attention={attention} is not a power-of-two side "
                                f"between 8 and {side}", "set model.attention to e.g. 16, or null")
        if attention == side > 8 and d_attention:
            raise GanforgeError(f"model 'biggan': D has no {side}x{side} feature map for attention",
                                "set model.attention to a smaller side, e.g. 16")
    G = BigGANGenerator(z_dim, shape, width, num_classes, embed_dim,
                        attention if g_attention else None)
    D = BigGANDiscriminator(shape, d_width, attention if d_attention else None)
    for module in [*G.modules(), *D.modules()]:
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.orthogonal_(module.weight)
    for module in G.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.utils.parametrizations.spectral_norm(module)
    apply_spectral_norm(D)
    return G, D
