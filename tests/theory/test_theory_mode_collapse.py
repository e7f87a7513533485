"""Result 5: a vanilla GAN on the PacGAN ring, its samples over training as a strip."""

from __future__ import annotations

from ganforge.theory import mode_collapse
from tests.theory._helpers import assert_pngs


def test_mode_collapse_strip_quick(tmp_path):
    res = mode_collapse.run(tmp_path, seed=0, quick=True)
    n = res["numbers"]
    assert len(n["steps"]) == mode_collapse.N_SNAPSHOTS and n["steps"] == sorted(n["steps"])
    assert all(0 <= m <= 8 for m in n["modes"]) and all(0 <= h <= 1 for h in n["high_quality"])
    assert sum(n["final_mode_histogram"]) == round(n["high_quality"][-1] * mode_collapse.N_SAMPLES)
    assert_pngs(res, tmp_path)
