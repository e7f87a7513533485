"""Evaluate generated samples against a real dataset, with a real-vs-real floor beside every figure.

The real data is split (seeded) into two disjoint halves of n samples each: half A is the reference
every score is measured against, half B is scored against A exactly like the generated samples, so
``baseline`` is the value a perfect generator would get at this sample size with this extractor
(FID and KID are biased in n; PRDC and mode counts saturate below 1 for finite n). Generated samples
are capped to n as well, so both numbers see the same sample counts.

Metric groups and the columns they produce (``<ext>`` = extractor id, e.g. ``lenet_mnist``):

* ``fid``   -> ``fid_<ext>``                  (lower is better)
* ``kid``   -> ``kid_<ext>``, ``kid_std_<ext>`` (lower)
* ``is``    -> ``is_<ext>``, ``is_std_<ext>``   (higher; needs an extractor with logits)
* ``prdc``  -> ``precision_<ext>``, ``recall_<ext>``, ``density_<ext>``, ``coverage_<ext>`` (higher)
* ``modes`` -> toy 2D mixtures: ``modes``, ``high_quality`` (higher), ``reverse_kl`` (lower);
  Stacked MNIST: ``modes_stacked_<ext>`` (higher), ``kl_stacked_<ext>`` (lower)
* ``class`` -> class-conditional samples (``score(x, labels)``): ``class_match_<ext>`` (higher;
  the extractor's classifier, or the nearest mode for toy mixtures) and ``intra_fid_<ext>``
  (lower; the mean over classes of the per-class FID), see :mod:`ganforge.metrics.conditional`
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge._io import check_allocation
from ganforge.data.base import AnyDataset, StreamDataset
from ganforge.errors import GanforgeError
from ganforge.metrics.extractors import Extractor, LeNetExtractor, build_extractor
from ganforge.metrics.fid import FeatureStats, frechet_distance
from ganforge.metrics.inception_score import inception_score_from_logits
from ganforge.metrics.kid import kid_from_features
from ganforge.metrics.prdc import prdc
from ganforge.metrics.registry import (
    HIGHER,
    LOWER,
    METRICS,
    NEITHER,
    MetricContext,
    MetricSpec,
    compute_metrics,
    get_metric,
    metric_columns,
    parse_metrics,
    register_metric,
    select_metrics,
    unmet,
)
from ganforge.metrics.stacked_modes import stacked_mode_metrics
from ganforge.metrics.stats import RunningMoments


def _extractor_columns(*roots: str) -> Any:
    def columns(ctx: MetricContext) -> dict[str, bool | None]:
        return {f"{root}_{ctx.extractor_id}": direction for root, direction in roots}
    return columns


def _needs_logits(what: str) -> Any:
    def applies(ctx: MetricContext) -> tuple[str, str] | None:
        if ctx.has_logits:
            return None
        return (f"{what} needs class logits, and extractor {ctx.extractor_id!r} has none",
                "drop it from the metrics or use a classifier extractor")
    return applies


def _modes_columns(ctx: MetricContext) -> dict[str, bool | None]:
    if ctx.modes == "mixture":
        return {"modes": HIGHER, "high_quality": HIGHER, "reverse_kl": LOWER}
    e = ctx.extractor_id
    return {f"modes_stacked_{e}": HIGHER, f"kl_stacked_{e}": LOWER}


def _modes_apply(ctx: MetricContext) -> tuple[str, str] | None:
    if ctx.modes == "mixture" or (ctx.modes == "stacked" and ctx.has_logits):
        return None
    return ("mode metrics need a dataset with known modes (a toy 2D mixture: ring8, grid25, toy2d; "
            "or stacked-mnist with a digit classifier)", "drop 'modes' from the metrics")


def _class_apply(ctx: MetricContext) -> tuple[str, str] | None:
    if ctx.modes == "stacked" or not (ctx.has_logits or ctx.modes == "mixture"):
        return (f"class-match needs a classifier, and extractor {ctx.extractor_id!r} has none",
                "use a classifier extractor (lenet_mnist, lenet_digits, lenet_fashion) or a toy mixture")
    if not ctx.labelled:
        return ("class metrics need labelled real data, and this dataset has no labels",
                "drop 'class' from the metrics")
    return None


@dataclass(frozen=True)
class Scored:
    """One sample set as the metrics see it: the samples, their features and logits under the
    evaluator's extractor, their feature statistics, and the labels they were generated for."""

    x: torch.Tensor
    feats: torch.Tensor | None
    logits: torch.Tensor | None
    stats: FeatureStats | None
    labels: torch.Tensor | None


def _fid(ev: Evaluator, s: Scored) -> dict[str, float]:
    a = ev._stats_a
    return {f"fid_{ev.extractor.id}": frechet_distance(a.mu, a.sigma, s.stats.mu, s.stats.sigma)}


def _kid(ev: Evaluator, s: Scored) -> dict[str, float]:
    mean, std = kid_from_features(ev._feats_a, s.feats, ev.kid_subsets, ev.kid_subset_size, ev.seed)
    return {f"kid_{ev.extractor.id}": mean, f"kid_std_{ev.extractor.id}": std}


def _is(ev: Evaluator, s: Scored) -> dict[str, float]:
    mean, std = inception_score_from_logits(s.logits, min(ev.is_splits, len(s.logits)))
    return {f"is_{ev.extractor.id}": mean, f"is_std_{ev.extractor.id}": std}


def _prdc(ev: Evaluator, s: Scored) -> dict[str, float]:
    return {f"{k}_{ev.extractor.id}": v for k, v in prdc(ev._feats_a, s.feats, ev.k_pr, ev.k_dc).items()}


def _modes(ev: Evaluator, s: Scored) -> dict[str, float]:
    if ev.kind == "mixture":
        from ganforge.metrics.modes import mode_metrics

        res = mode_metrics(s.x, ev.dataset.centers, ev.dataset.std)
        return {"modes": float(res["modes"]), "high_quality": res["high_quality"],
                "reverse_kl": res["reverse_kl"]}
    assert isinstance(ev.extractor, LeNetExtractor)
    res = stacked_mode_metrics(ev.extractor.classify_channels(s.x))
    e = ev.extractor.id
    return {f"modes_stacked_{e}": float(res["modes"]), f"kl_stacked_{e}": res["kl"]}


def _class(ev: Evaluator, s: Scored) -> dict[str, float]:
    from ganforge.metrics.conditional import class_match_accuracy, intra_class_fid, mean_intra_class_fid

    logits = s.logits
    if ev.kind == "mixture":  # the requested mode is the class: score by the nearest centre
        logits = -torch.cdist(s.x.double(), ev.dataset.centers.double())
    num_classes = int(max(int(ev._labels_a.max()), int(s.labels.max()))) + 1
    per_class = intra_class_fid(ev._feats_a, ev._labels_a, s.feats, s.labels, num_classes)
    e = ev.extractor.id
    return {f"class_match_{e}": class_match_accuracy(logits, s.labels),
            f"intra_fid_{e}": mean_intra_class_fid(per_class)}


for _spec in (
    MetricSpec("fid", _extractor_columns(("fid", LOWER)), compute=_fid, reference_stats_only=True,
               runs={"generative", "translation"}, default=lambda ctx: ctx.run == "generative",
               description="Frechet distance of the feature Gaussians"),
    MetricSpec("kid", _extractor_columns(("kid", LOWER), ("kid_std", NEITHER)), compute=_kid,
               description="kernel (MMD^2, cubic polynomial) distance, unbiased"),
    MetricSpec("is", _extractor_columns(("is", HIGHER), ("is_std", NEITHER)), compute=_is,
               applies=_needs_logits("the IS-style score"),
               description="exp E KL(p(y|x) || p(y)) with the extractor's classifier"),
    MetricSpec("prdc", _extractor_columns(*((m, HIGHER) for m in ("precision", "recall", "density",
                                                                   "coverage"))), compute=_prdc,
               description="precision, recall, density, coverage (k-NN manifolds)"),
    MetricSpec("modes", _modes_columns, applies=_modes_apply, compute=_modes, needs_features=False,
               description="modes covered, high-quality share, reverse KL (toy mixtures, Stacked MNIST)"),
    MetricSpec("class", _extractor_columns(("class_match", HIGHER), ("intra_fid", LOWER)), compute=_class,
               applies=_class_apply, default=lambda ctx: ctx.conditional, needs_labels=True,
               description="class-match accuracy and intra-class FID of class-conditional samples"),
):
    register_metric(_spec)


def _dataset_id(data_section: dict[str, Any] | None, name: str) -> str:
    if not data_section:
        return name
    return json.dumps(data_section, sort_keys=True, default=str)


class Evaluator:
    """Scores sample sets against half A of the real data; see the module docstring.

    ``conditional``: the default metrics include ``class`` (samples come with their labels).
    ``run``: the kind of run the samples come from (``translation``: a translation's outputs,
    scored against its targets).
    ``dataset``: the real data (array or stream). ``num_samples``: n, the size of each real half
    (capped at half an array dataset). ``cache_dir``: where the reference FID statistics of both
    halves are cached as ``.npz`` (keyed by dataset, extractor checksum, n and seed); with only
    ``fid`` (and toy ``modes``) requested a cache hit skips the real features entirely.
    """

    def __init__(self, dataset: AnyDataset, metrics: str | Sequence[str] | None = None, *,
                 extractor: str | Extractor = "auto", num_samples: int = 10_000, seed: int = 0,
                 data_name: str | None = None, data_section: dict[str, Any] | None = None,
                 cache_dir: str | Path | None = None, inception_path: str | None = None,
                 kid_subsets: int = 100, kid_subset_size: int = 1000, is_splits: int = 10,
                 k_pr: int = 3, k_dc: int = 5, conditional: bool = False, run: str = "generative") -> None:
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 2:
            raise GanforgeError(f"the number of samples must be an int >= 2, got {num_samples!r}",
                                "pass e.g. -n 10000")
        self.dataset = dataset
        self.data_name = data_name or getattr(dataset, "name", "") or ""
        self.kind = dataset.modes or "plain"
        self.extractor = extractor if isinstance(extractor, Extractor) else build_extractor(
            extractor, dataset, inception_path)
        ctx = MetricContext.of(dataset, self.extractor, conditional=conditional, run=run)
        scored_here = [n for n, spec in METRICS.items() if spec.source == "samples"]
        for name in parse_metrics(metrics) if metrics is not None else ():
            if (reason := unmet(get_metric(name), ctx, data=False)) is not None:
                raise GanforgeError(*reason)
            if get_metric(name).source != "samples":
                raise GanforgeError(f"metric {name!r} is not scored on generated samples",
                                    f"choose from: {', '.join(scored_here)} (compute {name} with "
                                    f"`ganforge evaluate RUN_DIR --metrics {name}`)")
        self.groups = select_metrics(metrics, ctx, source="samples")
        if not self.groups:
            raise GanforgeError("none of the requested metrics is scored on samples",
                                f"add one of: {', '.join(scored_here)}")
        self.needs_labels = any(get_metric(g).needs_labels for g in self.groups)
        self.directions = metric_columns(self.groups, ctx)
        self.columns = list(self.directions)
        self.seed = seed
        self.kid_subsets, self.kid_subset_size, self.is_splits = kid_subsets, kid_subset_size, is_splits
        self.k_pr, self.k_dc = k_pr, k_dc
        self.dataset_id = _dataset_id(data_section, self.data_name)
        (self._real_a, self._labels_a), (self._real_b, self._labels_b), self.n = \
            self._split_real(num_samples)
        self.requested_samples = num_samples
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._stats_a = self._stats_b = None
        self._feats_a = self._feats_b = None
        self._logits_b = None
        self._baseline: dict[str, float] | None = None
        self._load_cached_stats()

    # ------------------------------------------------------------------ real data
    def _split_real(self, n: int) -> tuple[tuple[torch.Tensor, torch.Tensor | None],
                                           tuple[torch.Tensor, torch.Tensor | None], int]:
        """Two disjoint halves (images, labels or None) of n real samples each."""
        ds = self.dataset
        if isinstance(ds, StreamDataset):
            check_allocation(2 * n, tuple(ds.sample_shape), f"-n {n} real samples per half",
                             "pass a smaller -n")
            ds = ds.materialise(2 * n, seed=self.seed)
            a, b = torch.arange(n), torch.arange(n, 2 * n)
        else:
            half = min(n, len(ds) // 2)
            if half < 2:
                raise GanforgeError(f"the real dataset has {len(ds)} samples, too few to split in two "
                                    "halves", "use a larger dataset")
            perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(self.seed))
            a, b, n = perm[:half], perm[half:2 * half], half
        y = ds.y
        return (ds.x[a], None if y is None else y[a]), (ds.x[b], None if y is None else y[b]), n

    def _needs_features(self) -> bool:
        """Whether the real halves' features are needed (metrics that read only their statistics,
        FID, can be served from the cache)."""
        specs = [get_metric(g) for g in self.groups]
        return any(s.needs_features and not s.reference_stats_only for s in specs) or (
            any(s.reference_stats_only for s in specs) and self._stats_a is None)

    def _cache_paths(self) -> tuple[Path, Path] | None:
        if self.cache_dir is None:
            return None
        key = hashlib.sha256(f"{self.dataset_id}|{self.extractor.id}|{self.extractor.checksum}|"
                             f"{self.n}|{self.seed}".encode()).hexdigest()[:16]
        stem = f"{self.data_name or 'data'}-{self.extractor.id}-{self.n}-{key}"
        return self.cache_dir / f"{stem}-A.npz", self.cache_dir / f"{stem}-B.npz"

    def _load_cached_stats(self) -> None:
        paths = self._cache_paths()
        if paths and all(p.is_file() for p in paths):
            self._stats_a = FeatureStats.load(paths[0], self.extractor.id)
            self._stats_b = FeatureStats.load(paths[1], self.extractor.id)

    def _stats(self, feats: torch.Tensor) -> FeatureStats:
        moments = RunningMoments()
        for i in range(0, len(feats), 4096):
            moments.update(feats[i:i + 4096])
        size = "x".join(map(str, self._real_a.shape[1:]))
        return FeatureStats(moments.mean, moments.cov, moments.n, self.extractor.id, self.dataset_id, size)

    def _ensure_real(self) -> None:
        if self._feats_a is not None or not self._needs_features():
            return
        self._feats_a, self._logits_a = self.extractor(self._real_a)
        self._feats_b, self._logits_b = self.extractor(self._real_b)
        if self._stats_a is None:
            self._stats_a, self._stats_b = self._stats(self._feats_a), self._stats(self._feats_b)
            paths = self._cache_paths()
            if paths:
                self._stats_a.save(paths[0])
                self._stats_b.save(paths[1])

    @property
    def reference(self) -> torch.Tensor:
        """The real samples the generated ones are compared with (half A of the real split)."""
        return self._real_a

    # ------------------------------------------------------------------ scoring
    def _score(self, x: torch.Tensor, feats: torch.Tensor | None, logits: torch.Tensor | None,
               stats: FeatureStats | None, labels: torch.Tensor | None = None) -> dict[str, float]:
        """Every requested metric's :attr:`MetricSpec.compute` on one sample set."""
        return compute_metrics(self.groups, self, Scored(x, feats, logits, stats, labels))

    def score(self, samples: torch.Tensor | np.ndarray,
              labels: torch.Tensor | np.ndarray | None = None) -> dict[str, float]:
        """Every requested metric of ``samples`` (first n used) against real half A; the
        metrics that declare ``needs_labels`` (``class``) need the ``labels`` the samples were
        generated for (:attr:`needs_labels`)."""
        x = torch.as_tensor(samples).detach().cpu().float()
        if self.needs_labels:
            if labels is None:
                raise GanforgeError("class metrics need the labels the samples were generated for",
                                    "evaluate a conditional run, or an .npz with an array y")
            labels = torch.as_tensor(labels).long().cpu()
            if labels.shape != (len(x),):
                raise GanforgeError(f"{len(x)} samples but labels of shape {tuple(labels.shape)}",
                                    "pass one label per sample")
            labels = labels[: self.n]
        if tuple(x.shape[1:]) != tuple(self._real_a.shape[1:]):
            raise GanforgeError(f"samples have shape {tuple(x.shape[1:])} but the real data "
                                f"{tuple(self._real_a.shape[1:])}", "evaluate against the matching dataset")
        if not torch.isfinite(x).all():
            raise GanforgeError("the samples contain NaN or inf", "check the generator (diverged training?)")
        x = x[: self.n]
        if len(x) < 2:
            raise GanforgeError(f"need at least 2 samples, got {len(x)}", "generate more samples")
        self._ensure_real()
        feats = logits = stats = None
        if any(get_metric(g).needs_features for g in self.groups):
            feats, logits = self.extractor(x)
            stats = self._stats(feats)
        return self._score(x, feats, logits, stats, labels)

    def baseline(self) -> dict[str, float]:
        """The same metrics for real half B against real half A (computed once)."""
        if self._baseline is None:
            self._ensure_real()
            if self._feats_b is None:  # everything needed came from the cache
                self._baseline = self._score(self._real_b, None, None, self._stats_b)
            else:
                self._baseline = self._score(self._real_b, self._feats_b, self._logits_b, self._stats_b,
                                             self._labels_b)
        return self._baseline

    def describe(self) -> dict[str, Any]:
        return {"extractor": self.extractor.describe(), "metric_groups": self.groups,
                "real_samples_per_half": self.n, "requested_samples": self.requested_samples,
                "seed": self.seed, "dataset": self.dataset_id, "kind": self.kind,
                "settings": {"kid_subsets": self.kid_subsets, "kid_subset_size": self.kid_subset_size,
                             "is_splits": self.is_splits, "k_precision_recall": self.k_pr,
                             "k_density_coverage": self.k_dc, "fid_method": "eigh (float64)"}}


def evaluate_samples(samples: torch.Tensor | np.ndarray, dataset: AnyDataset,
                     metrics: str | Sequence[str] | None = None, **kwargs: Any) -> dict[str, Any]:
    """One call: ``{"metrics": {...}, "baseline": {...}, **Evaluator.describe()}`` for ``samples``."""
    ev = Evaluator(dataset, metrics, num_samples=kwargs.pop("num_samples", len(samples)), **kwargs)
    result = ev.score(samples)
    return {"metrics": result, "baseline": ev.baseline(),
            "generated_samples": min(len(samples), ev.n), **ev.describe()}


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table: metric, value, real-vs-real baseline."""
    rows = [("metric", "generated", "real vs real")]
    for name, value in result["metrics"].items():
        base = result.get("baseline", {}).get(name, math.nan)
        rows.append((name, f"{value:.6g}", f"{base:.6g}"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
