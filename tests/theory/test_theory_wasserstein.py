"""Result 4: critic estimates of W1 against scipy (1D) and POT (2D); JSD flat vs W1 linear."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.theory import wasserstein
from tests.theory._helpers import assert_pngs


def test_sliding_supports_jsd_is_log2_and_w1_is_the_shift():
    thetas = np.array([0.0, 0.25, 0.5, 1.0, 2.5])
    jsd, w1 = wasserstein.sliding_supports(thetas)
    assert jsd[0] == pytest.approx(0.0, abs=1e-12)
    assert 0 < jsd[1] < math.log(2)
    np.testing.assert_allclose(jsd[2:], math.log(2), atol=1e-3)
    np.testing.assert_allclose(w1, thetas, atol=1e-3)


def test_lipschitz_constant_of_a_known_function():
    class Abs3(torch.nn.Module):
        def forward(self, x):
            return 3 * x.norm(dim=1, keepdim=True)

    g = torch.Generator().manual_seed(0)
    for dim in (1, 2):
        p, q = torch.randn(200, dim, generator=g), torch.randn(200, dim, generator=g) + 1
        assert wasserstein.lipschitz_constant(Abs3(), p, q) == pytest.approx(3.0, rel=1e-6)


def test_exact_w1_in_2d_of_a_translation_is_the_shift():
    g = torch.Generator().manual_seed(0)
    p = torch.randn(300, 2, generator=g)
    assert wasserstein.exact_w1(p, p + torch.tensor([0.6, 0.8])) == pytest.approx(1.0, rel=1e-6)


def test_lipschitz_constant_depends_on_the_ground_metric():
    """f(x) = 3 (x1 + x2): its gradient (3, 3) has l_inf norm 3 and l2 norm 3 sqrt 2, so it is
    3-Lipschitz for the cityblock metric and 3 sqrt(2)-Lipschitz for the Euclidean one."""
    f = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        f.weight.fill_(3.0)
    g = torch.Generator().manual_seed(0)
    p, q = torch.randn(300, 2, generator=g), torch.randn(300, 2, generator=g)
    assert wasserstein.lipschitz_constant(f, p, q, "cityblock") == pytest.approx(3.0, rel=1e-3)
    assert wasserstein.lipschitz_constant(f, p, q) == pytest.approx(3.0 * math.sqrt(2), rel=1e-3)


def test_exact_w1_of_a_translation_in_both_ground_metrics():
    """Translating by t costs ||t|| in any norm: the plan x -> x + t costs ||t||, and the potential
    that is linear along t's dual direction certifies it from below."""
    g = torch.Generator().manual_seed(0)
    p = torch.randn(300, 2, generator=g)
    t = torch.tensor([0.6, -0.8])
    assert wasserstein.exact_w1(p, p + t, "cityblock") == pytest.approx(1.4, rel=1e-6)
    assert wasserstein.exact_w1(p, p + t, "euclidean") == pytest.approx(1.0, rel=1e-6)


def test_unknown_ground_metric_is_a_clear_error():
    p = torch.zeros(3, 2)
    with pytest.raises(GanforgeError, match="unknown ground metric 'chebyshev'"):
        wasserstein.exact_w1(p, p, "chebyshev")


def test_a_clipped_linear_critic_is_l1_lipschitz():
    """The weight box [-c, c]^d is the ball of l1-Lipschitz linear maps: every u in it has
    |u.(a - b)| <= c ||a - b||_1, and its vertices reach c sqrt(d) in the Euclidean sense."""
    g = torch.Generator().manual_seed(0)
    c, x = 0.05, torch.randn(400, 2, generator=g)
    for _ in range(20):
        f = nn.Linear(2, 1)
        with torch.no_grad():
            f.weight.uniform_(-c, c, generator=g)
        assert wasserstein.lipschitz_constant(f, x[:200], x[200:], "cityblock") <= c * (1 + 1e-9)
    vertex = nn.Linear(2, 1)
    with torch.no_grad():
        vertex.weight.fill_(c)
    euclidean = wasserstein.lipschitz_constant(vertex, x[:200], x[200:])
    assert euclidean == pytest.approx(c * math.sqrt(2), rel=1e-3)


def test_critic_estimates_quick(tmp_path):
    res = wasserstein.run(tmp_path, seed=0, quick=True)
    n = res["numbers"]
    for dim in (1, 2):
        exact = n[f"w1_exact_{dim}d"]
        # f / L is 1-Lipschitz on the samples: the normalised dual is a lower bound of W1
        assert n[f"w1_clip_{dim}d"] <= exact * (1 + 1e-6)
        assert n[f"dual_raw_gp_{dim}d"] / n[f"lipschitz_gp_{dim}d"] <= exact * (1 + 1e-6)
    assert n["w1_clip_2d_cityblock"] <= n["w1_exact_2d_cityblock"] * (1 + 1e-6)
    assert abs(n["w1_gp_1d"] - n["w1_exact_1d"]) / n["w1_exact_1d"] < wasserstein.TARGET_REL
    # 1D: the optimal potential is linear and the box-mapped clipped critic finds it
    assert abs(n["w1_clip_1d"] - n["w1_exact_1d"]) / n["w1_exact_1d"] < wasserstein.TARGET_REL
    assert abs(n["w1_gp_2d"] - n["w1_exact_2d"]) / n["w1_exact_2d"] < 2 * wasserstein.TARGET_REL
    # 2D ring vs Gaussian, the capacity limit: the clipped critic is linear, and a linear critic
    # cannot beat the mean difference, which lies a third below W1 here; the GP critic is not
    # linear. The cityblock metric does not rescue it (still more than 20 % short).
    assert n["gradient_alignment_clip_2d"] > 0.9 and n["gradient_alignment_gp_2d"] < 0.5
    assert n["w1_clip_2d"] <= n["mean_difference_2d"] * 1.05
    assert n["mean_difference_2d"] < 0.75 * n["w1_exact_2d"]
    assert n["w1_clip_2d_cityblock"] < 0.8 * n["w1_exact_2d_cityblock"]
    # 2D Example 1 (a translation): GP gives the Euclidean W1; the clipped critic gives the
    # cityblock W1, and divided by its Euclidean L it falls short at some theta (the diagonal)
    thetas = n["example1_theta"]
    assert len(thetas) == len(wasserstein.EXAMPLE1_THETAS_QUICK) >= 3
    for key, exact in (("gp", "exact_euclidean"), ("clip_cityblock", "exact_cityblock")):
        for est, w1 in zip(n[f"example1_{key}"], n[f"example1_{exact}"], strict=True):
            assert abs(est - w1) / w1 < wasserstein.TARGET_REL
    np.testing.assert_allclose(n["example1_exact_euclidean"], thetas, rtol=0.01)
    assert min(e / w for e, w in zip(n["example1_clip_euclidean"], n["example1_exact_euclidean"],
                                     strict=True)) < 0.9
    by_name = {c["check"]: c for c in res["checks"]}
    reported = [c for c in res["checks"] if c["passed"] is None]
    assert len(reported) == 2 and all("clipping" in c["check"] for c in reported)
    assert all(c["passed"] for name, c in by_name.items() if "Example 1" in name and c["passed"] is not None)
    slide = [c for c in res["checks"] if "supports" in c["check"]]
    assert len(slide) == 2 and all(c["passed"] for c in slide)
    assert len(res["figures"]) == 2
    assert_pngs(res, tmp_path)


@pytest.mark.slow
def test_critic_estimates_full(tmp_path):
    """The full run meets every target; only the two documented clipping limits are reported."""
    res = wasserstein.run(tmp_path, seed=0)
    targets = [c for c in res["checks"] if c["passed"] is not None]
    assert len(targets) == 7 and all(c["passed"] for c in targets), targets


def test_gradient_alignment_of_linear_and_radial_functions():
    x = torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    linear = nn.Linear(2, 1)
    assert wasserstein.gradient_alignment(linear, x) == 1.0

    class Radial(nn.Module):
        def forward(self, x):
            return x.norm(dim=1, keepdim=True)

    assert wasserstein.gradient_alignment(Radial(), x) < 0.1  # about 10 / 360 of the directions


def test_clipped_critic_needs_the_box_map():
    """On raw inputs the clipped critic's kinks sit inside the data and f / L falls far below W1;
    on box-mapped inputs it is tight (1D, where the optimal potential is linear)."""
    g = torch.Generator().manual_seed(1)
    p, q = wasserstein._samples_1d(400, g)
    exact = wasserstein.exact_w1(p, q)

    def estimate(box: bool) -> float:
        f = wasserstein.train_critic(p, q, mode="clip", steps=400, seed=1, unit_box=box)
        return wasserstein.critic_estimate(f, p, q)[1]

    assert abs(estimate(True) - exact) / exact < wasserstein.TARGET_REL
    assert estimate(False) < 0.8 * exact
