"""The metric registry: which metrics exist, the columns each writes, where each applies and
which direction is better. Config validation, ``ganforge evaluate --metrics``, the eval callback
and ``best`` checkpoint selection all read it.

A metric is registered once, with a :class:`MetricSpec`::

    register_metric(MetricSpec(
        name="fid", source="samples",
        columns=lambda ctx: {f"fid_{ctx.extractor_id}": LOWER},
        applies=lambda ctx: None,            # or (problem, fix) when it does not apply
        default=lambda ctx: True,
        compute=score_fid))                  # (evaluator, batch of features ...) -> {column: value}

``source`` is ``samples`` (scored on generated samples by :class:`~ganforge.metrics.evaluate.Evaluator`)
or ``model`` (a model quantity on held-out data, e.g. a VAE's ELBO; computed by the algorithm).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ganforge.errors import GanforgeError

HIGHER, LOWER, NEITHER = True, False, None


@dataclass(frozen=True)
class MetricContext:
    """What decides a metric's columns and whether it applies: the dataset's declared
    capabilities, the extractor, whether samples come with labels, and the algorithm."""

    extractor_id: str = "raw"
    has_logits: bool = False
    kind: str = "image"               # the dataset's kind: image | points
    modes: str | None = None          # mixture | stacked | None
    labelled: bool = False            # the real data has labels
    conditional: bool = False         # the samples come with the labels they were generated for
    algorithm: Any = None             # the run's algorithm (model metrics), or None

    @classmethod
    def of(cls, dataset: Any, extractor: Any = None, *, conditional: bool = False,
           algorithm: Any = None) -> MetricContext:
        return cls(extractor_id=getattr(extractor, "id", "raw"),
                   has_logits=bool(getattr(extractor, "has_logits", False)),
                   kind=getattr(dataset, "kind", "image"), modes=getattr(dataset, "modes", None),
                   labelled="y" in getattr(dataset, "fields", ()), conditional=conditional,
                   algorithm=algorithm)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    columns: Callable[[MetricContext], Mapping[str, bool | None]]
    """column -> True (higher is better), False (lower), None (not a figure of merit: a std)"""
    source: str = "samples"
    applies: Callable[[MetricContext], tuple[str, str] | None] = lambda ctx: None
    default: Callable[[MetricContext], bool] = lambda ctx: True
    compute: Callable[..., dict[str, float]] | None = None
    needs_features: bool = True
    description: str = ""


METRICS: dict[str, MetricSpec] = {}


def register_metric(spec: MetricSpec) -> MetricSpec:
    if spec.name in METRICS:
        raise RuntimeError(f"metric {spec.name!r} registered twice")
    if spec.source not in ("samples", "model"):
        raise ValueError(f"metric source must be samples or model, got {spec.source!r}")
    METRICS[spec.name] = spec
    return spec


def _registered() -> dict[str, MetricSpec]:
    import ganforge.metrics.evaluate  # noqa: F401  (registers the sample metrics)
    import ganforge.metrics.likelihood  # noqa: F401  (registers the model metrics)

    return METRICS


def metric_names() -> list[str]:
    return list(_registered())


def get_metric(name: str) -> MetricSpec:
    metrics = _registered()
    if name not in metrics:
        raise GanforgeError(f"unknown metric {name!r}", f"choose from: {', '.join(metrics)}")
    return metrics[name]


def parse_metrics(metrics: str | Sequence[str]) -> list[str]:
    """``"fid,kid"`` or a list -> checked, de-duplicated names."""
    items = [m.strip() for m in metrics.split(",")] if isinstance(metrics, str) else list(metrics)
    items = [m for m in items if m]
    if not items:
        raise GanforgeError("no metrics given", f"choose from: {', '.join(metric_names())}")
    for item in items:
        get_metric(item)
    return list(dict.fromkeys(items))


def select_metrics(requested: str | Sequence[str] | None, ctx: MetricContext,
                   source: str | None = None) -> list[str]:
    """The requested metrics (checked to apply to ``ctx``), or all defaults that apply;
    ``source`` keeps only metrics of that source."""
    if requested is None:
        names = [n for n, spec in _registered().items()
                 if spec.applies(ctx) is None and spec.default(ctx)]
    else:
        names = parse_metrics(requested)
        for name in names:
            reason = get_metric(name).applies(ctx)
            if reason is not None:
                raise GanforgeError(*reason)
    return [n for n in names if source is None or get_metric(n).source == source]


def metric_columns(names: Sequence[str], ctx: MetricContext) -> dict[str, bool | None]:
    """Every column the metrics write, with its direction."""
    out: dict[str, bool | None] = {}
    for name in names:
        out.update(get_metric(name).columns(ctx))
    return out


def resolve_best(best: str, columns: Mapping[str, bool | None]) -> tuple[str, bool]:
    """The column a ``best`` key names (``fid`` -> ``fid_lenet_mnist``) among ``columns`` (column
    -> direction, from :func:`metric_columns`) and whether higher is better."""
    ranked = {c: d for c, d in columns.items() if d is not None}
    matches = [c for c in ranked if c == best] or [c for c in ranked if c.startswith(best + "_")]
    if not matches:
        raise GanforgeError(f"eval.best={best!r} is not among the evaluated metrics ({', '.join(columns)})",
                            "set eval.best to one of them, or add its metric to eval.metrics")
    return matches[0], bool(ranked[matches[0]])
