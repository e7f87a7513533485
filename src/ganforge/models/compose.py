"""Generic options that wrap any model family: conditioning and discriminator stabilisers.

A family builds a plain (G, D) pair; :func:`compose` then applies, without the family knowing:

Conditioning (``model.conditional``, labels y in {0..K-1}):

* ``concat`` - cGAN (Mirza & Osindero 2014): D reads [x, onehot(y)] (one-hot planes for
  images, extra features for flat inputs); G reads [z, onehot(y)].
* ``acgan`` - AC-GAN (Odena et al. 2017): D has a second head, class logits c(h) over its
  features h, trained with cross-entropy on real samples, and on fakes too when
  ``model.ac_fake_loss`` is true (the paper's form; see :mod:`ganforge.train.stabilisers`);
  G reads [z, onehot(y)] and minimises the cross-entropy of c(G(z, y)) with y.
* ``projection`` - the projection discriminator (Miyato & Koyama 2018):
  D(x, y) = psi(h) + <embed(y), h>; G uses class-conditional BatchNorm.

``model.g_conditioning`` (``concat`` | ``cbn``) overrides how G receives y: ``cbn`` swaps every
BatchNorm of G for a class-conditional one (per-class gamma and beta). A generator that takes y
itself (``conditions_itself``, BigGAN's) is left as built, and built without classes when
``model.conditional`` is unset; a D marked ``spectrally_normalised`` gets the layers added here
normalised too.

Discriminator stabilisers (:class:`DiscriminatorExtras`, which the GAN algorithms derive from their
``algorithm.stabilisers`` option):
spectral normalisation of every weight layer (Miyato et al. 2018), minibatch discrimination
(Salimans et al. 2016) and the minibatch standard deviation (Karras et al. 2018) on D's
features before the head, and PacGAN packing (Lin et al. 2018): D judges m samples at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations, parametrize

from ganforge.errors import GanforgeError
from ganforge.models.base import MODELS, Discriminator, DiscriminatorOutput, Generator
from ganforge.models.layers import ConditionalBatchNorm, MinibatchDiscrimination, MinibatchStdDev

CONDITIONINGS = ("concat", "acgan", "projection")
G_CONDITIONINGS = ("concat", "cbn")
GENERIC_KEYS = ("conditional", "g_conditioning", "ac_fake_loss")


@dataclass(frozen=True)
class DiscriminatorExtras:
    """Discriminator options that apply to every family (see the module docstring)."""

    spectral_norm: bool = False
    pack: int = 1
    minibatch_std: bool = False
    minibatch_discrimination: tuple[int, int] | None = None  # (kernels B, kernel dims C)

    @property
    def changes_architecture(self) -> bool:
        return self.pack > 1 or self.minibatch_std or self.minibatch_discrimination is not None


# --------------------------------------------------------------------------- generator side


class _LabelledBatchNorm(nn.Module):
    """Adapts :class:`ConditionalBatchNorm` to a one-argument ``forward`` inside a family's
    ``nn.Sequential``: :class:`ConditionalGenerator` stores the batch's labels in ``labels``."""

    def __init__(self, bn: ConditionalBatchNorm) -> None:
        super().__init__()
        self.bn = bn
        self.labels: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.labels is None:
            raise RuntimeError("class-conditional BatchNorm called without labels")
        return self.bn(x, self.labels)


def _swap_batchnorm(module: nn.Module, num_classes: int) -> int:
    """Replace every BatchNorm1d/2d below ``module`` by a class-conditional copy; returns the count."""
    count = 0
    for name, child in module.named_children():
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
            setattr(module, name, _LabelledBatchNorm(ConditionalBatchNorm.from_batchnorm(child, num_classes)))
            count += 1
        else:
            count += _swap_batchnorm(child, num_classes)
    return count


class ConditionalGenerator(Generator):
    """G(z, y): a family's generator fed [z, onehot(y)] (``concat``) and/or with class-conditional
    BatchNorm (``cbn``). ``z_dim`` stays the noise dimension; labels are required."""

    def __init__(self, inner: Generator, z_dim: int, num_classes: int, *, concat: bool) -> None:
        super().__init__()
        self.inner = inner
        self.z_dim = z_dim
        self.prior, self.prior_df = inner.prior, inner.prior_df
        self.out_shape = inner.out_shape
        self.num_classes = num_classes
        self.concat = concat

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        y = _check_labels(y, self.num_classes, len(z), "generator")
        if self.concat:
            z = torch.cat([z, F.one_hot(y, self.num_classes).to(z.dtype)], dim=1)
        for module in self.inner.modules():
            if isinstance(module, _LabelledBatchNorm):
                module.labels = y
        return self.inner(z)


def _check_labels(y: torch.Tensor | None, num_classes: int, n: int, who: str) -> torch.Tensor:
    if y is None:
        raise GanforgeError(f"the conditional {who} was called without class labels",
                            "pass y (a LongTensor of labels), e.g. ganforge sample --class 3")
    if y.shape != (n,):
        raise GanforgeError(f"the conditional {who} got labels of shape {tuple(y.shape)} for {n} samples",
                            "pass one label per sample")
    return y.long()


# --------------------------------------------------------------------------- discriminator side


class ComposedDiscriminator(Discriminator):
    """A family's trunk (``features``) inside generic input, feature and head stages::

        x -> [pack m samples | append onehot(y)] -> trunk.features -> h
          -> [h, minibatch features] -> logit = w^T h + b (+ <embed(y), h> for projection)
                                        class_logits = W_c h + b_c (AC-GAN)
    """

    def __init__(self, trunk: Discriminator, in_shape: tuple[int, ...], *, flat_input: bool,
                 num_classes: int | None = None, conditional: str | None = None, pack: int = 1,
                 minibatch_std: bool = False,
                 minibatch_discrimination: tuple[int, int] | None = None,
                 ac_fake_loss: bool = False) -> None:
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.trunk = trunk
        trunk.head = nn.Identity()  # the trunk's own head is replaced by this module's
        self.flat_input = flat_input
        self.num_classes = num_classes
        self.conditional = conditional
        self.pack = pack
        width = trunk.feature_dim
        self.minibatch_std = MinibatchStdDev() if minibatch_std else None
        width += int(minibatch_std)
        self.minibatch_discrimination = None
        if minibatch_discrimination is not None:
            kernels, kernel_dim = minibatch_discrimination
            self.minibatch_discrimination = MinibatchDiscrimination(width, kernels, kernel_dim)
            width += self.minibatch_discrimination.out_features
        self.feature_dim = width
        self.head = nn.Linear(width, 1)
        if conditional == "projection":
            self.embed = nn.Embedding(num_classes, width)
            nn.init.normal_(self.embed.weight, 0.0, 1.0 / math.sqrt(width))
        if conditional == "acgan":
            self.classifier = nn.Linear(width, num_classes)
        #: AC-GAN: whether D's class head also learns the requested labels of fakes
        self.ac_fake_loss = ac_fake_loss

    def _inputs(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        n = x.shape[0]
        if self.flat_input:
            x = x.flatten(1)
        if self.pack > 1:
            if n % self.pack:
                raise GanforgeError(
                    f"a packed discriminator (algorithm.stabilisers.pack={self.pack}) got a batch of {n} "
                    "samples, which is not a multiple of the pack size",
                    f"set train.batch_size to a multiple of {self.pack}")
            x = x.reshape(n // self.pack, self.pack * x.shape[1], *x.shape[2:])
        if self.conditional == "concat":
            onehot = F.one_hot(y, self.num_classes).to(x.dtype)
            if x.dim() > 2:
                onehot = onehot[:, :, None, None].expand(n, self.num_classes, *x.shape[2:])
            x = torch.cat([x, onehot], dim=1)
        return x

    def evaluate(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DiscriminatorOutput:
        if self.conditional is not None:
            y = _check_labels(y, self.num_classes, len(x), "discriminator")
        h = self.trunk.features(self._inputs(x, y))
        if self.minibatch_std is not None:
            h = self.minibatch_std(h)
        if self.minibatch_discrimination is not None:
            h = torch.cat([h, self.minibatch_discrimination(h)], dim=1)
        logits = self.head(h).squeeze(1)
        if self.conditional == "projection":
            logits = logits + (self.embed(y) * h).sum(dim=1)
        class_logits = self.classifier(h) if self.conditional == "acgan" else None
        return DiscriminatorOutput(logits, h, class_logits)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.evaluate(x).features


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Reparametrise every Linear, Conv, ConvTranspose and Embedding weight below ``module`` as
    W / sigma(W), sigma the top singular value tracked by one power iteration per training
    forward (Miyato et al. 2018, torch.nn.utils.parametrizations.spectral_norm)."""
    layers = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
              nn.Embedding)
    for layer in [m for m in module.modules() if isinstance(m, layers)]:
        if not parametrize.is_parametrized(layer, "weight"):  # a family may normalise its own
            parametrizations.spectral_norm(layer)
    return module


# --------------------------------------------------------------------------- compose


def _choice(value: Any, key: str, choices: tuple[str, ...]) -> str | None:
    if value is None or value in choices:
        return value
    raise GanforgeError(f"unknown model.{key} {value!r}", f"choose one of: {', '.join(choices)}, or null")


def _family(section: Mapping[str, Any], shape: tuple[int, ...],
            num_classes: int | None) -> tuple[Generator, Discriminator]:
    try:
        return MODELS.build(section, shape, num_classes)
    except GanforgeError as err:
        if str(err).startswith("unknown key"):  # the generic keys are accepted too
            raise GanforgeError(f"{err}, {', '.join(GENERIC_KEYS)}") from None
        raise


def compose(section: Mapping[str, Any], sample_shape: tuple[int, ...], num_classes: int | None,
            extras: DiscriminatorExtras | None = None) -> tuple[Generator, Discriminator]:
    """Build the family named in ``section`` and apply conditioning and ``extras``."""
    family = {k: v for k, v in section.items() if k not in GENERIC_KEYS}
    conditional = _choice(section.get("conditional"), "conditional", CONDITIONINGS)
    g_conditioning = _choice(section.get("g_conditioning"), "g_conditioning", G_CONDITIONINGS)
    extras = extras or DiscriminatorExtras()
    ac_fake_loss = section.get("ac_fake_loss", False)
    if not isinstance(ac_fake_loss, bool) or (ac_fake_loss and conditional != "acgan"):
        raise GanforgeError(f"model.ac_fake_loss={ac_fake_loss!r} needs true/false and "
                            "model.conditional=acgan", "drop it, or set model.conditional=acgan")
    if conditional is None and g_conditioning is not None:
        raise GanforgeError("model.g_conditioning is set but model.conditional is not",
                            "set model.conditional to concat, acgan or projection")
    if conditional is not None:
        if not num_classes:
            raise GanforgeError(f"model.conditional={conditional} needs labelled data, but this "
                                "dataset has no labels", "use a labelled dataset or drop model.conditional")
        if extras.pack > 1:
            raise GanforgeError("PacGAN packing (algorithm.stabilisers.pack) does not combine with a "
                                "conditional discriminator",
                                "drop algorithm.stabilisers.pack or model.conditional")
    G, D = _family(family, sample_shape, num_classes)
    itself = isinstance(G, Generator) and G.conditions_itself  # G takes y natively: no wrapping
    if itself and g_conditioning is not None:
        raise GanforgeError(f"model {family['name']!r} conditions its generator itself, so "
                            "model.g_conditioning does not apply", "drop model.g_conditioning")
    if itself and conditional is None and num_classes:  # build it without classes
        G, D = _family(family, sample_shape, None)
    # a family whose D is spectrally normalised throughout gets the layers added here normalised
    normalise_d = extras.spectral_norm or getattr(D, "spectrally_normalised", False)
    if conditional is not None and not itself:
        g_conditioning = g_conditioning or ("cbn" if conditional == "projection" else "concat")
        inner = G
        if g_conditioning == "concat":
            inner = _family({**family, "z_dim": G.z_dim + num_classes}, sample_shape, num_classes)[0]
        elif _swap_batchnorm(inner, num_classes) == 0:
            raise GanforgeError(f"model.g_conditioning=cbn needs BatchNorm layers in the {family['name']} "
                                "generator, and it has none",
                                "set model.g_batchnorm=true (mlp) or model.g_conditioning=concat")
        G = ConditionalGenerator(inner, G.z_dim, num_classes, concat=g_conditioning == "concat")
    if conditional is not None or extras.changes_architecture:
        flat = D.flat_input
        shape = (math.prod(sample_shape),) if flat else tuple(sample_shape)
        extra_channels = num_classes if conditional == "concat" else 0
        trunk_shape = (shape[0] * extras.pack + extra_channels, *shape[1:])
        if trunk_shape != tuple(sample_shape):
            D = _family(family, trunk_shape, num_classes)[1]
        D = ComposedDiscriminator(
            D, sample_shape, flat_input=flat, num_classes=num_classes, conditional=conditional,
            pack=extras.pack, minibatch_std=extras.minibatch_std,
            minibatch_discrimination=extras.minibatch_discrimination, ac_fake_loss=ac_fake_loss)
    if normalise_d:
        apply_spectral_norm(D)
    return G, D


def build(name_or_section: str | Mapping[str, Any], sample_shape: tuple[int, ...],
          num_classes: int | None = None, extras: DiscriminatorExtras | None = None,
          **kwargs: Any) -> tuple[Generator, Discriminator]:
    """``build("dcgan", (1, 28, 28))`` or ``build({"name": "dcgan", "width": 32}, (1, 28, 28))``.

    The section may also hold the generic conditioning keys (``conditional``,
    ``g_conditioning``); ``extras`` adds the discriminator stabilisers.
    """
    import ganforge.models  # noqa: F401  (registers the built-in families)

    section = {"name": name_or_section} if isinstance(name_or_section, str) else dict(name_or_section)
    section.update(kwargs)
    return compose(section, tuple(sample_shape), num_classes, extras)
