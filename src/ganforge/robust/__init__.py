"""Defending a classifier against adversarial examples with GANs, and attacking the defences
(``ganforge robust``).

Both sides of the published record: Defense-GAN (Samangouei et al. 2018) and APE-GAN (Jin et al.
2019) purify inputs before the classifier and hold up when the attacker ignores them
(*oblivious*); BPDA with EOT (Athalye, Carlini and Wagner 2018) attacks the whole defended
classifier (*adaptive*) and breaks Defense-GAN. PGD adversarial training (Madry et al. 2018) is
the non-GAN baseline, and a detector learns to tell attacked images from clean ones::

    from ganforge import load_run
    from ganforge.robust import (ClassifierConfig, Defended, DefenseGAN, evaluate_defenses,
                                 load_images, parse_attack, train_classifier)

    x, y = load_images("fashion-mnist", "train")
    f = train_classifier(x, y, ClassifierConfig(epochs=3))
    g = DefenseGAN(load_run("runs/fashion-defensegan").pick_generator(ema=True), steps=100, restarts=4)
    x_test, y_test = load_images("fashion-mnist", "test")
    evaluate_defenses([Defended("none", f), Defended("defense-gan", f, g)],
                      [parse_attack("fgsm:0.3")], x_test[:1000], y_test[:1000])

Pixels are in [0, 1] throughout (the attacks' convention); the attacks come from torchattacks.
"""

from __future__ import annotations

import torch

from ganforge.errors import GanforgeError
from ganforge.robust.apegan import APEConfig, APEGenerator, train_ape_gan
from ganforge.robust.attacks import ATTACKS, AttackSpec, attack_images, parse_attack
from ganforge.robust.classifier import ClassifierConfig, UnitClassifier, accuracy, train_classifier
from ganforge.robust.defenses import DefendedClassifier, Defense, DefenseGAN, bpda
from ganforge.robust.detector import AdversarialDetector, DetectorConfig, roc_auc, train_detector
from ganforge.robust.evaluate import THREATS, Cell, Defended, detection_aucs, evaluate_defenses

__all__ = [
    "APEConfig",
    "APEGenerator",
    "ATTACKS",
    "AdversarialDetector",
    "AttackSpec",
    "Cell",
    "ClassifierConfig",
    "Defended",
    "DefendedClassifier",
    "Defense",
    "DefenseGAN",
    "DetectorConfig",
    "THREATS",
    "UnitClassifier",
    "accuracy",
    "attack_images",
    "bpda",
    "detection_aucs",
    "evaluate_defenses",
    "load_images",
    "parse_attack",
    "roc_auc",
    "train_ape_gan",
    "train_classifier",
    "train_detector",
]

DATASETS = ("fashion-mnist", "mnist")


def load_images(dataset: str, split: str, root: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A 28x28 IDX dataset's ``split`` (train or test) as images (N, 1, 28, 28) in [0, 1] and labels
    (from ``root``, default ganforge's cache folder; nothing is downloaded here)."""
    from ganforge.data.mnist import load_idx_dataset

    if dataset not in DATASETS:
        raise GanforgeError(
            f"unknown dataset {dataset!r} for the robustness tools", f"use one of: {', '.join(DATASETS)}"
        )
    data = load_idx_dataset(dataset, root, split)
    return (data.x + 1) / 2, data.y
