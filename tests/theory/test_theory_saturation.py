"""Result 3: the saturating generator loss loses its gradient as D(G(z)) -> 0."""

from __future__ import annotations

import numpy as np
import pytest

from ganforge.theory import saturation
from tests.theory._helpers import assert_pngs


def test_gradients_match_the_closed_forms_and_the_ratio_vanishes(tmp_path):
    res = saturation.run(tmp_path, quick=True)
    n = res["numbers"]
    d = np.array(n["d_values"])
    np.testing.assert_allclose(n["grad_saturating"], -saturation.W * d, rtol=1e-9)
    np.testing.assert_allclose(n["grad_non_saturating"], -saturation.W * (1 - d), rtol=1e-9)
    np.testing.assert_allclose(n["ratio"], d / (1 - d), rtol=1e-9)
    assert n["ratio"][-1] < 1e-5 < n["ratio"][0]
    assert all(c["passed"] for c in res["checks"])
    assert_pngs(res, tmp_path)


def test_generator_gradients_are_autograd_through_the_maths_losses():
    sat, ns = saturation.generator_gradients(np.array([0.5]))
    assert sat[0] == pytest.approx(-saturation.W * 0.5) and ns[0] == pytest.approx(-saturation.W * 0.5)
