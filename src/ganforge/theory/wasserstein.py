"""Result 4 (Arjovsky et al., 2017): the Wasserstein-1 distance through its dual, and why it
gives a learning signal where the JSD does not.

Kantorovich-Rubinstein duality, for a ground metric d on the sample space:

    W1_d(P, Q) = inf_{gamma in Pi(P, Q)} E_gamma d(x, y) = sup_{Lip_d(f) <= 1} E_P[f(x)] - E_Q[f(x)].

A critic f (an MLP) is trained to maximise E_P f - E_Q f on fixed samples of P and Q, and the
exact W1 between the same empirical measures is scipy.stats.wasserstein_distance (1D) or the
exact optimal-transport cost of POT's ``ot.emd2`` (2D; Euclidean ground cost unless stated).
Target: the critic's estimate within 5 % of the exact value.

* Gradient penalty (WGAN-GP, :func:`ganforge.maths.gradient_penalty`): the estimate is the dual
  value E_P f - E_Q f itself. The penalty is soft: if the critic's gradient norm is k on the
  interpolates, the objective k W1 - lambda (k - 1)^2 is maximal at k = 1 + W1 / (2 lambda), so
  the dual value overshoots W1 by a factor of about 1 + W1 / (2 lambda). lambda = 100 (rather
  than the GAN-training value 10) keeps that bias near 1 %. The penalty is on the Euclidean norm
  of grad f, so this is W1 for the Euclidean ground cost.
* Weight clipping (WGAN): clipping bounds the critic's Lipschitz constant only up to an unknown
  factor, so the estimate is (E_P f - E_Q f) / L with L measured on the samples,
  max |f(a) - f(b)| / d(a, b) over all pairs (in float64). f / L is 1-Lipschitz on the samples,
  so this is a valid lower bound of W1_d, tight only if f is an optimal potential. *Which* d:
  the weight box [-c, c]^d is the l_inf ball, so a clipped linear critic u.x has
  |u.(a - b)| <= c ||a - b||_1 - the box is exactly the l1-Lipschitz ball, whose vertices
  (the diagonals, Euclidean length c sqrt(d)) are where Adam drives the weights. A clipped
  critic therefore estimates W1 for the l1 (cityblock) ground cost. On the WGAN paper's
  Example 1 in 2D (P_0 = law of (0, Z), P_theta = law of (theta, Z), Z ~ U[0, 1]: a horizontal
  translation) its l1 estimate is within 5 % of the exact l1 W1 at every theta, while dividing
  by the Euclidean L instead loses up to 28 % of the Euclidean W1 (its gradient points along
  the diagonal, not along the translation).
* The clipped critic's capacity limit (Gulrajani et al., 2017, Sec. 3 and Fig. 1): between a
  ring of Gaussians and a Gaussian inside it the optimal potential is radial, but the clipped
  critic collapses to a linear function (``gradient_alignment_clip_2d``: its gradient points the
  same way at every sample), and no linear critic gets past the mean difference
  |E_P x - E_Q x| (``mean_difference_2d``), a third below W1 - in either ground metric. That
  number is *reported*, not a target: it is the reason WGAN-GP replaced clipping.

The second figure is the WGAN paper's Example 1: in 1D analytically (P_0 = U[0, w] and P_theta =
U[theta, theta + w] slide apart; once the supports are disjoint, theta >= w, JSD(P_0 || P_theta)
= log 2 is flat - no gradient for theta - while W1 = |theta| keeps growing linearly), and in 2D
with live critics trained at each theta.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import wasserstein_distance
from torch import nn

from ganforge import maths
from ganforge.errors import GanforgeError
from ganforge.theory._common import check, mlp, new_figure, reported, result, save

TARGET_REL = 0.05
SLIDE_WIDTH = 0.5
#: the shifts theta of the live 2D Example 1 (full run / quick run)
EXAMPLE1_THETAS = (0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
EXAMPLE1_THETAS_QUICK = (0.5, 1.5, 3.0)
#: the ground metric each critic's constraint bounds (POT / torch.cdist p-norm names)
GROUND_NORMS = {"euclidean": 2.0, "cityblock": 1.0}


def _samples_1d(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """P = N(0, 1); Q = 0.5 N(2.5, 0.5^2) + 0.5 N(4, 0.3^2)."""
    p = torch.randn(n, 1, generator=gen)
    k = torch.randint(2, (n, 1), generator=gen).float()
    q = torch.where(k > 0, 2.5 + 0.5 * torch.randn(n, 1, generator=gen),
                    4.0 + 0.3 * torch.randn(n, 1, generator=gen))
    return p, q


def _samples_2d(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """P = ring of 8 Gaussians (radius 2, std 0.1); Q = N((1, 0.5), 0.5^2 I)."""
    angle = torch.randint(8, (n,), generator=gen).float() * (2 * math.pi / 8)
    p = 2 * torch.stack([angle.cos(), angle.sin()], 1) + 0.1 * torch.randn(n, 2, generator=gen)
    q = torch.tensor([1.0, 0.5]) + 0.5 * torch.randn(n, 2, generator=gen)
    return p, q


def example1_2d(theta: float, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """WGAN's Example 1: P_0 = law of (0, Z), P_theta = law of (theta, Z), Z ~ U[0, 1], with
    independent draws of Z for the two (the supports are disjoint for every theta != 0)."""
    p = torch.stack([torch.zeros(n), torch.rand(n, generator=gen)], 1)
    q = torch.stack([torch.full((n,), float(theta)), torch.rand(n, generator=gen)], 1)
    return p, q


class _UnitBox(nn.Module):
    """A fixed affine map ``(x - centre) / scale`` (buffers, so weight clipping leaves it alone)."""

    def __init__(self, centre: torch.Tensor, scale: float) -> None:
        super().__init__()
        self.register_buffer("centre", centre)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.centre) / self.scale


def train_critic(p: torch.Tensor, q: torch.Tensor, *, mode: str, steps: int, seed: int,
                 clip: float = 0.05, gp_weight: float = 100.0, unit_box: bool | None = None) -> nn.Module:
    """Full-batch critic training: minimise E_Q f - E_P f (+ gp_weight * GP, or clip weights).

    With ``unit_box`` (default: on for the clipped critic only) the critic first maps the samples
    into the box [-1/2, 1/2]^d. Clipping bounds the biases as tightly as the weights, so a
    saturated first-layer unit ReLU(+-c x + b) has its kink at |x| <= 1; on raw data spread over
    [-4, 6] those kinks fall inside the data and double the slope where units overlap (f / L then
    loses about half of W1 in 1D)."""
    torch.manual_seed(seed)
    f = mlp(p.shape[1], width=64, depth=2, act=nn.ReLU)
    if unit_box or (unit_box is None and mode == "clip"):
        pooled = torch.cat([p, q])
        centre = pooled.mean(0)
        f = nn.Sequential(_UnitBox(centre, 2 * float((pooled - centre).abs().max())), f)
    opt = torch.optim.Adam(f.parameters(), lr=1e-3, betas=(0.5, 0.9))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        loss = maths.wasserstein_critic_loss(f(p).squeeze(1), f(q).squeeze(1))
        if mode == "gp":
            loss = loss + gp_weight * maths.gradient_penalty(f, p, q, generator=gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if mode == "clip":
            with torch.no_grad():
                for w in f.parameters():
                    w.clamp_(-clip, clip)
    return f


def lipschitz_constant(f: nn.Module, p: torch.Tensor, q: torch.Tensor, ground: str = "euclidean") -> float:
    """The Lipschitz constant of f restricted to the samples for the ground metric ``ground``
    ("euclidean" or "cityblock"), max |f(a) - f(b)| / d(a, b) over all pairs of sample points: the
    dual value only sees f there, and any f that is L-Lipschitz on the samples extends to an
    L-Lipschitz function on the whole space (McShane)."""
    norm = _ground_norm(ground)
    x = torch.cat([p, q]).double()
    # float64: in float32 the rounding of f on two very close samples dominates their slope.
    with torch.no_grad():
        values = copy.deepcopy(f).double()(x).squeeze(1)
    if x.shape[1] == 1:  # in 1D the steepest pair is a pair of neighbours in sorted order
        order = x[:, 0].argsort()
        dx, dv = x[order, 0].diff(), values[order].diff()
        keep = dx > 0
        return float((dv[keep].abs() / dx[keep]).max())
    best = 0.0
    for rows in torch.arange(len(x)).split(512):
        dist = torch.cdist(x[rows], x, p=norm)
        ratio = (values[rows, None] - values[None, :]).abs() / dist.clamp_min(1e-12)
        best = max(best, float(ratio.masked_fill(dist == 0, 0.0).max()))
    return best


def _ground_norm(ground: str) -> float:
    if ground not in GROUND_NORMS:
        raise GanforgeError(f"unknown ground metric {ground!r}", f"use one of {', '.join(GROUND_NORMS)}")
    return GROUND_NORMS[ground]


def critic_estimate(f: nn.Module, p: torch.Tensor, q: torch.Tensor,
                    ground: str = "euclidean") -> tuple[float, float]:
    """(raw dual value E_P f - E_Q f, the same divided by f's Lipschitz constant for ``ground``)."""
    with torch.no_grad():
        raw = float(f(p).mean() - f(q).mean())
    return raw, raw / lipschitz_constant(f, p, q, ground)


def gradient_alignment(f: nn.Module, x: torch.Tensor, degrees: float = 5.0) -> float:
    """The share of points x where grad f(x) points within ``degrees`` of its median direction
    (1 for a linear f; an optimal potential between a Gaussian and a ring around it is radial)."""
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(x).sum(), x)
    angle = torch.atan2(grad[:, 1], grad[:, 0])
    median = angle.median()
    gap = torch.remainder(angle - median + math.pi, 2 * math.pi) - math.pi
    return float((gap.abs() <= math.radians(degrees)).float().mean())


def exact_w1(p: torch.Tensor, q: torch.Tensor, ground: str = "euclidean") -> float:
    """W1 between the empirical measures of p and q: scipy in 1D (every ground metric is |a - b|
    there), POT's exact optimal transport with ``ground`` cost in 2D and up."""
    _ground_norm(ground)
    if p.shape[1] == 1:
        return float(wasserstein_distance(p[:, 0].numpy(), q[:, 0].numpy()))
    try:
        import ot
    except ImportError:
        raise GanforgeError("the 2D Wasserstein check needs the POT package",
                            "pip install pot (it is in ganforge's test extra)") from None
    a, b = p.double().numpy(), q.double().numpy()
    cost = ot.dist(a, b, metric=ground)
    return float(ot.emd2(np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b)), cost,
                         numItermax=10_000_000))


def sliding_supports(thetas: np.ndarray, width: float = SLIDE_WIDTH) -> tuple[np.ndarray, np.ndarray]:
    """JSD(U[0, w] || U[theta, theta + w]) and W1 between them, for each theta (numerically)."""
    x = np.linspace(-0.5, float(thetas.max()) + width + 0.5, 40001)
    p0 = ((x >= 0) & (x <= width)) / width
    jsd, w1 = [], []
    for theta in thetas:
        pt = ((x >= theta) & (x <= theta + width)) / width
        # Renormalise on the grid so that both are exact discrete distributions over x.
        pv, qv = p0 / p0.sum(), pt / pt.sum()
        jsd.append(maths.jensen_shannon(pv, qv))
        w1.append(wasserstein_distance(x, x, pv, qv))
    return np.array(jsd), np.array(w1)


def example1_critics(thetas: tuple[float, ...], n: int, steps: int, seed: int,
                     gen: torch.Generator) -> dict[str, list[float]]:
    """Train a clipped and a GP critic on WGAN's Example 1 at each shift theta; return the exact
    W1 for both ground metrics and the estimates: GP's dual value (Euclidean), the clipped
    critic's dual / L for the cityblock L (the metric its weight box bounds) and the Euclidean L."""
    out: dict[str, list[float]] = {k: [] for k in ("exact_euclidean", "exact_cityblock", "gp",
                                                   "clip_cityblock", "clip_euclidean")}
    for theta in thetas:
        p, q = example1_2d(theta, n, gen)
        out["exact_euclidean"].append(exact_w1(p, q))
        out["exact_cityblock"].append(exact_w1(p, q, "cityblock"))
        out["gp"].append(critic_estimate(train_critic(p, q, mode="gp", steps=steps, seed=seed), p, q)[0])
        clipped = train_critic(p, q, mode="clip", steps=steps, seed=seed)
        out["clip_cityblock"].append(critic_estimate(clipped, p, q, "cityblock")[1])
        out["clip_euclidean"].append(critic_estimate(clipped, p, q)[1])
    return out


def _max_relative_error(estimates: list[float], exact: list[float]) -> float:
    return max(abs(e - x) / x for e, x in zip(estimates, exact, strict=True))


def run(out_dir: Path, seed: int = 0, quick: bool = False) -> dict[str, Any]:
    steps, n = (500, 600) if quick else (1500, 1500)
    gen = torch.Generator().manual_seed(seed)
    numbers: dict[str, Any] = {"steps": steps, "samples": n}
    checks = []
    critics: dict[str, nn.Module] = {}
    for dim, sampler in ((1, _samples_1d), (2, _samples_2d)):
        p, q = sampler(n, gen)
        exact = exact_w1(p, q)
        numbers[f"w1_exact_{dim}d"] = exact
        for mode in ("clip", "gp"):
            f = train_critic(p, q, mode=mode, steps=steps, seed=seed)
            raw, normalised = critic_estimate(f, p, q)
            est = normalised if mode == "clip" else raw
            critics[f"{dim}d-{mode}"] = f
            numbers[f"w1_{mode}_{dim}d"] = est
            numbers[f"dual_raw_{mode}_{dim}d"] = raw
            numbers[f"lipschitz_{mode}_{dim}d"] = raw / normalised
            rel = abs(est - exact) / exact
            if dim == 2 and mode == "clip":
                checks.append(reported(f"2D ring vs Gaussian, clipping critic, dual / L vs W1 {exact:.3f}: "
                                       "relative error", rel, "capacity limit: the clipped critic is linear"))
                continue
            what = "clipping critic, dual / L" if mode == "clip" else "GP critic, dual value"
            pair = "1D" if dim == 1 else "2D ring vs Gaussian,"
            checks.append(check(f"{pair} {what} vs exact W1 {exact:.3f}: relative error", rel,
                                f"< {TARGET_REL}", rel < TARGET_REL))
        if dim == 1:
            p1, q1 = p, q
    # The radial pair's capacity limit, measured: the clipped critic is linear, a linear critic
    # cannot beat the mean difference, and the l1 ground metric does not rescue it.
    numbers["gradient_alignment_clip_2d"] = gradient_alignment(critics["2d-clip"], torch.cat([p, q]))
    numbers["gradient_alignment_gp_2d"] = gradient_alignment(critics["2d-gp"], torch.cat([p, q]))
    numbers["mean_difference_2d"] = float((p.mean(0) - q.mean(0)).norm())
    numbers["w1_exact_2d_cityblock"] = exact_w1(p, q, "cityblock")
    numbers["w1_clip_2d_cityblock"] = critic_estimate(critics["2d-clip"], p, q, "cityblock")[1]
    p2, q2 = p, q

    thetas = EXAMPLE1_THETAS_QUICK if quick else EXAMPLE1_THETAS
    live = example1_critics(thetas, n, steps, seed, gen)
    numbers["example1_theta"] = list(thetas)
    numbers.update({f"example1_{k}": v for k, v in live.items()})
    gp_err = _max_relative_error(live["gp"], live["exact_euclidean"])
    clip_err = _max_relative_error(live["clip_cityblock"], live["exact_cityblock"])
    checks += [
        check("2D Example 1, GP critic vs exact W1 (Euclidean): max relative error over theta", gp_err,
              f"< {TARGET_REL}", gp_err < TARGET_REL),
        check("2D Example 1, clipping critic vs exact W1 (cityblock): max relative error over theta",
              clip_err, f"< {TARGET_REL}", clip_err < TARGET_REL),
        reported("2D Example 1, clipping critic / Euclidean L vs Euclidean W1: max relative error",
                 _max_relative_error(live["clip_euclidean"], live["exact_euclidean"]),
                 "the weight box bounds the l1-Lipschitz constant"),
    ]

    slide_thetas = np.linspace(0.0, 3.0, 61)
    jsd, w1 = sliding_supports(slide_thetas)
    disjoint = slide_thetas >= SLIDE_WIDTH + 1e-9
    jsd_dev = float(np.abs(jsd[disjoint] - math.log(2)).max())
    w1_dev = float(np.abs(w1 - slide_thetas).max())
    numbers.update(slide_theta=slide_thetas.tolist(), slide_jsd=jsd.tolist(), slide_w1=w1.tolist())
    checks += [check("disjoint supports: max |JSD - log 2|", jsd_dev, "< 1e-3", jsd_dev < 1e-3),
               check("sliding supports: max |W1 - theta|", w1_dev, "< 1e-3", w1_dev < 1e-3)]

    figures = [_critic_figure(out_dir, (p1, q1), (p2, q2), critics, numbers),
               _slide_figure(out_dir, slide_thetas, jsd, w1, numbers)]
    return result("wasserstein", figures, numbers, checks)


def _critic_figure(out_dir: Path, pair_1d: tuple[torch.Tensor, torch.Tensor],
                   pair_2d: tuple[torch.Tensor, torch.Tensor], critics: dict[str, nn.Module],
                   numbers: dict[str, Any]) -> Path:
    """1D: both critics f / L over the samples' histograms; 2D: contours of each critic f / L over
    the ring and the Gaussian (the clipped one is a plane, the GP one bends round the ring)."""
    fig, axes = new_figure(width=16.0, height=4.4, ncols=3)
    ax = axes[0]
    p, q = pair_1d
    bins = np.linspace(-4, 6, 81)
    ax.hist(p[:, 0].numpy(), bins, density=True, alpha=0.4, color="tab:blue", label="P samples")
    ax.hist(q[:, 0].numpy(), bins, density=True, alpha=0.4, color="tab:orange", label="Q samples")
    x = torch.linspace(-4, 6, 500)[:, None]
    twin = ax.twinx()
    for mode, colour in (("clip", "tab:red"), ("gp", "k")):
        with torch.no_grad():
            v = critics[f"1d-{mode}"](x).squeeze(1).numpy()
        v = (v - v.mean()) / numbers[f"lipschitz_{mode}_1d"]
        twin.plot(x[:, 0].numpy(), v, color=colour, label=f"critic f / L ({mode}): estimate "
                  f"{numbers[f'w1_{mode}_1d']:.3f}")
    twin.set_ylabel("f(x) / L")
    ax.set_xlabel("x")
    ax.set_title(f"1D critics, exact W1 = {numbers['w1_exact_1d']:.3f}")
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + twin.get_legend_handles_labels()[1]
    ax.legend(handles, labels, fontsize="small", loc="upper left")

    p, q = pair_2d
    grid = torch.linspace(-3, 3, 121)
    xx, yy = torch.meshgrid(grid, grid, indexing="xy")
    points = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    for ax, mode in zip(axes[1:], ("clip", "gp"), strict=True):
        with torch.no_grad():
            v = critics[f"2d-{mode}"](points).reshape(xx.shape) / numbers[f"lipschitz_{mode}_2d"]
        levels = ax.contourf(xx.numpy(), yy.numpy(), (v - v.mean()).numpy(), levels=20, cmap="RdBu_r")
        fig.colorbar(levels, ax=ax, label="f(x) / L")
        ax.scatter(*p[::6].T.numpy(), s=2, color="tab:blue", label="P: ring")
        ax.scatter(*q[::6].T.numpy(), s=2, color="tab:orange", label="Q: Gaussian")
        name = "weight clipping" if mode == "clip" else "gradient penalty"
        ax.set_title(f"2D {name}: {numbers[f'w1_{mode}_2d']:.3f} vs W1 {numbers['w1_exact_2d']:.3f}")
        ax.set_aspect("equal")
        ax.legend(fontsize="small", loc="lower left", markerscale=4)
    return save(fig, out_dir, "wasserstein_critic.png")


def _slide_figure(out_dir: Path, thetas: np.ndarray, jsd: np.ndarray, w1: np.ndarray,
                  numbers: dict[str, Any]) -> Path:
    fig, (ax, live) = new_figure(width=12.0, height=4.2, ncols=2)
    ax.plot(thetas, jsd, color="tab:red", lw=2, label="JSD(P_0 || P_theta)")
    ax.axhline(math.log(2), color="tab:red", ls=":", lw=1, label="log 2")
    ax.plot(thetas, w1, color="tab:blue", lw=2, label="W1(P_0, P_theta)")
    ax.axvline(SLIDE_WIDTH, color="gray", ls="--", lw=1, label="supports become disjoint")
    ax.set_xlabel("theta (shift of U[theta, theta + 0.5] from U[0, 0.5])")
    ax.set_title("1D, exact: JSD is flat, W1 is linear")
    ax.legend(fontsize="small")

    t = numbers["example1_theta"]
    live.plot(t, numbers["example1_exact_euclidean"], color="tab:blue", lw=2,
              label="exact W1, Euclidean (POT)")
    live.plot(t, numbers["example1_exact_cityblock"], color="tab:cyan", lw=1, ls="--",
              label="exact W1, cityblock (POT)")
    live.plot(t, numbers["example1_gp"], "ko", label="GP critic, dual value")
    live.plot(t, numbers["example1_clip_cityblock"], "r^", label="clipped critic, dual / L (cityblock)")
    live.plot(t, numbers["example1_clip_euclidean"], "rx", label="clipped critic, dual / L (Euclidean)")
    live.axhline(math.log(2), color="tab:red", ls=":", lw=1, label="JSD = log 2 for every theta > 0")
    live.set_xlabel("theta (P_theta = law of (theta, Z), Z ~ U[0, 1])")
    live.set_title("2D Example 1, trained critics at each theta")
    live.legend(fontsize="small")
    return save(fig, out_dir, "wasserstein_jsd_vs_w1.png")
