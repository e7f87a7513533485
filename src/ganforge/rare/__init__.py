"""Rare events in a trained generator's latent space (``ganforge rare``).

Estimate p = P_z(event(G(z))) for an event given as statistics of the samples and thresholds
(:mod:`ganforge.rare.events`, :mod:`ganforge.rare.statistics`) by naive Monte Carlo or by the
cross-entropy method and importance sampling (:mod:`ganforge.rare.estimate`), and keep the rare
samples with their importance weights::

    from ganforge import load_run
    from ganforge.rare import rare_event

    result = rare_event(load_run("runs/ring8-mlp"), "distance(0, 0) > 3.2", budget=50_000)
    result.p, result.estimate.relative_error, result.calls, result.naive_calls

The tail index of a statistic (the Hill estimator, :mod:`ganforge.maths.tails`) on data and on
samples tells whether the generator's tail is right at all before any sampling trick.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ganforge.rare.estimate import METHODS, RareEventResult, estimate_rare_event
from ganforge.rare.events import Event, parse_event
from ganforge.rare.simulator import FunctionSimulator, RunSimulator
from ganforge.rare.statistics import STATISTICS, Context

__all__ = ["METHODS", "STATISTICS", "Context", "Event", "FunctionSimulator", "RareEventResult",
           "RunSimulator", "estimate_rare_event", "parse_event", "rare_event"]


def rare_event(run: Any, event: str, *, ema: bool = False, class_: int | None = None,
               statistics: dict[str, Callable[[Any], Any]] | None = None, **options: Any) -> RareEventResult:
    """P(event) under a loaded run's generator (``options``: those of
    :func:`~ganforge.rare.estimate.estimate_rare_event`: method, budget, seed...); ``statistics``
    names extra callables ``samples -> (N,) values`` the event may use by name."""
    simulator = RunSimulator(run, ema=ema, class_=class_)
    return estimate_rare_event(simulator, parse_event(event, simulator.context, statistics), **options)
