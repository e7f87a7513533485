"""Model contracts and the model registry.

A model family is one file that registers a builder (:func:`ganforge.models.build` then composes
the generic options of :mod:`ganforge.models.compose` around what it returns)::

    @register_model("dcgan")
    def build_dcgan(sample_shape: tuple[int, ...], num_classes: int | None = None, *, z_dim=100, ...)
        -> tuple[Generator, Discriminator]

``sample_shape`` (C, H, W) or (2,) and ``num_classes`` come from the dataset; the other keyword
arguments come from the config's ``model`` section, so an unknown key is reported by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.maths.priors import check_prior, prior_log_prob, sample_prior
from ganforge.maths.truncation import truncate_resample
from ganforge.registry import Registry

MODELS: Registry = Registry("model")
register_model = MODELS.register


@contextmanager
def evaluating(net: nn.Module) -> Iterator[nn.Module]:
    """``net`` in eval mode for the block, its train/eval mode restored after (even on error)."""
    was_training = net.training
    net.eval()
    try:
        yield net
    finally:
        net.train(was_training)


class Generator(nn.Module):
    """Maps latent codes z of shape (N, z_dim) to samples of shape (N, *out_shape); z ~ N(0, I),
    U(-1, 1)^z_dim for a generator whose ``prior`` is ``"uniform"``, independent Student-t
    coordinates with ``prior_df`` degrees of freedom for ``"student-t"`` (a heavy-tailed latent,
    :mod:`ganforge.maths.priors`).

    Subclasses implement ``forward(z, y=None)``; ``y`` holds class labels for conditional models."""

    z_dim: int
    out_shape: tuple[int, ...]
    prior: str = "normal"
    #: degrees of freedom (the tail index) of the ``student-t`` prior
    prior_df: float = 3.0
    #: the family's truncation trick: None (none), ``"z"`` (BigGAN: codes psi * N(0, I) truncated
    #: to [-2, 2] by resampling, :meth:`truncated_z`) or ``"w"`` (style-based: ``forward(z, y,
    #: psi=psi)`` moves w towards the tracked mean, w' = w_avg + psi (w - w_avg))
    truncation: str | None = None
    #: K for a generator that takes class labels y (0..K-1), None for one that takes none
    num_classes: int | None = None
    #: True for a family whose generator takes labels natively (BigGAN's shared embedding): the
    #: composer then builds it with or without classes instead of wrapping it
    conditions_itself: bool = False

    def sample_z(self, n: int, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None) -> torch.Tensor:
        """Latent codes from the prior, drawn on CPU from ``generator`` then moved (device-agnostic
        and reproducible across devices)."""
        z = sample_prior(self.prior, n, self.z_dim, generator, self.prior_df)
        return z.to(device if device is not None else next(self.parameters()).device)

    def prior_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) (float64, one per row) under the generator's prior: what importance sampling
        in latent space weighs codes drawn from another distribution by."""
        return prior_log_prob(self.prior, z, self.prior_df)

    def set_prior(self, prior: object, df: object = 3.0) -> Generator:
        """Validate and set the latent prior (``normal``, ``uniform`` or ``student-t`` with
        ``df`` degrees of freedom); returns the generator."""
        self.prior, self.prior_df = check_prior(prior, df)
        return self

    def truncated_z(self, n: int, generator: torch.Generator | None = None,
                    device: torch.device | str | None = None, psi: float = 1.0) -> torch.Tensor:
        """BigGAN's truncated codes (Brock et al. 2019, sec. 3.1, as in their released sampler):
        psi * z with every entry of z ~ N(0, 1) outside [-2, 2] redrawn until it falls inside."""
        z = truncate_resample(torch.randn(n, self.z_dim, generator=generator), TRUNCATION_BOUND,
                              generator)
        return (psi * z).to(device if device is not None else next(self.parameters()).device)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None, batch_size: int = 500,
               psi: float = 1.0) -> torch.Tensor:
        """``n`` samples as CPU tensors, codes drawn ``batch_size`` at a time from ``generator``;
        ``labels`` (n,) for a conditional generator; ``psi`` < 1 applies the family's truncation
        trick (:attr:`truncation`). The train/eval mode is left to the caller."""
        psi = check_truncation(self, psi)
        device = next(self.parameters()).device
        chunks = []
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            y = None if labels is None else labels[start:start + m].to(device)
            if psi == 1.0:
                chunks.append(self(self.sample_z(m, generator, device), y).cpu())
            elif self.truncation == "z":
                chunks.append(self(self.truncated_z(m, generator, device, psi), y).cpu())
            else:
                chunks.append(self(self.sample_z(m, generator, device), y, psi=psi).cpu())
        return torch.cat(chunks) if chunks else torch.empty(0, *self.out_shape)


#: |z_i| bound of BigGAN's truncated codes before the psi scale
TRUNCATION_BOUND = 2.0


def truncation_psi(psi: object) -> float:
    """``psi`` as a float in (0, 1]; else a one-line error."""
    if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not 0.0 < float(psi) <= 1.0:
        raise GanforgeError(f"the truncation psi must lie in (0, 1], got {psi!r}",
                            "pass e.g. --truncation 0.7 (1 means no truncation)")
    return float(psi)


def check_truncation(G: nn.Module, psi: object) -> float:
    """``psi`` as a float in (0, 1], for a generator that declares a truncation trick
    (:attr:`Generator.truncation`) when psi < 1; else one-line error."""
    psi = truncation_psi(psi)
    if psi < 1.0 and not (isinstance(G, Generator) and G.truncation is not None):
        raise GanforgeError(f"{type(G).__name__} has no truncation trick",
                            "drop --truncation (the style-based and BigGAN families have one)")
    return float(psi)


class DiscriminatorOutput(NamedTuple):
    """One discriminator pass: real-vs-fake ``logits`` (N,), the penultimate ``features``
    (N, F) that feed the final linear head (used by feature matching), and ``class_logits``
    (N, K) for an auxiliary-classifier (AC-GAN) discriminator, else None."""

    logits: torch.Tensor
    features: torch.Tensor
    class_logits: torch.Tensor | None = None


class Discriminator(nn.Module):
    """Maps samples (N, *in_shape) to real-vs-fake *logits* of shape (N,). Sigmoid lives in the loss.

    A family implements ``features(x) -> (N, feature_dim)`` (everything up to the last layer)
    and owns ``head``, the final ``nn.Linear(feature_dim, 1)``. Splitting trunk and head lets the
    generic options of :mod:`ganforge.models.compose` (minibatch layers, projection and AC-GAN
    heads, PacGAN, spectral norm) wrap any family.
    """

    in_shape: tuple[int, ...]
    feature_dim: int
    head: nn.Module
    #: True when ``features`` reads ``x.flatten(1)``: generic options then append to the flat vector
    flat_input: bool = False

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise TypeError(f"{type(self).__name__} must define features")

    def evaluate(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DiscriminatorOutput:
        """``y`` holds class labels for conditional discriminators; plain ones ignore it."""
        h = self.features(x)
        return DiscriminatorOutput(self.head(h).squeeze(1), h)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.evaluate(x, y).logits
