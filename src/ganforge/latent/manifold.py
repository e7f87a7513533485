"""The learned manifold of a 2-d latent space (Kingma & Welling 2014, Fig. 4): decode a regular
grid of codes laid over the latent plane.

With a N(0, I) prior the grid is taken in probability, not in z: the coordinates are the
Gaussian quantiles z_j = Phi^-1(u_j) of u_j = (j + 1/2) / n, so every row and column covers an
equal share of the prior's mass (``extent`` instead lays an evenly spaced grid on
[-extent, extent]^2). Works for any generator with ``z_dim == 2``: a VAE's decoder or a GAN's G.
"""

from __future__ import annotations

import torch

from ganforge.errors import GanforgeError
from ganforge.models.base import Generator

#: the most points per side of the figure (10,000 images)
MAX_SIDE = 100


def manifold_codes(n: int, extent: float | None = None) -> torch.Tensor:
    """(n * n, 2) codes, row-major: row i has z_2 decreasing from the top, column j z_1 increasing."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise GanforgeError(f"the manifold grid needs n >= 2 points per side, got {n!r}", "pass e.g. -n 20")
    if n > MAX_SIDE:
        raise GanforgeError(f"-n {n} would decode {n * n:,} images into one figure",
                            f"pass at most -n {MAX_SIDE} (a {MAX_SIDE} x {MAX_SIDE} grid)")
    if extent is not None and not 0 < extent < float("inf"):
        raise GanforgeError(f"--extent must be a finite number > 0, got {extent}", "pass e.g. --extent 3")
    if extent is None:
        u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
        axis = torch.distributions.Normal(0.0, 1.0).icdf(u)
    else:
        axis = torch.linspace(-extent, extent, n, dtype=torch.float64)
    z2, z1 = torch.meshgrid(axis.flip(0), axis, indexing="ij")
    return torch.stack([z1.flatten(), z2.flatten()], dim=1).float()


@torch.no_grad()
def latent_manifold(G: torch.nn.Module, n: int = 20, extent: float | None = None) -> torch.Tensor:
    """G's samples (n * n, *out_shape) on the grid of :func:`manifold_codes` (G in eval mode)."""
    if not isinstance(G, Generator) or G.z_dim != 2:
        raise GanforgeError(f"the manifold figure needs a 2-d latent space, and this run's is "
                            f"{G.z_dim if isinstance(G, Generator) else '?'}-d", "train with model.z_dim=2")
    if G.num_classes:
        raise GanforgeError("the manifold figure is for unconditional generators",
                            "use `latent interpolate --class K` on a conditional run")
    device = next(G.parameters()).device
    was_training = G.training
    G.eval()
    x = torch.cat([G(z.to(device)).cpu() for z in manifold_codes(n, extent).split(1000)])
    G.train(was_training)
    return x
