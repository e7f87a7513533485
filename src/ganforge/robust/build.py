"""Defences by name, from the files and runs that hold their trained parts.

``DEFENSES`` is the registry the command line reads (``--defense NAME[=PATH]``):

- ``none``                 the classifier alone
- ``defense-gan=RUN``      Defense-GAN on a ``ganforge train`` run's generator (its EMA copy when
                           it has one), trained on the classifier's dataset
- ``ape-gan=FILE``         an APE-GAN generator (``ganforge robust ape-gan``)
- ``pgd-at=FILE``          a classifier trained by PGD adversarial training (``ganforge robust
                           classifier --adversarial-eps EPS``): it replaces the classifier
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganforge.errors import GanforgeError
from ganforge.robust.apegan import ape_from_state
from ganforge.robust.classifier import UnitClassifier, load_classifier, load_part
from ganforge.robust.defenses import DefenseGAN
from ganforge.robust.evaluate import Defended


@dataclass(frozen=True)
class DefenseOptions:
    """Defense-GAN's projection: ``steps`` (L), ``restarts`` (R), Adam ``lr``, ``seed``; ``device``;
    ``bpda``: the backward pass adaptive attacks take through it (identity or tangent)."""

    steps: int = 100
    restarts: int = 4
    lr: float = 0.05
    seed: int = 0
    device: str = "cpu"
    bpda: str = "identity"


def defense_gan_from_run(run_dir: str | Path, dataset: str | None, options: DefenseOptions) -> DefenseGAN:
    """Defense-GAN on the generator of a run trained on ``dataset`` images of shape (1, 28, 28)."""
    from ganforge.train import load_run
    from ganforge.train.algorithms.base import LatentSpace, require

    run = load_run(run_dir, device=options.device)
    require(run, LatentSpace, "project images onto a generator's range (Defense-GAN)")
    trained_on = run.config.data.get("name")
    if dataset is not None and trained_on != dataset:
        raise GanforgeError(
            f"run {run_dir} was trained on {trained_on}, the classifier on {dataset}",
            f"use a generator trained on {dataset}",
        )
    generator = run.pick_generator(ema=run.ema_generator is not None)
    if tuple(generator.out_shape) != (1, 28, 28):
        raise GanforgeError(
            f"run {run_dir} generates images of shape {tuple(generator.out_shape)}, not (1, 28, 28)",
            "train the generator at data.size=28 without padding",
        )
    if run.conditions_on_classes:
        raise GanforgeError(
            f"run {run_dir} is class-conditional",
            "Defense-GAN needs an unconditional generator (e.g. the fashion-defensegan preset)",
        )
    return DefenseGAN(
        generator,
        steps=options.steps,
        restarts=options.restarts,
        lr=options.lr,
        seed=options.seed,
        bpda=options.bpda,
    )


def _none(path: str | None, classifier: UnitClassifier, options: DefenseOptions) -> Defended:
    return Defended("none", classifier)


def _defense_gan(path: str | None, classifier: UnitClassifier, options: DefenseOptions) -> Defended:
    assert path is not None
    return Defended(
        "defense-gan", classifier, defense_gan_from_run(path, classifier.meta.get("dataset"), options)
    )


def _ape_gan(path: str | None, classifier: UnitClassifier, options: DefenseOptions) -> Defended:
    assert path is not None
    weights, meta = load_part(path, "ape-gan")
    _same_dataset(path, meta, classifier)
    return Defended("ape-gan", classifier, ape_from_state(weights, meta).to(options.device))


def _pgd_at(path: str | None, classifier: UnitClassifier, options: DefenseOptions) -> Defended:
    assert path is not None
    robust = load_classifier(path, options.device)
    if robust.meta.get("adv_eps") is None:
        raise GanforgeError(
            f"classifier {path} was not adversarially trained",
            "train it with `ganforge robust classifier --adversarial-eps 0.3`",
        )
    _same_dataset(path, robust.meta, classifier)
    return Defended("pgd-at", robust)


def _same_dataset(path: str, meta: dict[str, Any], classifier: UnitClassifier) -> None:
    ours, theirs = classifier.meta.get("dataset"), meta.get("dataset")
    if ours is not None and theirs is not None and ours != theirs:
        raise GanforgeError(
            f"{path} was trained on {theirs}, the classifier on {ours}", f"use a defence trained on {ours}"
        )


#: name -> (takes a path, builder)
DEFENSES: dict[str, tuple[bool, Callable[[str | None, UnitClassifier, DefenseOptions], Defended]]] = {
    "none": (False, _none),
    "defense-gan": (True, _defense_gan),
    "ape-gan": (True, _ape_gan),
    "pgd-at": (True, _pgd_at),
}


def build_defense(
    text: str, classifier: UnitClassifier, options: DefenseOptions = DefenseOptions()
) -> Defended:
    """``NAME`` or ``NAME=PATH`` (see :data:`DEFENSES`) -> a :class:`Defended`."""
    name, sep, path = str(text).partition("=")
    name = name.strip().lower()
    if name not in DEFENSES:
        raise GanforgeError(
            f"unknown defence {name!r}", "use none, defense-gan=RUN, ape-gan=FILE or pgd-at=FILE"
        )
    takes_path, builder = DEFENSES[name]
    if takes_path and not path:
        raise GanforgeError(f"defence {name} needs its trained part", f"write --defense {name}=PATH")
    if not takes_path and sep:
        raise GanforgeError(f"defence {name} takes no path", f"write --defense {name}")
    return builder(path or None, classifier, options)
