"""Hooks into the :class:`~ganforge.train.trainer.Trainer` without touching the loop.

The Trainer always runs :class:`SampleSnapshots` and :class:`CurvePlots`; metrics during training
are :class:`ganforge.train.eval_callback.EvalCallback`.
"""

from __future__ import annotations

from typing import Any, Protocol


class TrainerView(Protocol):
    """What the callbacks here read of the :class:`~ganforge.train.trainer.Trainer` that runs
    them (declared here, so that the trainer imports its callbacks and not the other way round)."""

    step: int
    finished: bool
    cfg: Any

    def snapshot(self) -> Any: ...

    def plot_curves(self) -> Any: ...


class Callback:
    """``columns`` names the extra ``metrics.csv`` columns the callback fills. ``on_step_end`` runs
    after every update; a non-empty dict it returns is written on that step's log row (a row is
    logged at that step even off the ``log_every`` grid).
    """

    columns: tuple[str, ...] = ()

    def setup(self, trainer: TrainerView) -> None:
        """Runs at the end of ``Trainer.__init__``, before anything is written: raise
        :class:`GanforgeError` here for a problem that must leave no run directory behind."""

    def on_fit_start(self, trainer: TrainerView) -> None:
        pass

    def on_step_end(self, trainer: TrainerView) -> dict[str, float] | None:
        return None

    def on_fit_end(self, trainer: TrainerView) -> None:
        """Runs when the loop stops; ``trainer.finished`` tells a finished run from an
        interrupted one."""


class SampleSnapshots(Callback):
    """``samples/step_NNNNNNN.png`` every ``train.sample_every`` steps and at the end: the
    algorithm's picture of its fixed inputs (the EMA generator when the run has one)."""

    def on_step_end(self, trainer: TrainerView) -> None:
        if trainer.step % trainer.cfg.train.sample_every == 0:
            trainer.snapshot()

    def on_fit_end(self, trainer: TrainerView) -> None:
        if trainer.finished:
            trainer.snapshot()


class CurvePlots(Callback):
    """``plots/losses.png``, ``scores.png`` and ``grad_norms.png`` from metrics.csv at the end."""

    def on_fit_end(self, trainer: TrainerView) -> None:
        if trainer.finished:
            trainer.plot_curves()
