"""Sequences of frames (video): the ``sequence`` data kind, Moving MNIST made by the project, and a
user's clips.

**The kind.** A sample is a clip, float32 (T, C, H, W) in [-1, 1] with C = 1 (grey) or 3 (RGB);
a batch is (N, T, C, H, W). ``sequence`` claims every sample shape of four dimensions. Samples
are written as

    .png   a strip figure: each clip one row of frames (at most 8 clips); with named
           ``panels`` (truth | MSE | adversarial, each (N, T, C, H, W) with one T), one row per
           panel, labelled, for each of the first 4 clips, and a red line between the observed
           and the predicted frames when ``arrays["observed"]`` (a frame count) is given
    .gif   an animation (Pillow, 100 ms a frame, looping forever): every GIF frame tiles up to
           16 clips (``nrow`` to a row, default ceil(sqrt(n))); with panels, the panels side by
           side (a header names them) for the first 4 clips; a single clip without panels is
           written as its own frames (no border, no enlargement), so it reads back whole.
           Pillow merges identical consecutive frames (their durations add)
    .mp4   the same tiling as H.264 at 10 fps (``imageio`` + ``imageio-ffmpeg``, the optional
           extra ``ganforge[video]``), frame sides padded to even numbers
    .npz   ``x`` (N, T, C, H, W) float32 and the named arrays

**Moving MNIST** (Srivastava, Mansimov & Salakhutdinov 2015): ``num_digits`` 28 x 28 digits
bounce inside a ``size`` x ``size`` canvas (:func:`bouncing_trajectories`), overlapping digits
combined by a pixel-wise max (:func:`moving_digits`). The datasets ``moving-mnist`` and
``moving-fashion`` (:class:`MovingDigits`) draw fresh training sequences from a seeded generator
(split ``train``) or hold a fixed test set (split ``test``: sequence i depends only on the seed
and i). Training and test sequences never share a digit image: the IDX train split makes the
training sequences and the test split the test sequences; when only the test split is present
(``t10k`` files), its first 80 % (8,000 of 10,000) make the training sequences and the last 20 %
(2,000) the test sequences.

**A user's clips.** :func:`read_clip` reads a ``.gif``, an ``.mp4``/``.avi``/``.mov``, a folder
of PNG/JPEG frames (in natural order: frame10 follows frame9) or an ``.npz``;
:func:`clip_to_tensor` makes it (T, C, H, W) in [-1, 1]; the ``clips`` dataset cuts every clip
of a folder into windows of ``frames`` frames to train on.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.lib.stride_tricks import as_strided

from ganforge._io import atomic_write, check_allocation, read_npz_array
from ganforge.data.base import ArrayDataset, StreamDataset, register_dataset
from ganforge.data.kinds import NPZ, DataKind, Writer, register_kind
from ganforge.data.mnist import default_root, find_file, load_idx_dataset, split_stems
from ganforge.data.writers import Samples
from ganforge.errors import GanforgeError

#: clips drawn by the strip figure, clips per panel figure, clips tiled in a GIF/MP4 frame
STRIP_CLIPS, PANEL_CLIPS, TILED_CLIPS = 8, 4, 16
GIF_FRAME_MS = 100
MP4_FPS = 10
#: speed of a Moving MNIST digit, uniform in this range (pixels per frame)
SPEED = (2.0, 5.0)
#: the share of a test-only IDX split held out for test sequences (2,000 of 10,000)
HELD_OUT = 0.2
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov"})
FRAME_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
CLIP_SUFFIXES = VIDEO_SUFFIXES | {".gif", ".npz"}
VIDEO_FIX = "pip install 'ganforge[video]', or write .gif"
_PAD = 1.0  # white lines between frames: Moving MNIST's background is black
_RENDER_CHUNK = 64  # sequences rendered at once (their frames stay in the CPU cache)


# ---------------------------------------------------------------------- the kind's writers
def _clips(x: Any, what: str = "sequence samples") -> np.ndarray:
    """``x`` as float32 numpy (N, T, C, H, W) with C 1 or 3 and N, T >= 1; a one-line error
    otherwise."""
    a = x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float32)
    if a.ndim != 5 or a.shape[2] not in (1, 3) or min(a.shape) < 1:
        raise GanforgeError(f"{what} must have shape (N, T, C, H, W) with C = 1 or 3, got {tuple(a.shape)}",
                            "write clips of a sequence run (N clips of T frames)")
    return a


def _panels(samples: Samples) -> dict[str, np.ndarray]:
    """The named panels as clips of one frame count and frame size (grey panels made RGB when
    another is RGB)."""
    panels = {str(name): _clips(p, f"panel {name!r}") for name, p in samples.panels.items()}
    shapes = {name: (p.shape[1], *p.shape[3:]) for name, p in panels.items()}
    if len(set(shapes.values())) > 1:
        (a, sa), (b, sb) = _first_two(shapes)
        raise GanforgeError(f"panel {a!r} holds clips of (T, H, W) = {sa} but panel {b!r} {sb}",
                            "give every panel clips of the same length and frame size")
    if any(p.shape[2] == 3 for p in panels.values()):
        panels = {name: np.repeat(p, 3, axis=2) if p.shape[2] == 1 else p for name, p in panels.items()}
    return panels


def _first_two(shapes: Mapping[str, tuple[int, ...]]) -> list[tuple[str, tuple[int, ...]]]:
    """The first entry of ``shapes`` and the first that differs from it."""
    items = list(shapes.items())
    other = next(item for item in items if item[1] != items[0][1])
    return [items[0], other]


def _observed(samples: Samples, frames: int) -> int | None:
    """``arrays["observed"]`` as a frame count strictly inside (0, frames), else None."""
    value = samples.arrays.get("observed")
    if value is None:
        return None
    array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    flat = array.reshape(-1)
    if flat.size != 1 or not np.isfinite(flat[0]):
        return None
    observed = int(flat[0])
    return observed if 0 < observed < frames else None


def write_sequence_png(samples: Samples, path: Path) -> Path:
    """The strip figure (module docstring): one row of frames per clip (at most
    :data:`STRIP_CLIPS`), or with ``panels`` one labelled row per panel for each of the first
    :data:`PANEL_CLIPS` clips; a red line after the ``arrays["observed"]`` frames."""
    from matplotlib.figure import Figure

    from ganforge.viz._atomic import save_figure
    from ganforge.viz.grid import make_grid

    if samples.panels:
        panels = _panels(samples)
        count = min(PANEL_CLIPS, min(len(p) for p in panels.values()))
        rows = [(name, p[i]) for i in range(count) for name, p in panels.items()]
        group = len(panels)
    else:
        x = _clips(samples.x)[:STRIP_CLIPS]
        rows = [(f"{i + 1}", clip) for i, clip in enumerate(x)]
        group = 1
    frames, _, h, w = rows[0][1].shape
    pad = 2
    grid = make_grid(np.concatenate([clip for _, clip in rows]), nrow=frames, padding=pad, pad_value=_PAD)
    gh, gw = grid.shape[:2]
    width = float(np.clip(gw / 80.0, 4.0, 18.0))
    fig = Figure(figsize=(width + 1.2, width * gh / gw + (0.9 if samples.title else 0.6)))
    ax = fig.add_subplot()
    if grid.shape[2] == 1:
        ax.imshow(grid[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(grid, interpolation="nearest")
    ax.set_yticks([pad + r * (h + pad) + h / 2 for r in range(len(rows))], [name for name, _ in rows],
                  fontsize=8)
    every = max(1, math.ceil(frames / 20))
    ax.set_xticks([pad + t * (w + pad) + w / 2 for t in range(0, frames, every)],
                  [str(t) for t in range(0, frames, every)], fontsize=7)
    ax.set_xlabel("frame", fontsize=8)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    for r in range(group, len(rows), group) if group > 1 else ():  # between the clips of panels
        ax.axhline(r * (h + pad) + pad / 2 - 0.5, color="C0", linewidth=1.5)
    observed = _observed(samples, frames)
    if observed is not None:
        ax.axvline(observed * (w + pad) + pad / 2 - 0.5, color="red", linewidth=2)
    if samples.title:
        ax.set_title(samples.title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def _header(names: list[str], widths: list[int], channels: int) -> np.ndarray:
    """A white band (12 px, uint8 (12, sum(widths), channels)) naming each panel over its
    column, names cut to fit."""
    from PIL import Image, ImageDraw, ImageFont

    band = Image.new("L", (sum(widths), 12), 255)
    draw, font = ImageDraw.Draw(band), ImageFont.load_default()
    left = 0
    for name, width in zip(names, widths, strict=True):
        text = name
        while text and draw.textlength(text, font=font) > width - 2:
            text = text[:-1]
        draw.text((left + 1, 0), text, fill=0, font=font)
        left += width
    a = np.asarray(band)[..., None]
    return np.repeat(a, channels, axis=2)


def tile_frames(samples: Samples) -> np.ndarray:
    """The frames of the animated writers, uint8 (T, H', W', C): at each time step a grid of up
    to :data:`TILED_CLIPS` clips (``nrow`` to a row, default ceil(sqrt(n))), or with ``panels``
    the panels side by side (each a column of the first :data:`PANEL_CLIPS` clips) under a band
    naming them; frames under 32 px are enlarged by an integer factor (nearest neighbour). A single
    clip without panels is its own frames, unchanged in size."""
    from ganforge.viz.grid import make_grid

    if samples.panels:
        panels = _panels(samples)
        count = min(PANEL_CLIPS, min(len(p) for p in panels.values()))
        frames = next(iter(panels.values())).shape[1]
        tiles = [np.concatenate([make_grid(p[:count, t], nrow=1, pad_value=_PAD) for p in panels.values()],
                                axis=1) for t in range(frames)]
        h = next(iter(panels.values())).shape[3]
        width = make_grid(next(iter(panels.values()))[:count, 0], nrow=1).shape[1]
        header = _header(list(panels), [width] * len(panels), tiles[0].shape[2])
    else:
        x = _clips(samples.x)[:TILED_CLIPS]
        if len(x) == 1:  # one clip is written as it is (no border, no enlargement): it reads back whole
            pixels = np.rint((np.clip(x[0], -1, 1) + 1) * 127.5).astype(np.uint8)
            return np.ascontiguousarray(pixels.transpose(0, 2, 3, 1))
        nrow = samples.nrow or math.ceil(math.sqrt(len(x)))
        tiles = [make_grid(x[:, t], nrow=nrow, pad_value=_PAD) for t in range(x.shape[1])]
        h, header = x.shape[3], None
    scale = max(1, 32 // h)
    out = np.stack(tiles)
    if scale > 1:
        out = out.repeat(scale, axis=1).repeat(scale, axis=2)
    if header is not None:
        if scale > 1:
            header = np.repeat(header, scale, axis=1)
            header = np.pad(header, ((0, 0), (0, out.shape[2] - header.shape[1]), (0, 0)),
                            constant_values=255)
        out = np.concatenate([np.broadcast_to(header, (len(out), *header.shape)), out], axis=1)
    return np.ascontiguousarray(out)


def write_sequence_gif(samples: Samples, path: Path) -> Path:
    """An animated GIF of :func:`tile_frames` (grey stays grey, RGB is RGB), 100 ms a frame,
    looping forever."""
    from PIL import Image

    tiles = tile_frames(samples)
    images = [Image.fromarray(t[..., 0] if t.shape[2] == 1 else t) for t in tiles]
    return atomic_write(path, lambda fh: images[0].save(
        fh, format="GIF", save_all=True, append_images=images[1:], duration=GIF_FRAME_MS, loop=0))


def _pad_even(tiles: np.ndarray) -> np.ndarray:
    """Pad (T, H, W, C) frames at the bottom and right (white) to even sides (H.264, yuv420p)."""
    h, w = tiles.shape[1:3]
    return np.pad(tiles, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), constant_values=255)


def write_sequence_mp4(samples: Samples, path: Path) -> Path:
    """An H.264 ``.mp4`` of :func:`tile_frames` at 10 fps; needs ``imageio-ffmpeg`` (a one-line
    error before anything is written without it). Written to a temporary sibling, then renamed:
    a failed write leaves nothing."""
    try:
        import imageio.v2 as iio
        import imageio_ffmpeg  # noqa: F401  (the ffmpeg binary imageio writes with)
    except ImportError:
        raise GanforgeError("writing .mp4 needs imageio-ffmpeg", VIDEO_FIX) from None
    tiles = _pad_even(tile_frames(samples))
    if tiles.shape[3] == 1:
        tiles = np.repeat(tiles, 3, axis=3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp.mp4")
    try:
        writer = iio.get_writer(tmp, format="FFMPEG", mode="I", fps=MP4_FPS, codec="libx264",
                                pixelformat="yuv420p", macro_block_size=1, ffmpeg_log_level="error")
        try:
            for tile in tiles:
                writer.append_data(tile)
        finally:
            writer.close()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise GanforgeError(f"ffmpeg could not write {path}: {' '.join(str(err).split())[:160]}",
                            "write .gif instead") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


STRIP = Writer(write_sequence_png)
register_kind(DataKind(
    "sequence", {".png": STRIP, ".gif": Writer(write_sequence_gif), ".mp4": Writer(write_sequence_mp4),
                 ".npz": NPZ},
    shape=lambda shape: len(shape) == 4, metrics=(), preview_writer=STRIP,
    description="clips of frames (T, C, H, W) in [-1, 1] (video, Moving MNIST)"))


# ---------------------------------------------------------------------- Moving MNIST
def _whole(value: Any, name: str, least: int, example: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise GanforgeError(f"{name}={value!r} is not a whole number >= {least}",
                            f"set e.g. {name}={example}")
    return int(value)


def bouncing_trajectories(n: int, frames: int, canvas: int, digit: int, num_digits: int,
                          generator: np.random.Generator) -> np.ndarray:
    """Top-left positions (row, col), int64 (n, num_digits, frames, 2), of ``num_digits`` digits
    of side ``digit`` bouncing inside a ``canvas`` x ``canvas`` frame, every one in [0, L] with
    L = canvas - digit.

    Drawn from ``generator`` in this order: the start p0 ~ U[0, L]^2, shape (n, num_digits, 2);
    the direction theta ~ U[0, 2 pi) and the speed s ~ U[2, 5] px/frame (:data:`SPEED`), each
    (n, num_digits); the velocity is v = s (sin theta, cos theta). A digit moves in straight lines
    and is reflected by each wall (the position mirrored into the frame, that velocity component
    negated), which in closed form folds the free path u(t) = p0 + v t back into [0, L] per
    coordinate:

        m(t) = u(t) mod 2L,   p(t) = L - |L - m(t)|,

    then rounded to whole pixels. This equals stepping p <- p + v and reflecting (p < 0: p <- -p,
    v <- -v; p > L: p <- 2L - p, v <- -v) for any speed, even several bounces in one frame.
    L = 0 (digit as large as the canvas) keeps every digit at (0, 0).
    """
    n = _whole(n, "n", 0, "16")
    frames = _whole(frames, "frames", 1, "20")
    num_digits = _whole(num_digits, "num_digits", 1, "2")
    room = _whole(canvas, "canvas", 1, "64") - _whole(digit, "digit", 1, "28")
    if room < 0:
        raise GanforgeError(f"a canvas of {canvas} px cannot hold a digit of {digit} px",
                            f"make the canvas at least {digit} px")
    start = generator.uniform(0.0, room, (n, num_digits, 2))
    theta = generator.uniform(0.0, 2 * math.pi, (n, num_digits))
    speed = generator.uniform(*SPEED, (n, num_digits))
    if room == 0:
        return np.zeros((n, num_digits, frames, 2), np.int64)
    velocity = speed[..., None] * np.stack([np.sin(theta), np.cos(theta)], axis=-1)
    t = np.arange(frames, dtype=np.float64)[:, None]
    free = start[:, :, None, :] + velocity[:, :, None, :] * t  # (n, k, frames, 2)
    folded = room - np.abs(room - np.mod(free, 2 * room))
    return np.clip(np.rint(folded), 0, room).astype(np.int64)


def _check_digits(digits: np.ndarray, size: int) -> np.ndarray:
    a = np.asarray(digits)
    if a.ndim != 3 or a.shape[1] != a.shape[2] or len(a) == 0:
        raise GanforgeError(f"digit images must be square, shape (M, D, D) with M >= 1, got {a.shape}",
                            "pass e.g. MNIST's 28 x 28 images")
    if a.dtype != np.uint8:
        raise GanforgeError(f"digit images must be uint8 (0..255), got {a.dtype}", "pass the IDX images")
    if a.shape[1] > size:
        raise GanforgeError(f"a {size} px canvas cannot hold {a.shape[1]} px digits",
                            f"set data.size to at least {a.shape[1]}")
    return np.ascontiguousarray(a)


def _draw(digits: np.ndarray, n: int, frames: int, size: int, num_digits: int,
          generator: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The trajectories (n, k, frames, 2), then which digit image each slot shows (n, k)."""
    positions = bouncing_trajectories(n, frames, size, digits.shape[1], num_digits, generator)
    which = generator.integers(0, len(digits), (n, num_digits))
    return positions, which


def _render(digits: np.ndarray, positions: np.ndarray, which: np.ndarray, size: int) -> np.ndarray:
    """uint8 (n, frames, size, size): digit ``which[i, k]`` pasted at ``positions[i, k, t]`` in
    frame t of sequence i, overlaps combined by a pixel-wise max. Vectorised by writing through a
    strided view of every frame's (L+1) x (L+1) windows of side D, a chunk of sequences at a
    time."""
    n, k, frames, _ = positions.shape
    d = digits.shape[1]
    room = size - d
    out = np.empty((n, frames, size, size), np.uint8)
    for a in range(0, n, _RENDER_CHUNK):
        b = min(n, a + _RENDER_CHUNK)
        canvas = out[a:b].reshape(-1, size, size)
        canvas.fill(0)
        s0, s1, s2 = canvas.strides
        windows = as_strided(canvas, shape=(len(canvas), room + 1, room + 1, d, d),
                             strides=(s0, s1, s2, s1, s2))
        frame = np.arange(len(canvas))
        for slot in range(k):
            rows = positions[a:b, slot, :, 0].reshape(-1)
            cols = positions[a:b, slot, :, 1].reshape(-1)
            pasted = digits[np.repeat(which[a:b, slot], frames)]
            if slot > 0:
                pasted = np.maximum(windows[frame, rows, cols], pasted)
            windows[frame, rows, cols] = pasted
    return out


def moving_digits(digits: np.ndarray, n: int, *, frames: int = 20, size: int = 64, num_digits: int = 2,
                  generator: np.random.Generator) -> np.ndarray:
    """``n`` Moving MNIST sequences, uint8 (n, frames, size, size): each picks ``num_digits``
    random images of ``digits`` (uint8 (M, D, D), e.g. MNIST's 28 x 28) and pastes each at its
    :func:`bouncing_trajectories` position in every frame on a black canvas; overlapping digits
    are combined by a pixel-wise max (as the original code does). Draws from ``generator``: the
    trajectories, then the digit indices (n, num_digits), uniform over the M images."""
    digits = _check_digits(digits, _whole(size, "size", 1, "64"))
    positions, which = _draw(digits, n, frames, size, num_digits, generator)
    return _render(digits, positions, which, size)


def _unit(pixels: np.ndarray) -> torch.Tensor:
    """uint8 (n, T, H, W) -> float32 (n, T, 1, H, W) in [-1, 1] (pixel / 127.5 - 1)."""
    return torch.from_numpy(pixels).unsqueeze(2).float().div_(127.5).sub_(1.0)


def _check_settings(split: Any, frames: Any, size: Any, num_digits: Any, test_sequences: Any,
                    seed: Any) -> None:
    """One-line errors for settings of moving digits that cannot be."""
    if split not in ("train", "test"):
        raise GanforgeError(f"data.split={split!r} is not a split of moving digits",
                            "set data.split=train or data.split=test")
    _whole(frames, "data.frames", 2, "20")
    _whole(size, "data.size", 1, "64")
    _whole(num_digits, "data.num_digits", 1, "2")
    _whole(test_sequences, "data.test_sequences", 1, "10000")
    _whole(seed, "data.seed", 0, "0")


class MovingDigits(StreamDataset):
    """Moving MNIST-style sequences of ``digits`` (uint8 (M, D, D)): samples (frames, 1, size,
    size) in [-1, 1], no labels.

    split ``train``: :meth:`sample` draws fresh sequences from a numpy generator seeded from the
    torch generator (``seed`` plays no part). split ``test``: a fixed set of ``test_sequences``
    sequences, sequence i being ``moving_digits(digits, 1, generator=np.random.default_rng([seed,
    i]))`` (it depends only on the seed and i); :meth:`sample` draws random members,
    :meth:`fixed` and :meth:`materialise` return the first ones. ``digit_source`` says which IDX
    images the digits are; ``frame_extractor`` names the shipped classifier whose features score
    its frames (``lenet_mnist``, ``lenet_fashion``)."""

    data_kind = "sequence"
    extractor = None
    num_classes = None

    def __init__(self, digits: np.ndarray, *, split: str = "train", frames: int = 20, size: int = 64,
                 num_digits: int = 2, test_sequences: int = 10000, seed: int = 0, name: str = "moving-mnist",
                 digit_source: str = "the given digit images", frame_extractor: str = "lenet_mnist") -> None:
        _check_settings(split, frames, size, num_digits, test_sequences, seed)
        self.frames, self.size, self.num_digits = frames, size, num_digits
        self.test_sequences, self.seed = test_sequences, seed
        self.digits = _check_digits(digits, self.size)
        self.split, self.name, self.digit_source = split, name, digit_source
        self.frame_extractor = frame_extractor
        self.sample_shape = (self.frames, 1, self.size, self.size)

    def _members(self, indices: np.ndarray) -> np.ndarray:
        """uint8 sequences ``indices`` of the fixed set (each from its own generator)."""
        if len(indices) == 0:
            return np.zeros((0, self.frames, self.size, self.size), np.uint8)
        drawn = [_draw(self.digits, 1, self.frames, self.size, self.num_digits,
                       np.random.default_rng([self.seed, int(i)])) for i in indices]
        positions = np.concatenate([p for p, _ in drawn]).reshape(len(drawn), self.num_digits, self.frames, 2)
        which = np.concatenate([w for _, w in drawn]).reshape(len(drawn), self.num_digits)
        return _render(self.digits, positions, which, self.size)

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, None]:
        """``n`` sequences float32 (n, frames, 1, size, size) in [-1, 1] and no labels: fresh ones
        (train) or random members of the fixed test set (test)."""
        if self.split == "test":
            indices = torch.randint(self.test_sequences, (n,), generator=generator).numpy()
            return _unit(self._members(indices)), None
        seed = int(torch.randint(2**62, (1,), generator=generator))
        pixels = moving_digits(self.digits, n, frames=self.frames, size=self.size, num_digits=self.num_digits,
                               generator=np.random.default_rng(seed))
        return _unit(pixels), None

    def fixed(self, n: int, start: int = 0) -> torch.Tensor:
        """Sequences ``start .. start + n - 1`` of the fixed set, float32 (n, frames, 1, size,
        size) in [-1, 1]; a one-line error past ``test_sequences``."""
        n, start = _whole(n, "n", 0, "16"), _whole(start, "start", 0, "0")
        if start + n > self.test_sequences:
            raise GanforgeError(f"sequences {start}..{start + n - 1} asked of a fixed set of "
                                f"{self.test_sequences}", "ask for fewer, or raise data.test_sequences")
        return _unit(self._members(np.arange(start, start + n)))

    def materialise(self, n: int, seed: int = 0) -> ArrayDataset:
        """The first ``n`` sequences of the fixed set (test split), else ``n`` fresh ones drawn
        with ``seed``."""
        if self.split == "train":
            return super().materialise(n, seed)
        return ArrayDataset(self.fixed(n), None, name=self.name, extractor=None)


def held_out_clips(dataset: Any) -> tuple[Callable[[int, int], torch.Tensor], int]:
    """The held-out clips of a sequence dataset as ``(clips(start, stop), count)``: clips
    ``start .. stop - 1`` float32 (stop - start, T, C, H, W) in [-1, 1], the same whoever asks
    and in whatever pieces. A :class:`MovingDigits` gives its fixed set (:meth:`MovingDigits.fixed`,
    ``test_sequences`` of them), an in-memory dataset (``clips``) its rows; anything else is a
    one-line error."""
    if isinstance(dataset, MovingDigits):
        return (lambda start, stop: dataset.fixed(max(stop - start, 0), start)), dataset.test_sequences
    if isinstance(dataset, ArrayDataset) and dataset.x.dim() == 5:
        return (lambda start, stop: dataset.x[start:stop]), len(dataset)
    raise GanforgeError(f"dataset {getattr(dataset, 'name', '') or type(dataset).__name__} holds no clips",
                        "evaluate on a sequence dataset (moving-mnist, moving-fashion, clips)")


def frame_extractor_of(dataset: Any) -> str:
    """The feature extractor of a sequence dataset's frames (:mod:`ganforge.metrics.video`): the
    shipped LeNet of its digits for :class:`MovingDigits`, else the MNIST LeNet (frames resized to
    28x28 grey)."""
    return dataset.frame_extractor if isinstance(dataset, MovingDigits) else "lenet_mnist"


def _idx_pixels(name: str, root: str | None, split: str, download: bool) -> np.ndarray:
    """uint8 (M, 28, 28) images of one IDX split (the loader's one-line errors pass through)."""
    data = load_idx_dataset(name, root, split, download=download)
    return np.rint((data.x[:, 0].numpy().astype(np.float64) + 1.0) * 127.5).astype(np.uint8)


def _load_moving_digits(name: str, title: str, *, root: str | None, split: str, frames: int, size: int,
                       num_digits: int, test_sequences: int, seed: int, download: bool,
                       dataset: str, frame_extractor: str) -> MovingDigits:
    """The :class:`MovingDigits` of IDX dataset ``name`` (``mnist``, ``fashion-mnist``): digits
    from the train split for training and the test split for test sequences, or, when only the
    test split is present (and no download is asked for), its first 80 % and last 20 %."""
    _check_settings(split, frames, size, num_digits, test_sequences, seed)
    if size < 28:
        raise GanforgeError(f"data.size={size} is smaller than the 28 px digits",
                            "set data.size to at least 28")
    if not isinstance(download, bool):
        raise GanforgeError(f"data.download must be true or false, got {download!r}",
                            "set data.download=true or data.download=false")
    folder = Path(root).expanduser() if root is not None else default_root(name)
    has_train = all(find_file(folder, stem) is not None for stem in split_stems("train"))
    if has_train or download:
        digits = _idx_pixels(name, root, split, download)
        other = "test" if split == "train" else "train"
        source = (f"{title} {split} split ({len(digits)} images); {other} sequences use the {other} split")
    else:
        images = _idx_pixels(name, root, "test", download)
        held = int(len(images) * HELD_OUT)
        if held < 1 or held == len(images):
            raise GanforgeError(f"the {title} test split in {folder} holds {len(images)} images, too few to "
                                "hold some out for test sequences",
                                "add the train split (data.download=true) or more test images")
        kept = len(images) - held
        if split == "train":
            digits = images[:kept]
            source = (f"{title} test split only: its first {kept} of {len(images)} images "
                      f"(the last {held} are held out for test sequences)")
        else:
            digits = images[kept:]
            source = (f"{title} test split only: its last {held} of {len(images)} images, held out "
                      f"(training sequences use the first {kept})")
    return MovingDigits(digits, split=split, frames=frames, size=size, num_digits=num_digits,
                        test_sequences=test_sequences, seed=seed, name=dataset, digit_source=source,
                        frame_extractor=frame_extractor)


@register_dataset("moving-mnist")
def moving_mnist(root: str | None = None, split: str = "train", frames: int = 20, size: int = 64,
                 num_digits: int = 2, test_sequences: int = 10000, seed: int = 0,
                 download: bool = False) -> MovingDigits:
    """Moving MNIST (Srivastava et al. 2015): ``num_digits`` MNIST digits bouncing in a ``size``
    px canvas for ``frames`` frames; see :class:`MovingDigits` and :func:`_load_moving_digits`.
    ``root``: the MNIST IDX folder (default ``~/.cache/ganforge/mnist``)."""
    return _load_moving_digits("mnist", "MNIST", root=root, split=split, frames=frames, size=size,
                              num_digits=num_digits, test_sequences=test_sequences, seed=seed,
                              download=download, dataset="moving-mnist", frame_extractor="lenet_mnist")


@register_dataset("moving-fashion")
def moving_fashion(root: str | None = None, split: str = "train", frames: int = 20, size: int = 64,
                   num_digits: int = 2, test_sequences: int = 10000, seed: int = 0,
                   download: bool = False) -> MovingDigits:
    """Moving Fashion-MNIST: as ``moving-mnist`` with Fashion-MNIST items (default root
    ``~/.cache/ganforge/fashion-mnist``)."""
    return _load_moving_digits("fashion-mnist", "Fashion-MNIST", root=root, split=split, frames=frames,
                              size=size, num_digits=num_digits, test_sequences=test_sequences, seed=seed,
                              download=download, dataset="moving-fashion", frame_extractor="lenet_fashion")


# ---------------------------------------------------------------------- a user's clips
def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key putting ``frame9`` before ``frame10`` (runs of digits compared as numbers)."""
    return tuple((0, int(part)) if part.isdigit() else (1, part.lower())
                 for part in re.split(r"(\d+)", name) if part)


def _stack(frames: list[np.ndarray], names: list[str], where: Path) -> np.ndarray:
    """Frames (H, W, 3) of one clip stacked (T, H, W, 3); a one-line error naming the first two
    frames of different sizes."""
    first = frames[0].shape[:2]
    for frame, name in zip(frames, names, strict=True):
        if frame.shape[:2] != first:
            raise GanforgeError(
                f"frames of {where} differ in size: {names[0]} is {first[1]}x{first[0]} but {name} is "
                f"{frame.shape[1]}x{frame.shape[0]} (width x height)", "give every frame of a clip one size")
    return np.stack(frames)


def _grey_if_grey(frames: np.ndarray) -> np.ndarray:
    """RGB frames (T, H, W, 3) whose channels are equal everywhere as (T, H, W, 1)."""
    if frames.shape[3] == 3 and (frames[..., :1] == frames[..., 1:]).all():
        return np.ascontiguousarray(frames[..., :1])
    return frames


def _read_folder(folder: Path) -> np.ndarray:
    from PIL import Image

    paths = sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                    and p.suffix.lower() in FRAME_SUFFIXES), key=lambda p: (natural_key(p.name), p.name))
    if not paths:
        raise GanforgeError(f"no frames found in {folder}", "put the clip's frames in it as PNG or JPEG "
                            "files (frame0.png, frame1.png, ...)")
    frames = []
    for p in paths:
        try:
            with Image.open(p) as im:
                frames.append(np.asarray(im.convert("RGB")))
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
            raise GanforgeError(f"cannot read frame {p}: {' '.join(str(err).split())[:160]}",
                                f"delete or replace {p.name}") from None
    return _stack(frames, [p.name for p in paths], folder)


def _read_gif(path: Path) -> np.ndarray:
    from PIL import Image, ImageSequence

    try:
        with Image.open(path) as im:
            frames = [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(im)]
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as err:
        raise GanforgeError(f"cannot read GIF {path}: {' '.join(str(err).split())[:160]}",
                            "check it is a whole GIF file, or export it again") from None
    if not frames:
        raise GanforgeError(f"no frames found in {path}", "export the clip again")
    return _stack(frames, [f"frame {i}" for i in range(len(frames))], path)


def _read_video(path: Path) -> np.ndarray:
    try:
        import imageio.v2 as iio
        import imageio_ffmpeg  # noqa: F401  (the ffmpeg binary imageio reads with)
    except ImportError:
        raise GanforgeError(f"reading {path.suffix} clips needs imageio-ffmpeg",
                            "pip install 'ganforge[video]', or convert the clip to .gif or frames") from None
    try:
        reader = iio.get_reader(path, "ffmpeg")
        try:
            frames = [np.asarray(frame)[..., :3] for frame in reader]
        finally:
            reader.close()
    except (OSError, RuntimeError, ValueError, IndexError, StopIteration) as err:
        raise GanforgeError(f"cannot read video {path}: {' '.join(str(err).split())[:160]}",
                            "check it is a whole video file, or convert it to .gif") from None
    if not frames:
        raise GanforgeError(f"no frames found in {path}", "check it is a whole video file")
    return _stack([f if f.ndim == 3 else np.repeat(f[..., None], 3, axis=2) for f in frames],
                  [f"frame {i}" for i in range(len(frames))], path)


def _read_npz(path: Path) -> np.ndarray:
    fix = "save the clip as x: (T, H, W), (T, C, H, W) or (T, H, W, C), uint8 or float in [-1, 1]"
    a = read_npz_array(path, fix)
    if a.ndim == 5 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3:
        a = a[..., None]
    elif a.ndim == 4 and a.shape[1] in (1, 3) and a.shape[3] not in (1, 3):
        a = a.transpose(0, 2, 3, 1)
    if a.ndim != 4 or a.shape[3] not in (1, 3) or min(a.shape) < 1:
        raise GanforgeError(f"{path.name} holds an array of shape {a.shape}, not one clip", fix)
    if a.dtype.kind == "f":
        if not np.isfinite(a).all() or a.min() < -1.0 - 1e-6 or a.max() > 1.0 + 1e-6:
            raise GanforgeError(f"{path.name} holds float values outside [-1, 1]", fix)
        return np.rint((np.clip(a.astype(np.float64), -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
    if a.min() < 0 or a.max() > 255:
        raise GanforgeError(f"{path.name} holds values outside 0..255", fix)
    return np.ascontiguousarray(a.astype(np.uint8))


def read_clip(path: str | os.PathLike[str]) -> np.ndarray:
    """The frames of one clip, uint8 (T, H, W, C), C = 1 when every frame is grey (all channels
    equal), else 3: a ``.gif`` (every frame), an ``.mp4``/``.avi``/``.mov`` (imageio's ffmpeg
    reader, the ``ganforge[video]`` extra), a folder of PNG/JPEG frames in natural order (frame10
    after frame9), or an ``.npz`` whose array ``x`` (else its first) is (T, H, W), (T, C, H, W)
    or (T, H, W, C), uint8 or float in [-1, 1]. One-line errors: a missing path, an empty
    folder, frames of different sizes, an unreadable file, an unsupported extension."""
    path = Path(path).expanduser()
    if not path.exists():
        raise GanforgeError(f"clip {path} does not exist", "check the path")
    if path.is_dir():
        return _grey_if_grey(_read_folder(path))
    suffix = path.suffix.lower()
    if suffix == ".gif":
        return _grey_if_grey(_read_gif(path))
    if suffix in VIDEO_SUFFIXES:
        return _grey_if_grey(_read_video(path))
    if suffix == ".npz":
        return _read_npz(path)
    raise GanforgeError(f"cannot read a clip from {path.name}: unsupported extension {suffix or '(none)'}",
                        "give a .gif, .mp4, .avi, .mov or .npz file, or a folder of PNG/JPEG frames")


def clip_to_tensor(frames: np.ndarray, channels: int) -> torch.Tensor:
    """uint8 frames (T, H, W, C), C 1 or 3, as float32 (T, channels, H, W) in [-1, 1]
    (pixel / 127.5 - 1): grey repeated into RGB, RGB made grey by ITU-R 601 luma
    Y = 0.299 R + 0.587 G + 0.114 B."""
    if channels not in (1, 3) or isinstance(channels, bool):
        raise GanforgeError(f"channels={channels!r} is not 1 (grey) or 3 (RGB)", "set data.channels=1 or 3")
    a = np.asarray(frames)
    if a.ndim != 4 or a.shape[3] not in (1, 3) or a.dtype != np.uint8:
        raise GanforgeError(f"frames must be uint8 (T, H, W, C) with C = 1 or 3, got {a.dtype} {a.shape}",
                            "read them with read_clip")
    t = torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float()
    if t.shape[1] == 3 and channels == 1:
        luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        t = (t * luma).sum(1, keepdim=True)
    elif t.shape[1] == 1 and channels == 3:
        t = t.expand(-1, 3, -1, -1)
    return (t / 127.5 - 1.0).clamp_(-1.0, 1.0).contiguous()


class ClipDataset(ArrayDataset):
    """Windows of a user's clips: ``x`` (N, frames, channels, H, W) in [-1, 1], no labels;
    ``sources`` the clips used (in order), ``skipped`` how many were shorter than a window."""

    data_kind = "sequence"

    def __init__(self, x: torch.Tensor, *, name: str = "clips", sources: tuple[str, ...] = (),
                 skipped: int = 0) -> None:
        super().__init__(x, None, name=name, extractor=None)
        self.sources = tuple(sources)
        self.skipped = int(skipped)


def find_clips(root: Path) -> list[Path]:
    """The clips of ``root``: the file itself, or the folder's clip files (.gif, .mp4, .avi,
    .mov, .npz) and subfolders (of frames) in natural order, hidden entries skipped; a folder
    holding only frame images is one clip."""
    if not root.exists():
        raise GanforgeError(f"clips path {root} does not exist",
                            "point data.path at a clip file or a folder of clips")
    if not root.is_dir():
        return [root]
    entries = sorted((p for p in root.iterdir() if not p.name.startswith(".")),
                     key=lambda p: (natural_key(p.name), p.name))
    clips = [p for p in entries if p.is_dir() or p.suffix.lower() in CLIP_SUFFIXES]
    if clips:
        return clips
    if any(p.suffix.lower() in FRAME_SUFFIXES for p in entries):
        return [root]
    raise GanforgeError(f"no clips found in {root}",
                        "put .gif/.mp4/.npz clips or folders of PNG/JPEG frames in it")


def _resize(frames: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    if frames.shape[1:3] == (size, size):
        return frames
    resample = getattr(Image, "Resampling", Image).BICUBIC
    out = [np.asarray(Image.fromarray(f[..., 0] if f.shape[2] == 1 else f).resize((size, size), resample))
           for f in frames]
    return np.stack(out).reshape(len(frames), size, size, frames.shape[3])


@register_dataset("clips")
def clips(path: str, frames: int = 20, channels: int = 1, size: int | None = None) -> ClipDataset:
    """A user's clips cut into non-overlapping windows of ``frames`` frames (the rest of a clip
    is dropped) for training: ``path`` a clip file, or a folder of clips (:func:`find_clips`,
    each read by :func:`read_clip`); ``channels`` 1 (grey) or 3 (RGB); ``size`` resizes every
    frame to size x size (Pillow, bicubic), else every clip must have one frame size. Clips
    shorter than ``frames`` are skipped, and one line says how many."""
    if not isinstance(path, str | os.PathLike):
        raise GanforgeError(f"data.path={path!r} is not a path",
                            "set data.path to a clip or a folder of clips")
    frames = _whole(frames, "data.frames", 2, "20")
    if isinstance(channels, bool) or channels not in (1, 3):
        raise GanforgeError(f"data.channels={channels!r} is not 1 (grey) or 3 (RGB)",
                            "set data.channels=1 or 3")
    if size is not None:
        size = _whole(size, "data.size", 1, "64")
    root = Path(path).expanduser()
    found = find_clips(root)
    windows: list[torch.Tensor] = []
    used: list[str] = []
    skipped, longest, first = 0, 0, None
    for clip in found:
        pixels = read_clip(clip)
        longest = max(longest, len(pixels))
        if len(pixels) < frames:
            skipped += 1
            continue
        if size is not None:
            pixels = _resize(pixels, size)
        elif first is None:
            first = (clip.name, pixels.shape[1:3])
        elif pixels.shape[1:3] != first[1]:
            (h0, w0), (h1, w1) = first[1], pixels.shape[1:3]
            raise GanforgeError(f"clips differ in size: {first[0]} is {w0}x{h0} but {clip.name} is {w1}x{h1}",
                                "set data.size to resize every frame, e.g. data.size=64")
        count = len(pixels) // frames
        check_allocation(count, (frames, channels, *pixels.shape[1:3]), f"the windows of {clip.name}",
                         "use shorter or smaller clips, or set data.size")
        tensor = clip_to_tensor(pixels[:count * frames], channels)
        windows.append(tensor.view(count, frames, channels, *tensor.shape[2:]))
        used.append(clip.name)
    if not windows:
        raise GanforgeError(f"every one of the {len(found)} clips in {root} is shorter than {frames} frames "
                            f"(the longest has {longest})", f"set data.frames to at most {max(longest, 2)}")
    if skipped:
        print(f"skipped {skipped} clip{'s' if skipped != 1 else ''} shorter than {frames} frames")
    return ClipDataset(torch.cat(windows), name=root.stem or "clips", sources=tuple(used), skipped=skipped)
