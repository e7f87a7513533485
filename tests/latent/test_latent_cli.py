"""`ganforge latent RUN ACTION ...` end to end on tiny runs, and its error handling."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ganforge.latent import codes_from_seeds, generate
from ganforge.latent.cli import main
from ganforge.train.run import load_run
from ganforge.viz.grid import to_uint8

SCALE, CELL = 4, 10  # 8x8 images: 2 px padding, upscaled x4 by save_grid


def latent(run, *argv) -> int:
    return main([str(run), *(str(a) for a in argv)])


def cell(grid: np.ndarray, row: int, col: int) -> np.ndarray:
    """The 8x8 image at (row, col) of a save_grid PNG of 8x8 images."""
    top, left = (2 + row * CELL) * SCALE, (2 + col * CELL) * SCALE
    return grid[top:top + 8 * SCALE:SCALE, left:left + 8 * SCALE:SCALE]


def size(rows: int, cols: int) -> tuple[int, int]:
    return ((cols * CELL + 2) * SCALE, (rows * CELL + 2) * SCALE)


def test_interpolate_strip_passes_through_the_seeded_samples(digits_run, tmp_path, capsys):
    out = tmp_path / "walk.png"
    assert latent(digits_run, "interpolate", "--seeds", 4, 9, 2, "--steps", 4, "-o", out) == 0
    assert "strip of 7 samples" in capsys.readouterr().out
    grid = np.asarray(Image.open(out))
    assert grid.shape[::-1] == size(1, 7)
    G = load_run(digits_run).generator
    keys = generate(G, codes_from_seeds(G, [4, 9, 2]))
    for k in range(3):  # keyframe k sits at column k * (steps - 1)
        np.testing.assert_array_equal(cell(grid, 0, 3 * k), to_uint8(keys[k, 0].numpy()))


def test_interpolate_gif_frames(digits_run, tmp_path):
    out = tmp_path / "walk.gif"
    assert latent(digits_run, "interpolate", "--seeds", 0, 1, 2, "--steps", 4, "--loop", "--ema",
                  "--method", "lerp", "--duration", 50, "-o", out) == 0
    with Image.open(out) as im:
        # 4 keyframes (back to the start) -> 3 * 3 + 1 codes; the loop drops the repeated last one.
        assert im.n_frames == 9 and im.info["duration"] == 50


def test_interpolate_by_grid_indices_on_points(ring_run, tmp_path):
    assert latent(ring_run, "interpolate", "--indices", 3, 17, "--batch-n", 20, "--steps", 3,
                  "-o", tmp_path / "p.png") == 0
    assert latent(ring_run, "interpolate", "--steps", 3, "-o", tmp_path / "p.gif") == 0
    assert Image.open(tmp_path / "p.png").format == "PNG"
    with Image.open(tmp_path / "p.gif") as im:
        assert im.n_frames == 3


def test_conditional_interpolation_one_row_per_class_or_one_class(cond_digits_run, tmp_path):
    assert latent(cond_digits_run, "interpolate", "--steps", 3, "-o", tmp_path / "all.png") == 0
    assert Image.open(tmp_path / "all.png").size == size(10, 3)
    assert latent(cond_digits_run, "interpolate", "--steps", 3, "--class", 7, "-o", tmp_path / "7.png") == 0
    seven = np.asarray(Image.open(tmp_path / "7.png"))
    assert seven.shape[::-1] == size(1, 3)
    np.testing.assert_array_equal(seven, np.asarray(Image.open(tmp_path / "all.png"))[
        7 * CELL * SCALE:(8 * CELL + 2) * SCALE])  # row 7 of the all-classes strip
    assert latent(cond_digits_run, "interpolate", "--steps", 3, "-o", tmp_path / "all.gif") == 0
    with Image.open(tmp_path / "all.gif") as im:
        assert im.n_frames == 3 and im.size[0] == size(1, 10)[0]


def test_conditional_points(cond_ring_run, tmp_path):
    assert latent(cond_ring_run, "interpolate", "--steps", 3, "-o", tmp_path / "i.png") == 0
    assert latent(cond_ring_run, "truncate", "--class", 2, "-n", 50, "-o", tmp_path / "t.png") == 0
    assert latent(cond_ring_run, "arithmetic", "--a", 1, "--b", 2, "--c", 3, "--classes", 0, 1, 2,
                  "-o", tmp_path / "a.png") == 0
    assert all(Image.open(tmp_path / f).format == "PNG" for f in ("i.png", "t.png", "a.png"))


def test_arithmetic_grid_layout_and_mean_codes(digits_run, tmp_path):
    out = tmp_path / "arith.png"
    assert latent(digits_run, "arithmetic", "--a", 1, 2, 3, "--b", 4, 5, "--c", 6, "-o", out) == 0
    grid = np.asarray(Image.open(out))
    assert grid.shape[::-1] == size(4, 4)  # rows a, b, c, result; 3 codes + the mean column
    G = load_run(digits_run).generator
    a, b, c = (codes_from_seeds(G, s) for s in ([1, 2, 3], [4, 5], [6]))
    np.testing.assert_array_equal(cell(grid, 0, 0), to_uint8(generate(G, a[:1])[0, 0].numpy()))
    np.testing.assert_array_equal(cell(grid, 0, 3), to_uint8(generate(G, a.mean(0))[0, 0].numpy()))
    result = generate(G, a.mean(0) - b.mean(0) + c.mean(0))
    np.testing.assert_array_equal(cell(grid, 3, 3), to_uint8(result[0, 0].numpy()))
    assert (cell(grid, 1, 2) == 0).all()  # group b has 2 codes: the third cell is blank
    assert latent(digits_run, "arithmetic", "--a", 0, "--b", 1, "--c", 2, "--indices",
                  "--variations", 0, "-o", out) == 0


def test_truncate_rows_share_codes_and_psi1_is_ganforge_sample(digits_run, tmp_path):
    out = tmp_path / "trunc.png"
    assert latent(digits_run, "truncate", "--psi", 1, 0, "--threshold", 1, "-n", 5, "--seed", 3,
                  "-o", out) == 0
    grid = np.asarray(Image.open(out))
    assert grid.shape[::-1] == size(3, 5)
    plain = load_run(digits_run).sample(5, seed=3)  # what `ganforge sample -n 5 --seed 3` draws
    for j in range(5):
        np.testing.assert_array_equal(cell(grid, 0, j), to_uint8(plain[j, 0].numpy()))
        np.testing.assert_array_equal(cell(grid, 1, j), cell(grid, 1, 0))  # psi = 0: one sample


def test_neighbours_grid_and_report(digits_run, ring_run, tmp_path, capsys):
    out = tmp_path / "nn.png"
    assert latent(digits_run, "neighbours", "-n", 3, "-k", 2, "-o", out) == 0
    assert Image.open(out).size == size(3, 3)
    printed = capsys.readouterr().out
    assert "1797 real samples" in printed and printed.count("nearest real #") == 3
    assert latent(ring_run, "neighbours", "-n", 5, "-k", 1, "--real-n", 500, "-o", tmp_path / "p.png") == 0
    assert "vs 500 real samples" in capsys.readouterr().out


ERRORS = [
    ("digits_run", ["interpolate", "-o", "{d}/x.jpg"], "must end in .png or .gif"),
    ("digits_run", ["truncate", "-o", "{d}/x.gif"], "must end in .png"),
    ("digits_run", ["truncate", "--psi", "1.5", "-o", "{d}/x.png"], "psi must lie in [0, 1]"),
    ("digits_run", ["truncate", "--psi", "1", "-0.1", "-o", "{d}/x.png"], "psi must lie in [0, 1]"),
    ("digits_run", ["truncate", "--threshold", "0", "-o", "{d}/x.png"], "threshold must be positive"),
    ("ring_run", ["interpolate", "--class", "2", "-o", "{d}/x.png"],
     "is not class-conditional (capability ClassConditioned"),
    ("cond_ring_run", ["interpolate", "--class", "8", "-o", "{d}/x.png"], "out of range"),
    ("cond_digits_run", ["arithmetic", "--a", "1", "--b", "2", "--c", "3", "-o", "{d}/x.png"],
     "class-conditional"),
    ("digits_run", ["interpolate", "--steps", "1", "-o", "{d}/x.gif"], "--steps must be at least 2"),
    ("digits_run", ["interpolate", "--seeds", "3", "-o", "{d}/x.gif"], "at least 2 keyframes"),
    ("digits_run", ["interpolate", "--indices", "0", "64", "-o", "{d}/x.png"], "outside the batch of 64"),
    ("digits_run", ["interpolate", "--seeds", "0", "1", "--indices", "2", "3", "-o", "{d}/x.png"],
     "not allowed with"),
    ("digits_run", ["interpolate", "--method", "cubic", "-o", "{d}/x.png"], "invalid choice"),
    ("digits_run", ["interpolate", "--duration", "0", "-o", "{d}/x.gif"], "--duration must be at least 1"),
    ("digits_run", ["arithmetic", "--a", "1", "--b", "2", "--c", "3", "--noise", "-1", "-o", "{d}/x.png"],
     "--noise must be non-negative"),
    ("ring_run", ["truncate", "--ema", "-o", "{d}/x.png"], "trained without EMA"),
    ("digits_run", ["neighbours", "-k", "5000", "-o", "{d}/x.png"], "exceeds the 1797 real samples"),
    ("digits_run", ["truncate", "-o", "{d}/missing/x.png"], "does not exist"),
    (None, ["interpolate", "-o", "{d}/x.png"], "does not exist"),
]


@pytest.mark.parametrize("run, argv, fragment", ERRORS, ids=[e[2] for e in ERRORS])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(request, tmp_path, capsys, run, argv, fragment):
    run_dir = request.getfixturevalue(run) if run else tmp_path / "no-such-run"
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert latent(run_dir, *(a.format(d=out_dir) for a in argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ganforge: error: "), err
    assert fragment in err[0]
    assert list(out_dir.iterdir()) == []  # no output, no temporary file


def test_wired_into_the_main_cli(digits_run, tmp_path):
    from ganforge import cli

    out = tmp_path / "walk.png"
    assert cli.main(["latent", str(digits_run), "interpolate", "--steps", "3", "-o", str(out)]) == 0
    assert Image.open(out).size == size(1, 3)
    assert cli.main(["latent", str(digits_run), "truncate", "--psi", "2", "-o", str(tmp_path / "t.png")]) == 2
    assert not (tmp_path / "t.png").exists()
