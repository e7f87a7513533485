"""Subset simulation (Au and Beck 2001) in the standard-normal coordinates of a simulator.

Levels gamma_1 < gamma_2 < ... < 0 each keep the best ``rho`` share of a population of n; the
next population grows from those elites by Markov chains that leave the prior N(0, I)
invariant: preconditioned Crank-Nicolson moves u' = sqrt(1 - b^2) u + b xi, xi ~ N(0, I),
accepted when the score stays above the level (b adapted between levels towards 20-50%
acceptance). Nothing is weighted: p = prod_i p_i (the last one the event's share of the last
population). One run's error is Au and Beck's (eq. 29: each level's binomial error inflated by
its chains' correlation); it omits the correlation between levels, so by default 5 independent
runs are pooled and the error is their spread.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from ganforge.errors import GanforgeError
from ganforge.maths.importance import Estimate, naive_calls_for
from ganforge.rare.events import Event
from ganforge.rare.results import Level, RareEventResult, Simulator, concat, positive_int, take, where

#: the elite share of each level
SUBSET_RHO = 0.25
#: n -> (n prior codes, their samples, their scores)
PriorDraw = Callable[[int], tuple[torch.Tensor, Any, torch.Tensor]]
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


def subset_simulation(simulator: Simulator, event: Event, draw: PriorDraw, budget: int,
                      ce_samples: int | None, rho: float, max_iterations: int, keep: int,
                      gen: torch.Generator, replicates: int) -> RareEventResult:
    """``replicates`` independent subset simulations (``draw(n)``: n prior codes, their samples
    and scores) of budget/replicates calls each, n = ``ce_samples`` (default: a run's budget / 8)
    per level: the mean of their estimates, with the standard error of that mean from their
    spread (one run's Au-Beck error omits the correlation between levels and comes out about 1.6x
    too small)."""
    share = budget // replicates
    n = max(500, share // 8) if ce_samples is None else positive_int(ce_samples, "--ce-samples", "2500")
    if 2 * n > share:
        raise GanforgeError(f"--budget {budget} over {replicates} replicates is too small for subset "
                            f"simulation with {n} draws per level",
                            f"pass --budget {4 * n * replicates} or more, fewer --replicates, or --method mc")
    runs = [_subset_run(simulator, event, draw, share, n, rho, max_iterations, keep, gen)
            for _ in range(replicates)]
    if replicates == 1:
        return runs[0]
    values = torch.tensor([r.p for r in runs], dtype=torch.float64)
    hits = sum(r.estimate.hits for r in runs)
    estimate = Estimate(float(values.mean()), float(values.std()) / math.sqrt(replicates),
                        sum(r.estimate.n for r in runs), hits, float(hits))
    found = [r for r in runs if r.scenarios is not None]
    scenarios = concat([r.scenarios for r in found])
    codes = torch.cat([r.codes for r in found]) if found else None
    # a scenario of replicate r stands for p_r / hits_r; in the pooled estimate, 1/R of that
    weights = torch.cat([r.weights / replicates for r in found]) if found else None
    if scenarios is not None and keep:
        first = torch.arange(min(keep, len(codes)))
        scenarios, codes, weights = take(scenarios, first), codes[first], weights[first]
    warnings = [r.warning for r in runs if r.warning]
    bounds = [r.upper_bound for r in runs if r.upper_bound is not None]
    upper = max(bounds) if hits == 0 and bounds else None
    calls = sum(r.calls for r in runs)
    return RareEventResult(event.text, "subset", estimate, calls,
                           naive_calls_for(estimate.p, estimate.relative_error), runs[0].levels, None,
                           scenarios, codes, weights, upper,
                           f"{len(warnings)} of {replicates} replicates: {warnings[0]}" if warnings else None)


def _subset_run(simulator: Simulator, event: Event, draw: PriorDraw, budget: int, n: int, rho: float,
                max_iterations: int, keep: int, gen: torch.Generator) -> RareEventResult:
    """One subset simulation of ``budget`` calls, n per level, with pCN moves (module docstring)
    and Au and Beck's error."""
    u, samples, score = draw(n)
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
        state_u, state_s, state_x = u[seeds], score[seeds], take(samples, seeds)
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
            state_x = where(ok, new_samples, state_x)
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
        samples = take(concat(steps_x), chain_major)
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
                           levels, None, take(samples, rows) if found else None, u[rows] if found else None,
                           weights if found else None, upper, warning)
