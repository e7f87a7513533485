"""Paired metrics of image-to-image translation: how close G(c) is to the target x of each pair.

For images in [-1, 1] (data range R = 2), per image, then averaged over the images::

    L1   = mean |x - G(c)|                                       (in [-1, 1] units; lower is better)
    PSNR = 10 log10(R^2 / mean (x - G(c))^2)   dB                (scikit-image's peak_signal_noise_ratio)
    SSIM = mean over 7x7 windows of the structural similarity    (scikit-image's structural_similarity,
                                                                  data_range 2, channels averaged)

(an exact copy has PSNR = inf: it is capped at :data:`PSNR_CAP`). The baselines put the same
numbers in context: ``identity`` (output = input, when they have the same channels) and
``blank`` (output = an all-background image, -1 everywhere). FID (optional) compares the
outputs' distribution with the targets' through the dataset's feature extractor.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch

from ganforge.data import DATASETS, build_dataset
from ganforge.data.base import ArrayDataset
from ganforge.errors import GanforgeError
from ganforge.metrics.evaluate import Evaluator
from ganforge.metrics.registry import (
    HIGHER,
    LOWER,
    MetricContext,
    MetricSpec,
    compute_metrics,
    get_metric,
    register_metric,
    select_metrics,
)

#: the default metrics of a translation run
PAIRED_METRICS = ("l1", "psnr", "ssim")
PSNR_CAP = 100.0
DATA_RANGE = 2.0


def _skimage_metrics():
    try:
        from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    except ImportError:
        raise GanforgeError("PSNR and SSIM need scikit-image", "pip install scikit-image") from None
    return peak_signal_noise_ratio, structural_similarity


def image_psnr(target: np.ndarray, output: np.ndarray, data_range: float = DATA_RANGE) -> float:
    """scikit-image's PSNR of one image, capped at :data:`PSNR_CAP` (an exact copy's is inf)."""
    if np.array_equal(target, output):
        return PSNR_CAP
    return min(PSNR_CAP, float(_skimage_metrics()[0](target, output, data_range=data_range)))


def image_ssim(target: np.ndarray, output: np.ndarray, data_range: float = DATA_RANGE,
               channel_axis: int | None = 0) -> float:
    """scikit-image's SSIM of one image (channels on ``channel_axis``; None for a 2-D image), over
    7x7 windows, or the largest odd window that fits a smaller image."""
    side = min(target.shape[-2:])
    win = min(7, side if side % 2 else side - 1)
    return float(_skimage_metrics()[1](target, output, data_range=data_range,
                                       channel_axis=channel_axis, win_size=win))


def paired_scores(output: torch.Tensor, target: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-image ``l1``, ``psnr`` (dB, capped at :data:`PSNR_CAP`) and ``ssim`` of ``output``
    against ``target``, both (N, C, H, W) in [-1, 1]; see the module docstring."""
    if output.shape != target.shape:
        raise GanforgeError(f"outputs {tuple(output.shape)} and targets {tuple(target.shape)} differ "
                            "in shape",
                            "compare images of one shape")
    out = output.detach().double().clamp(-1, 1).numpy()
    tgt = target.detach().double().numpy()
    l1 = np.abs(out - tgt).reshape(len(out), -1).mean(axis=1)
    psnr = np.array([image_psnr(t, o) for o, t in zip(out, tgt, strict=True)])
    ssim = np.array([image_ssim(t, o) for o, t in zip(out, tgt, strict=True)])
    return {"l1": l1, "psnr": psnr, "ssim": ssim}


def mean_scores(output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """The per-image :func:`paired_scores` averaged over the images."""
    return {k: float(v.mean()) for k, v in paired_scores(output, target).items()}


def baselines(cond: torch.Tensor, target: torch.Tensor) -> dict[str, dict[str, float]]:
    """:func:`mean_scores` of the trivial translators: ``identity`` (when the input has the
    target's channels and size) and ``blank`` (all -1)."""
    out = {"blank": mean_scores(torch.full_like(target, -1.0), target)}
    if cond.shape == target.shape:
        out["identity"] = mean_scores(cond, target)
    return out


def held_out_section(section: dict[str, Any], options: dict[str, Any] | None = None) -> dict[str, Any]:
    """``section`` with ``options`` over it, on the test split when the dataset has splits (unless
    ``options`` names one): the held-out data a run is evaluated on."""
    options = dict(options or {})
    held_out = {**section, **options}
    if "split" not in options and "split" in inspect.signature(DATASETS.get(section["name"])).parameters:
        held_out["split"] = "test"
    return held_out


def held_out_pairs(section: dict[str, Any], options: dict[str, Any] | None = None):
    """The paired dataset a run's ``data`` section names, on its test split when the dataset has
    splits (unless ``options`` says otherwise), without the training run's ``limit``."""
    options = dict(options or {})
    held_out = held_out_section(section, options)
    if "limit" in held_out and "limit" not in options:
        held_out["limit"] = None  # the training run's limit does not cap the held-out pairs
    return build_dataset(held_out), held_out


@dataclass
class Translated:
    """What a ``pairs`` metric reads: held-out inputs ``cond``, the run's outputs G(c) and the
    targets of the pairs, with the ``algorithm`` and ``network`` that translated them (the
    cycle metrics translate back). :attr:`scores` holds the per-pair means, computed once."""

    cond: torch.Tensor
    output: torch.Tensor
    target: torch.Tensor
    algorithm: Any = None
    network: torch.nn.Module | None = None

    @cached_property
    def scores(self) -> dict[str, float]:
        return mean_scores(self.output, self.target)


for _name, _direction, _what in (("l1", LOWER, "mean |target - output| per pair (in [-1, 1] units)"),
                                 ("psnr", HIGHER, "peak signal-to-noise ratio per pair (dB, capped)"),
                                 ("ssim", HIGHER, "structural similarity per pair (7x7 windows)")):
    register_metric(MetricSpec(_name, lambda ctx, c=_name, d=_direction: {c: d}, source="pairs",
                               runs={"translation"}, needs_features=False, description=_what,
                               compute=lambda t, c=_name: {c: t.scores[c]}))


def evaluate_translation(algorithm: Any, dataset: Any, *, n: int | None = None, seed: int = 0,
                         network: torch.nn.Module | None = None, fid: bool = False,
                         extractor: str = "auto", batch_size: int = 256,
                         metrics: Sequence[str] | None = None, provides: Collection[str] = ()
                         ) -> dict[str, Any]:
    """Score an image-to-image algorithm (a loaded run's ``run.algorithm``) on the first ``n``
    pairs of ``dataset`` (all by default): ``{"metrics": {column: value}, "baselines": {...},
    "images": n}``. ``metrics``: registered metrics that apply to a translation (default l1,
    psnr, ssim, and fid with ``fid``); ``provides``: the run's capabilities
    (:func:`~ganforge.metrics.capabilities.provided_by`). G's noise is drawn from ``seed``;
    ``network`` is G by default (pass the EMA copy). Sample metrics (FID) score the outputs
    against the targets (half of the pairs each side, :class:`~ganforge.metrics.evaluate.Evaluator`),
    their real-vs-real floor in ``fid_baseline_real_vs_real``."""
    tensors = dataset.tensors()
    if "cond" not in tensors:
        raise GanforgeError(f"dataset {getattr(dataset, 'name', '')!r} has no inputs (cond)",
                            "evaluate on a paired dataset")
    n = len(tensors["x"]) if n is None else min(n, len(tensors["x"]))
    cond, target = tensors["cond"][:n], tensors["x"][:n]
    real = ArrayDataset(target, name=getattr(dataset, "name", ""),
                        extractor=getattr(dataset, "extractor", None))
    ctx = MetricContext.of(real, run="translation", provides=provides)
    if metrics is None:
        metrics = [*PAIRED_METRICS, *(["fid"] if fid else [])]
    names = select_metrics(metrics, ctx)
    output = algorithm.translate(cond, network, torch.Generator().manual_seed(seed), batch_size)
    on_pairs = [m for m in names if get_metric(m).source == "pairs"]
    result: dict[str, Any] = {"metrics": compute_metrics(on_pairs, Translated(cond, output, target, algorithm,
                                                                              network)),
                              "baselines": baselines(cond, target), "images": n}
    on_samples = [m for m in names if get_metric(m).source == "samples"]
    if on_samples:
        ev = Evaluator(real, on_samples, extractor=extractor, num_samples=max(2, n // 2), seed=seed,
                       run="translation")
        result["metrics"].update(ev.score(output))
        result["fid_baseline_real_vs_real"] = ev.baseline()
    return result


def format_paired_table(result: dict[str, Any]) -> str:
    """metric | model | each baseline, as plain text."""
    names = list(result.get("baselines", {}))
    rows = [("metric", "model", *names)]
    for key, value in result["metrics"].items():
        base = [result["baselines"][b].get(key, math.nan) for b in names]
        rows.append((key, f"{value:.4g}", *(f"{v:.4g}" for v in base)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
