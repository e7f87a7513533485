"""Result 1: a trained D converges to D* = p_data / (p_data + p_g)."""

from __future__ import annotations

import pytest

from ganforge.theory import optimal_discriminator
from tests.theory._helpers import assert_pngs


def test_trained_discriminator_matches_d_star_quick(tmp_path):
    res = optimal_discriminator.run(tmp_path, seed=0, quick=True)
    assert res["numbers"]["mae"] < optimal_discriminator.TARGET_MAE
    assert all(c["passed"] for c in res["checks"])
    assert_pngs(res, tmp_path)


@pytest.mark.slow
def test_trained_discriminator_matches_d_star_full(tmp_path):
    res = optimal_discriminator.run(tmp_path, seed=1)
    assert res["numbers"]["mae"] < optimal_discriminator.TARGET_MAE / 2
