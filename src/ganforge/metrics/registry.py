"""The metric registry: every metric ganforge computes, the columns each writes, which runs it
applies to, what it needs and which direction is better. ``ganforge evaluate --metrics``, config
validation (``eval.metrics``, checked when training starts), the eval callback and ``best``
checkpoint selection all read it; nothing else matches metric names.

A metric is registered once, with a :class:`MetricSpec`::

    register_metric(MetricSpec(
        name="fid", source="samples",
        columns=lambda ctx: {f"fid_{ctx.extractor_id}": LOWER},
        runs={"generative", "translation"},  # the kinds of run it applies to
        needs=(),                            # capabilities the run must have (capabilities.py)
        applies=lambda ctx: None,            # or (problem, fix) when the data do not suit it
        default=lambda ctx: True,
        compute=score_fid))

``source`` says what the metric is computed from, and so the signature of its ``compute``:

* ``samples``: generated samples (or a translation's outputs) against reference images, by
  :class:`~ganforge.metrics.evaluate.Evaluator`: ``compute(evaluator, scored) -> {column: value}``;
* ``pairs``: a translation's outputs against the targets of held-out pairs:
  ``compute(translated) -> {column: value}`` (:class:`~ganforge.metrics.paired.Translated`);
* ``model``: a quantity of the model itself (a likelihood bound, the path length of its latent
  space): ``compute(inputs) -> {column: value}`` (:class:`ModelInputs`);
* ``rows``: a table run's synthetic rows against the real train and held-out rows:
  ``compute(inputs) -> {column: value}`` (:class:`RowInputs`);
* ``clips``: a video run's clips or predictions against held-out clips (:class:`ClipInputs`);
* ``rolls``: a music run's piano-roll phrases against held-out phrases (:class:`RollInputs`);
* ``smiles``: a molecule run's SMILES against held-out molecules (:class:`SmilesInputs`).

The registering modules are imported by ``ganforge/metrics/__init__``, so every metric is
registered whenever this module is.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ganforge.errors import GanforgeError
from ganforge.metrics.capabilities import REQUIREMENTS, RUN_KINDS

HIGHER, LOWER, NEITHER = True, False, None
SOURCES = ("samples", "pairs", "model", "rows", "clips", "rolls", "smiles")


@dataclass(frozen=True)
class MetricContext:
    """What decides a metric's columns and whether it applies: the dataset's declared
    capabilities, the extractor, whether samples come with labels, the kind of run and the
    capabilities it provides (names of :data:`~ganforge.metrics.capabilities.REQUIREMENTS`)."""

    extractor_id: str = "raw"
    has_logits: bool = False
    kind: str = "image"               # the dataset's kind: image | points
    modes: str | None = None          # mixture | stacked | None
    labelled: bool = False            # the real data has labels
    conditional: bool = False         # the samples come with the labels they were generated for
    run: str = "generative"           # generative | translation (capabilities.RUN_KINDS)
    provides: frozenset[str] = frozenset()
    run_name: str | None = None       # the run's algorithm, for messages only
    channels: int | None = None       # channels of the (reference) images

    @classmethod
    def of(cls, dataset: Any, extractor: Any = None, *, conditional: bool = False,
           run: str = "generative", provides: Collection[str] = (),
           run_name: str | None = None) -> MetricContext:
        shape = tuple(getattr(dataset, "sample_shape", ()) or ())
        return cls(extractor_id=getattr(extractor, "id", "raw"),
                   has_logits=bool(getattr(extractor, "has_logits", False)),
                   kind=getattr(dataset, "kind", "image"), modes=getattr(dataset, "modes", None),
                   labelled="y" in getattr(dataset, "fields", ()), conditional=conditional,
                   run=run, provides=frozenset(provides), run_name=run_name,
                   channels=shape[0] if len(shape) == 3 else None)


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
    """``samples`` metrics: the samples' features under the extractor are read"""
    reference_stats_only: bool = False
    """``samples`` metrics: of the reference half, only the feature statistics (mean, covariance)
    are read, so cached statistics serve it (FID)"""
    needs_labels: bool = False
    """``samples`` metrics: the labels the samples were generated for are read (``class``)"""
    description: str = ""
    runs: frozenset[str] = frozenset({"generative"})
    """the kinds of run it applies to (:data:`~ganforge.metrics.capabilities.RUN_KINDS`)"""
    needs: frozenset[str] = frozenset()
    """the capabilities the run must provide (:data:`~ganforge.metrics.capabilities.REQUIREMENTS`)"""

    def __post_init__(self) -> None:
        object.__setattr__(self, "runs", frozenset(self.runs))
        object.__setattr__(self, "needs", frozenset(self.needs))


@dataclass
class ModelInputs:
    """What a ``model`` metric reads: the run's algorithm and generator (the EMA copy when asked
    for), ``held_out()`` -> (real images, their data section) of the test split (built when
    called), the sample count, seed and importance samples, and ``names``, every model metric
    asked for; metrics computed in one pass (elbo and iwae) keep the pass in ``shared``;
    ``info`` collects what the result should describe, ``say`` takes progress lines."""

    algorithm: Any = None
    generator: Any = None
    held_out: Callable[[], tuple[Any, dict[str, Any]]] | None = None
    names: Sequence[str] = ()
    n: int = 10_000
    seed: int = 0
    importance_samples: int = 1000
    shared: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    say: Callable[[str], None] = lambda line: None


@dataclass
class ClipInputs:
    """What a ``clips`` metric reads: ``n`` held-out clips ``real(start, stop)`` (N, T, C, H, W)
    and the run's clips ``generated(start, stop)`` beside them (a clip run's samples; a prediction
    run's observed frames followed by its predictions of the rest), ``observed`` frames read
    before predicting (None for a clip run), ``predict(observed_frames)`` (a prediction run),
    ``subset`` clips for the feature metrics (the frames' ``extractor``), the ``seed``; ``shared``
    keeps what several metrics read (the per-horizon report), ``info`` what the result should
    describe."""

    real: Callable[[int, int], Any]
    generated: Callable[[int, int], Any]
    n: int
    observed: int | None = None
    predict: Callable[[Any], Any] | None = None
    subset: int = 1000
    seed: int = 0
    extractor: str = "lenet_mnist"
    shared: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class RollInputs:
    """What a ``rolls`` metric reads: the run's phrases ``rolls`` (N, tracks, steps, pitches) on
    the time and pitch ``grid``, and the ``reference`` histogram of pitch classes (the training
    phrases'); ``shared`` keeps the report every metric reads its columns from."""

    rolls: Any
    grid: Any
    reference: Any
    shared: dict[str, Any] = field(default_factory=dict)


def columns_of_report(report: Callable[[Any], Mapping[str, float]],
                      columns: Collection[str]) -> Callable[[Any], dict[str, float]]:
    """A ``compute`` that reads ``columns`` from one shared report of the inputs: ``report(inputs)``
    runs once per inputs (kept in ``inputs.shared["report"]``), however many metrics read it."""

    def compute(inputs: Any) -> dict[str, float]:
        if "report" not in inputs.shared:
            inputs.shared["report"] = report(inputs)
        return {column: inputs.shared["report"][column] for column in columns}

    return compute


def register_report_metrics(source: str, runs: Collection[str], report: Callable[[Any], Mapping[str, float]],
                            table: Sequence[tuple[str, Mapping[str, bool | None], str]]) -> None:
    """Register one metric per row (name, {column: direction}, description) of ``table``, every one
    reading its columns from one shared ``report`` of the inputs (:func:`columns_of_report`)."""
    for name, columns, text in table:
        register_metric(MetricSpec(name, columns=lambda ctx, c=dict(columns): dict(c), source=source,
                                   runs=set(runs), compute=columns_of_report(report, list(columns)),
                                   needs_features=False, description=text))


@dataclass
class SmilesInputs:
    """What a ``smiles`` metric reads: the ``generated`` canonical SMILES (None: invalid) and the
    ``reference`` (:class:`~ganforge.metrics.molecules.MosesReference`: the held-out molecules'
    statistics and the training set); ``shared`` keeps the MOSES report every metric reads its
    columns from."""

    generated: Any
    reference: Any
    shared: dict[str, Any] = field(default_factory=dict)


@dataclass
class RowInputs:
    """What a ``rows`` metric reads: the real ``train`` rows the run learned from, held-out real
    ``test`` rows and the ``synthetic`` rows (DataFrames), the column ``types``, the ``target``
    column (or None) and the ``seed``; ``baseline``: ``synthetic`` holds held-out real rows (the
    real-vs-real column), which a metric that compares against ``test`` skips."""

    train: Any
    test: Any
    synthetic: Any
    types: Mapping[str, str]
    target: str | None = None
    seed: int = 0
    baseline: bool = False


METRICS: dict[str, MetricSpec] = {}


def register_metric(spec: MetricSpec) -> MetricSpec:
    if spec.name in METRICS:
        raise RuntimeError(f"metric {spec.name!r} registered twice")
    if spec.source not in SOURCES:
        raise ValueError(f"metric source must be one of {', '.join(SOURCES)}, got {spec.source!r}")
    if not spec.runs or not spec.runs <= set(RUN_KINDS):
        raise ValueError(f"metric runs must be among {', '.join(RUN_KINDS)}, got {sorted(spec.runs)}")
    if not spec.needs <= set(REQUIREMENTS):
        unknown = sorted(spec.needs - set(REQUIREMENTS))
        raise ValueError(f"metric {spec.name!r} needs unknown capabilities {unknown}")
    METRICS[spec.name] = spec
    return spec


def metric_names() -> list[str]:
    return list(METRICS)


def get_metric(name: str) -> MetricSpec:
    if name not in METRICS:
        raise GanforgeError(f"unknown metric {name!r}", f"choose from: {', '.join(METRICS)}")
    return METRICS[name]


def parse_metrics(metrics: str | Sequence[str]) -> list[str]:
    """``"fid,kid"`` or a list -> checked, de-duplicated names."""
    items = [m.strip() for m in metrics.split(",")] if isinstance(metrics, str) else list(metrics)
    items = [m for m in items if m]
    if not items:
        raise GanforgeError("no metrics given", f"choose from: {', '.join(metric_names())}")
    for item in items:
        get_metric(item)
    return list(dict.fromkeys(items))


def _runnable(spec: MetricSpec, ctx: MetricContext) -> bool:
    return ctx.run in spec.runs and spec.needs <= ctx.provides


def unmet(spec: MetricSpec, ctx: MetricContext, *, data: bool = True) -> tuple[str, str] | None:
    """Why ``spec`` cannot be computed for ``ctx`` as (problem, fix), or None: the kind of run,
    then the capabilities it needs, then (with ``data``) its own check of the data."""
    if ctx.run not in spec.runs:
        fits = [n for n, s in METRICS.items() if _runnable(s, ctx)]
        return (f"metric {spec.name!r} does not apply to {RUN_KINDS[ctx.run]}",
                f"choose from: {', '.join(fits)}")
    for need in sorted(spec.needs - ctx.provides):
        req = REQUIREMENTS[need]
        users = [n for n, s in METRICS.items() if need in s.needs]
        run = "run" if ctx.run_name is None else f"{ctx.run_name!r} run"
        return f"{req.label} ({', '.join(users)}) need {req.what}, and this {run} has none", req.fix
    return spec.applies(ctx) if data else None


def plan_metrics(requested: str | Sequence[str] | None, ctx: MetricContext) -> dict[str, list[str] | None]:
    """source -> the requested metrics computed from it, checked against the kind of run and its
    capabilities (not yet the data: :func:`select_metrics` does that once they are loaded); with
    nothing requested, source -> None for every source that has a default metric for this run."""
    if requested is None:
        return {src: None for src in SOURCES
                if any(s.source == src and _runnable(s, ctx) and s.default(ctx) for s in METRICS.values())}
    plan: dict[str, list[str] | None] = {}
    for name in parse_metrics(requested):
        spec = METRICS[name]
        if (reason := unmet(spec, ctx, data=False)) is not None:
            raise GanforgeError(*reason)
        plan.setdefault(spec.source, []).append(name)
    return plan


def select_metrics(requested: str | Sequence[str] | None, ctx: MetricContext,
                   source: str | None = None) -> list[str]:
    """The requested metrics (checked to apply to ``ctx``), or all defaults that apply;
    ``source`` keeps only metrics of that source."""
    if requested is None:
        names = [n for n, spec in METRICS.items() if unmet(spec, ctx) is None and spec.default(ctx)]
    else:
        names = parse_metrics(requested)
        for name in names:
            reason = unmet(get_metric(name), ctx)
            if reason is not None:
                raise GanforgeError(*reason)
    return [n for n in names if source is None or get_metric(n).source == source]


def metric_columns(names: Sequence[str], ctx: MetricContext) -> dict[str, bool | None]:
    """Every column the metrics write, with its direction."""
    out: dict[str, bool | None] = {}
    for name in names:
        out.update(get_metric(name).columns(ctx))
    return out


def compute_metrics(names: Sequence[str], *args: Any) -> dict[str, float]:
    """Every metric's ``compute(*args)`` (one source's signature), merged in order."""
    out: dict[str, float] = {}
    for name in names:
        out.update(get_metric(name).compute(*args))
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
