"""Figures of the adversarial-robustness tools (:mod:`ganforge.robust`): what the defences do to
attacked images, and accuracy against the attack's radius per defence and threat model."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ganforge.errors import GanforgeError
from ganforge.viz._atomic import save_figure

COLOURS = {
    "none": "#555555",
    "defense-gan": "#1f77b4",
    "defense-gan/tangent": "#17becf",
    "ape-gan": "#2ca02c",
    "pgd-at": "#d62728",
}


def plot_purification_strip(rows: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """PNG with one row per named batch of images (N, 1, H, W) in [0, 1], e.g. clean | attacked |
    Defense-GAN's reconstruction | APE-GAN's output, the same N images in every row."""
    if not rows:
        raise GanforgeError("the strip needs at least one row of images", "pass e.g. {'clean': x}")
    arrays = {name: np.asarray(images, dtype=float) for name, images in rows.items()}
    counts = {a.shape[0] for a in arrays.values()}
    if len(counts) != 1 or any(a.ndim != 4 or a.shape[1] != 1 for a in arrays.values()):
        raise GanforgeError(
            "every row of the strip must hold the same number of (1, H, W) images",
            "pass batches of equal length",
        )
    n = counts.pop()
    fig = Figure(figsize=(1.0 * n + 1.4, 1.05 * len(arrays)))
    for r, (name, images) in enumerate(arrays.items()):
        for c in range(n):
            ax = fig.add_subplot(len(arrays), n, r * n + c + 1)
            ax.imshow(images[c, 0], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.subplots_adjust(left=0.14, right=0.99, top=0.98, bottom=0.02, wspace=0.05, hspace=0.08)
    return save_figure(fig, path)


def plot_accuracy_against_eps(
    rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], attacks: Sequence[str] = ("fgsm", "pgd")
) -> Path:
    """PNG: accuracy (mean over seeds, with standard-error bars) against the L-inf radius (0:
    clean), one panel per attack family, one colour per defence, solid oblivious and dashed
    adaptive. ``rows``: dicts with defense, attack (``clean`` or ``fgsm-0.3``, ``pgd40-0.1``...),
    threat, mean and se."""
    if not rows:
        raise GanforgeError("no accuracies to plot", "pass the rows of evaluate_defenses, aggregated")
    fig = Figure(figsize=(5.2 * len(attacks), 4.0))
    for i, family in enumerate(attacks):
        ax = fig.add_subplot(1, len(attacks), i + 1)
        for defense in dict.fromkeys(r["defense"] for r in rows):
            clean = next((r for r in rows if r["defense"] == defense and r["attack"] == "clean"), None)
            for threat, style in (("oblivious", "-"), ("adaptive", "--")):
                points = sorted(
                    (float(r["attack"].rsplit("-", 1)[1]), r["mean"], r.get("se") or 0.0)
                    for r in rows
                    if r["defense"] == defense and r["threat"] == threat and r["attack"].startswith(family)
                )
                if clean is not None:
                    points = [(0.0, clean["mean"], clean.get("se") or 0.0), *points]
                if len(points) < 2:
                    continue
                eps, mean, se = zip(*points, strict=True)
                ax.errorbar(
                    eps,
                    mean,
                    yerr=se,
                    linestyle=style,
                    marker="o",
                    capsize=3,
                    color=COLOURS.get(defense),
                    label=f"{defense} ({threat})",
                )
        ax.set_xlabel("L-inf radius eps (pixels in [0, 1])")
        ax.set_ylabel("accuracy")
        ax.set_ylim(-0.02, 1.0)
        ax.set_title(family.upper())
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return save_figure(fig, path)
