"""make_grid / save_grid: layout, value mapping, channels and the PNG written."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.viz import make_grid, save_grid
from ganforge.viz.grid import to_uint8


def constant_images(values: list[float], c: int = 1, h: int = 5, w: int = 4) -> np.ndarray:
    """Image i is filled with values[i]: lets a test tell cells apart by colour."""
    return np.stack([np.full((c, h, w), v) for v in values])


def test_value_mapping_endpoints_and_midpoint():
    x = np.array([-1.0, 1.0, 0.0, 0.5, -0.5, 2.0, -3.0, np.nan])
    # round((x + 1) * 127.5), half to even: 127.5 -> 128, 191.25 -> 191, 63.75 -> 64.
    assert to_uint8(x).tolist() == [0, 255, 128, 191, 64, 255, 0, 0]


def test_layout_shape_four_images_in_two_rows_of_three():
    grid = make_grid(constant_images([0.0] * 4), nrow=3, padding=2)
    # 2 rows x 3 cols of 5x4 cells, 2 px between and around every cell.
    assert grid.shape == (2 * (5 + 2) + 2, 3 * (4 + 2) + 2, 1)
    assert grid.dtype == np.uint8


def test_cell_r_c_holds_image_r_times_nrow_plus_c_and_padding_is_pad_value():
    values = [-0.75, -0.25, 0.25, 0.75]
    expected = [32, 96, 159, 223]  # round((v + 1) * 127.5)
    grid = make_grid(constant_images(values), nrow=3, padding=2, pad_value=1.0)[..., 0]
    nrow, h, w, pad = 3, 5, 4, 2
    for i, value in enumerate(expected):
        r, c = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        assert (grid[top : top + h, left : left + w] == value).all(), f"cell of image {i}"
    mask = np.ones_like(grid, dtype=bool)
    for i in range(len(values)):
        r, c = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        mask[top : top + h, left : left + w] = False
    # Everything else, the two unused cells included, is padding.
    assert (grid[mask] == 255).all()


def test_non_constant_image_keeps_its_orientation():
    img = np.full((1, 1, 3, 2), -1.0)
    img[0, 0, 0, 1] = 1.0  # top-right pixel bright
    grid = make_grid(img, padding=1)[..., 0]
    assert grid.shape == (5, 4)
    assert grid[1, 2] == 255
    assert grid.sum() == 255


@pytest.mark.parametrize(("n", "rows", "cols"), [(1, 1, 1), (5, 2, 3), (9, 3, 3), (16, 4, 4)])
def test_default_nrow_is_ceil_sqrt_n(n, rows, cols):
    grid = make_grid(constant_images([0.0] * n, h=3, w=3), padding=0)
    assert grid.shape == (rows * 3, cols * 3, 1)


def test_nrow_larger_than_n_gives_one_row_of_n_cells():
    grid = make_grid(constant_images([0.0] * 2, h=3, w=3), nrow=8, padding=1)
    assert grid.shape == (1 * 4 + 1, 2 * 4 + 1, 1)


def test_rgb_channels_map_to_last_axis_in_order():
    img = np.zeros((1, 3, 2, 2))
    img[0, 0], img[0, 1], img[0, 2] = 1.0, -1.0, 0.0
    grid = make_grid(torch.tensor(img, requires_grad=True), padding=0)
    assert grid.shape == (2, 2, 3)
    assert (grid == np.array([255, 0, 128], dtype=np.uint8)).all()


@pytest.mark.parametrize("shape", [(2, 2, 4, 4), (2, 4, 4, 4), (2, 4, 4), (0, 1, 4, 4)])
def test_bad_shapes_raise_value_error(shape):
    with pytest.raises(ValueError):
        make_grid(np.zeros(shape))


def test_save_grid_png_reads_back_with_grid_pixels(tmp_path):
    images = torch.rand(6, 1, 8, 8) * 2 - 1
    path = save_grid(images, tmp_path / "g.png", nrow=3, scale=1)
    assert path == tmp_path / "g.png"
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.mode == "L"
        back = np.asarray(im)
    np.testing.assert_array_equal(back, make_grid(images, nrow=3)[..., 0])


def test_save_grid_auto_scale_makes_small_cells_about_32px(tmp_path):
    images = constant_images([0.0] * 4, h=8, w=8)
    grid = make_grid(images, nrow=2)
    with Image.open(save_grid(images, tmp_path / "g.png", nrow=2)) as im:
        assert im.size == (grid.shape[1] * 4, grid.shape[0] * 4)
        back = np.asarray(im)
    # Nearest neighbour: every source pixel becomes an exact 4x4 block.
    np.testing.assert_array_equal(back, grid[..., 0].repeat(4, axis=0).repeat(4, axis=1))


def test_save_grid_large_images_are_not_scaled_and_rgb_is_rgb(tmp_path):
    images = torch.rand(2, 3, 40, 40) * 2 - 1
    with Image.open(save_grid(images, tmp_path / "g.png")) as im:
        assert im.mode == "RGB"
        assert im.size == (2 * 42 + 2, 42 + 2)
        np.testing.assert_array_equal(np.asarray(im), make_grid(images))


def test_save_grid_rejects_non_positive_scale(tmp_path):
    with pytest.raises(ValueError):
        save_grid(constant_images([0.0]), tmp_path / "g.png", scale=0)
    assert list(tmp_path.iterdir()) == []
