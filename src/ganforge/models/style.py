"""What StyleGAN (Karras et al. 2019) and StyleGAN2 (Karras et al. 2020) share: the mapping
network z -> w, the tracked mean w_avg, truncation in W and style mixing.

A style-based generator is :class:`StyleGenerator`: ``mapping`` turns z into one w (N, w_dim),
``synthesis(ws)`` turns one w per style input (N, num_ws, w_dim) into images. ``forward(z, y,
psi)`` is mapping, truncation, (in training) mixing regularisation, synthesis. The latent tools
use ``mapping``/``synthesis`` directly for W-space interpolation and style mixing.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.models.base import Generator
from ganforge.models.equalized import EqualLinear, PixelNorm


def channels_at(resolution: int, side: int, width: int, max_width: int) -> int:
    """Channels at ``resolution`` of a network whose output side is ``side``: ``width`` there,
    doubled per halving of the resolution, at most ``max_width``."""
    return min(max_width, width * (side // resolution))


class MappingNetwork(nn.Module):
    """f: Z -> W (StyleGAN sec. 2): z normalised to RMS 1 (PixelNorm), then ``layers`` equalised
    fully connected layers with leaky ReLU 0.2, each with learning-rate multiplier ``lr_mul``
    (0.01 in the paper: the mapping learns 100x slower than the synthesis network)."""

    def __init__(self, z_dim: int, w_dim: int, layers: int = 8, lr_mul: float = 0.01) -> None:
        super().__init__()
        blocks: list[nn.Module] = [PixelNorm()]
        for i in range(layers):
            blocks += [EqualLinear(z_dim if i == 0 else w_dim, w_dim, lr_mul=lr_mul),
                       nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def truncate_w(w: torch.Tensor, w_avg: torch.Tensor, psi: float) -> torch.Tensor:
    """The truncation trick in W (StyleGAN sec. 3.1): w' = w_avg + psi (w - w_avg)."""
    return w_avg + psi * (w - w_avg)


def mix_styles(ws: torch.Tensor, ws_other: torch.Tensor, crossover: torch.Tensor) -> torch.Tensor:
    """Per sample i, styles 0..crossover_i - 1 from ``ws`` and the rest from ``ws_other``
    (both (N, num_ws, w_dim); ``crossover`` (N,) integers in [0, num_ws])."""
    layer = torch.arange(ws.shape[1], device=ws.device)
    take_first = (layer[None, :] < crossover[:, None].to(ws.device)).unsqueeze(-1)
    return torch.where(take_first, ws, ws_other)


class StyleGenerator(Generator):
    """Base of the style-based generators. Subclasses set ``mapping`` (a
    :class:`MappingNetwork`), ``num_ws`` and ``w_dim``, and implement ``synthesis(ws)``.

    In training mode ``forward`` updates ``w_avg`` (an EMA of w with decay ``w_avg_beta``) and,
    with probability ``mixing_prob``, applies style-mixing regularisation: a second code's w takes
    over from a uniformly random crossover layer. Randomness comes from the global torch RNG,
    which the Trainer checkpoints.
    """

    truncation = "w"
    mapping: MappingNetwork
    num_ws: int
    w_dim: int
    #: the side of the layer each style feeds (None: two styles per resolution from 4x4 up)
    ws_resolutions: tuple[int, ...] | None = None

    def __init__(self, w_dim: int, mixing_prob: float = 0.9, w_avg_beta: float = 0.995) -> None:
        super().__init__()
        if (isinstance(mixing_prob, bool) or not isinstance(mixing_prob, (int, float))
                or not 0 <= mixing_prob <= 1):
            raise GanforgeError(f"model.mixing_prob must lie in [0, 1], got {mixing_prob!r}",
                                "set e.g. model.mixing_prob=0.9 (the paper's) or 0 to turn mixing off")
        self.mixing_prob = float(mixing_prob)
        self.w_avg_beta = w_avg_beta
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        raise TypeError(f"{type(self).__name__} must define synthesis")

    def make_noise(self, n: int = 1, generator: torch.Generator | None = None) -> list[torch.Tensor] | None:
        """Explicit noise maps for ``n`` images (one per noise input, for ``synthesis(ws,
        noise=...)``), or None for a generator without explicit noise inputs."""
        return None

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """One w (N, w_dim) as every layer's style: (N, num_ws, w_dim)."""
        return w.unsqueeze(1).expand(-1, self.num_ws, -1)

    def styles(self, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        """ws (N, num_ws, w_dim) for codes z: mapping, then (training) w_avg tracking and mixing,
        then truncation towards w_avg when ``psi`` < 1."""
        w = self.mapping(z)
        if self.training:
            with torch.no_grad():
                self.w_avg.lerp_(w.detach().mean(0), 1 - self.w_avg_beta)
        ws = self.broadcast(w)
        if self.training and self.mixing_prob > 0:
            ws = self._mixing_regularisation(z, ws)
        if psi != 1.0:
            ws = truncate_w(ws, self.w_avg, psi)
        return ws

    def _mixing_regularisation(self, z: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
        n = len(z)
        mixed = torch.rand(n, device=z.device) < self.mixing_prob
        crossover = torch.randint(1, self.num_ws, (n,), device=z.device)
        crossover = torch.where(mixed, crossover, torch.full_like(crossover, self.num_ws))
        ws_other = self.broadcast(self.mapping(torch.randn_like(z)))
        return mix_styles(ws, ws_other, crossover)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None, psi: float = 1.0) -> torch.Tensor:
        if y is not None:
            raise GanforgeError(f"{type(self).__name__} is unconditional and was given class labels",
                                "drop --class / labels, or train a class-conditional family (biggan)")
        return self.synthesis(self.styles(z, psi))
