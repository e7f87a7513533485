"""Events: statistics of samples compared with thresholds, joined by ``&``.

    EVENT := TERM ( "&" TERM )*
    TERM  := STATISTIC OP THRESHOLD        OP one of  >  >=  <  <=
    STATISTIC := NAME | NAME(ARG, ...) | package.module:function

e.g. ``distance(0, 0) > 3.5``, ``class(3) > 0.99 & mean > 0.4``, ``column(Income) > 500``.
Statistic names are those of the run's data kind (:mod:`ganforge.rare.statistics`).

The cross-entropy method ranks samples by a continuous *score* whose non-negative values are the
event: for one term the margin m = f(x) - t (or t - f(x) for ``<``); for several terms the
smallest margin, each divided by the spread of its statistic under the prior (measured once by
:meth:`Event.calibrate`, so that terms in different units are comparable):

    s(x) = min_j m_j(x) / sigma_j,        event  A = {x : every term holds}

A probability statistic (``class(K)``) is compared in log-odds, logit f(x) - logit t, whose
spread does not collapse as f(x) nears 1.

A sample whose statistic is NaN (a missing table cell) is never in the event (s = -inf).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ganforge.errors import GanforgeError
from ganforge.rare.statistics import STATISTICS, Context, Statistic, as_values, user_statistic

_TERM = re.compile(r"^(?P<stat>.*?)\s*(?P<op>>=|<=|>|<)\s*(?P<threshold>[^<>=]*)$")
_CALL = re.compile(r"^(?P<name>[A-Za-z_][\w\-]*)\s*(?:\((?P<args>.*)\))?$")
_MODULE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
OPERATORS = (">", ">=", "<", "<=")


@dataclass
class Term:
    """``statistic OP threshold``; ``scale`` divides its margin in the score."""

    text: str
    statistic: Statistic
    op: str
    threshold: float
    scale: float = 1.0

    def margin(self, values: torch.Tensor) -> torch.Tensor:
        """f(x) - t (t - f(x) for < and <=), on the statistic's own scale for ranking: a
        probability's log-odds, so that 0.999 is as far beyond 0.99 as 0.99 beyond 0.9."""
        warp = getattr(self.statistic, "margin_scale", None)
        v, t = values, torch.tensor(self.threshold, dtype=torch.float64)
        if warp == "logit":
            v, t = torch.logit(v.clamp(1e-12, 1 - 1e-12)), torch.logit(t.clamp(1e-12, 1 - 1e-12))
        m = v - t if self.op in (">", ">=") else t - v
        return torch.nan_to_num(m, nan=-math.inf)

    def holds(self, values: torch.Tensor) -> torch.Tensor:
        t = self.threshold
        return {">": values > t, ">=": values >= t, "<": values < t, "<=": values <= t}[self.op]


@dataclass
class Event:
    """A conjunction of :class:`Term` s; ``text`` as the user wrote it."""

    text: str
    terms: list[Term]
    calibrated: bool = field(default=False)

    def values(self, samples: Any, n: int) -> list[torch.Tensor]:
        return [as_values(term.statistic(samples), n, term.text) for term in self.terms]

    def evaluate(self, samples: Any, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(score (N,) float64, in-event (N,) bool) of ``n`` samples."""
        values = self.values(samples, n)
        pairs = list(zip(self.terms, values, strict=True))
        score = torch.stack([t.margin(v) / t.scale for t, v in pairs]).amin(dim=0)
        hit = torch.stack([t.holds(v) for t, v in pairs]).all(dim=0)
        return score, hit

    def calibrate(self, samples: Any, n: int) -> None:
        """Set each term's scale to its statistic's standard deviation over ``samples`` (drawn
        from the prior); once, and only when there are several terms."""
        if self.calibrated or len(self.terms) == 1:
            self.calibrated = True
            return
        for term, v in zip(self.terms, self.values(samples, n), strict=True):
            spread = term.margin(v)
            finite = spread[torch.isfinite(spread)]
            sd = float(finite.std()) if finite.numel() > 1 else 0.0
            term.scale = sd if sd > 0 and math.isfinite(sd) else 1.0
        self.calibrated = True


def parse_event(text: str, context: Context,
                statistics: dict[str, Callable[[Any], Any]] | None = None) -> Event:
    """The :class:`Event` ``text`` describes for samples of ``context``'s kind; ``statistics``
    names extra callables usable as statistic names (the Python API's user statistics)."""
    if not isinstance(text, str) or not text.strip():
        raise GanforgeError("the event is empty", "write it as STATISTIC > THRESHOLD, e.g. 'x > 3'")
    terms = []
    for part in text.split("&"):
        match = _TERM.match(part.strip())
        if match is None:
            raise GanforgeError(f"event term {part.strip()!r} has no comparison",
                                "write it as STATISTIC > THRESHOLD (or >=, <, <=), e.g. 'x > 3'")
        stat, op, threshold = match["stat"].strip(), match["op"], match["threshold"].strip()
        try:
            value = float(threshold)
        except ValueError:
            raise GanforgeError(f"the threshold {threshold!r} of event term {part.strip()!r} is not a number",
                                "compare the statistic with a number, e.g. 'x > 3.5'") from None
        if not math.isfinite(value):
            raise GanforgeError(f"the threshold {threshold!r} of event term {part.strip()!r} is not finite",
                                "compare the statistic with a finite number")
        terms.append(Term(part.strip(), _statistic(stat, context, statistics or {}), op, value))
    return Event(text.strip(), terms)


def parse_statistic(text: str, context: Context,
                    statistics: dict[str, Callable[[Any], Any]] | None = None) -> Statistic:
    """The statistic ``text`` names (``NAME``, ``NAME(ARG, ...)``, ``package.module:function`` or
    a key of ``statistics``) for samples of ``context``'s kind."""
    return _statistic(text.strip(), context, statistics or {})


def _statistic(text: str, context: Context, extra: dict[str, Callable[[Any], Any]]) -> Statistic:
    if text in extra:
        return extra[text]
    if _MODULE.match(text):
        return user_statistic(text)
    call = _CALL.match(text)
    if call is None:
        raise GanforgeError(f"{text!r} is not a statistic",
                            "write NAME or NAME(ARG, ...), e.g. distance(0, 0)")
    inner = (call["args"] or "").strip()
    args = [a.strip() for a in inner.split(",")] if inner else []
    return STATISTICS.build(context, call["name"], args)
