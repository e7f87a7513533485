"""Metrics of unpaired translation (CycleGAN), where most images have no true partner.

For inputs a of domain A, G = G_AB and F = G_BA, images in [-1, 1]::

    cycle L1       = mean |F(G(a)) - a|                          (how well G keeps what F can undo)
    target share   = share of G(a) a classifier assigns to the target class   (domains = classes)
    PSNR, L1, SSIM = :func:`ganforge.metrics.paired.mean_scores` of G(a) against the true partner
                     b* of a, where the data know it (e.g. mnist-thickness's held-out pairs), with
                     the identity baseline (output = a)

``cycle`` (column ``cycle_l1``) is the registry's metric of a run that provides the capability
``cycle`` (:class:`~ganforge.metrics.capabilities.CycleTranslator`), on the held-out inputs; the
classifier share needs a target class per domain, which the caller names.

The classifier share uses a shipped LeNet (:func:`ganforge.weights.load_classifier`),
whose native side (28) may be smaller than the images': they are centre-cropped to it (the
32x32 Fashion-MNIST images are 28x28 padded by 2 pixels).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ganforge._images import centre_crop
from ganforge.metrics.capabilities import CycleTranslator
from ganforge.metrics.paired import mean_scores
from ganforge.metrics.registry import LOWER, MetricSpec, register_metric


@torch.no_grad()
def class_share(images: torch.Tensor, target: int, classifier: nn.Module, side: int = 28,
                batch_size: int = 500) -> float:
    """The share of ``images`` whose arg-max class under ``classifier`` (on the central ``side``
    x ``side`` crop) is ``target``."""
    hits = 0
    for i in range(0, len(images), batch_size):
        logits = classifier(centre_crop(images[i:i + batch_size], side))
        hits += int((logits.argmax(dim=1) == target).sum())
    return hits / max(len(images), 1)


def cycle_l1(algorithm: CycleTranslator, a: torch.Tensor, network: nn.Module | None = None,
             batch_size: int = 256) -> float:
    """mean |F(G(a)) - a| for a CycleGAN run's ``algorithm`` (G = ``network``, default G_AB)."""
    out = algorithm.translate(a, network, batch_size=batch_size)
    rec = algorithm.translate(out, algorithm.G_BA, batch_size=batch_size)
    return float((rec - a).abs().mean())


def evaluate_unpaired(algorithm: Any, a: torch.Tensor, *, partner: torch.Tensor | None = None,
                      target_class: int | None = None, classifier: nn.Module | None = None,
                      network: nn.Module | None = None, side: int = 28) -> dict[str, Any]:
    """The metrics of the module docstring for inputs ``a``: always ``cycle_l1``; with
    ``target_class`` and ``classifier`` the ``target_share`` of G(a) (and ``input_share``, the
    same share of a itself); with ``partner`` (the true B image of each a) ``psnr`` / ``l1`` /
    ``ssim`` and their ``identity`` baseline."""
    out = algorithm.translate(a, network)
    rec = algorithm.translate(out, algorithm.G_BA)
    result: dict[str, Any] = {"images": len(a), "cycle_l1": float((rec - a).abs().mean())}
    if target_class is not None and classifier is not None:
        result["target_share"] = class_share(out, target_class, classifier, side)
        result["input_share"] = class_share(a, target_class, classifier, side)
    if partner is not None:
        result["paired"] = mean_scores(out, partner)
        result["identity"] = mean_scores(a, partner)
    return result


register_metric(MetricSpec(
    "cycle", lambda ctx: {"cycle_l1": LOWER}, source="pairs", runs={"translation"}, needs={"cycle"},
    default=lambda ctx: False, needs_features=False,
    compute=lambda t: {"cycle_l1": cycle_l1(t.algorithm, t.cond, t.network)},
    description="mean |F(G(a)) - a| of the held-out inputs (how well G keeps what F can undo)"))
