"""Figures of the style-based generators (StyleGAN, StyleGAN2): style mixing (Karras et al.
2019, Fig. 3), stochastic variation from the noise inputs (Fig. 4) and interpolation in W.

Every helper works on a generator with ``mapping`` (z -> w) and ``synthesis`` (ws -> images),
reads w' = w_avg + psi (w - w_avg) (the truncation trick in W) and never changes the generator's
train/eval mode or its ``w_avg``: it calls ``mapping`` and ``synthesis`` directly, so training-time
mixing regularisation never enters a figure. Noise is fixed across a figure (one draw from
``generator`` shared by all images) wherever the generator accepts explicit noise maps
(``make_noise``), so that only the styles differ.

Style groups (:func:`style_layers`) follow the paper's coarse/middle/fine split scaled to small
images: ``coarse`` = the styles of the 4x4 and 8x8 layers, ``fine`` = those of the output
resolution, ``middle`` = the ones in between (empty at 16x16).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.latent.interpolate import lerp
from ganforge.models.base import check_truncation
from ganforge.models.style import StyleGenerator, truncate_w

GROUPS = ("coarse", "middle", "fine")


def check_style_generator(G: nn.Module) -> StyleGenerator:
    """``G`` itself when it is style-based (a :class:`StyleGenerator`), else one-line error."""
    if not isinstance(G, StyleGenerator):
        raise GanforgeError(f"{type(G).__name__} is not a style-based generator; mixing needs "
                            "stylegan or stylegan2",
                            "use a run trained with model.name=stylegan or stylegan2")
    return G


def ws_resolutions(G: StyleGenerator) -> tuple[int, ...]:
    """The side of the layer each style feeds: ``G.ws_resolutions`` when the generator declares it,
    else two styles per resolution from 4x4 up, capped at the output side."""
    if G.ws_resolutions is not None:
        return tuple(G.ws_resolutions)
    side = G.out_shape[-1]
    return tuple(min(4 * 2 ** (i // 2), side) for i in range(G.num_ws))


def style_layers(G: nn.Module, layers: str | Sequence[int]) -> tuple[int, ...]:
    """Indices of the styles named by ``layers``: ``coarse``, ``middle``, ``fine`` (see the module
    docstring) or explicit indices in [0, num_ws)."""
    G = check_style_generator(G)
    res = ws_resolutions(G)
    if isinstance(layers, str):
        top = max(res)
        groups = {"coarse": [i for i, r in enumerate(res) if r <= 8],
                  "fine": [i for i, r in enumerate(res) if r == top and r > 8],
                  "middle": [i for i, r in enumerate(res) if 8 < r < top]}
        if layers not in groups:
            raise GanforgeError(f"unknown style layers {layers!r}",
                                f"choose {', '.join(GROUPS)} or a list of indices in [0, {G.num_ws})")
        chosen = groups[layers]
        if not chosen:
            raise GanforgeError(f"a {top}x{top} generator has no {layers} styles",
                                "choose coarse or fine, or a list of indices")
        return tuple(chosen)
    chosen = tuple(layers)
    if not chosen or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < G.num_ws
                         for i in chosen):
        raise GanforgeError(f"style layers {list(chosen)!r} are not indices in [0, {G.num_ws})",
                            f"pass e.g. [0, 1] or one of {', '.join(GROUPS)}")
    return tuple(sorted(set(chosen)))


@torch.no_grad()
def map_to_w(G: nn.Module, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
    """w' = w_avg + psi (mapping(z) - w_avg): (N, w_dim), truncated without touching ``w_avg``."""
    G = check_style_generator(G)
    psi = check_truncation(G, psi)
    device = next(G.parameters()).device
    w = G.mapping(z.to(device))
    return truncate_w(w, G.w_avg, psi) if psi != 1.0 else w


def mix_ws(ws_base: torch.Tensor, ws_source: torch.Tensor, layers: Sequence[int]) -> torch.Tensor:
    """Styles of ``ws_base`` (N, num_ws, w_dim) with the ``layers`` taken from ``ws_source``."""
    mask = torch.zeros(ws_base.shape[1], dtype=torch.bool, device=ws_base.device)
    mask[list(layers)] = True
    return torch.where(mask[None, :, None], ws_source, ws_base)


def _synthesis(G: nn.Module, ws: torch.Tensor, noise: list[torch.Tensor] | None) -> torch.Tensor:
    return (G.synthesis(ws) if noise is None else G.synthesis(ws, noise=noise)).cpu()


def _fixed_noise(G: StyleGenerator, generator: torch.Generator | None) -> list[torch.Tensor] | None:
    """One noise draw (batch 1, broadcast to every image) when G takes explicit noise maps."""
    return G.make_noise(1, generator)


@torch.no_grad()
def style_mixing_grid(G: nn.Module, z_rows: torch.Tensor, z_cols: torch.Tensor,
                      layers: str | Sequence[int] = "coarse", *, psi: float = 1.0,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """The paper's Fig. 3: a (R + 1, K + 1, C, H, W) grid for R row codes and K column codes.

    Row 0 holds the column sources (cell (0, 0) is blank, -1), column 0 the row sources, and cell
    (i, j) is synthesis of the column source's styles with ``layers`` copied from row source i:
    ``coarse`` rows bring pose and shape, ``fine`` rows bring only fine detail. The noise is one
    draw from ``generator`` shared by every cell."""
    G = check_style_generator(G)
    idx = style_layers(G, layers)
    for name, z in (("z_rows", z_rows), ("z_cols", z_cols)):
        if z.dim() != 2 or z.shape[1] != G.z_dim or len(z) == 0:
            raise GanforgeError(f"{name} must have shape (n, {G.z_dim}), got {tuple(z.shape)}",
                                "pass a batch of latent codes")
    noise = _fixed_noise(G, generator)
    ws_rows = G.broadcast(map_to_w(G, z_rows, psi))
    ws_cols = G.broadcast(map_to_w(G, z_cols, psi))
    rows_img = _synthesis(G, ws_rows, noise)
    cols_img = _synthesis(G, ws_cols, noise)
    R, K = len(z_rows), len(z_cols)
    grid = torch.full((R + 1, K + 1, *cols_img.shape[1:]), -1.0)
    grid[0, 1:], grid[1:, 0] = cols_img, rows_img
    for i in range(R):
        mixed = mix_ws(ws_cols, ws_rows[i:i + 1].expand_as(ws_cols), idx)
        grid[i + 1, 1:] = _synthesis(G, mixed, noise)
    return grid


class NoiseVariations(NamedTuple):
    """``images`` (n, C, H, W): one w under n noise draws; ``std`` (H, W): the per-pixel standard
    deviation over the draws, averaged over channels (the paper's Fig. 4c)."""

    images: torch.Tensor
    std: torch.Tensor


@torch.no_grad()
def noise_variations(G: nn.Module, z: torch.Tensor, n: int = 8,
                     generator: torch.Generator | None = None, *, psi: float = 1.0) -> NoiseVariations:
    """The paper's Fig. 4: the image of one code ``z`` (z_dim,) or (1, z_dim) under ``n`` >= 2
    noise draws from ``generator``; the styles are the same in every image."""
    G = check_style_generator(G)
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise GanforgeError(f"noise variations need n >= 2 draws, got {n!r}", "pass e.g. n=8")
    z = z.reshape(1, -1)
    if z.shape[1] != G.z_dim:
        raise GanforgeError(f"z must hold {G.z_dim} numbers, got {z.shape[1]}", "pass one latent code")
    ws = G.broadcast(map_to_w(G, z, psi)).expand(n, -1, -1)
    noise = G.make_noise(n, generator)
    if noise is None:
        raise GanforgeError(f"{type(G).__name__} takes no explicit noise maps",
                            "use stylegan or stylegan2")
    images = _synthesis(G, ws, noise)
    return NoiseVariations(images, images.std(dim=0).mean(dim=0))


@torch.no_grad()
def interpolate_w(G: nn.Module, z0: torch.Tensor, z1: torch.Tensor, steps: int = 8, *,
                  psi: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Images (steps, C, H, W) along the straight line w(t) = (1 - t) w0 + t w1 in W, t in
    [0, 1], under one fixed noise draw. W is the space the mapping network learned to make
    linear, so this path is smoother than one in Z (the paper's perceptual path length, sec. 4.1)."""
    G = check_style_generator(G)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise GanforgeError(f"an interpolation needs steps >= 2, got {steps!r}", "pass e.g. steps=8")
    w0, w1 = map_to_w(G, z0.reshape(1, -1), psi)[0], map_to_w(G, z1.reshape(1, -1), psi)[0]
    return synthesise_w(G, lerp(w0, w1, torch.linspace(0, 1, steps)), generator)


@torch.no_grad()
def synthesise_w(G: nn.Module, w: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Images (N, C, H, W) of styles ``w`` (N, w_dim), each fed to every layer, under one noise draw
    from ``generator`` shared by all N (so only w changes from image to image)."""
    G = check_style_generator(G)
    device = next(G.parameters()).device
    return _synthesis(G, G.broadcast(w.to(device)), _fixed_noise(G, generator))
