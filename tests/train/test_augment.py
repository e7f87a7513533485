"""DiffAugment: shapes, gradients, and each transform against what it must do to an image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.train.augment import POLICIES, diff_augment, parse_policy

ALL = "color,translation,cutout"


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=gen(seed), dtype=torch.float64)


def shifted(img: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """img (C, H, W) moved by dy rows and dx columns, zero filled (a slicing reference)."""
    out = np.zeros_like(img)
    _, h, w = img.shape
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        img[:, max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


# ------------------------------------------------------------------------------------- policy


def test_parse_policy_normalises_names_into_the_order_of_application():
    assert parse_policy(ALL) == POLICIES == ("color", "translation", "cutout")
    assert parse_policy("cutout, Color") == ("color", "cutout")
    assert parse_policy(["translation", "translation"]) == ("translation",)
    assert parse_policy("") == parse_policy([]) == ()


def test_unknown_policy_names_the_valid_options():
    with pytest.raises(GanforgeError, match="unknown DiffAugment policy 'flip'.*color, translation, cutout"):
        parse_policy("color,flip")
    with pytest.raises(GanforgeError, match="not a string or a list"):
        parse_policy(3)
    with pytest.raises(GanforgeError, match="'colour'"):
        diff_augment(images(2, 1, 8, 8), ["colour"])


def test_points_are_rejected_with_a_clear_message():
    with pytest.raises(GanforgeError, match=r"DiffAugment applies to images \(N, C, H, W\).*\(16, 2\)"):
        diff_augment(torch.randn(16, 2), ALL)
    with pytest.raises(GanforgeError, match="floating-point"):
        diff_augment(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), ALL)


def test_an_empty_policy_is_the_identity():
    x = images(3, 1, 8, 8)
    assert diff_augment(x, "") is x


# ------------------------------------------------------------------------------ shapes, gradients


@pytest.mark.parametrize("shape", [(5, 1, 8, 8), (4, 3, 16, 16), (3, 2, 12, 20)])
@pytest.mark.parametrize("policy", ["color", "translation", "cutout", ALL])
def test_output_shape_dtype_and_gradients(shape, policy):
    x = images(*shape).requires_grad_(True)
    out = diff_augment(x, policy, gen(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    weights = images(*shape, seed=2)
    (out * weights).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_the_same_generator_seed_reproduces_the_augmentation():
    x = images(8, 3, 16, 16)
    a = diff_augment(x, ALL, gen(5))
    b = diff_augment(x, ALL, gen(5))
    c = diff_augment(x, ALL, gen(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    torch.manual_seed(3)
    d = diff_augment(x, ALL)  # the global CPU generator
    torch.manual_seed(3)
    assert torch.equal(d, diff_augment(x, ALL))


def test_a_non_cpu_generator_is_rejected():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    with pytest.raises(GanforgeError, match="CPU"):
        diff_augment(images(2, 1, 8, 8), ALL, torch.Generator(device="cuda"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_a_seed_gives_the_same_augmentation_on_cpu_and_gpu():
    x = images(8, 3, 16, 16).float()
    cpu = diff_augment(x, ALL, gen(7))
    gpu = diff_augment(x.cuda(), ALL, gen(7))
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------- translation


def test_translation_moves_a_bright_pixel_by_at_most_an_eighth_of_the_side():
    n, side = 64, 16
    x = torch.zeros(n, 1, side, side)
    x[:, :, 8, 8] = 1.0
    out = diff_augment(x, "translation", gen(8))
    moves = set()
    for sample in out[:, 0]:
        assert sample.sum().item() == 1.0 and sample.max().item() == 1.0  # still one bright pixel
        row, col = divmod(int(sample.argmax()), side)
        assert abs(row - 8) <= side // 8 and abs(col - 8) <= side // 8
        moves.add((row - 8, col - 8))
    assert len(moves) >= 15  # most of the 5 x 5 possible shifts turn up in 64 draws


def test_translation_is_a_zero_padded_shift_of_the_whole_image():
    x = images(32, 2, 16, 12, seed=9) + 3.0  # no zeros inside, so padding is visible
    out = diff_augment(x, "translation", gen(10)).numpy()
    for img, aug in zip(x.numpy(), out, strict=True):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)  # round(16/8), round(12/8)
                   if np.array_equal(aug, shifted(img, dy, dx))]
        assert len(matches) == 1


# --------------------------------------------------------------------------------------- cutout


@pytest.mark.parametrize("side", [8, 16, 7])
def test_cutout_zeroes_one_square_of_half_the_side_clipped_at_the_border(side):
    n = 64
    size = int(side * 0.5 + 0.5)
    x = images(n, 3, side, side, seed=11) + 5.0  # never zero
    out = diff_augment(x, "cutout", gen(12))
    full_squares = 0
    for img, aug in zip(x, out, strict=True):
        zero = (aug == 0).numpy()
        assert (zero == zero[0]).all()  # the same pixels in every channel
        kept = ~zero[0]
        assert torch.equal(aug[:, torch.from_numpy(kept)], img[:, torch.from_numpy(kept)])
        rows, cols = np.flatnonzero(zero[0].any(1)), np.flatnonzero(zero[0].any(0))
        assert len(rows) > 0
        # a solid rectangle: contiguous rows x contiguous columns
        assert rows[-1] - rows[0] + 1 == len(rows) and cols[-1] - cols[0] + 1 == len(cols)
        assert zero[0].sum() == len(rows) * len(cols)
        # the part of a size x size square inside the image: full length unless cut by a border
        for idx in (rows, cols):
            touches_border = idx[0] == 0 or idx[-1] == side - 1
            assert len(idx) == size or (touches_border and len(idx) < size)
        full_squares += len(rows) == len(cols) == size
    assert full_squares >= n // 4


# ---------------------------------------------------------------------------------------- color


def test_color_adds_a_per_sample_brightness_to_constant_images():
    n = 32
    values = torch.linspace(-1, 1, n, dtype=torch.float64)
    x = values[:, None, None, None].expand(n, 3, 8, 8).clone()  # saturation and contrast: no-ops
    out = diff_augment(x, "color", gen(13))
    offsets = out - x
    assert torch.allclose(offsets, offsets[:, :1, :1, :1].expand_as(offsets), atol=1e-12)  # per sample
    offsets = offsets[:, 0, 0, 0]
    assert offsets.min() >= -0.5 and offsets.max() <= 0.5
    assert offsets.std() > 0.1  # a different brightness per sample


def test_color_on_one_channel_is_a_per_sample_affine_map_with_contrast_in_range():
    x = images(32, 1, 8, 8, seed=14)
    out = diff_augment(x, "color", gen(15))
    for img, aug in zip(x.flatten(1).numpy(), out.flatten(1).numpy(), strict=True):
        slope, intercept = np.polyfit(img, aug, 1)
        np.testing.assert_allclose(aug, slope * img + intercept, atol=1e-10)  # saturation: no-op
        assert 0.5 <= slope <= 1.5  # contrast factor
        assert -0.5 <= aug.mean() - img.mean() <= 0.5  # brightness (contrast keeps the mean)


def test_color_scales_each_pixels_colourfulness_by_one_per_sample_factor():
    x = images(16, 3, 6, 6, seed=16)
    out = diff_augment(x, "color", gen(17))
    chroma_in = x - x.mean(dim=1, keepdim=True)
    chroma_out = out - out.mean(dim=1, keepdim=True)
    factor = (chroma_out * chroma_in).flatten(1).sum(1) / chroma_in.pow(2).flatten(1).sum(1)
    torch.testing.assert_close(chroma_out, factor[:, None, None, None] * chroma_in, rtol=0, atol=1e-10)
    assert factor.min() >= 0 and factor.max() <= 3  # saturation in [0, 2] times contrast in [0.5, 1.5]
