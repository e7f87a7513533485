"""Every writer is atomic: no temporary files left behind, no half-written PNG on failure."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from ganforge._io import atomic_write
from ganforge.viz import plot_2d_field, plot_all, save_grid


def test_successful_writes_leave_only_the_targets(tmp_path):
    save_grid(torch.zeros(4, 1, 8, 8), tmp_path / "grid.png")
    plot_2d_field(np.zeros((3, 2)), np.ones((3, 2)), tmp_path / "field.png", resolution=10)
    (tmp_path / "metrics.csv").write_text("step,loss_D,loss_G,real_score\n0,1,2,0.5\n1,0.5,1.5,0.6\n")
    plot_all(tmp_path / "metrics.csv", tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "field.png", "grad_norms.png", "grid.png", "losses.png", "metrics.csv", "scores.png",
    ]  # fmt: skip


def test_failing_writer_keeps_the_old_file_and_removes_the_temp(tmp_path):
    target = tmp_path / "x.png"
    target.write_bytes(b"old")

    def half_write(fh):
        fh.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half_write)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_pillow_failure_mid_save_leaves_nothing(tmp_path, monkeypatch):
    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG partial")
        raise OSError("boom")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="boom"):
        save_grid(torch.zeros(1, 1, 8, 8), tmp_path / "grid.png")
    assert list(tmp_path.iterdir()) == []


def test_matplotlib_failure_mid_save_leaves_nothing(tmp_path, monkeypatch):
    def broken_savefig(self, fname, *args, **kwargs):
        fname.write(b"\x89PNG partial")
        raise RuntimeError("boom")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="boom"):
        plot_2d_field(np.zeros((3, 2)), np.ones((3, 2)), tmp_path / "field.png", resolution=10)
    assert list(tmp_path.iterdir()) == []
