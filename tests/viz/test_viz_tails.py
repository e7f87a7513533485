"""The tail QQ figure (viz.tails.plot_pareto_qq, and data.vectors.plot_tail_qq from raw samples)
writes a valid PNG atomically and refuses bad input in one line."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from ganforge.data.vectors import plot_tail_qq
from ganforge.errors import GanforgeError
from ganforge.viz import plot_pareto_qq


def test_writes_a_png_with_one_series_per_name(tmp_path):
    rng = np.random.default_rng(0)
    series = {"pareto 2": rng.pareto(2.0, 5_000) + 1, "gaussian": rng.standard_normal(5_000)}
    path = plot_tail_qq(series, tmp_path / "sub" / "qq.png", k=200)
    assert path == tmp_path / "sub" / "qq.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert [p.name for p in path.parent.iterdir()] == ["qq.png"]  # no temporary left behind
    plot_tail_qq({"only": series["gaussian"]}, path)  # default k, overwrites in place
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("series, k, words", [
    ({}, None, "at least one named sample"),
    ({"a": np.array([1.0, np.nan] * 30)}, None, "series 'a'"),
    ({"a": np.ones(5)}, None, "at least 10 positive"),
    ({"a": np.arange(1.0, 50.0)}, 60, "k=60"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, series, k, words):
    with pytest.raises(GanforgeError) as err:
        plot_tail_qq(series, tmp_path / "qq.png", k=k)
    assert words in str(err.value) and "\n" not in str(err.value)
    assert not list(tmp_path.iterdir())


def test_the_points_figure_refuses_mismatched_points(tmp_path):
    with pytest.raises(GanforgeError, match="series 'a' has 3 quantiles and 2 log-excesses"):
        plot_pareto_qq({"a": (np.ones(3), np.ones(2), 2.0)}, tmp_path / "qq.png")
    path = plot_pareto_qq({"a": (np.arange(1.0, 4.0), np.arange(3.0), np.inf)}, tmp_path / "qq.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # an infinite index draws no line
