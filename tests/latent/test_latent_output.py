"""PNG strips, animated GIFs and 2-D plots: sizes, frame counts, and atomic writing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.errors import GanforgeError
from ganforge.latent import (
    gif_frames,
    plot_panels_2d,
    plot_path_2d,
    save_gif,
    save_path_gif_2d,
    save_rows,
    save_strip,
)


def _images(n: int, c: int = 1, h: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, h, h, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("c, h, scale", [(1, 8, 4), (3, 16, 2), (1, 40, 1)])
def test_strip_has_the_expected_pixel_size(tmp_path, c, h, scale):
    path = save_strip(_images(7, c, h), tmp_path / "strip.png")
    with Image.open(path) as im:
        # One row of 7 cells of h px, 2 px padding around each; scale = max(1, 32 // h).
        assert im.size == ((7 * (h + 2) + 2) * scale, (h + 2 + 2) * scale)
        assert im.mode == ("L" if c == 1 else "RGB")


def test_rows_grid_size(tmp_path):
    rows = _images(12).reshape(3, 4, 1, 8, 8)
    with Image.open(save_rows(rows, tmp_path / "rows.png")) as im:
        assert im.size == ((4 * 10 + 2) * 4, (3 * 10 + 2) * 4)


def test_gif_has_one_frame_per_image_even_when_images_repeat(tmp_path):
    frames = torch.cat([_images(3), _images(1).expand(4, 1, 8, 8)])  # 4 identical at the end
    path = save_gif(frames, tmp_path / "walk.gif", duration=80)
    with Image.open(path) as im:
        assert im.n_frames == 7  # the progress bar keeps identical images distinct frames
        assert im.info["loop"] == 0 and im.info["duration"] == 80
        assert im.size == (12 * 4, 12 * 4 + 4)  # one padded cell, x4, plus a 4 px bar
        im.seek(0)
        first = np.asarray(im.convert("L"))
        im.seek(6)
        last = np.asarray(im.convert("L"))
    assert (first[-4:] == 0).all() and (last[-4:] == 255).all()  # bar: empty -> full


def test_gif_frames_with_several_images_per_frame():
    frames = gif_frames(_images(6).reshape(2, 3, 1, 8, 8), progress_bar=False)
    assert len(frames) == 2 and frames[0].size == ((3 * 10 + 2) * 4, 12 * 4)


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"GIF89a partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_gif(_images(3), tmp_path / "walk.gif")
    with pytest.raises(OSError, match="disk full"):
        save_strip(_images(3), tmp_path / "strip.png")
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary file


@pytest.mark.parametrize("call", [
    lambda p: save_gif(_images(3), p, duration=0),
    lambda p: save_strip(torch.zeros(3, 8, 8), p),
    lambda p: save_rows(_images(3), p),
    lambda p: plot_path_2d(torch.zeros(4, 3), p),
])
def test_bad_input_raises_and_writes_nothing(tmp_path, call):
    with pytest.raises(GanforgeError):
        call(tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_2d_path_plots_and_gif(tmp_path):
    t = torch.linspace(0, np.pi, 4)
    path = torch.stack([torch.cos(t), torch.sin(t)], 1)
    cloud = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    assert Image.open(plot_path_2d(path, tmp_path / "p.png", cloud, keyframes=[0, 3])).format == "PNG"
    two = torch.stack([path, -path])
    assert Image.open(plot_path_2d(two, tmp_path / "p2.png", labels=["a", "b"])).format == "PNG"
    with Image.open(save_path_gif_2d(two, tmp_path / "p.gif", cloud)) as im:
        assert im.n_frames == 4
    panels = [("psi=1", cloud), ("psi=0", torch.zeros(5, 2))]
    assert Image.open(plot_panels_2d(panels, tmp_path / "panels.png")).format == "PNG"
