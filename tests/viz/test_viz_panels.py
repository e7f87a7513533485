import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.errors import GanforgeError
from ganforge.viz import plot_panels


def test_panels_write_one_png_with_every_panel(tmp_path):
    left = -torch.ones(4, 1, 8, 8)   # black
    right = torch.ones(4, 1, 8, 8)   # white
    path = plot_panels({"black": left, "white": right}, tmp_path / "p.png", nrow=2, title="t")
    img = np.asarray(Image.open(path).convert("L"), dtype=float)
    h, w = img.shape
    # the left half holds the dark grid, the right half the bright one
    assert img[:, : w // 2].mean() < img[:, w // 2 :].mean()
    assert list(tmp_path.iterdir()) == [path]


def test_panels_take_rgb(tmp_path):
    x = -torch.ones(3, 3, 8, 8)
    x[:, 0] = 1
    path = plot_panels({"red": x}, tmp_path / "rgb.png")
    img = np.asarray(Image.open(path).convert("RGB"), dtype=float)
    assert (img[..., 0] - img[..., 2]).max() > 200  # some pixels are saturated red


def test_empty_panels_are_refused(tmp_path):
    with pytest.raises(GanforgeError, match="at least one panel"):
        plot_panels({}, tmp_path / "x.png")
    assert not list(tmp_path.iterdir())
