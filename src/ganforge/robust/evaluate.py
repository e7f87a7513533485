"""Accuracy of defended classifiers under attacks and threat models, and detection AUCs.

Threat models (one column each):

- ``none``: clean images;
- ``oblivious``: the attack differentiates the undefended classifier only, then the defended
  classifier is scored on its images (the setting of the Defense-GAN paper's tables);
- ``adaptive``: white-box on the whole defended classifier: through a differentiable defence
  (APE-GAN) by plain backpropagation, through Defense-GAN by BPDA with EOT over its random
  restarts (Athalye, Carlini and Wagner 2018). For a defence that is the classifier itself (none,
  PGD adversarial training) both attacked columns are the same white-box attack.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.robust.attacks import AttackSpec, attack_images
from ganforge.robust.classifier import predict
from ganforge.robust.defenses import DefendedClassifier, Defense, DefenseGAN
from ganforge.robust.detector import AdversarialDetector, roc_auc

THREATS = ("oblivious", "adaptive")


@dataclass
class Defended:
    """A defence as it is scored: ``classifier`` (images in [0, 1] -> logits) behind ``defense``
    (None: none)."""

    name: str
    classifier: nn.Module
    defense: Defense | None = None

    def model(self) -> DefendedClassifier:
        return DefendedClassifier(self.classifier, self.defense).eval()


@dataclass
class Cell:
    """One accuracy: ``defense`` x ``attack`` (``clean``: none) x ``threat`` on ``n`` images;
    ``attack_seconds`` per image to craft, ``defense_seconds`` per image to defend and classify."""

    defense: str
    attack: str
    threat: str
    accuracy: float
    n: int
    attack_seconds: float
    defense_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_threats(threats: Sequence[str]) -> tuple[str, ...]:
    for threat in threats:
        if threat not in THREATS:
            raise GanforgeError(f"unknown threat model {threat!r}", f"use {' or '.join(THREATS)}")
    return tuple(dict.fromkeys(threats))


def _reseed(defended: Defended, seed: int) -> None:
    if defended.defense is not None:
        defended.defense.reseed(seed)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


Cache = dict[tuple[int, str], tuple[torch.Tensor, float]]


def _oblivious(
    cache: Cache,
    classifier: nn.Module,
    spec: AttackSpec,
    images: torch.Tensor,
    labels: torch.Tensor,
    seed: int,
) -> tuple[torch.Tensor, float]:
    """``spec``'s images against ``classifier`` and the seconds per image they took, crafted once."""
    key = (id(classifier), spec.key)
    if key not in cache:
        adversarial, spent = _timed(lambda: attack_images(spec, classifier, images, labels, seed=seed))
        cache[key] = (adversarial, spent / len(images))
    return cache[key]


def evaluate_defenses(
    defences: Sequence[Defended],
    attacks: Sequence[AttackSpec],
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    threats: Sequence[str] = THREATS,
    eot: int = 4,
    seed: int = 0,
    adaptive_images: int | None = None,
    log: Callable[[str], None] | None = None,
    cache: Cache | None = None,
) -> list[Cell]:
    """Every defence x (clean + every attack) x threat model: accuracy and cost.

    ``adaptive_images`` scores adaptive attacks through a non-differentiable defence on the
    first that many images only (each PGD step then runs a whole projection); ``cache`` (filled
    here) keeps the oblivious attacks' images per (classifier, attack) for reuse, e.g. by the
    detectors."""
    threats = check_threats(threats)
    cache = {} if cache is None else cache
    cells: list[Cell] = []
    for d in defences:
        model = d.model()
        _reseed(d, seed)
        predicted, seconds = _timed(lambda m=model: predict(m, images, batch_size=500))
        per_image = seconds / len(images)
        cells.append(
            Cell(
                d.name,
                "clean",
                "none",
                float((predicted == labels).float().mean()),
                len(images),
                0.0,
                per_image,
            )
        )
        if log is not None:
            log(f"{d.name}: clean accuracy {cells[-1].accuracy:.3f} ({per_image * 1e3:.2f} ms per image)")
        for spec in attacks:
            for threat in threats:
                n, eot_used = len(images), 1
                if threat == "oblivious" or d.defense is None:
                    adversarial, attack_seconds = _oblivious(cache, d.classifier, spec, images, labels, seed)
                else:
                    slow = not d.defense.differentiable
                    if slow and adaptive_images is not None:
                        n = min(n, adaptive_images)
                    eot_used = eot if slow and spec.name != "cw" else 1
                    _reseed(d, seed + 1)
                    adversarial, spent = _timed(
                        lambda s=spec, k=n, e=eot_used, m=model: attack_images(
                            s, m, images[:k], labels[:k], eot=e, seed=seed, batch_size=100
                        )
                    )
                    attack_seconds = spent / n
                _reseed(d, seed + 2)
                correct = predict(model, adversarial[:n], batch_size=500) == labels[:n]
                cells.append(
                    Cell(
                        d.name, spec.key, threat, float(correct.float().mean()), n, attack_seconds, per_image
                    )
                )
                if log is not None:
                    how = f"{threat}, EOT {eot_used}" if eot_used > 1 else threat
                    log(
                        f"{d.name} under {spec.label} ({how}): "
                        f"accuracy {cells[-1].accuracy:.3f} on {n} images"
                    )
    return cells


def detection_aucs(
    classifier: nn.Module,
    attacks: Sequence[AttackSpec],
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    detector: AdversarialDetector | None = None,
    defense_gan: DefenseGAN | None = None,
    seed: int = 0,
    cache: Cache | None = None,
) -> list[dict[str, Any]]:
    """ROC AUC per attack (oblivious: crafted on ``classifier``) of telling the attacked images
    from the clean ones, by the detector's score and by Defense-GAN's reconstruction error."""
    if detector is None and defense_gan is None:
        raise GanforgeError("nothing to score detection with", "pass a detector or a Defense-GAN")
    cache = {} if cache is None else cache
    scorers: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
    if detector is not None:
        scorers["detector"] = detector.score
    if defense_gan is not None:

        def reconstruction(x: torch.Tensor) -> torch.Tensor:
            defense_gan.reseed(seed)
            return defense_gan.reconstruction_error(x)

        scorers["defense-gan error"] = reconstruction
    clean = {name: score(images) for name, score in scorers.items()}
    rows = []
    for spec in attacks:
        adversarial, _ = _oblivious(cache, classifier, spec, images, labels, seed)
        for name, score in scorers.items():
            rows.append(
                {
                    "detector": name,
                    "attack": spec.key,
                    "auc": roc_auc(clean[name], score(adversarial)),
                    "n": len(images),
                }
            )
    return rows
