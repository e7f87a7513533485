"""StyleGAN (Karras et al. 2019, "A Style-Based Generator Architecture for GANs") at small scale.

Generator (sec. 2, Fig. 1b), for a square power-of-two side S >= 8 (32 for Fashion-MNIST):

    z -> PixelNorm -> 8 x EqualLinear (lr_mul 0.01, leaky ReLU 0.2) -> w      (models/style.py)
    4x4:   learned constant (ones) -> noise -> bias -> lrelu -> AdaIN(w_0)
           -> conv 3x3 -> noise -> bias -> lrelu -> AdaIN(w_1)
    r = 8, 16, ..., S:  upsample x2 (bilinear) -> conv 3x3 -> noise -> bias -> lrelu -> AdaIN(w_2k)
                                              -> conv 3x3 -> noise -> bias -> lrelu -> AdaIN(w_2k+1)
    toRGB: 1x1 equalised conv (gain 1), linear output

    AdaIN(x, y) = y_s (x - mu(x)) / sigma(x) + y_b,   (y_s, y_b) = A(w), A = EqualLinear (gain 1,
    y_s bias 1, y_b bias 0); mu, sigma per sample and channel over the pixels.
    noise:  x + s_c * n,  n ~ N(0, 1) one value per pixel shared by all channels, s_c learned per
    channel and 0 at initialisation.

``num_ws`` = 2 log2(S) - 2 AdaIN layers each read their own w, so style mixing (90% of training
samples, :class:`~ganforge.models.style.StyleGenerator`) and truncation in W around the tracked
``w_avg`` apply per layer. Upsampling is bilinear interpolation (``F.interpolate``), standing in
for the paper's "bilinear sampling" (sec. 2: nearest-neighbour upsampling low-pass filtered by a
separable binomial filter).

Simplifications, all of scale and not of mechanism: widths (``width`` channels at S, doubling
per halving of the side up to ``max_width``) and ``w_dim`` are small; training is at the full
resolution from the start (the paper's FFHQ runs grew progressively; the official code also has a
fixed-resolution configuration); truncation moves every layer (the paper's figures cut off at
layer 8); D's downsampling is a 2x2 average pool (the paper blurs before it).

Discriminator: ProGAN's (Karras et al. 2018, Table 2) at a fixed resolution: fromRGB (1x1),
per resolution two 3x3 equalised convs with leaky ReLU 0.2 and a 2x2 average pool, then at 4x4
the minibatch standard deviation, a 3x3 conv, a 4x4 conv (a dense layer) -> ``features``, and
the linear ``head``.

Noise comes from the global torch RNG (checkpointed by the Trainer), unless ``synthesis`` is
given explicit noise maps (:meth:`StyleGANGenerator.make_noise`), which the figures use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.models._checks import positive_int, square_power_of_two
from ganforge.models.base import Discriminator, register_model
from ganforge.models.equalized import EqualConv2d, EqualLinear
from ganforge.models.layers import MinibatchStdDev
from ganforge.models.progan import DBlock
from ganforge.models.style import MappingNetwork, StyleGenerator, channels_at


class AdaIN(nn.Module):
    """AdaIN(x, w) = y_s (x - mu(x)) / sigma(x) + y_b with y_s = A_s(w), y_b = A_b(w).

    mu, sigma: mean and standard deviation of each sample's channel over its pixels,
    sigma = sqrt(Var + eps). A_s and A_b are equalised affine maps with gain 1 whose biases start
    at 1 and 0, so a fresh layer is a plain instance normalisation."""

    def __init__(self, channels: int, w_dim: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps
        self.scale = EqualLinear(w_dim, channels, gain=1.0, bias_init=1.0)
        self.shift = EqualLinear(w_dim, channels, gain=1.0, bias_init=0.0)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(dim=(2, 3), keepdim=True)
        x = x * torch.rsqrt(x.pow(2).mean(dim=(2, 3), keepdim=True) + self.eps)
        return self.scale(w)[:, :, None, None] * x + self.shift(w)[:, :, None, None]


class NoiseInput(nn.Module):
    """x + s * n: one N(0, 1) value per pixel (shape (N, 1, H, W)) scaled by a learned
    per-channel factor s (initialised at 0)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        return x + self.weight[None, :, None, None] * noise


class StyleLayer(nn.Module):
    """[upsample x2] -> [conv 3x3] -> noise -> bias -> leaky ReLU 0.2 -> AdaIN(w).
    Without ``in_channels`` the layer has no conv (the 4x4 block's first layer, on the constant)."""

    def __init__(self, in_channels: int | None, out_channels: int, w_dim: int,
                 upsample: bool = False) -> None:
        super().__init__()
        self.upsample = upsample
        self.conv = (EqualConv2d(in_channels, out_channels, 3, padding=1, bias=False)
                     if in_channels is not None else None)
        self.noise = NoiseInput(out_channels)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.adain = AdaIN(out_channels, w_dim)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        if self.conv is not None:
            x = self.conv(x)
        x = self.noise(x, noise) + self.bias[None, :, None, None]
        return self.adain(F.leaky_relu(x, 0.2), w)


class StyleGANGenerator(StyleGenerator):
    """z (N, z_dim) -> images (N, C, S, S). ``layers[i]`` is the AdaIN layer that reads w_i;
    ``ws_resolutions[i]`` its side."""

    def __init__(self, out_shape: tuple[int, int, int], z_dim: int = 64, w_dim: int = 64,
                 mapping_layers: int = 8, mapping_lr_mul: float = 0.01, width: int = 32,
                 max_width: int = 64, mixing_prob: float = 0.9, w_avg_beta: float = 0.995) -> None:
        super().__init__(w_dim, mixing_prob=mixing_prob, w_avg_beta=w_avg_beta)
        channels, side, _ = out_shape
        self.z_dim, self.w_dim, self.out_shape = z_dim, w_dim, tuple(out_shape)
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, mapping_lr_mul)
        c4 = channels_at(4, side, width, max_width)
        self.const = nn.Parameter(torch.ones(1, c4, 4, 4))
        layers = [StyleLayer(None, c4, w_dim), StyleLayer(c4, c4, w_dim)]
        resolutions = [4, 4]
        c_in, res = c4, 4
        while res < side:
            res *= 2
            c_out = channels_at(res, side, width, max_width)
            layers += [StyleLayer(c_in, c_out, w_dim, upsample=True), StyleLayer(c_out, c_out, w_dim)]
            resolutions += [res, res]
            c_in = c_out
        self.layers = nn.ModuleList(layers)
        self.ws_resolutions = tuple(resolutions)
        self.num_ws = len(layers)
        self.to_rgb = EqualConv2d(c_in, channels, 1, gain=1.0)

    def make_noise(self, n: int = 1, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """One noise map (n, 1, r, r) per AdaIN layer, drawn on CPU from ``generator`` and moved to
        the model's device; pass them to :meth:`synthesis` to fix the noise (n = 1 broadcasts)."""
        device = self.const.device
        return [torch.randn(n, 1, r, r, generator=generator).to(device) for r in self.ws_resolutions]

    def synthesis(self, ws: torch.Tensor, noise: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
        """ws (N, num_ws, w_dim) -> images (N, C, S, S); ``noise`` one map (N or 1, 1, r, r) per
        layer, else fresh noise from the global RNG."""
        if ws.dim() != 3 or ws.shape[1] != self.num_ws:
            raise GanforgeError(f"synthesis needs ws of shape (N, {self.num_ws}, {self.w_dim}), got "
                                f"{tuple(ws.shape)}", "broadcast one w per AdaIN layer (G.broadcast(w))")
        if noise is None:
            noise = [None] * self.num_ws
        elif len(noise) != self.num_ws:
            raise GanforgeError(f"synthesis needs {self.num_ws} noise maps, got {len(noise)}",
                                "pass G.make_noise(...) or leave noise out")
        x = self.const.expand(len(ws), -1, -1, -1)
        for i, (layer, n) in enumerate(zip(self.layers, noise, strict=True)):
            x = layer(x, ws[:, i], n)
        return self.to_rgb(x)


class StyleGANDiscriminator(Discriminator):
    """ProGAN's discriminator at a fixed side S: images (N, C, S, S) -> features (N, c_4) -> logits."""

    def __init__(self, in_shape: tuple[int, int, int], width: int = 32, max_width: int = 64,
                 mbstd_group: int = 4) -> None:
        super().__init__()
        channels, side, _ = in_shape
        self.in_shape = tuple(in_shape)
        self.from_rgb = EqualConv2d(channels, channels_at(side, side, width, max_width), 1)
        blocks, res = [], side
        while res > 4:
            blocks.append(DBlock(channels_at(res, side, width, max_width),
                                 channels_at(res // 2, side, width, max_width)))
            res //= 2
        self.blocks = nn.Sequential(*blocks)
        c4 = channels_at(4, side, width, max_width)
        self.mbstd = MinibatchStdDev(mbstd_group)
        self.conv = EqualConv2d(c4 + 1, c4, 3, padding=1)
        self.dense = EqualConv2d(c4, c4, 4)  # the 4x4 "conv" that reads the whole map: a dense layer
        self.feature_dim = c4
        self.head = EqualLinear(c4, 1, gain=1.0)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(F.leaky_relu(self.from_rgb(x), 0.2))
        x = F.leaky_relu(self.conv(self.mbstd(x)), 0.2)
        return F.leaky_relu(self.dense(x), 0.2).flatten(1)


@register_model("stylegan")
def build_stylegan(
    sample_shape: tuple[int, ...],
    num_classes: int | None = None,
    *,
    z_dim: int = 64,
    w_dim: int = 64,
    mapping_layers: int = 8,
    mapping_lr_mul: float = 0.01,
    width: int = 32,
    max_width: int = 64,
    d_width: int | None = None,
    d_max_width: int | None = None,
    mixing_prob: float = 0.9,
    w_avg_beta: float = 0.995,
    mbstd_group: int = 4,
) -> tuple[StyleGANGenerator, StyleGANDiscriminator]:
    """The StyleGAN pair for square power-of-two images. ``width``/``max_width``: G's channels at
    the output side and its cap (doubling per halving of the side); D mirrors them unless
    ``d_width``/``d_max_width`` are given. ``mixing_prob``: the share of training samples with
    style-mixing regularisation (0.9 in the paper). ``num_classes`` is ignored: StyleGAN is
    unconditional."""
    shape = square_power_of_two(sample_shape, 'stylegan', 8)
    ints = {k: positive_int(v, k, "stylegan") for k, v in (
        ("z_dim", z_dim), ("w_dim", w_dim), ("mapping_layers", mapping_layers), ("width", width),
        ("max_width", max_width), ("mbstd_group", mbstd_group))}
    d_width = positive_int(d_width, "d_width", "stylegan") if d_width is not None else width
    d_max_width = (positive_int(d_max_width, "d_max_width", "stylegan") if d_max_width is not None
                   else max_width)
    for key, value in (("mapping_lr_mul", mapping_lr_mul), ("w_avg_beta", w_avg_beta)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1 \
                or not math.isfinite(value):
            raise GanforgeError(f"model 'stylegan': {key}={value!r} is not a number in (0, 1]",
                                f"set model.{key} to e.g. {0.01 if key == 'mapping_lr_mul' else 0.995}")
    G = StyleGANGenerator(shape, ints["z_dim"], ints["w_dim"], ints["mapping_layers"],
                          float(mapping_lr_mul), ints["width"], ints["max_width"], mixing_prob,
                          float(w_avg_beta))
    D = StyleGANDiscriminator(shape, d_width, d_max_width, ints["mbstd_group"])
    return G, D
