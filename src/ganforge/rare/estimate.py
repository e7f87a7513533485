"""Rare-event probabilities p = P_z(event(G(z))) by naive Monte Carlo or by the cross-entropy
method then importance sampling in latent space.

``mc``          z ~ p (the prior); p_hat = hits / N.
``ce-is``       the multilevel cross-entropy method (Rubinstein 1999; Rubinstein and Kroese 2004,
                ch. 3) fits a Gaussian proposal q (full covariance up to 10 latent dimensions,
                diagonal above, or as ``covariance`` says): each iteration draws ``ce_samples``
                codes from the current q (the prior first), sets the level
                gamma = min(0, the (1 - rho) quantile of the scores), and refits q to the draws
                with score >= gamma weighted by p/q. Once gamma reaches 0 (the event), the rest
                of the budget is spent drawing from q: p_hat = mean(w 1{event}), w = p(z)/q(z).
``ce-mixture``  the same with a Gaussian mixture of ``components`` proposals (events made of
                several disjoint regions), fitted by EM on the weighted elites.

``subset``      subset simulation (Au and Beck 2001): levels as above (rho = 0.25 by default, budget/8
                draws per level of each of ``replicates`` (5) independent runs; the estimate is
                their mean, its error their spread), but each level's population is
                grown from the previous level's elites by Markov chains that keep the prior
                invariant (preconditioned Crank-Nicolson moves u' = sqrt(1 - b^2) u + b xi in
                the standard-normal coordinates, accepted when the score stays above the
                level), so nothing is weighted: p = prod_i p_i. Robust where Gaussian proposals
                degenerate (an event that depends on many latent directions). One run's own
                error (Au and Beck's, with the chains' correlation inside each level) is used
                with ``replicates=1``; it omits the correlation between levels and comes out
                about 1.6x too small, hence the replicates.

Every generator call counts against ``budget`` (the iterations included). The iterations stop
early when the level has not risen for ``STALL_ITERATIONS`` of them (a statistic capped below the
threshold: the event may be out of the generator's reach), and the rest of the budget is spent
on the estimate. ``defensive`` > 0
draws that share of the final codes from the prior (Hesterberg 1995): weights are then bounded
by 1/defensive. When no draw reaches the event the estimate is 0 with a warning and an upper
bound (naive MC: 1 - 0.05^(1/N), the one-sided 95% bound; CE: the estimated probability of the
highest level reached, which contains the event).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from ganforge.errors import GanforgeError
from ganforge.maths.importance import Estimate, importance_estimate, naive_calls_for, naive_estimate
from ganforge.rare.events import Event
from ganforge.rare.proposals import GaussianProposal, MixtureProposal, Proposal, log_ratio

METHODS = ("mc", "ce-is", "ce-mixture", "subset")
#: the elite share of each cross-entropy level, and of each subset-simulation level
CE_RHO, SUBSET_RHO = 0.1, 0.25
#: iterations without a higher level after which the cross-entropy method stops
STALL_ITERATIONS = 4
#: the largest latent dimension whose CE proposal has a full covariance under ``covariance=auto``
FULL_COVARIANCE_UP_TO = 10


class Simulator(Protocol):
    """Codes to samples: ``z_dim``, the prior's draws and log-density, and ``__call__(z,
    generator)`` -> the samples of codes z (other randomness drawn from ``generator``)."""

    z_dim: int

    def sample_prior(self, n: int, generator: torch.Generator) -> torch.Tensor: ...

    def log_prior(self, z: torch.Tensor) -> torch.Tensor: ...

    def __call__(self, z: torch.Tensor, generator: torch.Generator) -> Any: ...


@dataclass
class Level:
    """One cross-entropy iteration: the ``level`` reached, its ``elites``, the draws' codes
    (a subsample, for figures) and the proposal fitted to them."""

    iteration: int
    level: float
    elites: int
    draws: int
    codes: torch.Tensor
    proposal: Proposal | None
    #: what drew the level when no proposal did (subset simulation's pCN step)
    note: dict[str, Any] | None = None


@dataclass
class RareEventResult:
    """The estimate (:class:`~ganforge.maths.importance.Estimate`), the generator ``calls``
    spent, the calls naive MC needs for the same relative error, the CE ``levels``, and the
    ``scenarios``: samples in the event (the kind's batch) with their ``codes`` and importance
    ``weights``."""

    event: str
    method: str
    estimate: Estimate
    calls: int
    naive_calls: float
    levels: list[Level] = field(default_factory=list)
    proposal: Proposal | None = None
    scenarios: Any = None
    codes: torch.Tensor | None = None
    weights: torch.Tensor | None = None
    upper_bound: float | None = None
    warning: str | None = None

    @property
    def p(self) -> float:
        return self.estimate.p

    def summary(self) -> dict[str, Any]:
        """The JSON-able numbers."""
        e = self.estimate
        return {
            "event": self.event, "method": self.method, "p": e.p, "std_error": e.std_error,
            "relative_error": e.relative_error if math.isfinite(e.relative_error) else None,
            "hits": e.hits, "final_draws": e.n, "ess": e.ess, "calls": self.calls,
            "naive_calls_same_error": self.naive_calls if math.isfinite(self.naive_calls) else None,
            "calls_saved": (self.naive_calls / self.calls) if math.isfinite(self.naive_calls) else None,
            "levels": [{"iteration": lv.iteration, "level": lv.level, "elites": lv.elites, "draws": lv.draws,
                        "proposal": lv.proposal.describe() if lv.proposal is not None else lv.note}
                       for lv in self.levels],
            "upper_bound": self.upper_bound, "warning": self.warning,
        }


def _select(samples: Any, mask: torch.Tensor) -> Any:
    if isinstance(samples, torch.Tensor):
        return samples[mask]
    return samples[mask.numpy()].reset_index(drop=True)  # a DataFrame


def _concat(parts: list[Any]) -> Any:
    if not parts:
        return None
    if isinstance(parts[0], torch.Tensor):
        return torch.cat(parts)
    import pandas as pd

    return pd.concat(parts, ignore_index=True)


class _Scenarios:
    """The first ``keep`` in-event samples, their codes and weights."""

    def __init__(self, keep: int) -> None:
        self.keep, self.samples, self.codes, self.weights, self.count = keep, [], [], [], 0

    def add(self, samples: Any, z: torch.Tensor, hit: torch.Tensor, log_w: torch.Tensor) -> None:
        room = self.keep - self.count
        if room <= 0 or not hit.any():
            return
        rows = hit.nonzero().flatten()[:room]
        mask = torch.zeros_like(hit)
        mask[rows] = True
        self.samples.append(_select(samples, mask))
        self.codes.append(z[rows])
        self.weights.append(log_w[rows].exp())
        self.count += len(rows)


def _positive_int(value: Any, name: str, example: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise GanforgeError(f"{name} must be a positive whole number, got {value!r}",
                            f"pass e.g. {name} {example}")
    return int(value)


def _fraction(value: Any, name: str, low_open: bool = True) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (0 < value < 1 if low_open else 0 <= value < 1):
        raise GanforgeError(f"{name} must be a number in {'(0, 1)' if low_open else '[0, 1)'}, got {value!r}",
                            f"pass e.g. {name} 0.1")
    return float(value)


def estimate_rare_event(simulator: Simulator, event: Event, *, method: str = "ce-is",
                        budget: int = 100_000, seed: int = 0, batch_size: int = 10_000,
                        ce_samples: int | None = None, rho: float | None = None,
                        covariance: str = "auto",
                        components: int = 2, max_iterations: int = 30,
                        smoothing: float = 0.8, variance_floor: float = 1.0, defensive: float = 0.0,
                        keep: int = 64, replicates: int = 5) -> RareEventResult:
    """Estimate P(event) for codes from the simulator's prior (see the module docstring)."""
    if method not in METHODS:
        raise GanforgeError(f"unknown rare-event method {method!r}", f"choose one of: {', '.join(METHODS)}")
    budget = _positive_int(budget, "--budget", "100000")
    batch_size = _positive_int(batch_size, "--batch-size", "10000")
    keep = _positive_int(keep, "--keep", "64") if keep else 0
    if rho is None:
        rho = SUBSET_RHO if method == "subset" else CE_RHO
    rho, defensive = _fraction(rho, "--rho"), _fraction(defensive, "--defensive", low_open=False)
    ok = isinstance(variance_floor, (int, float)) and not isinstance(variance_floor, bool)
    if not ok or not math.isfinite(variance_floor) or variance_floor < 0:
        raise GanforgeError(f"--variance-floor must be a number >= 0, got {variance_floor!r}",
                            "pass e.g. --variance-floor 1 (the N(0, I) prior's variance)")
    if covariance not in ("auto", "full", "diag"):
        raise GanforgeError(f"unknown covariance {covariance!r}", "choose one of: auto, full, diag")
    components = _positive_int(components, "--components", "2")
    gen = torch.Generator().manual_seed(int(seed))
    scenarios = _Scenarios(keep)

    def draw(proposal: Proposal | None, n: int) -> tuple[torch.Tensor, Any, torch.Tensor, torch.Tensor,
                                                         torch.Tensor]:
        """n codes from ``proposal`` (the prior when None; mixed with it under ``defensive``),
        their samples, scores, hits and log p/q."""
        if proposal is None:
            z = simulator.sample_prior(n, gen).float()
            log_w = torch.zeros(n, dtype=torch.float64)
        else:
            from_prior = torch.rand(n, generator=gen) < defensive
            z = proposal.sample(n, gen)
            if from_prior.any():
                z[from_prior] = simulator.sample_prior(int(from_prior.sum()), gen).float()
            log_p = simulator.log_prior(z).double()
            log_q = proposal.log_prob(z)
            if defensive > 0:
                log_q = torch.logaddexp(log_q + math.log1p(-defensive), log_p + math.log(defensive))
            log_w = log_ratio(log_p, log_q)
        samples = simulator(z, gen)
        event.calibrate(samples, n)
        score, hit = event.evaluate(samples, n)
        return z, samples, score, hit, log_w

    if method == "subset":
        return _subset_simulation(simulator, event, draw, budget, ce_samples, rho, max_iterations, keep, gen,
                                  _positive_int(replicates, "--replicates", "5"))
    levels: list[Level] = []
    calls, proposal = 0, None
    reached = method == "mc"
    best_level = -math.inf
    if method != "mc":
        n_iter = _positive_int(ce_samples, "--ce-samples", "2000") if ce_samples is not None else \
            max(500, min(5_000, budget // 20))
        if 2 * n_iter > budget:
            raise GanforgeError(f"--budget {budget} is too small for the cross-entropy method with "
                                f"{n_iter} draws per iteration",
                                f"pass --budget {4 * n_iter} or more, or --method mc")
        full = covariance == "full" or (covariance == "auto" and simulator.z_dim <= FULL_COVARIANCE_UP_TO)
        stalled = 0
        for iteration in range(max_iterations):
            if calls + 2 * n_iter > budget:
                break
            z, _, score, hit, log_w = draw(proposal, n_iter)
            calls += n_iter
            finite = score[torch.isfinite(score)]
            if finite.numel() == 0:
                break
            gamma = min(0.0, float(torch.quantile(finite, 1 - rho)))
            elite = hit if gamma >= 0 else (score >= gamma)
            if int(elite.sum()) < 2:
                break
            w = (log_w[elite] - log_w[elite].max()).exp()
            if method == "ce-mixture":
                proposal = MixtureProposal.fit(z[elite], w, full, components, gen, variance_floor)
            else:
                previous = proposal if isinstance(proposal, GaussianProposal) else None
                proposal = GaussianProposal.fit(z[elite], w, full, previous, smoothing if gamma < 0 else 1.0,
                                                variance_floor)
            stalled = stalled + 1 if gamma <= best_level + 1e-9 * max(1.0, abs(best_level)) else 0
            best_level = max(best_level, gamma)
            levels.append(Level(iteration, gamma, int(elite.sum()), n_iter, z[:500].clone(), proposal))
            if gamma >= 0:
                reached = True
                break
            if stalled >= STALL_ITERATIONS:  # a plateau of the statistic: more levels will not help
                break

    # the estimate: the rest of the budget from the final proposal (the prior for naive MC)
    hits, log_ws, level_hits = [], [], []
    while calls < budget:
        n = min(batch_size, budget - calls)
        z, samples, score, hit, log_w = draw(proposal, n)
        calls += n
        hits.append(hit)
        log_ws.append(log_w)
        if not reached:
            level_hits.append(score >= best_level)
        scenarios.add(samples, z, hit, log_w)
    hit, log_w = torch.cat(hits), torch.cat(log_ws)
    estimate = naive_estimate(hit) if method == "mc" else importance_estimate(hit, log_w)
    naive_calls = naive_calls_for(estimate.p, estimate.relative_error)
    upper, warning = None, None
    if estimate.hits == 0:
        if method == "mc" or proposal is None:
            upper = 1 - 0.05 ** (1 / len(hit))
            warning = (f"no sample reached the event in {calls} generator calls: p < {upper:.2g} "
                       "(one-sided 95%); raise --budget or use --method ce-is")
        else:
            bound = importance_estimate(torch.cat(level_hits), log_w) if level_hits else None
            upper = bound.p if bound is not None and bound.p > 0 else None
            warning = (f"no sample reached the event in {calls} generator calls; the cross-entropy "
                       f"levels stopped at score {best_level:.3g} (the event is score >= 0)"
                       + (f", whose probability {upper:.2g} bounds p" if upper is not None else "")
                       + "; raise --budget or --ce-samples")
    return RareEventResult(event.text, method, estimate, calls, naive_calls, levels, proposal,
                           _concat(scenarios.samples), _concat(scenarios.codes) if scenarios.codes else None,
                           _concat(scenarios.weights) if scenarios.weights else None, upper, warning)


#: the pCN step b of subset simulation's first level, and the acceptance rates it is steered into
SUBSET_STEP, SUBSET_ACCEPTANCE = 0.6, (0.2, 0.5)


def _correlation_factor(chains: torch.Tensor, p: float) -> float:
    """gamma of Au and Beck (2001, eq. 29) for in-level indicators ``chains`` (Nc, Ns): the
    variance inflation of the level's probability from the chains' correlation."""
    nc, ns = chains.shape
    n = nc * ns
    chains = chains.double()
    r0 = float((chains * chains).sum()) / n - p * p
    if r0 <= 0:
        return 0.0
    gamma = 0.0
    for k in range(1, ns):
        rk = float((chains[:, :-k] * chains[:, k:]).sum()) / (n - k * nc) - p * p
        gamma += 2 * (1 - k * nc / n) * rk / r0
    return max(gamma, 0.0)


def _take(samples: Any, index: torch.Tensor) -> Any:
    if isinstance(samples, torch.Tensor):
        return samples[index]
    return samples.iloc[index.numpy()].reset_index(drop=True)  # a DataFrame


def _where(ok: torch.Tensor, new: Any, old: Any) -> Any:
    """Row i of ``new`` where ``ok[i]``, else of ``old``."""
    if isinstance(new, torch.Tensor):
        return torch.where(ok.reshape(-1, *([1] * (new.dim() - 1))), new, old)
    out = old.copy()
    out.loc[ok.numpy()] = new.loc[ok.numpy()].to_numpy()
    return out


def _subset_simulation(simulator: Simulator, event: Event, draw: Any, budget: int, ce_samples: int | None,
                       rho: float, max_iterations: int, keep: int, gen: torch.Generator,
                       replicates: int) -> RareEventResult:
    """``replicates`` independent subset simulations of budget/replicates calls each: the mean of
    their estimates, with the standard error of that mean from their spread (one run's Au-Beck
    error omits the correlation between levels and comes out about 1.6x too small)."""
    share = budget // replicates
    runs = [_subset_run(simulator, event, draw, share, ce_samples, rho, max_iterations, keep, gen)
            for _ in range(replicates)]
    if replicates == 1:
        return runs[0]
    values = torch.tensor([r.p for r in runs], dtype=torch.float64)
    hits = sum(r.estimate.hits for r in runs)
    estimate = Estimate(float(values.mean()), float(values.std()) / math.sqrt(replicates),
                        sum(r.estimate.n for r in runs), hits, float(hits))
    found = [r for r in runs if r.scenarios is not None]
    scenarios = _concat([r.scenarios for r in found])
    codes = torch.cat([r.codes for r in found]) if found else None
    # a scenario of replicate r stands for p_r / hits_r; in the pooled estimate, 1/R of that
    weights = torch.cat([r.weights / replicates for r in found]) if found else None
    if scenarios is not None and keep:
        first = torch.arange(min(keep, len(codes)))
        scenarios, codes, weights = _take(scenarios, first), codes[first], weights[first]
    warnings = [r.warning for r in runs if r.warning]
    bounds = [r.upper_bound for r in runs if r.upper_bound is not None]
    upper = max(bounds) if hits == 0 and bounds else None
    calls = sum(r.calls for r in runs)
    return RareEventResult(event.text, "subset", estimate, calls,
                           naive_calls_for(estimate.p, estimate.relative_error), runs[0].levels, None,
                           scenarios, codes, weights, upper,
                           f"{len(warnings)} of {replicates} replicates: {warnings[0]}" if warnings else None)


def _subset_run(simulator: Simulator, event: Event, draw: Any, budget: int, ce_samples: int | None,
                rho: float, max_iterations: int, keep: int, gen: torch.Generator) -> RareEventResult:
    """One subset simulation with pCN moves (module docstring) and Au and Beck's error;
    ``draw(None, n)`` gives prior draws."""
    n = max(500, budget // 8) if ce_samples is None else _positive_int(ce_samples, "--ce-samples", "12500")
    if 2 * n > budget:
        raise GanforgeError(f"--budget {budget} is too small for subset simulation with {n} draws per level",
                            f"pass --budget {4 * n} or more, or --method mc")
    u, samples, score, _, _ = draw(None, n)
    calls, step = n, SUBSET_STEP
    p, variance, levels = 1.0, 0.0, []
    chain_shape: tuple[int, int] | None = None  # (chains, length) of the current population
    for iteration in range(max_iterations):
        n_seeds = max(1, int(rho * n))
        gamma = min(0.0, float(torch.sort(score, descending=True).values[n_seeds - 1]))
        above = score >= gamma
        p_level = float(above.double().mean())
        levels.append(Level(iteration, gamma, int(above.sum()), len(score), u[:500].clone(), None,
                            {"family": "pcn", "step": step}))
        if gamma >= 0 or calls + n > budget:
            break
        inflation = 0.0 if chain_shape is None else _correlation_factor(above.reshape(chain_shape), p_level)
        p *= p_level
        variance += (1 - p_level) / (p_level * len(score)) * (1 + inflation)
        # grow the next population from the elites by pCN chains that stay in {score >= gamma}
        seeds = above.nonzero().flatten()
        seeds = seeds[torch.randperm(len(seeds), generator=gen)[:n_seeds]]
        length = n // n_seeds
        state_u, state_s, state_x = u[seeds], score[seeds], _take(samples, seeds)
        steps_u, steps_s, steps_x, accepted = [state_u], [state_s], [state_x], 0
        for _ in range(length - 1):
            proposal = math.sqrt(1 - step * step) * state_u + step * torch.randn(state_u.shape, generator=gen)
            new_samples = simulator(proposal, gen)
            new_score, _ = event.evaluate(new_samples, len(proposal))
            calls += len(proposal)
            ok = new_score >= gamma
            accepted += int(ok.sum())
            state_u = torch.where(ok[:, None], proposal, state_u)
            state_s = torch.where(ok, new_score, state_s)
            state_x = _where(ok, new_samples, state_x)
            steps_u.append(state_u)
            steps_s.append(state_s)
            steps_x.append(state_x)
        rate = accepted / max(1, n_seeds * (length - 1))
        if rate > SUBSET_ACCEPTANCE[1]:
            step = min(1.0, step * 1.25)
        elif rate < SUBSET_ACCEPTANCE[0]:
            step *= 0.75
        chain_major = (torch.arange(length)[None, :] * n_seeds + torch.arange(n_seeds)[:, None]).flatten()
        u = torch.cat(steps_u)[chain_major]
        score = torch.cat(steps_s)[chain_major]
        samples = _take(_concat(steps_x), chain_major)
        chain_shape = (n_seeds, length)
    _, hit = event.evaluate(samples, len(score))
    p_last = float(hit.double().mean())
    if p_last > 0:
        inflation = 0.0 if chain_shape is None else _correlation_factor(hit.reshape(chain_shape), p_last)
        variance += (1 - p_last) / (p_last * len(score)) * (1 + inflation)
    p_hat = p * p_last
    hits = int(hit.sum())
    se = p_hat * math.sqrt(variance) if p_hat > 0 else 0.0
    estimate = Estimate(p_hat, se, len(score), hits, float(hits))
    rows = hit.nonzero().flatten()[:keep]
    upper, warning = None, None
    if hits == 0:
        upper = p * float((score >= levels[-1].level).double().mean())
        warning = (f"no sample reached the event in {calls} generator calls; the subset levels stopped at "
                   f"score {levels[-1].level:.3g} (the event is score >= 0), whose probability {upper:.2g} "
                   "bounds p; raise --budget or --ce-samples")
    found = len(rows) > 0
    weights = torch.full((len(rows),), p_hat / max(hits, 1), dtype=torch.float64)
    naive_calls = naive_calls_for(p_hat, estimate.relative_error)
    return RareEventResult(event.text, "subset", estimate, calls, naive_calls,
                           levels, None, _take(samples, rows) if found else None, u[rows] if found else None,
                           weights if found else None, upper, warning)
