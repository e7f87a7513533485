"""``ganforge robust ACTION``: train the parts of an adversarial defence and score them.

    ganforge robust classifier -o clf.pt                          # the classifier to defend
    ganforge robust classifier --adversarial-eps 0.3 -o pgdat.pt  # PGD adversarial training
    ganforge robust ape-gan --classifier clf.pt -o ape.pt         # APE-GAN against clf.pt's attacks
    ganforge robust detector --classifier clf.pt -o det.pt        # clean vs attacked images
    ganforge robust evaluate --classifier clf.pt --defense none --defense defense-gan=RUN \\
        --defense ape-gan=ape.pt --defense pgd-at=pgdat.pt --attack fgsm:0.3 --attack pgd:0.1 \\
        --threat oblivious --threat adaptive --detector det.pt --json robust.json

Data: ``--data fashion-mnist`` (default) or ``mnist`` from ``--root`` (default ganforge's cache
folder; nothing is downloaded by these commands). Every user mistake is one ``ganforge: error:``
line, exit status 2, and nothing written. Wiring into the main CLI: ``add_robust_parser(sub)`` and
``"robust": cmd_robust``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ganforge._io import atomic_write_text, check_output_file
from ganforge._subcommand import run_alone
from ganforge.errors import GanforgeError


def _data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="fashion-mnist", help="fashion-mnist (default) or mnist")
    p.add_argument("--root", help="folder of the dataset's IDX files (default: ganforge's cache folder)")
    p.add_argument("-n", type=int, help="use the first N training images (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation and batches (default 0)")
    p.add_argument("--epochs", type=int, help="passes over the training images")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")


def add_robust_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``robust`` command to ``subparsers``; returns its parser."""
    p = subparsers.add_parser(
        "robust",
        help="adversarial attacks and GAN defences: Defense-GAN, APE-GAN, a detector, BPDA",
        description="Train a classifier (plainly or by PGD adversarial training), APE-GAN and a detector "
        "of adversarial examples, and measure accuracy under FGSM, PGD and CW-L2 attacks that "
        "ignore the defence (oblivious) or attack through it (adaptive: BPDA + EOT). See "
        "docs/robustness.md.",
    )
    actions = p.add_subparsers(dest="robust_action", metavar="ACTION", required=True)

    clf = actions.add_parser("classifier", help="train the classifier to defend (or a PGD-trained one)")
    _data_options(clf)
    clf.add_argument(
        "--adversarial-eps",
        type=float,
        metavar="EPS",
        help="PGD adversarial training at this L-inf radius (Madry et al.)",
    )
    clf.add_argument("--adv-steps", type=int, default=7, help="PGD steps per training batch (default 7)")
    clf.add_argument("-o", "--output", required=True, help="the classifier file (.pt)")

    ape = actions.add_parser("ape-gan", help="train APE-GAN against a classifier's FGSM examples")
    _data_options(ape)
    ape.add_argument("--classifier", required=True, help="classifier file (ganforge robust classifier)")
    ape.add_argument("--eps", type=float, action="append", help="FGSM radii to train on (default 0.1, 0.3)")
    ape.add_argument("-o", "--output", required=True, help="the APE-GAN file (.pt)")

    det = actions.add_parser("detector", help="train a detector of adversarial examples")
    _data_options(det)
    det.add_argument("--classifier", required=True, help="classifier file the attacks target")
    det.add_argument("-o", "--output", required=True, help="the detector file (.pt)")

    ev = actions.add_parser("evaluate", help="accuracy per defence x attack x threat model")
    ev.add_argument("--classifier", required=True, help="classifier file (ganforge robust classifier)")
    ev.add_argument(
        "--defense",
        action="append",
        default=None,
        metavar="NAME[=PATH]",
        help="none | defense-gan=RUN | ape-gan=FILE | pgd-at=FILE (repeatable; default none)",
    )
    ev.add_argument(
        "--attack",
        action="append",
        default=None,
        help="fgsm:EPS | pgd:EPS | cw (repeatable; default fgsm:0.3)",
    )
    ev.add_argument(
        "--threat", action="append", default=None, help="oblivious | adaptive (repeatable; default both)"
    )
    ev.add_argument("--detector", help="detector file: adds its ROC AUC per attack")
    ev.add_argument(
        "--data", default="fashion-mnist", help="fashion-mnist (default) or mnist: its test split"
    )
    ev.add_argument("--root", help="folder of the dataset's IDX files")
    ev.add_argument("-n", type=int, default=1000, help="test images (default 1000)")
    ev.add_argument(
        "--adaptive-n",
        type=int,
        help="adaptive attacks through Defense-GAN on the first N images only (default: all)",
    )
    ev.add_argument("--steps", type=int, default=100, help="Defense-GAN: gradient steps L (default 100)")
    ev.add_argument("--restarts", type=int, default=4, help="Defense-GAN: random restarts R (default 4)")
    ev.add_argument("--lr", type=float, default=0.05, help="Defense-GAN: Adam rate on z (default 0.05)")
    ev.add_argument(
        "--bpda",
        default="identity",
        help="adaptive attacks on Defense-GAN: identity (BPDA's g(x) = x; default) or tangent "
        "(the gradient projected onto the tangent space of G's range)",
    )
    ev.add_argument(
        "--eot", type=int, default=2, help="adaptive attacks on Defense-GAN: EOT samples (default 2)"
    )
    ev.add_argument("--pgd-steps", type=int, default=40, help="PGD steps (default 40)")
    ev.add_argument("--pgd-restarts", type=int, default=1, help="PGD random restarts (default 1)")
    ev.add_argument("--cw-steps", type=int, default=100, help="CW-L2 Adam steps (default 100)")
    ev.add_argument("--cw-c", type=float, default=10.0, help="CW-L2 constant c (default 10)")
    ev.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    ev.add_argument("--json", help="write every number to this .json file")
    ev.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    return p


# --------------------------------------------------------------------------------------- helpers


def _output(path: str, suffix: str, what: str) -> Path:
    out = check_output_file(path, what)
    if out.suffix != suffix:
        raise GanforgeError(f"{what} {path} does not end in {suffix}", f"pass e.g. -o model{suffix}")
    return out


def _positive(value: int | None, flag: str) -> None:
    if value is not None and value < 1:
        raise GanforgeError(f"{flag} must be at least 1, got {value}", f"pass e.g. {flag} 100")


def _training_images(args: argparse.Namespace) -> tuple[Any, Any]:
    from ganforge.robust import load_images

    _positive(args.n, "-n")
    _positive(args.epochs, "--epochs")
    x, y = load_images(args.data, "train", args.root)
    return (x, y) if args.n is None else (x[: args.n], y[: args.n])


def _held_out(args: argparse.Namespace, model: Any) -> str:
    """Test-split accuracy when the test files are there."""
    from ganforge.robust import accuracy, load_images

    try:
        x, y = load_images(args.data, "test", args.root)
    except GanforgeError:
        return "no test split to score"
    model.meta["test_accuracy"] = round(accuracy(model, x, y), 4)
    return f"test accuracy {model.meta['test_accuracy']:.3f} on {len(x)} images"


def _classifier_file(path: str, device: Any) -> Any:
    from ganforge.robust.classifier import load_classifier

    return load_classifier(path, device)


# --------------------------------------------------------------------------------------- actions


def _train_classifier(args: argparse.Namespace) -> int:
    from ganforge.robust import ClassifierConfig, train_classifier
    from ganforge.robust.classifier import save_part
    from ganforge.train import resolve_device

    out = _output(args.output, ".pt", "classifier file")
    device = resolve_device(args.device)
    config = ClassifierConfig(
        epochs=args.epochs or 3, seed=args.seed, adv_eps=args.adversarial_eps, adv_steps=args.adv_steps
    )
    config.check()
    if config.adv_eps is not None:
        from ganforge.robust.attacks import require_torchattacks

        require_torchattacks()
    x, y = _training_images(args)
    model = train_classifier(x, y, config, meta={"dataset": args.data}, device=device, log=print)
    print(_held_out(args, model))
    save_part(model, out, "classifier", model.meta)
    print(f"wrote {out}")
    return 0


def _train_ape(args: argparse.Namespace) -> int:
    from ganforge.robust import APEConfig, train_ape_gan
    from ganforge.robust.apegan import default_eps
    from ganforge.robust.attacks import require_torchattacks
    from ganforge.robust.classifier import save_part
    from ganforge.train import resolve_device

    out = _output(args.output, ".pt", "APE-GAN file")
    device = resolve_device(args.device)
    config = APEConfig(epochs=args.epochs or 2, eps=default_eps(args.eps), seed=args.seed)
    config.check()
    require_torchattacks()
    classifier = _classifier_file(args.classifier, device)
    x, y = _training_images(args)
    G = train_ape_gan(classifier, x, y, config, log=print)
    save_part(G, out, "ape-gan", {**G.meta, "dataset": args.data})
    print(f"wrote {out}")
    return 0


def _train_detector(args: argparse.Namespace) -> int:
    from ganforge.robust import DetectorConfig, train_detector
    from ganforge.robust.attacks import require_torchattacks
    from ganforge.robust.classifier import save_part
    from ganforge.train import resolve_device

    out = _output(args.output, ".pt", "detector file")
    device = resolve_device(args.device)
    require_torchattacks()
    classifier = _classifier_file(args.classifier, device)
    x, y = _training_images(args)
    model = train_detector(
        classifier, x, y, DetectorConfig(epochs=args.epochs or 3, seed=args.seed), log=print
    )
    save_part(model, out, "detector", {**model.meta, "dataset": args.data})
    print(f"wrote {out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from ganforge.robust import DefenseGAN, evaluate_defenses, load_images, parse_attack
    from ganforge.robust.attacks import require_torchattacks
    from ganforge.robust.build import DefenseOptions, build_defense
    from ganforge.robust.classifier import load_part
    from ganforge.robust.detector import detector_from_state
    from ganforge.robust.evaluate import Cache, check_threats, detection_aucs
    from ganforge.train import resolve_device

    js = _output(args.json, ".json", "JSON file") if args.json else None
    for flag, value in (("-n", args.n), ("--adaptive-n", args.adaptive_n), ("--eot", args.eot)):
        _positive(value, flag)
    attacks = [
        parse_attack(
            a, pgd_steps=args.pgd_steps, restarts=args.pgd_restarts, cw_steps=args.cw_steps, cw_c=args.cw_c
        )
        for a in (args.attack or ["fgsm:0.3"])
    ]
    threats = check_threats(args.threat or ["oblivious", "adaptive"])
    device = resolve_device(args.device)
    require_torchattacks()
    classifier = _classifier_file(args.classifier, device)
    options = DefenseOptions(args.steps, args.restarts, args.lr, args.seed, str(device), args.bpda)
    defences = [build_defense(d, classifier, options) for d in (args.defense or ["none"])]
    detector = None
    if args.detector:
        weights, meta = load_part(args.detector, "detector")
        detector = detector_from_state(weights, meta).to(device)
    dataset = classifier.meta.get("dataset", args.data)
    if dataset != args.data:
        raise GanforgeError(
            f"classifier {args.classifier} was trained on {dataset}, not {args.data}",
            f"pass --data {dataset}",
        )
    x, y = load_images(args.data, "test", args.root)
    x, y = x[: args.n], y[: args.n]
    cache: Cache = {}
    cells = evaluate_defenses(
        defences,
        attacks,
        x,
        y,
        threats=threats,
        eot=args.eot,
        seed=args.seed,
        adaptive_images=args.adaptive_n,
        cache=cache,
    )
    print(format_table(cells))
    detection: list[dict[str, Any]] = []
    gans = [d.defense for d in defences if isinstance(d.defense, DefenseGAN)]  # its error detects too
    if detector is not None or gans:
        detection = detection_aucs(
            classifier,
            attacks,
            x,
            y,
            detector=detector,
            defense_gan=gans[0] if gans else None,
            seed=args.seed,
            cache=cache,
        )
        for row in detection:
            print(
                f"detection by {row['detector']}: ROC AUC {row['auc']:.3f} against {row['attack']} "
                f"({row['n']} clean + {row['n']} attacked images)"
            )
    if js is not None:
        record = {
            "classifier": str(args.classifier),
            "dataset": args.data,
            "n": len(x),
            "seed": args.seed,
            "attacks": {a.key: a.label for a in attacks},
            "cells": [c.as_dict() for c in cells],
            "detection": detection,
            "defense_gan": {
                "steps": args.steps,
                "restarts": args.restarts,
                "lr": args.lr,
                "eot": args.eot,
                "bpda": args.bpda,
            },
        }
        atomic_write_text(js, json.dumps(record, indent=2) + "\n")
        print(f"wrote {js}")
    return 0


def format_table(cells: Sequence[Any]) -> str:
    """Accuracy per defence (rows) and attack/threat (columns)."""
    columns = list(dict.fromkeys((c.attack, c.threat) for c in cells))
    defences = list(dict.fromkeys(c.defense for c in cells))
    value = {(c.defense, c.attack, c.threat): c.accuracy for c in cells}
    heads = ["clean" if a == "clean" else f"{a} {t[:4]}" for a, t in columns]
    width = max(12, *(len(h) for h in heads))
    lines = ["defence      " + " ".join(h.rjust(width) for h in heads)]
    for d in defences:
        row = [f"{value[(d, a, t)]:.3f}" if (d, a, t) in value else "-" for a, t in columns]
        lines.append(f"{d:<12} " + " ".join(v.rjust(width) for v in row))
    return "\n".join(lines)


ACTIONS = {
    "classifier": _train_classifier,
    "ape-gan": _train_ape,
    "detector": _train_detector,
    "evaluate": _evaluate,
}


def cmd_robust(args: argparse.Namespace) -> int:
    """Run the ``robust`` action parsed by :func:`add_robust_parser`; returns the exit status."""
    return ACTIONS[args.robust_action](args)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ganforge.robust.cli ACTION ...``: the ``robust`` command on its own."""
    return run_alone("robust", add_robust_parser, cmd_robust, "Adversarial attacks and GAN defences.", argv)


if __name__ == "__main__":
    sys.exit(main())
