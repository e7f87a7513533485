"""read_metrics and the training-curve plots written from metrics.csv."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from PIL import Image

from ganforge.viz import ema, plot_all, plot_grad_norms, read_metrics

COLUMNS = [
    "step", "epoch", "images_seen", "loss_D", "loss_G", "real_score", "fake_score",
    "grad_norm_G", "grad_norm_D", "lr_G", "lr_D", "sec_per_step",
]  # fmt: skip


def write_csv(path, rows: int, columns: list[str] = COLUMNS, seed: int = 0):
    rng = np.random.default_rng(seed)
    lines = [",".join(columns)]
    for step in range(rows):
        values = rng.uniform(0.1, 2.0, len(columns) - 1)
        lines.append(",".join([str(step)] + [f"{v:.5g}" for v in values]))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_read_metrics_parses_numbers_and_tolerates_gaps_and_extra_columns(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(
        "step,loss_D,loss_G,fid,note\n"
        "1,0.5,0.7,,x\n"
        "2,0.25,,12.5,y\n"
        "3,0.125\n"  # a row cut short (e.g. still being written)
    )
    m = read_metrics(path)
    assert set(m) == {"step", "loss_D", "loss_G", "fid", "note"}
    np.testing.assert_array_equal(m["step"], [1, 2, 3])
    np.testing.assert_array_equal(m["loss_D"], [0.5, 0.25, 0.125])
    assert m["loss_G"][0] == 0.7 and math.isnan(m["loss_G"][1]) and math.isnan(m["loss_G"][2])
    assert math.isnan(m["fid"][0]) and m["fid"][1] == 12.5
    assert np.isnan(m["note"]).all()
    assert all(v.dtype == np.float64 for v in m.values())


def test_read_metrics_missing_file_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_metrics(tmp_path / "nope.csv")


def test_plot_all_writes_three_readable_pngs(tmp_path):
    csv_path = write_csv(tmp_path / "metrics.csv", rows=50)
    out = tmp_path / "run" / "plots"
    paths = plot_all(csv_path, out)
    assert paths == [out / "losses.png", out / "scores.png", out / "grad_norms.png"]
    for p in paths:
        with Image.open(p) as im:
            assert im.format == "PNG"
            pixels = np.asarray(im.convert("RGB")).reshape(-1, 3)
        assert len(np.unique(pixels, axis=0)) > 10
    assert sorted(p.name for p in out.iterdir()) == ["grad_norms.png", "losses.png", "scores.png"]


@pytest.mark.parametrize("text", ["", ",".join(COLUMNS) + "\n"])
def test_zero_rows_writes_nothing(tmp_path, text):
    csv_path = tmp_path / "metrics.csv"
    csv_path.write_text(text)
    assert plot_all(csv_path, tmp_path / "plots") == []
    assert not (tmp_path / "plots").exists()


def test_missing_columns_and_all_nan_series_still_plot_without_warnings(tmp_path):
    csv_path = write_csv(tmp_path / "metrics.csv", rows=5, columns=["step", "loss_D", "fid"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # no D scores or critic values logged (e.g. a VAE): losses and gradient norms only
        assert len(plot_all(csv_path, tmp_path / "plots")) == 2
        # All-NaN and all-zero gradient norms: nothing to put on a log axis.
        metrics = {"step": np.arange(3.0), "grad_norm_G": np.full(3, np.nan)}
        metrics["grad_norm_D"] = np.zeros(3)
        path = plot_grad_norms(metrics, tmp_path / "g.png")
    assert path.stat().st_size > 0


def test_ema():
    np.testing.assert_allclose(ema(np.array([0.0, 10.0, 10.0]), span=3), [0.0, 5.0, 7.5])
    np.testing.assert_array_equal(ema(np.array([1.0, 2.0, 3.0]), span=1), [1.0, 2.0, 3.0])
    out = ema(np.array([np.nan, 4.0, np.inf, 8.0]), span=3)
    assert math.isnan(out[0])
    np.testing.assert_allclose(out[1:], [4.0, 4.0, 6.0])
    np.testing.assert_allclose(ema(np.full(500, 2.5)), 2.5)


def test_critic_runs_plot_critic_values_not_probabilities(tmp_path):
    """A Wasserstein/hinge run logs raw critic values: scores.png shows them without a [0, 1] axis."""
    csv_path = write_csv(tmp_path / "metrics.csv", rows=20,
                         columns=["step", "loss_D", "loss_G", "critic_real", "critic_fake", "critic_gap"])
    paths = plot_all(csv_path, tmp_path / "plots")
    assert [p.name for p in paths] == ["losses.png", "scores.png", "grad_norms.png"]
    from ganforge.viz.curves import plot_critic, read_metrics

    metrics = read_metrics(csv_path)
    metrics["critic_real"] = metrics["critic_real"] * 0 + 7.5  # far outside [0, 1]
    import matplotlib

    captured = {}
    original = matplotlib.figure.Figure.savefig

    def spy(self, *args, **kwargs):
        captured["ylim"] = self.axes[0].get_ylim()
        captured["labels"] = [t.get_text() for t in self.axes[0].get_legend().get_texts()]
        return original(self, *args, **kwargs)

    matplotlib.figure.Figure.savefig = spy
    try:
        plot_critic(metrics, tmp_path / "critic.png")
    finally:
        matplotlib.figure.Figure.savefig = original
    assert captured["ylim"][1] > 7.5
    assert any("critic_gap" in label for label in captured["labels"])
