"""The robustness figures write PNGs atomically, draw what they are given, and refuse bad input."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from ganforge.errors import GanforgeError
from ganforge.viz.robustness import plot_accuracy_against_eps, plot_purification_strip


def test_the_strip_draws_one_row_per_batch(tmp_path):
    rng = np.random.default_rng(0)
    rows = {"clean": rng.uniform(size=(5, 1, 28, 28)), "attacked": rng.uniform(size=(5, 1, 28, 28))}
    path = plot_purification_strip(rows, tmp_path / "strip.png")
    image = imread(path)
    assert image.shape[1] > image.shape[0] > 100  # 5 images wide, 2 rows high
    assert [p.name for p in tmp_path.iterdir()] == ["strip.png"]


@pytest.mark.parametrize(
    "rows", [{}, {"a": np.zeros((2, 1, 8, 8)), "b": np.zeros((3, 1, 8, 8))}, {"a": np.zeros((2, 3, 8, 8))}]
)
def test_a_strip_of_mismatched_batches_is_refused(rows, tmp_path):
    with pytest.raises(GanforgeError):
        plot_purification_strip(rows, tmp_path / "s.png")
    assert not (tmp_path / "s.png").exists()


def test_accuracy_against_eps_draws_every_defence_and_threat(tmp_path):
    rows = [
        {"defense": d, "attack": a, "threat": t, "mean": m, "se": 0.01}
        for d, base in (("none", 0.9), ("defense-gan", 0.8))
        for a, t, m in (
            ("clean", "none", base),
            ("fgsm-0.1", "oblivious", base / 2),
            ("fgsm-0.3", "oblivious", base / 4),
            ("fgsm-0.1", "adaptive", base / 3),
            ("pgd40-0.1", "oblivious", base / 5),
            ("pgd40-0.3", "adaptive", 0.0),
        )
    ]
    path = plot_accuracy_against_eps(rows, tmp_path / "eps.png")
    image = imread(path)
    assert image.shape[1] > 1.5 * image.shape[0]  # two panels side by side
    with pytest.raises(GanforgeError, match="no accuracies"):
        plot_accuracy_against_eps([], tmp_path / "none.png")
