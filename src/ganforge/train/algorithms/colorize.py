"""Colorization as pix2pix (Isola et al. 2017, sec. 4.3): G maps the CIE Lab lightness L of a
photograph to its chroma (a, b); the ``photo-patches`` data with ``task: colorization`` give
cond = L / 50 - 1 (1 channel) and x = (a, b) / 110 (2 channels).

Training is exactly :class:`~ganforge.train.algorithms.pix2pix.Pix2Pix` (L_G = BCE(D(L, G(L)), 1)
+ lambda mean |ab - G(L)|; ``adversarial: false`` the L1-only model). What differs is how the
outputs are shown: the snapshots and ``panels`` turn (L, ab) back into RGB with
:func:`ganforge.data.photos.lab_to_rgb` (input: L as grey; output: (L, G(L)); target: (L, ab)).
:meth:`Colorize.colorize` gives those RGB images for any L inputs; ``ganforge translate`` reads a
user's RGB (or grey) images, keeps their L and writes the colourised RGB.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.config import ExperimentConfig
from ganforge.data.base import AnyDataset
from ganforge.data.photos import lab_to_rgb, rgb_to_lab_pair
from ganforge.errors import GanforgeError
from ganforge.train.algorithms.base import register_algorithm
from ganforge.train.algorithms.pix2pix import Pix2Pix


@register_algorithm("colorize")
class Colorize(Pix2Pix):
    """pix2pix on (L, ab) pairs, shown in RGB; options as pix2pix's."""

    name = "colorize"

    def __init__(self, cfg: ExperimentConfig, dataset: AnyDataset | None, *,
                 sample_shape: tuple[int, ...], num_classes: int | None, device: torch.device,
                 restoring: bool = False) -> None:
        super().__init__(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes, device=device,
                         restoring=restoring)
        if self.cond_shape[0] != 1 or self.sample_shape[0] != 2:
            raise GanforgeError(f"colorize maps L (1 channel) to ab (2 channels), and the data map "
                                f"{self.cond_shape[0]} to {self.sample_shape[0]} channel(s)",
                                "use data photo-patches with task: colorization")

    @torch.no_grad()
    def colorize(self, cond: torch.Tensor, network: nn.Module | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """RGB images (N, 3, H, W) in [-1, 1]: L inputs with G's (a, b)."""
        return lab_to_rgb(cond, self.translate(cond, network, generator))

    def user_channels(self, network: nn.Module | None = None) -> int:
        return 3  # grey images are repeated to RGB, whose L is their luminance

    def prepare_inputs(self, images: torch.Tensor) -> torch.Tensor:
        """L / 50 - 1 of RGB images in [-1, 1] (their colour is dropped)."""
        return rgb_to_lab_pair(images)[0]

    def output_images(self, cond: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return lab_to_rgb(cond, out)

    def panels(self, n: int | None = None, network: nn.Module | None = None,
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """{"input" (L as grey), "output", "target"} in RGB for the fixed pairs."""
        cond, target = self.fixed_pairs(n)
        return {"input": cond, "output": self.colorize(cond, network, generator),
                "target": lab_to_rgb(cond, target)}
