"""Result 2: V(D*, G) = -log 4 + 2 JSD, checked by integration and by Monte Carlo."""

from __future__ import annotations

import math

import pytest

from ganforge.theory import value_at_optimum
from tests.theory._helpers import assert_pngs


def test_value_at_optimum_quick(tmp_path):
    res = value_at_optimum.run(tmp_path, seed=0, quick=True)
    n = res["numbers"]
    assert n["v_integral"] == pytest.approx(-math.log(4) + 2 * n["jsd"], abs=1e-9)
    assert 0 < n["jsd"] < math.log(2)
    assert abs(n["v_monte_carlo"] - n["v_integral"]) < value_at_optimum.TARGET
    assert n["v_same_integral"] == pytest.approx(-math.log(4), abs=1e-9)
    assert abs(n["v_same_monte_carlo"] + math.log(4)) < value_at_optimum.TARGET
    assert all(c["passed"] for c in res["checks"])
    assert_pngs(res, tmp_path)


@pytest.mark.slow
def test_value_at_optimum_full(tmp_path):
    res = value_at_optimum.run(tmp_path, seed=1)
    assert all(c["passed"] for c in res["checks"])
