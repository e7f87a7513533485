"""The sequence data kind (clips (T, C, H, W), its PNG/GIF/MP4/NPZ writers), Moving MNIST made by
the project (bouncing trajectories, digits pasted with a max, the fixed test set, held-out digits)
and a user's clips (read_clip, clip_to_tensor, the clips dataset)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image
from tests.conftest import SHARED_MNIST, needs_mnist

from ganforge.data import build_dataset, datasets_of_kind
from ganforge.data.idx import read_idx_images
from ganforge.data.kinds import Samples, get_kind, kind_of_shape
from ganforge.data.sequence import (
    SPEED,
    ClipDataset,
    MovingDigits,
    bouncing_trajectories,
    clip_to_tensor,
    held_out_clips,
    moving_digits,
    natural_key,
    read_clip,
    tile_frames,
)
from ganforge.errors import GanforgeError

PNG = b"\x89PNG\r\n\x1a\n"
SHARED_FASHION = SHARED_MNIST.parent / "fashion-mnist"


def _digits(m: int = 30, side: int = 28, seed: int = 0) -> np.ndarray:
    """Synthetic digit images: every pixel in 1..255, so each image differs from the background."""
    return np.random.default_rng(seed).integers(1, 256, (m, side, side), dtype=np.uint8)


def _clips(n: int = 5, frames: int = 6, channels: int = 1, h: int = 32, w: int = 32,
           seed: int = 0) -> torch.Tensor:
    return torch.rand(n, frames, channels, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _pixels(x: torch.Tensor) -> np.ndarray:
    """Values in [-1, 1] back to uint8 pixels."""
    return ((x + 1) * 127.5).round().byte().numpy()


def _one_line(err: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(err.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------------- the kind
def test_the_kind_claims_clips_and_names_its_datasets():
    kind = kind_of_shape((20, 1, 64, 64))
    assert kind.name == "sequence" and kind.metrics == ()
    assert set(kind.writers) == {".png", ".gif", ".mp4", ".npz"}
    assert kind_of_shape((1, 8, 8)).name == "image"  # three dimensions stay images
    assert {"moving-mnist", "moving-fashion", "clips"} <= set(datasets_of_kind("sequence"))


# ---------------------------------------------------------------------- trajectories
def _stepped(start: np.ndarray, velocity: np.ndarray, frames: int, room: float) -> np.ndarray:
    """An independent reference: step p <- p + v and mirror at each wall, frame by frame."""
    p, v = start.copy(), velocity.copy()
    out = [p.copy()]
    for _ in range(frames - 1):
        p = p + v
        low, high = p < 0, p > room
        p = np.where(low, -p, np.where(high, 2 * room - p, p))
        v = np.where(low | high, -v, v)
        out.append(p.copy())
    return np.stack(out, axis=2)  # (n, k, frames, 2)


def test_trajectories_stay_inside_bounce_off_the_walls_and_keep_their_speed():
    n, k, frames, canvas, digit = 40, 2, 400, 64, 28
    room = canvas - digit
    pos = bouncing_trajectories(n, frames, canvas, digit, k, np.random.default_rng(7))
    assert pos.shape == (n, k, frames, 2) and pos.dtype == np.int64
    assert pos.min() == 0 and pos.max() == room  # inside the frame, and the walls are reached

    # the same draws (in the documented order) stepped frame by frame with mirroring
    rng = np.random.default_rng(7)
    start = rng.uniform(0, room, (n, k, 2))
    theta, speed = rng.uniform(0, 2 * math.pi, (n, k)), rng.uniform(*SPEED, (n, k))
    velocity = speed[..., None] * np.stack([np.sin(theta), np.cos(theta)], -1)
    reference = _stepped(start, velocity, frames, room)
    assert np.abs(pos - reference).max() <= 1  # equal up to the rounding to whole pixels
    assert (pos == np.rint(reference)).mean() > 0.999

    step = np.diff(pos, axis=2)  # (n, k, frames - 1, 2)
    margin = math.ceil(SPEED[1]) + 1
    near_wall = (np.minimum(pos[:, :, :-1], pos[:, :, 1:]) <= margin) | \
                (np.maximum(pos[:, :, :-1], pos[:, :, 1:]) >= room - margin)
    flips = np.sign(step[:, :, 1:]) * np.sign(step[:, :, :-1]) < 0
    assert flips.sum() > n * k  # the digits bounce, many times
    assert near_wall[:, :, 1:][flips].all()  # ... and only at the walls
    for i in range(n):  # away from the walls each axis moves |v| px a frame (+-1 from rounding),
        for j in range(k):  # the same before and after every bounce: the speed is kept
            for axis in range(2):
                free = np.abs(step[i, j, :, axis])[~near_wall[i, j, :, axis]]
                assert free.max() - free.min() <= 1
                assert abs(free.mean() - abs(velocity[i, j, axis])) <= 0.5
    speeds = np.hypot(*np.moveaxis(step, -1, 0))[~near_wall.any(-1)]
    assert SPEED[0] - 1.5 <= speeds.min() and speeds.max() <= SPEED[1] + 1.5


def test_trajectories_in_a_tight_canvas_fold_several_bounces_into_one_frame():
    pos = bouncing_trajectories(20, 100, 30, 28, 3, np.random.default_rng(0))  # room 2 px, speed up to 5
    assert pos.min() >= 0 and pos.max() <= 2
    assert (bouncing_trajectories(4, 5, 28, 28, 1, np.random.default_rng(0)) == 0).all()
    with pytest.raises(GanforgeError, match="cannot hold a digit of 28 px"):
        bouncing_trajectories(1, 5, 20, 28, 1, np.random.default_rng(0))


# ---------------------------------------------------------------------- moving digits
def _reference(digits: np.ndarray, n: int, frames: int, size: int, k: int, seed: int) -> np.ndarray:
    """Frame by frame with loops: the documented draws, digits pasted with np.maximum."""
    rng = np.random.default_rng(seed)
    pos = bouncing_trajectories(n, frames, size, digits.shape[1], k, rng)
    which = rng.integers(0, len(digits), (n, k))
    out = np.zeros((n, frames, size, size), np.uint8)
    d = digits.shape[1]
    for i in range(n):
        for j in range(k):
            for t in range(frames):
                r, c = pos[i, j, t]
                out[i, t, r:r + d, c:c + d] = np.maximum(out[i, t, r:r + d, c:c + d], digits[which[i, j]])
    return out, pos


def test_moving_digits_pastes_each_digit_on_its_trajectory_and_combines_overlaps_by_max():
    digits = _digits(12)
    for k in (1, 2, 3):
        got = moving_digits(digits, 70, frames=8, size=48, num_digits=k, generator=np.random.default_rng(k))
        want, pos = _reference(digits, 70, 8, 48, k, seed=k)
        assert got.shape == (70, 8, 48, 48) and got.dtype == np.uint8
        np.testing.assert_array_equal(got, want)
        if k > 1:  # digits did overlap somewhere, and there the brighter pixel won (not the sum)
            apart = np.abs(pos[:, 0] - pos[:, 1]).max(-1)
            assert (apart < 28).sum() > 50
    # a constant 100 and a constant 200 digit: where they overlap the frame is 200, never 300 or 100
    flat = np.stack([np.full((28, 28), 100, np.uint8), np.full((28, 28), 200, np.uint8)])
    frames = moving_digits(flat, 200, frames=4, size=40, num_digits=2, generator=np.random.default_rng(0))
    assert set(np.unique(frames)) <= {0, 100, 200}
    assert ((frames == 100).sum((2, 3)) < 28 * 28).any()  # a 100 digit covered in part by a 200 one


def test_same_seed_same_sequences_and_another_seed_other_ones():
    digits = _digits()
    a = moving_digits(digits, 6, frames=5, size=40, generator=np.random.default_rng(3))
    b = moving_digits(digits, 6, frames=5, size=40, generator=np.random.default_rng(3))
    c = moving_digits(digits, 6, frames=5, size=40, generator=np.random.default_rng(4))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    data = MovingDigits(digits, frames=5, size=40)
    x1, y = data.sample(4, torch.Generator().manual_seed(0))
    x2, _ = data.sample(4, torch.Generator().manual_seed(0))
    x3, _ = data.sample(4, torch.Generator().manual_seed(1))
    assert y is None and torch.equal(x1, x2) and not torch.equal(x1, x3)


def test_samples_are_float_clips_in_the_unit_range_and_the_dataset_declares_its_kind():
    data = MovingDigits(_digits(), frames=6, size=36, num_digits=2, name="moving-test")
    x, _ = data.sample(5, torch.Generator().manual_seed(0))
    assert x.shape == (5, 6, 1, 36, 36) and x.dtype == torch.float32
    assert x.min() == -1 and x.max() <= 1
    pixels = (x + 1) * 127.5
    assert torch.allclose(pixels, pixels.round(), atol=1e-4)  # pixel / 127.5 - 1
    assert data.sample_shape == (6, 1, 36, 36) and data.kind == "sequence" and data.fields == ("x",)
    assert data.extractor is None and data.num_classes is None
    fresh = data.materialise(3, seed=2)
    assert fresh.kind == "sequence" and fresh.x.shape == (3, 6, 1, 36, 36)


def test_the_test_set_is_fixed_whatever_the_batch():
    digits = _digits()
    data = MovingDigits(digits, split="test", frames=5, size=40, test_sequences=12, seed=5)
    batch = data.fixed(12)
    for i in (0, 7, 11):
        assert torch.equal(data.fixed(1, start=i)[0], batch[i])
        single = moving_digits(digits, 1, frames=5, size=40, generator=np.random.default_rng([5, i]))
        assert torch.equal(batch[i, :, 0], torch.from_numpy(single[0]).float() / 127.5 - 1)
    assert torch.equal(data.fixed(4, start=3), batch[3:7])
    assert torch.equal(data.materialise(6).x, batch[:6])
    again = MovingDigits(digits, split="test", frames=5, size=40, test_sequences=12, seed=5)
    assert torch.equal(again.fixed(12), batch)
    other = MovingDigits(digits, split="test", frames=5, size=40, test_sequences=12, seed=6)
    assert not torch.equal(other.fixed(12), batch)
    drawn, _ = data.sample(20, torch.Generator().manual_seed(0))  # random members of the fixed set
    members = batch.flatten(1)
    assert all((members == row).all(1).any() for row in drawn.flatten(1))
    with pytest.raises(GanforgeError) as err:
        data.fixed(5, start=10)
    _one_line(err, "sequences 10..14", "fixed set of 12", "data.test_sequences")


def test_held_out_clips_are_the_fixed_set_in_any_pieces():
    data = MovingDigits(_digits(), split="test", frames=4, size=32, test_sequences=9, seed=1)
    clips, count = held_out_clips(data)
    assert count == 9 and torch.equal(torch.cat([clips(0, 4), clips(4, 9)]), data.fixed(9))
    rows, count = held_out_clips(ClipDataset(_clips(3, frames=4)))
    assert count == 3 and torch.equal(rows(1, 3), _clips(3, frames=4)[1:3])
    with pytest.raises(GanforgeError, match="holds no clips"):
        held_out_clips(build_dataset({"name": "ring8"}))


def _shown(sequence: np.ndarray, digits: np.ndarray) -> set[int]:
    """Indices of ``digits`` pasted whole in the first frame of a one-digit sequence."""
    windows = sliding_window_view(sequence[0], digits.shape[1:])  # (L+1, L+1, D, D)
    return {i for i, d in enumerate(digits) if (windows == d).all((2, 3)).any()}


def test_a_test_split_alone_is_cut_into_training_and_held_out_digits(tmp_path, write_split):
    images, _ = write_split(tmp_path, "t10k", n=50)
    base = {"name": "moving-mnist", "root": str(tmp_path), "frames": 3, "size": 32, "num_digits": 1,
            "test_sequences": 40}
    train, test = build_dataset(base), build_dataset({**base, "split": "test"})
    assert isinstance(train, MovingDigits) and train.kind == "sequence"
    np.testing.assert_array_equal(train.digits, images[:40])
    np.testing.assert_array_equal(test.digits, images[40:])
    assert "first 40 of 50" in train.digit_source and "last 10 of 50" in test.digit_source
    assert not {d.tobytes() for d in train.digits} & {d.tobytes() for d in test.digits}
    drawn = _pixels(train.sample(30, torch.Generator().manual_seed(0))[0][:, :, 0])
    shown = set().union(*(_shown(s, images) for s in drawn))
    assert shown and shown <= set(range(40))  # training sequences show training digits only
    fixed = _pixels(test.fixed(40)[:, :, 0])
    shown = set().union(*(_shown(s, images) for s in fixed))
    assert shown and shown <= set(range(40, 50))


def test_with_a_train_split_each_split_uses_its_own_images(tmp_path, write_split):
    train_images, _ = write_split(tmp_path, "train", n=20, seed=1)
    test_images, _ = write_split(tmp_path, "t10k", n=10, seed=2)
    base = {"name": "moving-fashion", "root": str(tmp_path), "frames": 3, "size": 28}
    train, test = build_dataset(base), build_dataset({**base, "split": "test"})
    np.testing.assert_array_equal(train.digits, train_images)
    np.testing.assert_array_equal(test.digits, test_images)
    assert train.name == "moving-fashion" and "train split (20 images)" in train.digit_source
    assert train.sample(2, torch.Generator().manual_seed(0))[0].shape == (2, 3, 1, 28, 28)


@needs_mnist
def test_shared_mnist_holds_out_the_last_2000_test_digits():
    images = read_idx_images(SHARED_MNIST / "t10k-images-idx3-ubyte.gz")
    if (SHARED_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("the shared MNIST has its train split: nothing is held out of the test split")
    train = build_dataset({"name": "moving-mnist", "root": str(SHARED_MNIST)})
    test = build_dataset({"name": "moving-mnist", "root": str(SHARED_MNIST), "split": "test",
                          "test_sequences": 8})
    np.testing.assert_array_equal(train.digits, images[:8000])
    np.testing.assert_array_equal(test.digits, images[8000:])
    assert "8000" in train.digit_source and "2000" in test.digit_source
    x = test.fixed(8)
    assert x.shape == (8, 20, 1, 64, 64) and x.min() == -1 and x.max() <= 1 and x.max() > 0.9


def test_shared_fashion_test_sequences():
    if not (SHARED_FASHION / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST not found beside the repo (../shared/data/fashion-mnist)")
    data = build_dataset({"name": "moving-fashion", "root": str(SHARED_FASHION), "split": "test",
                          "test_sequences": 4, "frames": 4})
    assert data.digits.shape == (10000, 28, 28) and data.fixed(4).shape == (4, 4, 1, 64, 64)


@pytest.mark.parametrize("section, words", [
    ({"frames": 1}, "data.frames=1 is not a whole number >= 2"),
    ({"size": 20}, "data.size=20 is smaller than the 28 px digits"),
    ({"num_digits": 0}, "data.num_digits=0"),
    ({"test_sequences": 0}, "data.test_sequences=0"),
    ({"split": "val"}, "data.split='val' is not a split of moving digits"),
    ({"seed": -1}, "data.seed=-1"),
])
def test_bad_settings_are_one_line_errors(tmp_path, write_split, section, words):
    write_split(tmp_path, "t10k", n=10)
    with pytest.raises(GanforgeError) as err:
        build_dataset({"name": "moving-mnist", "root": str(tmp_path), **section})
    _one_line(err, words)


def test_missing_digits_are_the_idx_loaders_error(tmp_path):
    with pytest.raises(GanforgeError) as err:
        build_dataset({"name": "moving-mnist", "root": str(tmp_path / "nowhere")})
    _one_line(err, "MNIST directory", "does not exist", "data.download=true")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanforgeError) as err:
        build_dataset({"name": "moving-fashion", "root": str(tmp_path / "empty"), "split": "test"})
    _one_line(err, "test split is incomplete")


# ---------------------------------------------------------------------- writers
def test_the_png_strip_and_its_panels(tmp_path):
    kind, x = get_kind("sequence"), _clips(12, frames=5)
    assert kind.preview(Samples(x), tmp_path / "p.png").read_bytes()[:8] == PNG
    panels = {"truth": x, "MSE": x * 0.5, "adversarial": x.flip(0)}
    out = kind.writer("q.png").write(Samples(x, panels=panels, arrays={"observed": np.array(2)}, title="t"),
                                     tmp_path / "q.png")
    with Image.open(out) as im:
        assert im.format == "PNG" and im.height > im.width / 5  # 12 rows of 5 frames
    rgb = kind.writer("r.png").write(Samples(_clips(3, channels=3)), tmp_path / "r.png")
    assert rgb.read_bytes()[:8] == PNG


def test_the_gif_tiles_up_to_16_clips_frame_by_frame(tmp_path):
    kind = get_kind("sequence")
    x = _clips(5, frames=6, h=32, w=30)
    path = kind.writer("a.gif").write(Samples(x), tmp_path / "a.gif")
    with Image.open(path) as im:  # 3 clips to a row (ceil(sqrt(5))), 2 rows, 2 px lines
        assert im.n_frames == 6 and im.size == (3 * 32 + 2, 2 * 34 + 2)
        assert im.info["loop"] == 0 and im.info["duration"] == 100
    assert np.array_equal(read_clip(path), tile_frames(Samples(x)))  # grey frames, kept exactly
    many = Samples(_clips(20, frames=3), nrow=8)
    with Image.open(kind.writer("b.gif").write(many, tmp_path / "b.gif")) as im:
        assert im.n_frames == 3 and im.size == (8 * 34 + 2, 2 * 34 + 2)  # 16 clips, 8 to a row
    rgb = read_clip(kind.writer("c.gif").write(Samples(_clips(2, frames=4, channels=3)), tmp_path / "c.gif"))
    assert rgb.shape == (4, 36, 70, 3)
    small = _clips(4, frames=3, h=8, w=8)  # 8 px frames are drawn 4x larger
    with Image.open(kind.writer("d.gif").write(Samples(small), tmp_path / "d.gif")) as im:
        assert im.size == (4 * (2 * 10 + 2), 4 * (2 * 10 + 2))


def test_the_gif_with_panels_puts_them_side_by_side(tmp_path):
    x = _clips(6, frames=4)
    samples = Samples(x, panels={"truth": x, "MSE": x * 0.5, "adversarial": -x})
    with Image.open(get_kind("sequence").writer("p.gif").write(samples, tmp_path / "p.gif")) as im:
        assert im.n_frames == 4 and im.size == (3 * 36, 12 + 4 * 34 + 2)  # 3 panels of 4 clips, a header
    tiles = tile_frames(samples)
    assert np.array_equal(tiles[:, 12 + 2:12 + 34, 2:34, 0], _pixels(x[0, :, 0]))  # clip 0 of "truth"


def test_the_mp4_has_every_frame_and_even_sides(tmp_path):
    import imageio.v2 as iio

    x = _clips(3, frames=7, h=33, w=31)
    path = get_kind("sequence").writer("a.mp4").write(Samples(x), tmp_path / "a.mp4")
    reader = iio.get_reader(path, "ffmpeg")
    try:
        frames = [f for f in reader]
        assert reader.get_meta_data()["fps"] == 10
    finally:
        reader.close()
    assert len(frames) == 7 and frames[0].shape[0] % 2 == 0 and frames[0].shape[1] % 2 == 0
    assert _files(tmp_path) == ["a.mp4"]


def test_the_npz_keeps_the_clips(tmp_path):
    x = _clips(2, frames=3)
    path = get_kind("sequence").writer("a.npz").write(Samples(x, arrays={"observed": 1}), tmp_path / "a.npz")
    with np.load(path) as f:
        assert np.array_equal(f["x"], x.numpy()) and int(f["observed"]) == 1


def test_writers_write_nothing_on_error(tmp_path, monkeypatch):
    kind = get_kind("sequence")
    for ext in (".png", ".gif", ".mp4"):
        with pytest.raises(GanforgeError) as err:
            kind.writer(f"a{ext}").write(Samples(torch.zeros(2, 1, 8, 8)), tmp_path / f"a{ext}")
        _one_line(err, "must have shape (N, T, C, H, W)", "(2, 1, 8, 8)")
        with pytest.raises(GanforgeError) as err:
            panels = {"truth": _clips(2, frames=4), "guess": _clips(2, frames=5)}
            kind.writer(f"b{ext}").write(Samples(_clips(2), panels=panels), tmp_path / f"b{ext}")
        _one_line(err, "panel 'truth'", "panel 'guess'")
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # the video extra is not installed
    with pytest.raises(GanforgeError) as err:
        kind.writer("c.mp4").write(Samples(_clips()), tmp_path / "c.mp4")
    _one_line(err, "writing .mp4 needs imageio-ffmpeg", "pip install 'ganforge[video]'")
    assert _files(tmp_path) == []


# ---------------------------------------------------------------------- a user's clips
def _gif(path: Path, frames: np.ndarray) -> Path:
    """Write grey uint8 frames (T, H, W) as a GIF with Pillow directly."""
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=50, loop=0)
    return path


def _grey_frames(t: int, h: int = 10, w: int = 12, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w), dtype=np.uint8)


def test_read_clip_round_trips_gifs_frame_folders_npz_and_mp4(tmp_path):
    grey = _grey_frames(9)
    assert np.array_equal(read_clip(_gif(tmp_path / "g.gif", grey)), grey[..., None])
    colours = np.array([[255, 0, 0], [0, 128, 255], [10, 200, 30], [0, 0, 0]], np.uint8)
    rgb = colours[np.random.default_rng(1).integers(0, 4, (5, 6, 7))]
    images = [Image.fromarray(f) for f in rgb]
    images[0].save(tmp_path / "c.gif", save_all=True, append_images=images[1:], loop=0)
    assert np.array_equal(read_clip(tmp_path / "c.gif"), rgb)

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in np.random.default_rng(0).permutation(12):  # frame0..frame11, value 20 * i, any order
        Image.fromarray(np.full((4, 5), 20 * i, np.uint8)).save(folder / f"frame{i}.png")
    (folder / "notes.txt").write_text("not a frame")
    clip = read_clip(folder)
    assert clip.shape == (12, 4, 5, 1) and clip[:, 0, 0, 0].tolist() == [20 * i for i in range(12)]
    assert sorted(["frame10", "frame9", "frame1"], key=natural_key) == ["frame1", "frame9", "frame10"]

    np.savez(tmp_path / "a.npz", x=grey)
    assert np.array_equal(read_clip(tmp_path / "a.npz"), grey[..., None])
    np.savez(tmp_path / "b.npz", clip=rgb.transpose(0, 3, 1, 2) / np.float32(127.5) - 1)  # (T, C, H, W)
    assert np.array_equal(read_clip(tmp_path / "b.npz"), rgb)
    np.savez(tmp_path / "c.npz", x=rgb)  # (T, H, W, C)
    assert np.array_equal(read_clip(tmp_path / "c.npz"), rgb)

    x = torch.from_numpy(np.repeat(np.repeat(grey, 4, 1), 4, 2)).float().div(127.5).sub(1)[None, :, None]
    mp4 = get_kind("sequence").writer("v.mp4").write(Samples(x), tmp_path / "v.mp4")
    back = read_clip(mp4)
    tiles = tile_frames(Samples(x))
    assert back.shape[0] == 9 and back.shape[1:3] == tiles.shape[1:3]
    assert np.abs(back.astype(float)[..., 0] - tiles[..., 0]).mean() < 20  # lossy, but the same frames


def test_bad_clips_are_one_line_errors(tmp_path, monkeypatch):
    cases = []
    cases.append((tmp_path / "missing.gif", ["missing.gif does not exist"]))
    (tmp_path / "empty").mkdir()
    cases.append((tmp_path / "empty", ["no frames found in", "empty"]))
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.fromarray(np.zeros((4, 5), np.uint8)).save(mixed / "f1.png")
    Image.fromarray(np.zeros((6, 5), np.uint8)).save(mixed / "f2.png")
    cases.append((mixed, ["differ in size", "f1.png is 5x4", "f2.png is 5x6"]))
    (tmp_path / "bad.gif").write_bytes(b"GIF89a this is not a gif")
    cases.append((tmp_path / "bad.gif", ["cannot read GIF", "bad.gif"]))
    whole = _gif(tmp_path / "whole.gif", _grey_frames(6)).read_bytes()
    (tmp_path / "cut.gif").write_bytes(whole[:len(whole) // 3])
    cases.append((tmp_path / "cut.gif", ["cannot read GIF", "cut.gif"]))
    (tmp_path / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 garbage" * 10)
    cases.append((tmp_path / "bad.mp4", ["cannot read video", "bad.mp4"]))
    (tmp_path / "clip.txt").write_text("hello")
    cases.append((tmp_path / "clip.txt", ["unsupported extension .txt", ".gif, .mp4"]))
    np.savez(tmp_path / "shape.npz", x=np.zeros((2, 5, 5, 5, 5)))
    cases.append((tmp_path / "shape.npz", ["shape.npz holds an array of shape (2, 5, 5, 5, 5)"]))
    np.savez(tmp_path / "range.npz", x=np.full((3, 4, 4), 2.0))
    cases.append((tmp_path / "range.npz", ["outside [-1, 1]"]))
    for path, fragments in cases:
        with pytest.raises(GanforgeError) as err:
            read_clip(path)
        _one_line(err, *fragments)
    np.savez(tmp_path / "v.npz", x=np.zeros((3, 4, 4), np.uint8))  # a good file, but no extra
    (tmp_path / "v.mp4").write_bytes((tmp_path / "v.npz").read_bytes())
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    with pytest.raises(GanforgeError) as err:
        read_clip(tmp_path / "v.mp4")
    _one_line(err, "needs imageio-ffmpeg", "pip install 'ganforge[video]'")


def test_clip_to_tensor_converts_grey_and_rgb():
    rgb = np.zeros((2, 3, 4, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    grey = clip_to_tensor(rgb, 1)
    assert grey.shape == (2, 1, 3, 4) and grey.dtype == torch.float32
    assert torch.allclose(grey, torch.full_like(grey, 0.299 * 255 / 127.5 - 1))
    assert torch.equal(clip_to_tensor(rgb, 3)[:, 0], torch.ones(2, 3, 4))
    g = np.arange(24, dtype=np.uint8).reshape(2, 3, 4, 1) * 10
    three = clip_to_tensor(g, 3)
    assert three.shape == (2, 3, 3, 4) and torch.equal(three[:, 0], three[:, 2])
    assert torch.allclose(clip_to_tensor(g, 1), torch.from_numpy(g).permute(0, 3, 1, 2).float() / 127.5 - 1)
    for bad in (2, True):
        with pytest.raises(GanforgeError, match="is not 1 \\(grey\\) or 3 \\(RGB\\)"):
            clip_to_tensor(g, bad)


def _clip_folder(root: Path) -> dict[str, np.ndarray]:
    root.mkdir()
    made = {"a": _grey_frames(25, seed=1), "b": _grey_frames(12, seed=2), "c": _grey_frames(30, seed=3),
            "d": _grey_frames(5, seed=4)}
    _gif(root / "a.gif", made["a"])
    (root / "b").mkdir()
    for i, frame in enumerate(made["b"]):
        Image.fromarray(frame).save(root / "b" / f"{i}.png")
    np.savez(root / "c.npz", x=made["c"])
    _gif(root / "d.gif", made["d"])
    (root / "README").write_text("not a clip")
    return made


def test_the_clips_dataset_cuts_windows_and_skips_short_clips(tmp_path, capsys):
    made = _clip_folder(tmp_path / "videos")
    data = build_dataset({"name": "clips", "path": str(tmp_path / "videos"), "frames": 10})
    assert "skipped 1 clip shorter than 10 frames" in capsys.readouterr().out
    assert isinstance(data, ClipDataset) and data.kind == "sequence" and data.fields == ("x",)
    assert data.sources == ("a.gif", "b", "c.npz") and data.skipped == 1
    assert data.x.shape == (2 + 1 + 3, 10, 1, 10, 12)  # 25 -> 2 windows, 12 -> 1, 30 -> 3
    unit = {k: torch.from_numpy(v).float() / 127.5 - 1 for k, v in made.items()}
    assert torch.equal(data.x[1, :, 0], unit["a"][10:20])
    assert torch.equal(data.x[2, :, 0], unit["b"][:10])
    assert torch.equal(data.x[5, :, 0], unit["c"][20:30])
    rgb = build_dataset({"name": "clips", "path": str(tmp_path / "videos"), "frames": 12, "channels": 3,
                         "size": 16})
    assert rgb.x.shape == (2 + 1 + 2, 12, 3, 16, 16) and rgb.x.min() >= -1 and rgb.x.max() <= 1
    one = build_dataset({"name": "clips", "path": str(tmp_path / "videos" / "c.npz"), "frames": 7})
    assert one.x.shape == (4, 7, 1, 10, 12)
    assert "clips" in datasets_of_kind("sequence")


def test_bad_clip_collections_are_one_line_errors(tmp_path):
    _clip_folder(tmp_path / "videos")
    with pytest.raises(GanforgeError) as err:
        build_dataset({"name": "clips", "path": str(tmp_path / "videos"), "frames": 40})
    _one_line(err, "every one of the 4 clips", "shorter than 40 frames", "data.frames to at most 30")
    np.savez(tmp_path / "videos" / "e.npz", x=_grey_frames(20, h=8, w=8))
    with pytest.raises(GanforgeError) as err:
        build_dataset({"name": "clips", "path": str(tmp_path / "videos"), "frames": 10})
    _one_line(err, "clips differ in size", "a.gif is 12x10", "e.npz is 8x8", "data.size")
    (tmp_path / "nothing").mkdir()
    with pytest.raises(GanforgeError) as err:
        build_dataset({"name": "clips", "path": str(tmp_path / "nothing")})
    _one_line(err, "no clips found in")
    with pytest.raises(GanforgeError) as err:
        build_dataset({"name": "clips", "path": str(tmp_path / "absent")})
    _one_line(err, "does not exist")
    for section, words in (({"frames": 1}, "data.frames=1"), ({"channels": 2}, "data.channels=2"),
                           ({"size": 0}, "data.size=0")):
        with pytest.raises(GanforgeError) as err:
            build_dataset({"name": "clips", "path": str(tmp_path / "videos"), **section})
        _one_line(err, words)
