"""The variational autoencoder (Kingma & Welling, 2014): ganforge's first non-adversarial family.

A builder returns ``(encoder, decoder)`` instead of (G, D)::

    encoder q(z|x):  x (N, *shape) -> (mu, logvar), each (N, z_dim);  q = N(mu, diag exp(logvar))
    decoder p(x|z):  z (N, z_dim)  -> the parameters of a factorised likelihood over pixels

The :class:`Decoder` is a ganforge :class:`~ganforge.models.base.Generator`: ``decoder(z)`` is the
mean image on the [-1, 1] scale, so sampling, interpolation and the other latent tools work on it
unchanged. Training uses ``decoder.params(z)`` and ``decoder.log_likelihood(x, z)`` with the
functions of :mod:`ganforge.maths.vae`. The two likelihoods read data on different scales:

* ``bernoulli``: ``params`` gives ``{"logits"}``, p(x_j = 1) = sigmoid(l_j), for x in {0, 1}
  (images in [-1, 1] mapped by (x + 1) / 2 and binarised by the caller); ``decoder(z)`` is the
  mean 2 sigmoid(l) - 1 mapped back to [-1, 1].
* ``gaussian``: ``params`` gives ``{"mean", "logvar"}`` on the model's own [-1, 1] pixel scale and
  x is read on that scale too; ``logvar`` is one learned log-variance per pixel (shape
  ``out_shape``), softly bounded below by :data:`MIN_LOGVAR`. ``decoder(z)`` is the mean clamped to
  [-1, 1] (unclamped for points). A density on [-1, 1] is 2^D times one on [0, 1]: log p(x) is
  larger by D log 2 than the same model's value on the [0, 1] scale.

The encoder reads x as given (the caller chooses [-1, 1] images or binarised values).

Families (``hidden`` defaults in brackets, activation ReLU, PyTorch's default initialisation)::

    vae-mlp  [512, 256]  q: x flattened -> [Linear -> ReLU] per hidden -> Linear heads mu, logvar
                         p: z -> [Linear -> ReLU] per reversed(hidden) -> Linear -> prod(shape)
    vae-conv [32, 64]    q: (C, S, S) -> [Conv 4x4 s2 p1 -> ReLU] per hidden (side S -> S/2^L)
                            -> flatten -> Linear heads mu, logvar
                         p: z -> Linear -> ReLU -> (hidden[-1], S/2^L, S/2^L)
                            -> [ConvTranspose 4x4 s2 p1 -> ReLU] per reversed(hidden)[1:]
                            -> ConvTranspose 4x4 s2 p1 -> C channels (side S)

so the default vae-conv needs square images whose side is divisible by 4 (28, 32, ...).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import GanforgeError
from ganforge.maths.vae import bernoulli_log_likelihood, gaussian_log_likelihood
from ganforge.models._checks import IMAGES, positive_int, positive_ints, shaped
from ganforge.models.base import Generator, register_model

LIKELIHOODS = ("bernoulli", "gaussian")
#: The soft floor of the Gaussian decoder's log-variance: sigma >= e^-3 ~ 0.05 on the [-1, 1] scale.
MIN_LOGVAR = -6.0


class Encoder(nn.Module):
    """The approximate posterior q(z|x) = N(mu(x), diag exp(logvar(x))).

    ``trunk`` maps x (N, *in_shape) to features (N, feature_dim); two linear heads read them.
    """

    def __init__(self, trunk: nn.Module, feature_dim: int, z_dim: int, in_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.in_shape = tuple(in_shape)
        self.trunk = trunk
        self.mu_head = nn.Linear(feature_dim, z_dim)
        self.logvar_head = nn.Linear(feature_dim, z_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (N, *in_shape), read as given -> (mu, logvar), each (N, z_dim)."""
        h = self.trunk(x)
        return self.mu_head(h), self.logvar_head(h)


class Decoder(Generator):
    """The likelihood p(x|z), factorised over pixels (see the module docstring for the scales).

    ``body`` maps z (B, z_dim) to the raw output (B, *out_shape): Bernoulli logits, or Gaussian
    means. ``params`` and ``log_likelihood`` also accept codes with a leading sample axis,
    z (k, N, z_dim), for importance-weighted bounds.
    """

    def __init__(self, body: nn.Module, z_dim: int, out_shape: tuple[int, ...], likelihood: str) -> None:
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise GanforgeError(f"unknown decoder likelihood {likelihood!r}",
                                f"choose one of: {', '.join(LIKELIHOODS)}")
        self.z_dim = z_dim
        self.out_shape = tuple(out_shape)
        self.likelihood = likelihood
        self.body = body
        if likelihood == "gaussian":
            # logvar = MIN + softplus(raw - MIN) stays above MIN with a nonzero gradient; raw starts
            # at the inverse of 0, so the decoder starts with unit variance.
            start = MIN_LOGVAR + math.log(math.expm1(-MIN_LOGVAR))
            self.logvar_raw = nn.Parameter(torch.full(self.out_shape, start))

    @property
    def logvar(self) -> Tensor:
        """The per-pixel log-variance (*out_shape) of the Gaussian likelihood, > :data:`MIN_LOGVAR`."""
        return MIN_LOGVAR + F.softplus(self.logvar_raw - MIN_LOGVAR)

    def _raw(self, z: Tensor) -> Tensor:
        """z (..., z_dim) -> the body's output (..., *out_shape)."""
        lead = z.shape[:-1]
        return self.body(z.reshape(-1, self.z_dim)).reshape(*lead, *self.out_shape)

    def params(self, z: Tensor) -> dict[str, Tensor]:
        """z (..., z_dim) -> ``{"logits"}`` (Bernoulli) or ``{"mean", "logvar"}`` (Gaussian, [-1, 1]
        scale), each (..., *out_shape) except ``logvar``, which is (*out_shape) and broadcasts."""
        out = self._raw(z)
        if self.likelihood == "bernoulli":
            return {"logits": out}
        return {"mean": out, "logvar": self.logvar}

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """The mean of p(x|z) on the [-1, 1] scale: 2 sigmoid(l) - 1 = tanh(l / 2) for Bernoulli, the
        Gaussian mean clamped to [-1, 1] for images. ``y`` is accepted for the conditional
        interface and ignored."""
        out = self._raw(z)
        if self.likelihood == "bernoulli":
            return torch.tanh(0.5 * out)
        return out.clamp(-1.0, 1.0) if len(self.out_shape) == 3 else out

    def log_likelihood(self, x: Tensor, z_or_params: Tensor | Mapping[str, Tensor]) -> Tensor:
        """log p(x|z) summed over pixels: (N,) for z (N, z_dim), (k, N) for z (k, N, z_dim).

        ``x`` (N, *out_shape) is in {0, 1} for Bernoulli and on the [-1, 1] scale for Gaussian;
        ``z_or_params`` is codes z or the dict returned by :meth:`params`.
        """
        if tuple(x.shape[1:]) != self.out_shape:
            raise GanforgeError(f"data of shape {tuple(x.shape)} does not fit a decoder of samples "
                                f"{self.out_shape}", "give x as (N, *out_shape)")
        p = z_or_params if isinstance(z_or_params, Mapping) else self.params(z_or_params)
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(p["logits"], x)
        return gaussian_log_likelihood(x, p["mean"], p["logvar"])


# --------------------------------------------------------------------------- argument checks


def _likelihood(value: Any, model: str) -> str:
    if value not in LIKELIHOODS:
        raise GanforgeError(f"model {model!r}: likelihood={value!r} is not one of {', '.join(LIKELIHOODS)}",
                            "set model.likelihood to bernoulli (binarised images) or gaussian")
    return value


def _shape(sample_shape: tuple[int, ...], model: str) -> tuple[int, ...]:
    shape = tuple(sample_shape)
    if len(shape) not in (1, 3) or any(isinstance(d, bool) or not isinstance(d, int) or d < 1
                                       for d in shape):
        raise GanforgeError(f"model {model!r} cannot model samples of shape {shape}",
                            "use points (D,) or images (C, H, W)")
    return shape


# --------------------------------------------------------------------------- vae-mlp


def _relu_stack(in_dim: int, widths: Sequence[int]) -> tuple[list[nn.Module], int]:
    """``[Linear -> ReLU]`` per width; returns (layers, output dim)."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    return layers, in_dim


@register_model("vae-mlp")
def build_vae_mlp(
    sample_shape: tuple[int, ...],
    num_classes: int | None = None,
    *,
    z_dim: int = 32,
    hidden: Sequence[int] = (512, 256),
    likelihood: str = "bernoulli",
) -> tuple[Encoder, Decoder]:
    """Build the fully connected encoder and decoder for points (D,) or images (C, H, W);
    the decoder mirrors the encoder's ``hidden`` widths. ``num_classes`` is accepted for the
    conditional interface and ignored."""
    shape = _shape(sample_shape, "vae-mlp")
    z_dim = positive_int(z_dim, "z_dim", "vae-mlp")
    hidden = positive_ints(hidden, "hidden", "vae-mlp")
    likelihood = _likelihood(likelihood, "vae-mlp")
    size = math.prod(shape)
    trunk, feature_dim = _relu_stack(size, hidden)
    encoder = Encoder(nn.Sequential(nn.Flatten(), *trunk), feature_dim, z_dim, shape)
    body, width = _relu_stack(z_dim, hidden[::-1])
    decoder = Decoder(nn.Sequential(*body, nn.Linear(width, size), nn.Unflatten(1, shape)),
                      z_dim, shape, likelihood)
    return encoder, decoder


# --------------------------------------------------------------------------- vae-conv


def _conv(c_in: int, c_out: int) -> nn.Conv2d:
    """Conv 4x4 s2 p1: side n -> n/2 for even n."""
    return nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)


def _deconv(c_in: int, c_out: int) -> nn.ConvTranspose2d:
    """ConvTranspose 4x4 s2 p1: side n -> 2n."""
    return nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)


@register_model("vae-conv")
def build_vae_conv(
    sample_shape: tuple[int, ...],
    num_classes: int | None = None,
    *,
    z_dim: int = 32,
    hidden: Sequence[int] = (32, 64),
    likelihood: str = "bernoulli",
) -> tuple[Encoder, Decoder]:
    """Build the convolutional encoder and its transposed-convolution mirror for square images
    (C, S, S) with S divisible by 2^len(hidden) (by 4 for the default two stages); ``hidden``
    lists the channels of the encoder's stride-2 convs. ``num_classes`` is accepted for the
    conditional interface and ignored."""
    shape = _shape(sample_shape, "vae-conv")
    z_dim = positive_int(z_dim, "z_dim", "vae-conv")
    hidden = positive_ints(hidden, "hidden", "vae-conv")
    likelihood = _likelihood(likelihood, "vae-conv")
    if not hidden:
        raise GanforgeError("model 'vae-conv': hidden=[] has no conv layers",
                            "give the conv channels, e.g. [32, 64], or use model.name=vae-mlp")
    channels, height, width = shaped(shape, "vae-conv", IMAGES, "use model.name=vae-mlp for points")
    factor = 2 ** len(hidden)
    if height != width or height % factor:
        raise GanforgeError(f"model 'vae-conv' with {len(hidden)} conv layers needs square images with a "
                            f"side divisible by {factor}, got {height}x{width}",
                            f"resize the data, e.g. data.size={max(factor, round(height / factor) * factor)}")
    side = height // factor
    flat = hidden[-1] * side * side

    trunk: list[nn.Module] = []
    for c_in, c_out in zip((channels, *hidden[:-1]), hidden, strict=True):
        trunk += [_conv(c_in, c_out), nn.ReLU()]
    encoder = Encoder(nn.Sequential(*trunk, nn.Flatten()), flat, z_dim, shape)

    body: list[nn.Module] = [nn.Linear(z_dim, flat), nn.ReLU(), nn.Unflatten(1, (hidden[-1], side, side))]
    up = hidden[::-1]
    for c_in, c_out in zip(up[:-1], up[1:], strict=True):
        body += [_deconv(c_in, c_out), nn.ReLU()]
    body.append(_deconv(up[-1], channels))
    decoder = Decoder(nn.Sequential(*body), z_dim, shape, likelihood)
    return encoder, decoder
