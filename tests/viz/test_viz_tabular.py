"""The table figures: every column's distribution, real over synthetic, and the association
matrices with their difference."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from ganforge.viz.tabular import association_matrix, plot_correlation_difference, plot_marginals

TYPES = {"age": "integer", "income": "continuous", "sex": "categorical", "smoker": "boolean"}


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, n)
    return pd.DataFrame({"age": age, "income": (age * 900 + rng.normal(0, 5000, n)).round(2),
                         "sex": rng.choice(["f", "m", None], n), "smoker": rng.choice([True, False], n)})


def test_marginals_draw_one_panel_per_column_with_or_without_the_real_rows(tmp_path):
    real, fake = _frame(), _frame(seed=1)
    for reference, name in ((real, "both.png"), (None, "alone.png")):
        path = plot_marginals(reference, fake, TYPES, tmp_path / name, title="t")
        with Image.open(path) as im:
            assert im.size[0] > 300 and im.size[1] > 150


def test_the_association_matrix_is_pearson_for_numbers_and_zero_difference_for_a_copy(tmp_path):
    real = _frame()
    names, matrix = association_matrix(real, TYPES)
    assert names == list(TYPES)
    np.testing.assert_allclose(matrix[0, 1], np.corrcoef(real["age"], real["income"])[0, 1], rtol=1e-10)
    assert matrix[0, 1] > 0.9 and np.allclose(np.diag(matrix), 1.0)
    _, copy = association_matrix(real.copy(), TYPES)
    np.testing.assert_array_equal(matrix, copy)
    assert plot_correlation_difference(real, real.sample(frac=1.0, random_state=0), TYPES,
                                       tmp_path / "c.png").is_file()
