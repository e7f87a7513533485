"""``ganforge evaluate``'s one path: the metric registry picks what a run (or a samples file) gets.

What the run is (:func:`~ganforge.metrics.capabilities.run_kind`: generative or translation) and
what it provides (:func:`~ganforge.metrics.capabilities.provided_by`: a likelihood, a
style-based generator, an inverse translation) go into a
:class:`~ganforge.metrics.registry.MetricContext`; :func:`~ganforge.metrics.registry.plan_metrics`
checks the requested metrics against it (or takes the defaults) and groups them by source, and
each source is computed from its own inputs:

* ``model``: :class:`~ganforge.metrics.registry.ModelInputs` (the algorithm, the generator,
  held-out images of the test split);
* ``samples``: a generative run's samples (or the file's) against the real data, by the
  :class:`~ganforge.metrics.evaluate.Evaluator`, beside a real-vs-real baseline;
* ``pairs`` (and ``samples``) of a translation: its outputs on held-out pairs
  (:func:`~ganforge.metrics.paired.evaluate_translation`), beside trivial translators.

Nothing here names a metric; the metrics module that owns a metric computes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from ganforge.data import build_dataset
from ganforge.errors import GanforgeError
from ganforge.metrics import paired
from ganforge.metrics.capabilities import provided_by, run_kind
from ganforge.metrics.evaluate import Evaluator, format_table
from ganforge.metrics.likelihood import check_importance_samples
from ganforge.metrics.registry import (
    ClipInputs,
    MetricContext,
    ModelInputs,
    RollInputs,
    RowInputs,
    SmilesInputs,
    compute_metrics,
    get_metric,
    parse_metrics,
    plan_metrics,
    select_metrics,
)

Say = Callable[[str], None]


class EvaluatedRun(Protocol):
    """What a loaded run (:class:`ganforge.train.run.Run`) offers the evaluation."""

    path: Path
    checkpoint: Path
    step: int
    config: Any

    @property
    def algorithm(self) -> Any: ...

    @property
    def conditions_on_classes(self) -> bool: ...

    def require_need(self, need: str, what: str) -> None:
        """The run's one-line "cannot do X" error when it lacks the capability that provides
        metric requirement ``need`` (:data:`~ganforge.metrics.capabilities.REQUIREMENTS`);
        nothing when it has it, or when no declared capability provides ``need``."""

    def pick_generator(self, ema: bool = False) -> torch.nn.Module: ...

    def labels(self, n: int) -> torch.Tensor | None: ...

    def sample(self, n: int, *, ema: bool = False, seed: int = 0,
               labels: torch.Tensor | None = None) -> torch.Tensor: ...


@dataclass(frozen=True)
class EvalSettings:
    """``ganforge evaluate``'s options: ``n`` samples (pairs, held-out images) per side, the
    ``seed`` of samples and splits, the EMA generator, the feature ``extractor``, the reference
    statistics ``cache``, the InceptionV3 weights, k of the importance-weighted bound, and
    ``options`` over the run's data section (``--data KEY=VALUE``)."""

    n: int = 10_000
    seed: int = 0
    ema: bool = False
    extractor: str = "auto"
    cache: Path | None = None
    inception: str | None = None
    importance_samples: int = 1000
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_importance_samples(self.importance_samples)  # before anything is loaded


def evaluate_run(run: EvaluatedRun, requested: str | None, s: EvalSettings,
                 say: Say = print) -> dict[str, Any]:
    """Every requested metric (default: every default metric that applies) of a loaded run;
    progress lines go to ``say``. Inapplicable metrics are one-line errors before any work."""
    G = run.pick_generator(s.ema)
    kind = run_kind(run.algorithm)
    ctx = MetricContext(run=kind, provides=provided_by(run.algorithm, G),
                        run_name=run.config.algorithm["name"], conditional=run.conditions_on_classes)
    for name in parse_metrics(requested) if requested else ():
        for need in sorted(get_metric(name).needs - ctx.provides):  # the run words what it lacks
            run.require_need(need, f"score metric {name!r}")
    plan = plan_metrics(requested, ctx)
    section = {**run.config.data, **s.options}
    result: dict[str, Any] = {"metrics": {}} if kind == "translation" else {"metrics": {}, "baseline": {}}
    if "model" in plan:
        _merge(result, _model_metrics(run.algorithm, G, plan["model"], ctx, section, s, say))
    if kind == "translation":
        names = None if requested is None else [n for src in ("pairs", "samples") for n in plan.get(src, [])]
        if requested is None or names:
            _merge(result, _translation_metrics(run, G, names, ctx, s, say))
        result.update(run_dir=str(run.path), checkpoint=str(run.checkpoint), step=run.step, ema=s.ema,
                      seed=s.seed)
        return result
    if kind in ("prediction", "clips"):
        _merge(result, _clip_metrics(run, G, plan.get("clips"), ctx, section, s, say))
        result.update(run_dir=str(run.path), checkpoint=str(run.checkpoint), step=run.step, ema=s.ema,
                      sample_seed=s.seed)
        return result
    if kind == "molecules":
        _merge(result, _molecule_metrics(run, G, plan.get("smiles"), ctx, section, s, say))
        result.update(run_dir=str(run.path), checkpoint=str(run.checkpoint), step=run.step, ema=s.ema,
                      sample_seed=s.seed)
        return result
    if kind == "music":
        _merge(result, _music_metrics(run, G, plan.get("rolls"), ctx, section, s, say))
        result.update(run_dir=str(run.path), checkpoint=str(run.checkpoint), step=run.step, ema=s.ema,
                      sample_seed=s.seed)
        return result
    if kind == "table":
        _merge(result, _table_metrics(run, G, plan.get("rows"), ctx, section, s, say))
        result.update(run_dir=str(run.path), checkpoint=str(run.checkpoint), step=run.step, ema=s.ema,
                      sample_seed=s.seed)
        return result
    if "samples" in plan:
        dataset = build_dataset(section)
        ev = _evaluator(dataset, plan["samples"], section, s, run.conditions_on_classes)
        labels = run.labels(ev.n)
        _score_samples(result, ev, run.sample(ev.n, ema=s.ema, seed=s.seed, labels=labels), labels, s, say)
    result.update(run_dir=str(run.path), checkpoint=str(run.checkpoint), step=run.step, ema=s.ema,
                  sample_seed=s.seed)
    return result


def evaluate_samples_file(samples: np.ndarray, labels: np.ndarray | None, section: dict[str, Any],
                          requested: str | None, s: EvalSettings, say: Say = print) -> dict[str, Any]:
    """The requested metrics (default: all that apply) of samples read from a file, against the
    reference data ``section``; ``labels`` are the classes the samples were drawn for."""
    ctx = MetricContext(conditional=labels is not None)
    plan = plan_metrics(requested, ctx)  # a model metric asks for a model: a one-line error
    result: dict[str, Any] = {"metrics": {}, "baseline": {}}
    if "samples" in plan:
        ev = _evaluator(build_dataset(section), plan["samples"], section, s, labels is not None)
        _score_samples(result, ev, samples, labels, s, say)
    return result


def format_result(result: dict[str, Any]) -> str:
    """The table of an evaluation: against trivial translators for a translation, else against
    the real-vs-real baseline."""
    return paired.format_paired_table(result) if "baselines" in result else format_table(result)


# --------------------------------------------------------------------------- sources
def _merge(result: dict[str, Any], part: dict[str, Any]) -> None:
    """``part``'s metrics added to ``result``'s, its other keys set."""
    result["metrics"].update(part.pop("metrics", {}))
    result.update(part)


def _model_metrics(algorithm: Any, G: torch.nn.Module, requested: list[str] | None, ctx: MetricContext,
                   section: dict[str, Any], s: EvalSettings, say: Say) -> dict[str, Any]:
    names = select_metrics(requested, ctx, source="model")

    def held_out() -> tuple[torch.Tensor, dict[str, Any]]:
        """The first n images of the test split (when the dataset has one, unless --data says)."""
        data = paired.held_out_section(section, s.options)
        return build_dataset(data).x[: s.n], data

    inputs = ModelInputs(algorithm=algorithm, generator=G, held_out=held_out, names=names, n=s.n, seed=s.seed,
                         importance_samples=s.importance_samples, say=say)
    return {"metrics": compute_metrics(names, inputs), **inputs.info}


def _translation_metrics(run: EvaluatedRun, G: torch.nn.Module, names: list[str] | None,
                         ctx: MetricContext, s: EvalSettings, say: Say) -> dict[str, Any]:
    dataset, section = paired.held_out_pairs(run.config.data, s.options)
    result = paired.evaluate_translation(run.algorithm, dataset, n=s.n, seed=s.seed, network=G,
                                         extractor=s.extractor, metrics=names, provides=ctx.provides)
    say(f"{result['images']} held-out pairs of {section['name']}"
        f"{' (' + section['split'] + ' split)' if 'split' in section else ''}")
    return {**result, "data": section}


def _table_metrics(run: EvaluatedRun, G: torch.nn.Module, names: list[str] | None, ctx: MetricContext,
                   section: dict[str, Any], s: EvalSettings, say: Say) -> dict[str, Any]:
    """A table run's rows against the real ones: ``min(n, train rows)`` synthetic rows (seed
    ``s.seed``) against as many rows of the train split it learned from (a seeded sample) and at
    most ``n`` of the held-out test split; the real-vs-real column scores held-out rows in the
    synthetic rows' place."""
    names = select_metrics(names, ctx, source="rows")
    data = build_dataset({**section, "split": "train"})
    schema = run.algorithm.schema
    # seeded uniform samples of each split: the file's order (by date, say) must not pick them
    train, test = (frame.sample(n=min(s.n, len(frame)), random_state=s.seed).reset_index(drop=True)
                   for frame in (data.train_frame, data.test_frame))
    if len(test) < 2:
        raise GanforgeError(f"the table's test split has {len(test)} rows, too few to score against",
                            "set data.test_fraction > 0 (e.g. --data test_fraction=0.2)")
    synthetic = run.algorithm.sample_rows(len(train), torch.Generator().manual_seed(s.seed), network=G)
    types, target = schema.types, section.get("target")
    say(f"{len(synthetic)} synthetic rows vs {len(train)} training and {len(test)} held-out rows of "
        f"{section.get('path', section['name'])}" + ("" if target else " (no data.target: no TSTR)"))
    metrics = compute_metrics(names, RowInputs(train, test, synthetic, types, target, s.seed))
    baseline = compute_metrics(names, RowInputs(train, test, test, types, target, s.seed, baseline=True))
    return {"metrics": metrics, "baseline": baseline, "generated_samples": len(synthetic),
            "data": {**section, "rows_train": len(train), "rows_test": len(test)}}


def _clip_metrics(run: EvaluatedRun, G: torch.nn.Module, names: list[str] | None, ctx: MetricContext,
                  section: dict[str, Any], s: EvalSettings, say: Say) -> dict[str, Any]:
    """A clip run's samples, or a prediction run's continuations of held-out clips, against ``n``
    held-out clips of the test split (the first ones of its fixed set)."""
    from ganforge.data.sequence import frame_extractor_of, held_out_clips

    names = select_metrics(names, ctx, source="clips")
    data = paired.held_out_section(section, s.options)
    dataset = build_dataset(data)
    real, available = held_out_clips(dataset)
    extractor = frame_extractor_of(dataset)
    n = min(s.n, available)
    algorithm = run.algorithm
    if ctx.run == "prediction":
        def predict(observed_frames: torch.Tensor) -> torch.Tensor:
            return algorithm.predict(observed_frames, network=G)

        def generated(start: int, stop: int) -> torch.Tensor:
            clips = real(start, stop)
            return torch.cat([clips[:, :algorithm.observed], predict(clips[:, :algorithm.observed])], dim=1)

        inputs = ClipInputs(real, generated, n, observed=algorithm.observed, predict=predict, seed=s.seed,
                            extractor=extractor)
        say(f"{n} held-out clips of {data['name']}: {algorithm.observed} observed, "
            f"{algorithm.horizon} predicted frames each")
    else:
        clips = algorithm.sample_clips(min(n, ClipInputs.subset), torch.Generator().manual_seed(s.seed), G)
        inputs = ClipInputs(real, lambda start, stop: clips[start:stop], len(clips), seed=s.seed,
                            extractor=extractor)
        say(f"{len(clips)} generated clips vs {len(clips)} held-out clips of {data['name']}")
    metrics = compute_metrics(names, inputs)
    return {"metrics": metrics, "clips": inputs.n, "data": data, **inputs.info}


def _music_metrics(run: EvaluatedRun, G: torch.nn.Module, names: list[str] | None, ctx: MetricContext,
                   section: dict[str, Any], s: EvalSettings, say: Say) -> dict[str, Any]:
    """``n`` phrases of a music run (seed ``s.seed``) and every held-out phrase of the test split,
    each scored against the pitch classes of the training split; the held-out phrases are the
    baseline column."""
    names = select_metrics(names, ctx, source="rolls")
    train = build_dataset({**section, "split": "train"})
    data = paired.held_out_section(section, s.options)
    held_out = build_dataset(data).x.numpy()
    grid = run.algorithm.grid
    if tuple(held_out.shape[1:]) != tuple(run.algorithm.sample_shape):
        raise GanforgeError(f"the held-out phrases have shape {tuple(held_out.shape[1:])}, the run's "
                            f"{tuple(run.algorithm.sample_shape)}",
                            "evaluate with the run's own data options")
    rolls = run.algorithm.sample_rolls(s.n, torch.Generator().manual_seed(s.seed), G).numpy()
    say(f"{len(rolls)} generated phrases vs {len(held_out)} held-out phrases of {data['name']} "
        f"({grid.bars} bars, {grid.steps_per_quarter} steps a quarter)")
    reference = train.x.numpy()
    metrics = compute_metrics(names, RollInputs(rolls, grid, reference))
    baseline = compute_metrics(names, RollInputs(held_out, grid, reference))
    return {"metrics": metrics, "baseline": baseline, "generated_samples": len(rolls),
            "held_out_phrases": len(held_out), "data": data}


def _molecule_metrics(run: EvaluatedRun, G: torch.nn.Module, names: list[str] | None, ctx: MetricContext,
                      section: dict[str, Any], s: EvalSettings, say: Say) -> dict[str, Any]:
    """``n`` molecules of a molecule run (seed ``s.seed``) scored with MOSES' definitions against
    the data's held-out molecules and its training set; the baseline column scores ``n`` of the
    training molecules the same way (the MOSES paper's "Train" row)."""
    from ganforge.metrics.molecules import MosesReference

    names = select_metrics(names, ctx, source="smiles")
    data = build_dataset({**section, "split": "train"})
    reference = MosesReference(data.test_smiles, data.train_smiles)
    generated = run.algorithm.sample_smiles(s.n, torch.Generator().manual_seed(s.seed), G)
    rng = np.random.default_rng(s.seed)
    train = [data.smiles[i] for i in rng.permutation(len(data.smiles))[:s.n]]
    say(f"{len(generated)} generated molecules vs {len(reference.smiles)} held-out molecules of "
        f"{section['name']}; baseline: {len(train)} training molecules")
    metrics = compute_metrics(names, SmilesInputs(generated, reference))
    baseline = compute_metrics(names, SmilesInputs(train, reference))
    return {"metrics": metrics, "baseline": baseline, "generated_samples": len(generated),
            "held_out_molecules": len(reference.smiles), "data": section}


def _evaluator(dataset: Any, names: list[str] | None, section: dict[str, Any], s: EvalSettings,
               conditional: bool) -> Evaluator:
    cache = s.cache if s.cache is not None else Path.home() / ".cache" / "ganforge" / "ref_stats"
    return Evaluator(dataset, names, extractor=s.extractor, num_samples=s.n, seed=s.seed,
                     data_name=section["name"], data_section=section, cache_dir=cache,
                     inception_path=s.inception, conditional=conditional)


def _score_samples(result: dict[str, Any], ev: Evaluator, samples: torch.Tensor | np.ndarray,
                   labels: torch.Tensor | np.ndarray | None, s: EvalSettings, say: Say) -> None:
    result["metrics"].update(ev.score(samples, labels if ev.needs_labels else None))
    result["baseline"].update(ev.baseline())
    result.update(generated_samples=min(len(samples), ev.n), **ev.describe())
    say(f"{result['generated_samples']} generated vs {ev.n} real samples (real data: "
        f"{ev.data_name}), extractor {ev.extractor.id} (sha256 {ev.extractor.checksum[:12]})")
    if ev.n < s.n:
        say(f"note: -n {s.n} capped to {ev.n}, half of the real data (the other half is the "
            f"real-vs-real baseline)")
