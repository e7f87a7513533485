"""Model contracts and the model registry.

A model family is one file that registers a builder::

    @register_model("dcgan")
    def build_dcgan(sample_shape: tuple[int, ...], num_classes: int | None = None, *, z_dim=100, ...)
        -> tuple[Generator, Discriminator]

``sample_shape`` (C, H, W) or (2,) and ``num_classes`` come from the dataset; the other keyword
arguments come from the config's ``model`` section, so an unknown key is reported by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ganforge.registry import Registry

MODELS: Registry = Registry("model")
register_model = MODELS.register


class Generator(nn.Module):
    """Maps latent codes z ~ N(0, I) of shape (N, z_dim) to samples of shape (N, *out_shape).

    Subclasses implement ``forward(z, y=None)``; ``y`` holds class labels for conditional models."""

    z_dim: int
    out_shape: tuple[int, ...]

    def sample_z(self, n: int, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None) -> torch.Tensor:
        """Standard normal latent codes, drawn on CPU from ``generator`` then moved (device-agnostic
        and reproducible across devices)."""
        z = torch.randn(n, self.z_dim, generator=generator)
        return z.to(device if device is not None else next(self.parameters()).device)


class Discriminator(nn.Module):
    """Maps samples (N, *in_shape) to real-vs-fake *logits* of shape (N,). Sigmoid lives in the loss.

    Subclasses implement ``forward(x, y=None)``."""

    in_shape: tuple[int, ...]


def build(name_or_section: str | Mapping[str, Any], sample_shape: tuple[int, ...],
          num_classes: int | None = None, **kwargs: Any) -> tuple[Generator, Discriminator]:
    """``build("dcgan", (1, 28, 28))`` or ``build({"name": "dcgan", "width": 32}, (1, 28, 28))``."""
    import ganforge.models  # noqa: F401  (registers the built-in families)

    section = {"name": name_or_section} if isinstance(name_or_section, str) else dict(name_or_section)
    section.update(kwargs)
    return MODELS.build(section, tuple(sample_shape), num_classes)
