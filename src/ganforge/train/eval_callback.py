"""Metrics during training: :class:`EvalCallback` plugs an :class:`~ganforge.metrics.evaluate.Evaluator`
into the Trainer.

Every ``every`` steps (and at the last step) it draws ``num_samples`` samples from the generator
(the EMA copy when the run has one) with a fixed noise seed, scores them against real half A, and
returns the figures so the trainer logs them on that step's ``metrics.csv`` row. With ``best`` set,
``checkpoints/best.pt`` holds the step with the best value of that metric (minimum for
FID/KID/KL, maximum for the others; on resume the best so far is read back from metrics.csv).
The real-vs-real floor goes to ``eval_baseline.json`` at the start, and the metric curves (with the
floor as dashed lines) to ``plots/eval_metrics.png`` at the end.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from ganforge._io import atomic_write_text
from ganforge.config import EvalConfig
from ganforge.data.base import AnyDataset
from ganforge.metrics.evaluate import Evaluator
from ganforge.metrics.extractors import build_extractor
from ganforge.metrics.registry import resolve_best
from ganforge.train.callbacks import Callback
from ganforge.train.trainer import Trainer


class EvalCallback(Callback):
    """Scores the generator every ``every`` steps; see the module docstring."""

    def __init__(self, every: int, metrics: list[str] | None = None, num_samples: int = 2000,
                 best: str | None = None, extractor: str = "auto", seed: int = 0,
                 data_section: dict | None = None, conditional: bool = False) -> None:
        self.every, self.num_samples, self.seed = every, num_samples, seed
        self.conditional = conditional
        self.data_section = data_section
        self.extractor_name = extractor
        self.groups = metrics
        self.best = best
        self.best_column: str | None = None
        self.higher_better = False
        self.best_value = math.nan
        self.evaluator: Evaluator | None = None

    @classmethod
    def from_config(cls, cfg_eval: EvalConfig, data: dict, seed: int = 0,
                    conditional: bool = False) -> EvalCallback:
        return cls(cfg_eval.every or 0, cfg_eval.metrics, cfg_eval.num_samples, cfg_eval.best,
                   cfg_eval.extractor, seed, data, conditional)

    def prepare(self, dataset: AnyDataset) -> Evaluator:
        """Build the extractor and the real reference, and resolve the columns and the ``best``
        metric (call before training so that a missing weights file or an inapplicable metric
        fails before anything is written)."""
        if self.evaluator is None:
            extractor = build_extractor(self.extractor_name, dataset)
            self.evaluator = Evaluator(dataset, self.groups, extractor=extractor,
                                       num_samples=self.num_samples, seed=self.seed,
                                       data_section=self.data_section, conditional=self.conditional)
            self.columns = tuple(self.evaluator.columns)
            if self.best:
                self.best_column, self.higher_better = resolve_best(self.best, self.evaluator.directions)
        return self.evaluator

    def setup(self, trainer: Trainer) -> None:
        self.prepare(trainer.exp.dataset)

    def on_fit_start(self, trainer: Trainer) -> None:
        evaluator = self.prepare(trainer.exp.dataset)
        path = trainer.run_dir / "eval_baseline.json"
        atomic_write_text(path, json.dumps({"baseline": evaluator.baseline(), **evaluator.describe()},
                                   indent=2) + "\n")
        if self.best_column:
            self.best_value = self._previous_best(trainer.run_dir / "metrics.csv")

    def _previous_best(self, csv_path: Path) -> float:
        if not csv_path.is_file() or csv_path.stat().st_size == 0:
            return math.nan
        from ganforge.viz.curves import read_metrics

        values = read_metrics(csv_path).get(self.best_column, np.array([]))
        values = values[np.isfinite(values)]
        if not len(values):
            return math.nan
        return float(values.max() if self.higher_better else values.min())

    @torch.no_grad()
    def on_step_end(self, trainer: Trainer) -> dict[str, float] | None:
        if not self.every or (trainer.step % self.every and trainer.step != trainer.cfg.train.steps):
            return None
        G = trainer.exp.sampling_network()
        was_training = G.training
        G.eval()
        noise = torch.Generator().manual_seed(self.seed + 12345)
        n = self.evaluator.n
        labels = trainer.algorithm.labels_for(n)  # conditional runs: classes cycled, every class scored
        x = G.sample(n, noise, labels)
        G.train(was_training)
        if not torch.isfinite(x).all():
            return {c: math.nan for c in self.columns}
        result = self.evaluator.score(x, None if labels is None else labels.cpu())
        if self.best_column:
            value = result[self.best_column]
            better = (math.isnan(self.best_value) or (value > self.best_value if self.higher_better
                                                     else value < self.best_value))
            if math.isfinite(value) and better:
                self.best_value = value
                trainer.save("best.pt")
                atomic_write_text(trainer.run_dir / "checkpoints" / "best.json", json.dumps(
                    {"step": trainer.step, "metric": self.best_column, "value": value}) + "\n")
        return result

    def on_fit_end(self, trainer: Trainer) -> None:
        csv_path = trainer.run_dir / "metrics.csv"
        if csv_path.is_file():
            baseline = self.evaluator.baseline() if self.evaluator else {}
            plot_eval_metrics(csv_path, trainer.run_dir / "plots" / "eval_metrics.png",
                              self.columns, baseline)


def plot_eval_metrics(csv_path: Path, path: Path, columns: tuple[str, ...] | list[str],
                      baseline: dict[str, float] | None = None) -> Path | None:
    """One small panel per metric column against step, the real-vs-real floor dashed."""
    from matplotlib.figure import Figure

    from ganforge.viz._atomic import save_figure
    from ganforge.viz.curves import read_metrics

    metrics = read_metrics(csv_path)
    cols = [c for c in columns if "_std_" not in c and c in metrics and np.isfinite(metrics[c]).any()]
    if not cols:
        return None
    ncol = min(3, len(cols))
    nrow = -(-len(cols) // ncol)
    fig = Figure(figsize=(4.0 * ncol, 2.8 * nrow))
    steps = metrics.get("step", np.arange(len(metrics[cols[0]])))
    for i, c in enumerate(cols):
        ax = fig.add_subplot(nrow, ncol, i + 1)
        keep = np.isfinite(metrics[c])
        ax.plot(steps[keep], metrics[c][keep], marker="o", markersize=3, label="generated")
        if baseline and c in baseline and math.isfinite(baseline[c]):
            ax.axhline(baseline[c], color="k", linestyle="--", linewidth=1, label="real vs real")
        ax.set_title(c, fontsize="small")
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
        if i == 0:
            ax.legend(fontsize="x-small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path)
