"""pix2pix's networks (Isola et al. 2017): a U-Net generator and a PatchGAN discriminator.

**U-Net** G(c) for input images c (N, C_in, H, W), H and W multiples of 2^depth, to output
images (N, C_out, H, W) in [-1, 1]. With ``width`` w, encoder level k = 1..d (d = ``depth``)
has c_k = min(w 2^(k-1), 8w) channels at side H / 2^k::

    e_1 = Conv4x4 s2 (c)                                       no norm (paper: C64 has no BN)
    e_k = Norm(Conv4x4 s2 (LeakyReLU_0.2(e_{k-1})))            k = 2..d (no norm at k = d)
    u_d = Drop(Norm(ConvT4x4 s2 (ReLU(e_d))))                  -> c_{d-1} channels
    u_k = Drop(Norm(ConvT4x4 s2 (ReLU([u_{k+1}, e_k]))))       k = d-1..2, skip = concatenation
    G(c) = tanh(ConvT4x4 s2 (ReLU([u_2, e_1])))

The skips carry e_k straight to the decoder, so low-level structure (the edges' positions) need
not squeeze through the bottleneck e_d (side H / 2^d, 1x1 for the default depth on 32x32).
Dropout (rate ``dropout``, on the ``dropout_layers`` innermost decoder levels) is G's only noise
(the paper gives G no z); with ``test_dropout`` it stays on in eval mode, as the paper does at
test time. Its masks come from the ``generator`` passed to ``forward`` (the algorithm's own,
checkpointed), or torch's global generator.

**PatchGAN** D(c, x) on the channel concatenation [c, x] (N, C_in + C_out, H, W): ``n_layers``
Conv4x4 s2 layers (w, 2w, 4w, ... capped at 8w; norm from the second), one Conv4x4 s1, and a
Conv4x4 s1 to one logit per patch (N, 1, H', W'). Each logit sees a ``receptive_field`` x
``receptive_field`` window of the input: r = 1 + sum_l (k_l - 1) prod_{j<l} s_j, so

    receptive_field   16 (n_layers 1)   34 (n_layers 2)   70 (n_layers 3, the paper's)

and 1 is the PixelGAN: 1x1 convolutions (w, 2w, then 1), every pixel scored alone. For 32x32
images the 70-field D sees (almost) the whole image from each of its 2x2 logits, the 16-field D
texture-sized windows from 7x7 logits.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.models._checks import IMAGES, flag, positive_int, probability, shaped
from ganforge.models.base import register_model

KERNEL = 4
#: receptive field -> number of stride-2 layers of the PatchGAN (0: the 1x1 PixelGAN)
RECEPTIVE_FIELDS = {1: 0, 16: 1, 34: 2, 70: 3}
NORMS = ("batch", "instance")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.InstanceNorm2d(channels, affine=True)


def noise_dropout(h: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Inverted dropout with masks drawn on the CPU from ``generator`` (device-agnostic and
    reproducible): h * Bernoulli(1 - p) / (1 - p)."""
    if p == 0:
        return h
    keep = torch.bernoulli(torch.full(h.shape, 1 - p), generator=generator).to(h.device, h.dtype)
    return h * keep / (1 - p)


class UNetGenerator(nn.Module):
    """The U-Net of the module docstring. ``out_shape`` (C_out, H, W) is the training size;
    any H, W that are multiples of ``multiple`` = 2^depth work."""

    def __init__(self, in_channels: int, out_shape: tuple[int, int, int], *, depth: int,
                 width: int = 64, dropout: float = 0.5, dropout_layers: int = 3,
                 test_dropout: bool = True, norm: str = "batch") -> None:
        super().__init__()
        self.in_channels, self.out_shape = in_channels, tuple(out_shape)
        self.out_channels = out_shape[0]
        self.depth, self.multiple = depth, 2 ** depth
        self.dropout, self.dropout_layers, self.test_dropout = dropout, dropout_layers, test_dropout
        ch = [min(width * 2 ** k, 8 * width) for k in range(depth)]       # c_1..c_d
        self.encoders = nn.ModuleList()
        for k in range(depth):
            layers: list[nn.Module] = [] if k == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(in_channels if k == 0 else ch[k - 1], ch[k], KERNEL, 2, 1,
                                    bias=k in (0, depth - 1) or norm != "batch"))
            if 0 < k < depth - 1:
                layers.append(_norm(norm, ch[k]))
            self.encoders.append(nn.Sequential(*layers))
        self.decoders = nn.ModuleList()   # decoders[k] maps level k+1 to level k (k = d-1..0)
        for k in range(depth):
            c_in = ch[k] if k == depth - 1 else 2 * ch[k]
            if k == 0:
                self.decoders.append(nn.Sequential(
                    nn.ReLU(), nn.ConvTranspose2d(c_in, self.out_channels, KERNEL, 2, 1), nn.Tanh()))
            else:
                self.decoders.append(nn.Sequential(
                    nn.ReLU(), nn.ConvTranspose2d(c_in, ch[k - 1], KERNEL, 2, 1, bias=norm != "batch"),
                    _norm(norm, ch[k - 1])))

    def noisy(self) -> bool:
        """Whether dropout is active now (training, or eval with ``test_dropout``)."""
        return self.dropout > 0 and (self.training or self.test_dropout)

    def forward(self, c: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        check_size(self, c)
        skips, h = [], c
        for enc in self.encoders:
            h = enc(h)
            skips.append(h)
        p = self.dropout if self.noisy() else 0.0
        for k in reversed(range(self.depth)):
            if k < self.depth - 1:
                h = torch.cat([h, skips[k]], dim=1)
            h = self.decoders[k](h)
            if k > 0 and k >= self.depth - self.dropout_layers:
                h = noise_dropout(h, p, generator)
        return h


def check_size(G: UNetGenerator, c: torch.Tensor) -> None:
    """One-line error unless ``c`` is (N, G.in_channels, H, W) with H, W multiples of 2^depth."""
    if c.dim() != 4 or c.shape[1] != G.in_channels:
        raise GanforgeError(f"the generator takes images with {G.in_channels} channel(s), got shape "
                            f"{tuple(c.shape)}", f"give (N, {G.in_channels}, H, W) inputs")
    h, w = c.shape[-2:]
    if h % G.multiple or w % G.multiple:
        raise GanforgeError(f"the generator takes sides that are multiples of {G.multiple} "
                            f"(2^depth, depth {G.depth}), got {h}x{w}",
                            f"resize or pad the images to e.g. {G.out_shape[1]}x{G.out_shape[2]} "
                            f"or {2 * G.multiple}x{2 * G.multiple}")


def patch_receptive_field(n_layers: int) -> int:
    """The receptive field r of one PatchGAN logit: layers (kernel k_l, stride s_l) = n_layers
    x (4, 2), then (4, 1), (4, 1); r = 1 + sum_l (k_l - 1) prod_{j<l} s_j. 0 layers: the
    PixelGAN's 1."""
    if n_layers == 0:
        return 1
    layers = [(KERNEL, 2)] * n_layers + [(KERNEL, 1), (KERNEL, 1)]
    r, jump = 1, 1
    for k, s in layers:
        r += (k - 1) * jump
        jump *= s
    return r


class PatchDiscriminator(nn.Module):
    """D(c, x) -> logits (N, 1, H', W'), one per receptive_field-sized patch of [c, x]."""

    def __init__(self, in_channels: int, out_channels: int, *, receptive_field: int = 70,
                 width: int = 64, norm: str = "batch") -> None:
        super().__init__()
        self.receptive_field = receptive_field
        n_layers = RECEPTIVE_FIELDS[receptive_field]
        c0 = in_channels + out_channels
        if n_layers == 0:  # PixelGAN: 1x1 convolutions
            self.net = nn.Sequential(
                nn.Conv2d(c0, width, 1), nn.LeakyReLU(0.2),
                nn.Conv2d(width, 2 * width, 1, bias=norm != "batch"), _norm(norm, 2 * width),
                nn.LeakyReLU(0.2), nn.Conv2d(2 * width, 1, 1))
            return
        layers: list[nn.Module] = [nn.Conv2d(c0, width, KERNEL, 2, 1), nn.LeakyReLU(0.2)]
        c = width
        for i in range(1, n_layers + 1):  # n_layers - 1 more stride-2 convs, then a stride-1 one
            c_next = min(width * 2 ** i, 8 * width)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(c, c_next, KERNEL, stride, 1, bias=norm != "batch"),
                       _norm(norm, c_next), nn.LeakyReLU(0.2)]
            c = c_next
        layers.append(nn.Conv2d(c, 1, KERNEL, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, c: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([c, x], dim=1))


@torch.no_grad()
def pix2pix_init_(module: nn.Module) -> None:
    """The paper's initialisation: conv weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
        else:
            continue
        if m.bias is not None:
            nn.init.zeros_(m.bias)


@register_model("pix2pix")
def build_pix2pix(sample_shape: tuple[int, ...], num_classes: int | None = None, *,
                  in_channels: int | None = None, depth: int | None = None, width: int = 64,
                  d_width: int | None = None, receptive_field: int = 70, dropout: float = 0.5,
                  dropout_layers: int = 3, test_dropout: bool = True,
                  norm: str = "batch") -> tuple[UNetGenerator, PatchDiscriminator]:
    """The U-Net G and PatchGAN D for targets ``sample_shape`` (C_out, H, W) and inputs with
    ``in_channels`` channels (default C_out; the image-to-image algorithms pass their data's).
    ``depth`` defaults to log2 of the largest power of 2 dividing both sides (32x32: 5, a 1x1
    bottleneck), capped at 8. ``d_width`` defaults to ``width``. ``num_classes`` is ignored."""
    c_out, h, w = shaped(sample_shape, "pix2pix", IMAGES, "use an image dataset of pairs")
    in_channels = c_out if in_channels is None else positive_int(in_channels, "in_channels", "pix2pix")
    divides = min((h & -h).bit_length() - 1, (w & -w).bit_length() - 1)  # largest 2^k | both
    if depth is None:
        depth = min(divides, 8)
    depth = positive_int(depth, "depth", "pix2pix")
    if depth > divides:
        raise GanforgeError(f"model 'pix2pix': depth={depth} halves the {h}x{w} images {depth} times, "
                            f"but {h}x{w} allows at most {divides}",
                            f"set model.depth <= {divides}, or use sides divisible by {2 ** depth}")
    width = positive_int(width, "width", "pix2pix")
    d_width = width if d_width is None else positive_int(d_width, "d_width", "pix2pix")
    if receptive_field not in RECEPTIVE_FIELDS or isinstance(receptive_field, bool):
        raise GanforgeError(f"model 'pix2pix': receptive_field={receptive_field!r} is not one of "
                            f"{', '.join(map(str, RECEPTIVE_FIELDS))}",
                            "set model.receptive_field=70 (the paper's), 34, 16 or 1 (PixelGAN)")
    dropout = probability(dropout, "dropout", "pix2pix")
    if isinstance(dropout_layers, bool) or not isinstance(dropout_layers, int) or dropout_layers < 0:
        raise GanforgeError(f"model 'pix2pix': dropout_layers={dropout_layers!r} is not a count >= 0",
                            "set model.dropout_layers=3 (the paper's) or 0")
    test_dropout = flag(test_dropout, "test_dropout", "pix2pix")
    if norm not in NORMS:
        raise GanforgeError(f"model 'pix2pix': unknown norm {norm!r}", f"choose one of: {', '.join(NORMS)}")
    G = UNetGenerator(in_channels, (c_out, h, w), depth=depth, width=width, dropout=dropout,
                      dropout_layers=dropout_layers, test_dropout=test_dropout, norm=norm)
    D = PatchDiscriminator(in_channels, c_out, receptive_field=receptive_field, width=d_width, norm=norm)
    pix2pix_init_(G)
    pix2pix_init_(D)
    return G, D


def accepted_sides(G: UNetGenerator, largest: int = 256) -> str:
    """A readable list of the sides G accepts: the multiples of 2^depth up to ``largest``."""
    m = G.multiple
    sides = list(range(m, max(largest, m) + 1, m))
    shown = sides if len(sides) <= 6 else [*sides[:4], "...", sides[-1]]
    return ", ".join(map(str, shown)) + f" (multiples of {m})"


__all__ = ["PatchDiscriminator", "UNetGenerator", "accepted_sides", "build_pix2pix", "check_size",
           "patch_receptive_field"]
