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
``subset``      subset simulation (:mod:`ganforge.rare.subset`): the same ladder of levels, each
                population grown from the last one's elites by Markov chains that keep the
                prior invariant; nothing weighted. For events that depend on many latent
                directions, where Gaussian proposals degenerate.

Every generator call counts against ``budget`` (the iterations included). The iterations stop
early when the level has not risen for ``STALL_ITERATIONS`` of them (a statistic capped below the
threshold: the event may be out of the generator's reach), and the rest of the budget is spent
on the estimate. ``defensive`` > 0 draws that share of the final codes from the prior
(Hesterberg 1995): weights are then bounded by 1/defensive. When no draw reaches the event the
estimate is 0 with a warning and an upper bound (naive MC: 1 - 0.05^(1/N), the one-sided 95%
bound; CE: the estimated probability of the highest level reached, which contains the event).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ganforge.errors import GanforgeError
from ganforge.maths.importance import importance_estimate, naive_calls_for, naive_estimate
from ganforge.rare.events import Event
from ganforge.rare.proposals import GaussianProposal, MixtureProposal, Proposal, log_ratio
from ganforge.rare.results import (
    Level,
    RareEventResult,
    Simulator,
    concat,
    fraction,
    positive_int,
    take,
)
from ganforge.rare.subset import SUBSET_RHO, subset_simulation

__all__ = ["METHODS", "Level", "RareEventResult", "Simulator", "estimate_rare_event"]

METHODS = ("mc", "ce-is", "ce-mixture", "subset")
#: the elite share of each cross-entropy level
CE_RHO = 0.1
#: iterations without a higher level after which the cross-entropy method stops
STALL_ITERATIONS = 4
#: the largest latent dimension whose CE proposal has a full covariance under ``covariance=auto``
FULL_COVARIANCE_UP_TO = 10


class _Scenarios:
    """The first ``keep`` in-event samples, their codes and weights."""

    def __init__(self, keep: int) -> None:
        self.keep, self.samples, self.codes, self.weights, self.count = keep, [], [], [], 0

    def add(self, samples: Any, z: torch.Tensor, hit: torch.Tensor, log_w: torch.Tensor) -> None:
        room = self.keep - self.count
        if room <= 0 or not hit.any():
            return
        rows = hit.nonzero().flatten()[:room]
        self.samples.append(take(samples, rows))
        self.codes.append(z[rows])
        self.weights.append(log_w[rows].exp())
        self.count += len(rows)


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
    budget = positive_int(budget, "--budget", "100000")
    batch_size = positive_int(batch_size, "--batch-size", "10000")
    keep = positive_int(keep, "--keep", "64") if keep else 0
    if rho is None:
        rho = SUBSET_RHO if method == "subset" else CE_RHO
    rho, defensive = fraction(rho, "--rho"), fraction(defensive, "--defensive", low_open=False)
    ok = isinstance(variance_floor, (int, float)) and not isinstance(variance_floor, bool)
    if not ok or not math.isfinite(variance_floor) or variance_floor < 0:
        raise GanforgeError(f"--variance-floor must be a number >= 0, got {variance_floor!r}",
                            "pass e.g. --variance-floor 1 (the N(0, I) prior's variance)")
    if covariance not in ("auto", "full", "diag"):
        raise GanforgeError(f"unknown covariance {covariance!r}", "choose one of: auto, full, diag")
    components = positive_int(components, "--components", "2")
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
        return subset_simulation(simulator, event, lambda n: draw(None, n)[:3], budget, ce_samples, rho,
                                 max_iterations, keep, gen, positive_int(replicates, "--replicates", "5"))
    levels: list[Level] = []
    calls, proposal = 0, None
    reached = method == "mc"
    best_level = -math.inf
    if method != "mc":
        n_iter = positive_int(ce_samples, "--ce-samples", "2000") if ce_samples is not None else \
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
                           concat(scenarios.samples), concat(scenarios.codes) if scenarios.codes else None,
                           concat(scenarios.weights) / len(hit) if scenarios.weights else None, upper,
                           warning)


