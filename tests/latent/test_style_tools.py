"""latent/style.py: the style-mixing grid (paper Fig. 3), noise variations (Fig. 4) and
interpolation in W, checked against styles mixed independently with models.style.mix_styles."""

from __future__ import annotations

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.latent.style import (
    check_style_generator,
    interpolate_w,
    noise_variations,
    style_layers,
    style_mixing_grid,
)
from ganforge.models import build
from ganforge.models.style import mix_styles, truncate_w
from ganforge.models.stylegan import NoiseInput

TINY = {"name": "stylegan", "z_dim": 8, "w_dim": 8, "mapping_layers": 2, "width": 4, "max_width": 8}


def style_g(side: int = 16, noise_scale: float = 0.3):
    G = build(TINY, (1, side, side))[0]
    for m in G.modules():
        if isinstance(m, NoiseInput):
            m.weight.data.fill_(noise_scale)
    G.train()
    for _ in range(3):
        G(torch.randn(16, 8))  # a non-zero w_avg
    return G.eval()


def test_style_groups_scale_the_papers_coarse_middle_fine_split():
    G32 = style_g(32)
    assert style_layers(G32, "coarse") == (0, 1, 2, 3)   # 4x4 and 8x8
    assert style_layers(G32, "middle") == (4, 5)         # 16x16
    assert style_layers(G32, "fine") == (6, 7)           # 32x32
    assert style_layers(G32, [5, 1, 1]) == (1, 5)
    G16 = style_g(16)
    assert style_layers(G16, "fine") == (4, 5)
    with pytest.raises(GanforgeError, match="16x16 generator has no middle styles"):
        style_layers(G16, "middle")
    for bad in ([6], [], [-1], [True]):
        with pytest.raises(GanforgeError, match=r"not indices in \[0, 6\)"):
            style_layers(G16, bad)
    with pytest.raises(GanforgeError, match="unknown style layers 'top'"):
        style_layers(G16, "top")


def test_mixing_grid_cells_are_column_styles_with_the_rows_layers():
    G = style_g(16)
    z_rows, z_cols = torch.randn(2, 8), torch.randn(3, 8)
    grid = style_mixing_grid(G, z_rows, z_cols, "coarse", generator=torch.Generator().manual_seed(4))
    assert grid.shape == (3, 4, 1, 16, 16)
    assert (grid[0, 0] == -1).all()
    noise = G.make_noise(1, torch.Generator().manual_seed(4))  # the same single draw
    with torch.no_grad():
        ws_r, ws_c = G.broadcast(G.mapping(z_rows)), G.broadcast(G.mapping(z_cols))
        torch.testing.assert_close(grid[0, 1:], G.synthesis(ws_c, noise))
        torch.testing.assert_close(grid[1:, 0], G.synthesis(ws_r, noise))
        for i in range(2):
            # coarse = the first 4 styles: a crossover at 4 with the row first
            ref = mix_styles(ws_r[i:i + 1].expand(3, -1, -1), ws_c, torch.full((3,), 4))
            torch.testing.assert_close(grid[i + 1, 1:], G.synthesis(ref, noise))
    fine = style_mixing_grid(G, z_rows, z_cols, "fine", generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref = mix_styles(ws_c, ws_r[1:2].expand(3, -1, -1), torch.full((3,), 4))
        torch.testing.assert_close(fine[2, 1:], G.synthesis(ref, noise))
    # all styles from the row: every cell of row i is row source i
    every = style_mixing_grid(G, z_rows, z_cols, list(range(G.num_ws)),
                              generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(every[1:, 1:], every[1:, :1].expand(-1, 3, -1, -1, -1))


def test_a_row_code_reaches_only_its_row_and_a_column_code_only_its_column():
    G = style_g(16)
    z_rows, z_cols = torch.randn(3, 8), torch.randn(3, 8)
    grid = style_mixing_grid(G, z_rows, z_cols, "coarse", generator=torch.Generator().manual_seed(0))
    z_rows2, z_cols2 = z_rows.clone(), z_cols.clone()
    z_rows2[1], z_cols2[2] = torch.randn(8), torch.randn(8)
    other = style_mixing_grid(G, z_rows2, z_cols2, "coarse", generator=torch.Generator().manual_seed(0))
    changed = (other - grid).flatten(2).abs().amax(2) > 1e-6          # (R + 1, K + 1)
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[2, :], expected[:, 3] = True, True
    expected[0, 0] = False
    assert torch.equal(changed, expected)


def test_figures_leave_the_generators_mode_and_w_avg_alone():
    G = style_g(16).train()
    w_avg = G.w_avg.clone()
    gen = torch.Generator().manual_seed(0)
    a = style_mixing_grid(G, torch.randn(2, 8), torch.randn(2, 8), "fine", generator=gen, psi=0.7)
    noise_variations(G, torch.randn(8), 3, gen)
    interpolate_w(G, torch.randn(8), torch.randn(8), 3, generator=gen)
    assert G.training and torch.equal(G.w_avg, w_avg) and a.shape == (3, 3, 1, 16, 16)


def test_truncated_grid_sources_are_the_truncated_images():
    G = style_g(16)
    z = torch.randn(2, 8)
    grid = style_mixing_grid(G, z, z, "coarse", psi=0.5, generator=torch.Generator().manual_seed(1))
    noise = G.make_noise(1, torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = G.synthesis(truncate_w(G.broadcast(G.mapping(z)), G.w_avg, 0.5), noise)
    torch.testing.assert_close(grid[0, 1:], ref)
    torch.testing.assert_close(grid[1, 1], ref[0])  # a code mixed with itself is itself


def test_noise_variations_share_the_styles_and_map_the_per_pixel_std():
    G = style_g(16)
    z = torch.randn(8)
    var = noise_variations(G, z, 6, torch.Generator().manual_seed(2))
    assert var.images.shape == (6, 1, 16, 16) and var.std.shape == (16, 16)
    torch.testing.assert_close(var.std, var.images.std(dim=0).mean(dim=0))
    assert var.std.min() > 0
    again = noise_variations(G, z, 6, torch.Generator().manual_seed(2))
    assert torch.equal(again.images, var.images)
    silent = noise_variations(style_g(16, noise_scale=0.0), z, 4, torch.Generator().manual_seed(2))
    assert silent.std.abs().max() < 1e-6  # no noise scale, no stochastic variation
    # the same as synthesis of the broadcast w under the generator's own noise draws
    noise = G.make_noise(6, torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = G.synthesis(G.broadcast(G.mapping(z[None])).expand(6, -1, -1), noise)
    torch.testing.assert_close(var.images, ref)


def test_interpolate_w_is_a_straight_line_in_w_under_fixed_noise():
    G = style_g(16)
    z0, z1 = torch.randn(8), torch.randn(8)
    frames = interpolate_w(G, z0, z1, 5, generator=torch.Generator().manual_seed(3))
    assert frames.shape == (5, 1, 16, 16)
    noise = G.make_noise(1, torch.Generator().manual_seed(3))
    with torch.no_grad():
        w0, w1 = G.mapping(z0[None]), G.mapping(z1[None])
        for k, t in ((0, 0.0), (2, 0.5), (4, 1.0)):
            ref = G.synthesis(G.broadcast((1 - t) * w0 + t * w1), noise)
            torch.testing.assert_close(frames[k:k + 1], ref, atol=1e-5, rtol=1e-5)


def test_a_non_style_generator_is_a_one_line_error():
    G = build({"name": "dcgan", "z_dim": 8, "width": 4}, (1, 8, 8))[0]
    z = torch.randn(2, 8)
    for call in (lambda: check_style_generator(G), lambda: style_mixing_grid(G, z, z),
                 lambda: noise_variations(G, z[0]), lambda: interpolate_w(G, z[0], z[1])):
        with pytest.raises(GanforgeError, match="DCGANGenerator is not a style-based generator; "
                                                "mixing needs stylegan or stylegan2") as err:
            call()
        assert "\n" not in str(err.value)


def test_bad_figure_inputs_are_one_line_errors():
    G = style_g(16)
    z = torch.randn(2, 8)
    with pytest.raises(GanforgeError, match=r"z_rows must have shape \(n, 8\)"):
        style_mixing_grid(G, torch.randn(2, 5), z)
    with pytest.raises(GanforgeError, match=r"psi must lie in \(0, 1\]"):
        style_mixing_grid(G, z, z, psi=1.5)
    with pytest.raises(GanforgeError, match="n >= 2"):
        noise_variations(G, z[0], 1)
    with pytest.raises(GanforgeError, match="must hold 8 numbers"):
        noise_variations(G, torch.randn(5))
    with pytest.raises(GanforgeError, match="steps >= 2"):
        interpolate_w(G, z[0], z[1], 1)
