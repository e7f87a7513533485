"""Music as piano rolls: the ``pianoroll`` data kind, Bach's chorales and a user's folder of scores.

**The kind.** A sample is a phrase, float32 (tracks, steps, pitches) in [-1, 1] in the encoding
of :mod:`ganforge.data.pianoroll` (ONSET 1, HOLD 0, REST -1; a generator's raw output is read
with :func:`~ganforge.data.pianoroll.roll_to_notes`). Its grid is not in the tensor: writers read
``samples.arrays["grid"]`` (:func:`grid_array`: [bars, beats_per_bar, steps_per_quarter,
lowest_pitch, pitches]) when present, else the default :class:`RollGrid` fitted to the samples'
shape (:func:`grid_of`), and name the tracks by ``samples.arrays["track_names"]`` (a string array)
when present, else ``track 1``, ``track 2``... Samples are written as

    .mid   one MIDI file, each track a part on its own channel (General MIDI program 19, church
           organ), the phrases one after another with a bar of rest between them, 100 quarter
           notes a minute; :func:`read_midi_rolls` reads such a file back
    .png   a piano-roll figure: up to 8 phrases, one panel each, time across, MIDI pitch up,
           each track a colour, each note a bar from its onset, bar lines dotted
    .wav   the MIDI file rendered by ``fluidsynth`` at 22,050 Hz with a General MIDI soundfont
           (``$GANFORGE_SOUNDFONT``, else Debian's FluidR3_GM.sf2, else default-GM.sf2)
    .npz   ``x`` (N, tracks, steps, pitches) float32 and the named arrays

**Reading scores** (music21, the optional extra ``ganforge[music]``). :func:`piece_notes` turns
a score into grid notes: its parts in order are the tracks (another part count: skipped,
``parts``); ties are merged (``stripTies``); a chord gives all its pitches; grace notes and
zero durations are dropped; onsets and ends are rounded to the grid (a note rounded to nothing
keeps one step). Every time signature must be ``beats_per_bar``/4 (else skipped, ``time
signature``; a score without one is 4/4). Bar lines are the starts of the score's *full*
measures (or of runs of short measures that together last a bar: a bar split at a repeat sign);
a pickup or a short closing measure starts no bar. ``transpose``: ``c`` moves each
piece to C major / A minor (music21's key analysis, by -6..+5 semitones), ``none`` keeps it,
``augment`` keeps it and adds, to the training split only, every transposition by -5..+6
semitones that keeps the phrase inside the grid's pitches.

**Phrases** are windows of ``bars`` consecutive full bars, starting at every ``hop``-th bar
line in the training split and without overlap (hop = bars) in the test split; a note that
began before a window starts at its step 0 as an onset, one that lasts past it is cut. A phrase
with a pitch outside the grid is skipped (``pitch range``). Pieces are split, not phrases: a
seeded permutation of the usable pieces (sorted by name) gives ``test_fraction`` of them (at
least one) to ``test``.

**The cache.** Parsing hundreds of scores takes a minute, so the grid notes of every piece (not
its phrases) are kept in one ``.npz`` under ``$GANFORGE_CACHE/music`` (default
``~/.cache/ganforge/music``), keyed by the files (path, size, mtime), the grid's time
resolution and bar length, the transposition, the track count and music21's version.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from ganforge._io import atomic_write, check_allocation
from ganforge.data.base import ArrayDataset, register_dataset
from ganforge.data.kinds import NPZ, DataKind, Writer, register_kind
from ganforge.data.mnist import default_root
from ganforge.data.pianoroll import Note, RollGrid, notes_to_roll, roll_to_notes
from ganforge.data.writers import Samples
from ganforge.errors import GanforgeError

MUSIC_FIX = "pip install 'ganforge[music]'"
WAV_FIX = "apt-get install fluidsynth fluid-soundfont-gm, or write .mid"
SATB = ("soprano", "alto", "tenor", "bass")
#: the scores a music folder may hold (the Bach corpus also has Humdrum .krn chorales)
SCORE_SUFFIXES = frozenset({".mid", ".midi", ".mxl", ".musicxml", ".xml"})
BACH_SUFFIXES = SCORE_SUFFIXES | {".krn"}
TRANSPOSE = ("c", "none", "augment")
#: the transpositions of ``transpose="augment"``, in semitones
AUGMENT_SHIFTS = tuple(range(-5, 7))
#: skip reasons of whole pieces and of single phrases
PIECE_REASONS = ("unreadable", "parts", "time signature", "too short")
PHRASE_REASONS = ("pitch range",)
#: General MIDI program 20 (0-based 19), the church organ; quarter notes a minute; velocity
ORGAN, TEMPO_QPM, VELOCITY = 19, 100, 90
#: the MIDI channels (1-based) of tracks 0, 1, ...: every melodic channel, 10 (drums) left out
TRACK_CHANNELS = tuple(c for c in range(1, 17) if c != 10)
WAV_RATE = 22050
SOUNDFONTS = (Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"), Path("/usr/share/sounds/sf2/default-GM.sf2"))
PREVIEW_PHRASES = 8
#: bump when what the cache holds (or how it is made) changes
CACHE_FORMAT = 2


# ---------------------------------------------------------------------- music21, grids
def require_music21() -> ModuleType:
    """The ``music21`` module; a one-line error naming the extra without it."""
    try:
        import music21
    except ImportError:
        raise GanforgeError("reading music needs music21", MUSIC_FIX) from None
    return music21


def grid_array(grid: RollGrid) -> np.ndarray:
    """``grid`` as int64 [bars, beats_per_bar, steps_per_quarter, lowest_pitch, pitches] (what
    ``Samples.arrays["grid"]`` holds)."""
    return np.array([grid.bars, grid.beats_per_bar, grid.steps_per_quarter, grid.lowest_pitch,
                     grid.pitches], np.int64)


def grid_from_array(a: Any) -> RollGrid:
    """The :class:`RollGrid` of :func:`grid_array`'s five numbers; a one-line error otherwise."""
    values = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    flat = values.reshape(-1)
    fix = "give grid = [bars, beats_per_bar, steps_per_quarter, lowest_pitch, pitches]"
    if flat.size != 5 or not np.all(np.isfinite(flat.astype(np.float64))) or np.any(flat != np.round(flat)):
        raise GanforgeError(f"a piano-roll grid is five whole numbers, got {flat.tolist()[:8]}", fix)
    bars, beats, spq, lowest, pitches = (int(v) for v in flat)
    if min(bars, beats, spq, pitches) < 1 or not 0 <= lowest <= lowest + pitches - 1 <= 127:
        raise GanforgeError(f"grid {flat.tolist()} has a count below 1 or pitches outside MIDI 0..127", fix)
    return RollGrid(bars, beats, spq, lowest, pitches)


def _rolls(x: Any) -> np.ndarray:
    """``x`` as float32 numpy (N, tracks, steps, pitches) with every size >= 1."""
    a = x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float32)
    if a.ndim != 4 or min(a.shape) < 1:
        raise GanforgeError(f"piano-roll samples have shape (N, tracks, steps, pitches), got "
                            f"{tuple(a.shape)}", "write the samples of a pianoroll run")
    return a


def grid_of(samples: Samples) -> RollGrid:
    """The grid of ``samples``: ``arrays["grid"]`` when given (its steps and pitches must match
    ``x``), else the default :class:`RollGrid` with the bars and pitches of ``x`` (its steps a
    whole number of default bars)."""
    _, _, steps, pitches = _rolls(samples.x).shape
    if "grid" in samples.arrays:
        grid = grid_from_array(samples.arrays["grid"])
        if (grid.steps, grid.pitches) != (steps, pitches):
            raise GanforgeError(f"the samples' grid has {grid.steps} steps and {grid.pitches} pitches but "
                                f"the samples have {steps} and {pitches}",
                                "give the grid the samples were drawn on")
        return grid
    default = RollGrid()
    if steps % default.steps_per_bar:
        raise GanforgeError(f"samples of {steps} steps are not whole bars of the default grid "
                            f"({default.steps_per_bar} steps a bar) and name no grid",
                            "give arrays['grid'] = grid_array(grid)")
    lowest = min(default.lowest_pitch, 128 - pitches)
    return RollGrid(bars=steps // default.steps_per_bar, lowest_pitch=lowest, pitches=pitches)


def track_names_of(samples: Samples) -> tuple[str, ...]:
    """The track names of ``samples``: ``arrays["track_names"]`` (strings, one a track) when
    given, else ``track 1``, ``track 2``..."""
    tracks = _rolls(samples.x).shape[1]
    given = samples.arrays.get("track_names")
    if isinstance(given, np.ndarray) and given.dtype.kind in "US" and given.shape == (tracks,):
        return tuple(str(v.decode() if isinstance(v, bytes) else v) for v in given)
    return tuple(f"track {k + 1}" for k in range(tracks))


def _whole(value: Any, name: str, least: int, most: int | None = None, example: str = "4") -> int:
    bad = isinstance(value, bool) or not isinstance(value, int | np.integer)
    if bad or value < least or (most is not None and value > most):
        span = f">= {least}" if most is None else f"in {least}..{most}"
        raise GanforgeError(f"{name}={value!r} is not a whole number {span}", f"set e.g. {name}={example}")
    return int(value)


# ---------------------------------------------------------------------- reading a score
class SkipPiece(Exception):
    """A score that cannot give phrases; ``reason`` is one of :data:`PIECE_REASONS`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _step(quarters: Any, steps_per_quarter: int) -> int:
    """A time in quarter notes to the nearest step (halves round up)."""
    return math.floor(Fraction(quarters) * steps_per_quarter + Fraction(1, 2))


def check_time_signatures(score: Any, beats_per_bar: int) -> None:
    """Raise :class:`SkipPiece` ("time signature") unless every time signature of ``score`` is
    ``beats_per_bar``/4 (none at all counts as 4/4)."""
    signatures = list(score.recurse().getElementsByClass("TimeSignature"))
    found = {(ts.numerator, ts.denominator) for ts in signatures} or {(4, 4)}
    if found != {(beats_per_bar, 4)}:
        raise SkipPiece("time signature")


def bar_starts(part: Any, grid: RollGrid) -> list[int]:
    """The steps where the full bars of ``part`` start: every measure whose content lasts exactly
    a bar, and every run of consecutive shorter measures that together last exactly a bar (a bar
    split at a repeat sign, as 3 + 1 beats); a pickup or a short closing measure starts none.
    Read before ties are stripped: merging tied notes empties the measures they spilled into."""
    bar, starts = Fraction(grid.beats_per_bar), []
    pending: Fraction | None = None  # where a run of short measures began
    filled = Fraction(0)
    for measure in part.getElementsByClass("Measure"):
        length, offset = Fraction(measure.duration.quarterLength), Fraction(measure.offset)
        if length >= bar:
            if length == bar:
                starts.append(offset)
            pending = None
            continue
        if pending is None or filled + length > bar or offset != pending + filled:
            pending, filled = offset, Fraction(0)
        filled += length
        if filled == bar:
            starts.append(pending)
            pending = None
    return [_step(offset, grid.steps_per_quarter) for offset in starts]


def _clean(notes: Iterable[Note]) -> list[Note]:
    """``notes`` sorted by (start, track, pitch), with the notes of one track and pitch made
    disjoint: of two starting together the longer stays, an earlier one ends where the next
    begins (what a roll can hold)."""
    by_key: dict[tuple[int, int], list[Note]] = {}
    for note in sorted(notes, key=lambda n: (n.track, n.pitch, n.start, -n.end)):
        same = by_key.setdefault((note.track, note.pitch), [])
        if same and same[-1].start == note.start:
            continue
        if same and same[-1].end > note.start:
            same[-1] = same[-1]._replace(end=note.start)
        same.append(note)
    return sorted((n for same in by_key.values() for n in same), key=lambda n: (n.start, n.track, n.pitch))


def check_piece(score: Any, grid: RollGrid, tracks: int) -> None:
    """Raise :class:`SkipPiece` for another number of parts than ``tracks`` ("parts") or a time
    signature other than ``beats_per_bar``/4 ("time signature")."""
    if len(score.parts) != tracks:
        raise SkipPiece("parts")
    check_time_signatures(score, grid.beats_per_bar)


def piece_notes(score: Any, grid: RollGrid, tracks: int) -> tuple[list[Note], list[int]]:
    """The grid notes of a music21 ``score`` (its parts in order are the tracks) and the steps
    where its full bars start (module docstring), once :func:`check_piece` lets it through. Strips
    the score's ties in place."""
    check_piece(score, grid, tracks)
    return _grid_notes(score, grid)


def _grid_notes(score: Any, grid: RollGrid) -> tuple[list[Note], list[int]]:
    """:func:`piece_notes` of a checked score."""
    starts = bar_starts(score.parts[0], grid)
    score.stripTies(inPlace=True)
    spq, notes = grid.steps_per_quarter, []
    for track, part in enumerate(score.parts):
        for element in part.flatten().notes:
            length = Fraction(element.duration.quarterLength)
            pitches = getattr(element, "pitches", ())
            if element.duration.isGrace or length <= 0 or not pitches:
                continue
            start = _step(element.offset, spq)
            end = max(_step(Fraction(element.offset) + length, spq), start + 1)
            notes.extend(Note(track, start, end, int(p.midi)) for p in pitches)
    return _clean(notes), starts


def key_shift(score: Any) -> int:
    """The semitones (-6..+5) that move ``score`` to C major, or A minor when music21's key
    analysis finds a minor key (0 for a score without notes, which has no key)."""
    try:
        key = score.analyze("key")
    except Exception:  # noqa: BLE001  music21's analysis fails on a score without pitches
        return 0
    target = 9 if key.mode == "minor" else 0
    return (target - key.tonic.pitchClass + 6) % 12 - 6


def parse_score(path: Path) -> Any:
    """``path`` parsed by music21 (MIDI without music21's quantisation: the grid rounds)."""
    music21 = require_music21()
    if path.suffix.lower() in (".mid", ".midi"):
        return music21.converter.parse(path, quantizePost=False)
    return music21.converter.parse(path)


@dataclass
class Piece:
    """One usable score: ``name``, its grid ``notes`` int32 (n, 4) [track, start, end, pitch]
    (transposed as asked), the steps of its full bars ``bars`` and its ``part_names``."""

    name: str
    notes: np.ndarray
    bars: np.ndarray
    part_names: tuple[str, ...]

    def note_list(self) -> list[Note]:
        return [Note(*map(int, row)) for row in self.notes]


def read_piece(path: Path, name: str, grid: RollGrid, tracks: int, to_c: bool) -> Piece:
    """The :class:`Piece` of the score at ``path``, moved to C major / A minor when ``to_c``;
    raises :class:`SkipPiece` ("unreadable" when music21 cannot parse it)."""
    try:
        score = parse_score(path)
    except Exception:  # noqa: BLE001  music21 raises every kind of error on a broken file
        raise SkipPiece("unreadable") from None
    if not hasattr(score, "parts"):
        raise SkipPiece("unreadable")
    check_piece(score, grid, tracks)  # before the key analysis, which a skipped piece need not pay
    names = tuple(str(part.partName or "").strip() for part in score.parts)
    shift = key_shift(score) if to_c else 0
    notes, starts = _grid_notes(score, grid)
    table = np.array([(n.track, n.start, n.end, n.pitch + shift) for n in notes], np.int32).reshape(-1, 4)
    return Piece(name, table, np.array(starts, np.int64), names)


# ---------------------------------------------------------------------- the cache
def music_cache_dir() -> Path:
    """``$GANFORGE_CACHE/music`` when that variable is set, else ``~/.cache/ganforge/music``."""
    root = os.environ.get("GANFORGE_CACHE")
    return Path(root).expanduser() / "music" if root else default_root("music")


def cache_key(files: Sequence[Path], grid: RollGrid, tracks: int, to_c: bool) -> str:
    """A sha256 of everything the cached notes depend on (see the module docstring)."""
    music21 = require_music21()
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    digest.update(f"{grid.steps_per_quarter} {grid.beats_per_bar} {'c' if to_c else 'none'} {tracks} "
                  f"{music21.__version__} {CACHE_FORMAT}".encode())
    return digest.hexdigest()


def _save_pieces(path: Path, pieces: Sequence[Piece], skipped: Counter[str], tracks: int) -> None:
    names = np.array([p.name for p in pieces] or [""], dtype=str)[:len(pieces)]
    parts = np.array([list(p.part_names) for p in pieces] or [[""] * tracks], dtype=str)[:len(pieces)]
    arrays = {
        "names": names, "part_names": parts,
        "note_counts": np.array([len(p.notes) for p in pieces], np.int64),
        "notes": np.concatenate([p.notes for p in pieces] or [np.zeros((0, 4), np.int32)]),
        "bar_counts": np.array([len(p.bars) for p in pieces], np.int64),
        "bars": np.concatenate([p.bars for p in pieces] or [np.zeros(0, np.int64)]),
        "skip_reasons": np.array(list(skipped) or [""], dtype=str)[:len(skipped)],
        "skip_counts": np.array(list(skipped.values()), np.int64)}
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


def _load_pieces(path: Path) -> tuple[list[Piece], Counter[str]]:
    with np.load(path, allow_pickle=False) as f:
        notes = np.split(f["notes"], np.cumsum(f["note_counts"])[:-1]) if len(f["names"]) else []
        bars = np.split(f["bars"], np.cumsum(f["bar_counts"])[:-1]) if len(f["names"]) else []
        pieces = [Piece(str(name), n.astype(np.int32), b.astype(np.int64), tuple(str(s) for s in parts))
                  for name, n, b, parts in zip(f["names"], notes, bars, f["part_names"], strict=True)]
        skipped = Counter({str(r): int(c) for r, c in zip(f["skip_reasons"], f["skip_counts"], strict=True)})
    return pieces, skipped


def load_pieces(files: Sequence[tuple[Path, str]], grid: RollGrid, tracks: int, to_c: bool,
                cache_dir: Path | None = None) -> tuple[list[Piece], Counter[str], bool]:
    """The usable pieces of ``files`` ((path, name) pairs), sorted by name, the count of each
    skip reason, and whether they came from the cache (``cache_dir``, default
    :func:`music_cache_dir`). A damaged cache file is rebuilt; an unwritable cache only costs the
    next build the parsing time."""
    key = cache_key([p for p, _ in files], grid, tracks, to_c)
    cache = (cache_dir or music_cache_dir()) / f"notes-{key[:24]}.npz"
    if cache.is_file():
        with contextlib.suppress(OSError, ValueError, KeyError, EOFError):
            pieces, skipped = _load_pieces(cache)
            return pieces, skipped, True
    pieces, skipped = [], Counter()
    for path, name in files:
        try:
            pieces.append(read_piece(path, name, grid, tracks, to_c))
        except SkipPiece as skip:
            skipped[skip.reason] += 1
    pieces.sort(key=lambda p: p.name)
    with contextlib.suppress(OSError):
        _save_pieces(cache, pieces, skipped, tracks)
    return pieces, skipped, False


# ---------------------------------------------------------------------- phrases and splits
def window_starts(bars: Sequence[int], grid: RollGrid, hop: int) -> list[int]:
    """The steps where phrases start: at every ``hop``-th full bar whose window of
    ``grid.bars`` full bars is unbroken (each the bar after the one before)."""
    span = (grid.bars - 1) * grid.steps_per_bar
    return [int(bars[j]) for j in range(0, len(bars) - grid.bars + 1, hop)
            if bars[j + grid.bars - 1] - bars[j] == span]


def longest_run(bars: Sequence[int], steps_per_bar: int) -> int:
    """The most consecutive full bars in ``bars`` (bar start steps)."""
    best = run = 0
    for j, start in enumerate(bars):
        run = run + 1 if j and start - bars[j - 1] == steps_per_bar else 1
        best = max(best, run)
    return best


def phrase_notes(notes: np.ndarray, start: int, steps: int) -> np.ndarray:
    """The notes (int (n, 4) [track, start, end, pitch]) sounding in steps [start, start +
    steps), made relative to ``start`` and clipped to the phrase."""
    inside = notes[(notes[:, 2] > start) & (notes[:, 1] < start + steps)].astype(np.int64)
    inside[:, 1:3] = np.clip(inside[:, 1:3] - start, 0, steps)
    return inside


def phrase_shifts(notes: np.ndarray, grid: RollGrid, shifts: Sequence[int]) -> list[int]:
    """The ``shifts`` (semitones) that keep every note of a phrase inside the grid's pitches."""
    if not len(notes):
        return list(shifts)
    low, high = int(notes[:, 3].min()), int(notes[:, 3].max())
    return [d for d in shifts if low + d >= grid.lowest_pitch and high + d <= grid.highest_pitch]


def split_pieces(count: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (sorted) of the training and test pieces among ``count`` >= 2 pieces sorted by
    name: the first ``round(test_fraction * count)`` (at least one, at most all but one) of a
    permutation seeded by ``seed`` are the test pieces."""
    order = np.random.default_rng(seed).permutation(count)
    n_test = min(max(1, round(test_fraction * count)), count - 1)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


class PianoRollDataset(ArrayDataset):
    """Phrases of scores: ``x`` (N, tracks, steps, pitches) float32 in {-1, 0, 1}, no labels;
    ``grid`` their :class:`RollGrid`, ``track_names``, ``pieces`` the names of this split's
    pieces, ``phrase_piece`` the index (into ``pieces``) of each phrase's piece and ``skipped``
    how many pieces or phrases were skipped, by reason."""

    data_kind = "pianoroll"

    def __init__(self, x: torch.Tensor, *, name: str, grid: RollGrid, track_names: tuple[str, ...],
                 pieces: tuple[str, ...], phrase_piece: np.ndarray, skipped: dict[str, int]) -> None:
        super().__init__(x, None, name=name, extractor=None)
        self.grid = grid
        self.track_names = tuple(track_names)
        self.pieces = tuple(pieces)
        self.phrase_piece = np.asarray(phrase_piece, np.int64)
        self.skipped = dict(skipped)


@dataclass(frozen=True)
class Options:
    """The checked options of a music dataset."""

    split: str
    grid: RollGrid
    tracks: int
    transpose: str
    hop: int
    test_fraction: float
    seed: int


def check_options(split: Any, tracks: Any, bars: Any, steps_per_quarter: Any, transpose: Any, hop: Any,
                  test_fraction: Any, seed: Any) -> Options:
    """The options of a music dataset, each checked (a one-line error naming the option)."""
    if split not in ("train", "test"):
        raise GanforgeError(f"data.split={split!r} is not train or test", "set data.split=train or test")
    tracks = _whole(tracks, "data.tracks", 1, len(TRACK_CHANNELS), "4")
    bars = _whole(bars, "data.bars", 1, None, "4")
    spq = _whole(steps_per_quarter, "data.steps_per_quarter", 1, 12, "4")
    if transpose not in TRANSPOSE:
        raise GanforgeError(f"data.transpose={transpose!r} is not one of {', '.join(TRANSPOSE)}",
                            "set data.transpose=c (to C major / A minor), none or augment")
    hop = _whole(hop, "data.hop", 1, None, "1")
    ok = isinstance(test_fraction, float | int) and not isinstance(test_fraction, bool)
    if not ok or not 0.0 < float(test_fraction) < 1.0:
        raise GanforgeError(f"data.test_fraction={test_fraction!r} is not a number strictly between 0 and 1",
                            "set e.g. data.test_fraction=0.1")
    seed = _whole(seed, "data.seed", 0, None, "0")
    return Options(split, RollGrid(bars=bars, steps_per_quarter=spq), tracks, transpose, hop,
                   float(test_fraction), seed)


def _skip_line(name: str, split: str, skipped: dict[str, int], total: int, grid: RollGrid) -> str:
    """One line: how many pieces were skipped (of ``total`` scores) for which reasons, and how
    many phrases for their pitches."""
    pieces = [f"{skipped[r]} {r}" for r in PIECE_REASONS if skipped.get(r)]
    said = []
    if pieces:
        count = sum(skipped.get(r, 0) for r in PIECE_REASONS)
        said.append(f"{count} of {total} pieces ({', '.join(pieces)})")
    if skipped.get("pitch range"):
        said.append(f"{skipped['pitch range']} phrases with notes outside MIDI "
                    f"{grid.lowest_pitch}..{grid.highest_pitch} (pitch range)")
    return f"{name} {split}: skipped {' and '.join(said)}"


def _phrases(pieces: Sequence[Piece], grid: RollGrid, hop: int, shifts: Sequence[int]
             ) -> tuple[list[tuple[int, np.ndarray, list[int]]], int, int]:
    """(piece index, phrase notes, valid shifts) of every phrase kept, the count of phrases
    outside the pitch range and of pieces without a whole window."""
    kept, out_of_range, too_short = [], 0, 0
    for i, piece in enumerate(pieces):
        starts = window_starts(piece.bars, grid, hop)
        too_short += not starts
        for start in starts:
            notes = phrase_notes(piece.notes, start, grid.steps)
            valid = phrase_shifts(notes, grid, shifts)
            if valid:
                kept.append((i, notes, valid))
            else:
                out_of_range += 1
    return kept, out_of_range, too_short


def _fill(kept: Sequence[tuple[int, np.ndarray, list[int]]], grid: RollGrid, tracks: int,
          what: str) -> tuple[np.ndarray, np.ndarray]:
    """The rolls of every (phrase, shift) of ``kept``, float32 (N, tracks, steps, pitches), and
    the piece index of each."""
    count = sum(len(valid) for _, _, valid in kept)
    check_allocation(count, (tracks, grid.steps, grid.pitches), what,
                     "use fewer bars, a larger hop or transpose=c instead of augment")
    x = np.empty((count, tracks, grid.steps, grid.pitches), np.float32)
    owner = np.empty(count, np.int64)
    margin = max(abs(min(AUGMENT_SHIFTS)), max(AUGMENT_SHIFTS))
    row = 0
    for i, notes, valid in kept:
        wide = notes_to_roll([Note(*map(int, n)) for n in notes], tracks, grid.steps,
                             grid.lowest_pitch - margin, grid.pitches + 2 * margin)
        for d in valid:  # pitch p + d sits at index p + d - lowest: index p - lowest + margin - d of wide
            x[row] = wide[..., margin - d:margin - d + grid.pitches]
            owner[row] = i
            row += 1
    return x, owner


def build_music_dataset(files: Sequence[tuple[Path, str]], opts: Options, *, name: str,
                        track_names: Sequence[str] | None = None,
                        cache_dir: Path | None = None) -> PianoRollDataset:
    """The phrases of one split of the scores ``files`` ((path, name) pairs): see the module
    docstring. ``track_names`` default to the part names all pieces agree on (else
    ``track k``, from 1)."""
    require_music21()
    grid, to_c = opts.grid, opts.transpose == "c"
    pieces, skipped, _ = load_pieces(files, grid, opts.tracks, to_c, cache_dir)
    if not pieces:
        counts = ", ".join(f"{c} {r}" for r, c in skipped.items())
        raise GanforgeError(f"none of the {len(files)} scores of {name} gives {opts.tracks}-part music in "
                            f"{grid.beats_per_bar}/4 ({counts})",
                            f"give scores of {opts.tracks} parts in {grid.beats_per_bar}/4 (data.tracks)")
    longest = max(longest_run(p.bars, grid.steps_per_bar) for p in pieces)
    if longest < grid.bars:
        raise GanforgeError(f"no piece has {grid.bars} full bars in a row (the longest has {longest})",
                            f"set data.bars to at most {max(longest, 1)}")
    if len(pieces) < 2:
        raise GanforgeError(f"{name} has only 1 usable piece, and a train/test split needs 2",
                            "add scores to the folder")
    train, test = split_pieces(len(pieces), opts.test_fraction, opts.seed)
    chosen = [pieces[i] for i in (train if opts.split == "train" else test)]
    augment = opts.transpose == "augment" and opts.split == "train"
    hop = opts.hop if opts.split == "train" else grid.bars
    kept, out_of_range, too_short = _phrases(chosen, grid, hop, AUGMENT_SHIFTS if augment else (0,))
    skipped.update({"too short": too_short, "pitch range": out_of_range})
    skipped = Counter({r: c for r, c in skipped.items() if c})
    if not kept:
        raise GanforgeError(f"the {opts.split} split of {name} has no phrase of {grid.bars} bars inside MIDI "
                            f"{grid.lowest_pitch}..{grid.highest_pitch}", "use fewer bars or other scores")
    x, owner = _fill(kept, grid, opts.tracks, f"the phrases of {name}")
    if skipped:
        print(_skip_line(name, opts.split, skipped, len(files), grid))
    names = tuple(track_names) if track_names is not None else _track_names(pieces, opts.tracks)
    return PianoRollDataset(torch.from_numpy(x), name=name, grid=grid, track_names=names,
                            pieces=tuple(p.name for p in chosen), phrase_piece=owner, skipped=dict(skipped))


def _track_names(pieces: Sequence[Piece], tracks: int) -> tuple[str, ...]:
    names = []
    for k in range(tracks):
        found = {p.part_names[k] for p in pieces}
        names.append(found.pop() if len(found) == 1 and "" not in found else f"track {k + 1}")
    return tuple(names)


# ---------------------------------------------------------------------- the datasets
def bach_files() -> list[tuple[Path, str]]:
    """(path, name) of every score of music21's Bach corpus (its Roman-numeral analyses,
    ``.rntxt``, are not scores), sorted by name."""
    music21 = require_music21()
    paths = [Path(p) for p in music21.corpus.getComposer("bach")]
    return sorted(((p, p.stem) for p in paths if p.suffix.lower() in BACH_SUFFIXES), key=lambda f: f[1])


@register_dataset("bach-chorales")
def bach_chorales(split: str = "train", bars: int = 4, steps_per_quarter: int = 4, transpose: str = "c",
                  hop: int = 1, test_fraction: float = 0.1, seed: int = 0) -> PianoRollDataset:
    """Phrases of the chorales of music21's Bach corpus in four parts (soprano, alto, tenor,
    bass) and 4/4; the others are skipped and counted. See the module docstring."""
    opts = check_options(split, 4, bars, steps_per_quarter, transpose, hop, test_fraction, seed)
    require_music21()
    return build_music_dataset(bach_files(), opts, name="bach-chorales", track_names=SATB)


def score_files(root: Path) -> list[tuple[Path, str]]:
    """(path, name relative to ``root``) of every score file under ``root``, recursively
    (:data:`SCORE_SUFFIXES`, hidden entries skipped), sorted by name."""
    if not root.exists():
        raise GanforgeError(f"music folder {root} does not exist", "point data.path at a folder of scores")
    if not root.is_dir():
        return [(root, root.name)] if root.suffix.lower() in SCORE_SUFFIXES else []
    files = [(p, p.relative_to(root).as_posix()) for p in root.rglob("*")
             if p.is_file() and p.suffix.lower() in SCORE_SUFFIXES
             and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    return sorted(files, key=lambda f: f[1])


@register_dataset("music-folder")
def music_folder(path: str, split: str = "train", tracks: int = 4, bars: int = 4, steps_per_quarter: int = 4,
                 transpose: str = "c", hop: int = 1, test_fraction: float = 0.1,
                 seed: int = 0) -> PianoRollDataset:
    """Phrases of every MIDI (.mid, .midi) and MusicXML (.mxl, .musicxml, .xml) score under
    ``path`` with ``tracks`` parts in 4/4; unreadable scores and the others are skipped and
    counted. See the module docstring."""
    if not isinstance(path, str | os.PathLike):
        raise GanforgeError(f"data.path={path!r} is not a path", "set data.path to a folder of scores")
    opts = check_options(split, tracks, bars, steps_per_quarter, transpose, hop, test_fraction, seed)
    require_music21()
    root = Path(path).expanduser()
    files = score_files(root)
    if not files:
        raise GanforgeError(f"no scores found in {root}",
                            "put .mid, .midi, .mxl, .musicxml or .xml files in it")
    return build_music_dataset(files, opts, name=root.name or "music")


# ---------------------------------------------------------------------- the kind's writers
def _channel(track: int) -> int:
    return TRACK_CHANNELS[track % len(TRACK_CHANNELS)]


def phrases_notes(samples: Samples) -> tuple[RollGrid, list[list[Note]]]:
    """The grid of ``samples`` and the notes of each phrase (:func:`roll_to_notes`)."""
    grid = grid_of(samples)
    return grid, [roll_to_notes(roll, grid.lowest_pitch) for roll in _rolls(samples.x)]


def midi_bytes(phrases: Sequence[Sequence[Note]], grid: RollGrid, tracks: int,
               track_names: Sequence[str] | None = None) -> bytes:
    """A standard MIDI file of ``phrases`` (module docstring: one part per track on its own
    channel, organ, a bar of rest between phrases, 100 quarter notes a minute)."""
    music21 = require_music21()
    from music21 import instrument, meter, midi, note, stream, tempo

    names = list(track_names or [f"track {k + 1}" for k in range(tracks)])
    period = (grid.bars + 1) * grid.steps_per_bar
    score = stream.Score()
    for k in range(tracks):
        part = stream.Part()
        part.partName = names[k]
        organ = instrument.Instrument()
        organ.midiProgram, organ.partName = ORGAN, names[k]  # the track's name in the file
        part.insert(0, organ)
        part.insert(0, meter.TimeSignature(f"{grid.beats_per_bar}/4"))
        if k == 0:
            part.insert(0, tempo.MetronomeMark(number=TEMPO_QPM))
        for i, notes in enumerate(phrases):
            for n in notes:
                if n.track == k:
                    element = note.Note(n.pitch)
                    element.volume.velocity = VELOCITY
                    element.quarterLength = Fraction(n.end - n.start, grid.steps_per_quarter)
                    part.insert(Fraction(i * period + n.start, grid.steps_per_quarter), element)
        score.insert(0, part)
    mf = music21.midi.translate.streamToMidiFile(score)
    for k, track in enumerate(mf.tracks[1:]):  # music21 gives parts of one program one channel
        for event in track.events:
            if isinstance(event.type, midi.ChannelVoiceMessages):
                event.channel = _channel(k)
    end = len(phrases) * period * mf.ticksPerQuarterNote // grid.steps_per_quarter
    for track in mf.tracks:  # every track lasts the phrases and their rests: silent phrases count
        _end_track_at(track, end)
    return mf.writestr()


def _end_track_at(track: Any, tick: int) -> None:
    """Move the end of a music21 ``MidiTrack`` to ``tick`` when it ends before (the delta time
    before its END_OF_TRACK event grows)."""
    from music21 import midi

    total = sum(e.time for e in track.events if isinstance(e, midi.DeltaTime))
    events = track.events
    for j in range(len(events) - 1, 0, -1):
        if getattr(events[j], "type", None) == midi.MetaEvents.END_OF_TRACK:
            if isinstance(events[j - 1], midi.DeltaTime) and total < tick:
                events[j - 1].time += tick - total
            return


def samples_midi(samples: Samples) -> bytes:
    """The MIDI file of ``samples`` (:func:`midi_bytes` of their phrases, grid and track names)."""
    grid, phrases = phrases_notes(samples)
    return midi_bytes(phrases, grid, int(samples.x.shape[1]), track_names_of(samples))


def write_midi(samples: Samples, path: Path) -> Path:
    """The ``.mid`` writer: every phrase of ``samples`` in one MIDI file (module docstring)."""
    require_music21()
    data = samples_midi(samples)
    return atomic_write(path, lambda fh: fh.write(data))


def read_midi_rolls(path: str | os.PathLike[str], grid: RollGrid, tracks: int,
                    count: int | None = None) -> np.ndarray:
    """The rolls (count, tracks, steps, pitches) of a MIDI file laid out as the ``.mid`` writer
    writes it: track k on its channel, phrase i from bar i * (bars + 1). ``count`` defaults to
    the phrases the file lasts (the writer ends it after the last phrase's rest bar, so silent
    phrases are counted), at least those up to the last note."""
    from music21 import midi

    require_music21()
    mf = midi.MidiFile()
    try:
        mf.open(str(path))
        mf.read()
    except Exception as err:  # noqa: BLE001  a broken file: music21 raises many kinds
        raise GanforgeError(f"cannot read MIDI from {path}: {' '.join(str(err).split())[:120]}",
                            "give a .mid file written by ganforge") from None
    finally:
        mf.close()
    track_of = {_channel(k): k for k in range(tracks)}
    notes = []
    for track in mf.tracks:
        notes.extend(_track_notes(track, mf.ticksPerQuarterNote, grid.steps_per_quarter, track_of))
    period = (grid.bars + 1) * grid.steps_per_bar
    if count is None:
        end = max((sum(e.time for e in t.events if isinstance(e, midi.DeltaTime)) for t in mf.tracks),
                  default=0)
        lasts = _step(Fraction(end * grid.steps_per_quarter, mf.ticksPerQuarterNote), 1) // period
        count = max([lasts, *(n.start // period + 1 for n in notes)])
    phrases: list[list[Note]] = [[] for _ in range(count)]
    for n in notes:
        i = n.start // period
        if i < count:
            phrases[i].append(Note(n.track, n.start - i * period, n.end - i * period, n.pitch))
    rolls = [notes_to_roll(p, tracks, grid.steps, grid.lowest_pitch, grid.pitches) for p in phrases]
    return np.stack(rolls) if rolls else np.zeros((0, tracks, grid.steps, grid.pitches), np.float32)


def _track_notes(track: Any, ticks_per_quarter: int, steps_per_quarter: int,
                 track_of: dict[int, int]) -> list[Note]:
    """The notes of one music21 ``MidiTrack`` on the channels of ``track_of``, in steps."""
    from music21 import midi

    tick, sounding, notes = 0, {}, []
    for event in track.events:
        if isinstance(event, midi.DeltaTime):
            tick += event.time
            continue
        if event.type not in (midi.ChannelVoiceMessages.NOTE_ON, midi.ChannelVoiceMessages.NOTE_OFF):
            continue
        if event.channel not in track_of:
            continue
        key = (event.channel, event.pitch)
        if event.type == midi.ChannelVoiceMessages.NOTE_ON and event.velocity > 0:
            sounding.setdefault(key, []).append(tick)
        elif sounding.get(key):
            start = sounding[key].pop(0)
            to_step = Fraction(steps_per_quarter, ticks_per_quarter)
            s, e = _step(start * to_step, 1), _step(tick * to_step, 1)
            notes.append(Note(track_of[event.channel], s, max(e, s + 1), int(event.pitch)))
    return notes


def write_pianoroll_png(samples: Samples, path: Path) -> Path:
    """The ``.png`` writer: up to :data:`PREVIEW_PHRASES` phrases, one panel each (module
    docstring)."""
    from matplotlib.figure import Figure

    from ganforge.viz._atomic import save_figure

    grid, phrases = phrases_notes(samples)
    tracks = int(samples.x.shape[1])
    phrases = phrases[:PREVIEW_PHRASES]
    fig = Figure(figsize=(min(4.0 + grid.steps / 10.0, 16.0), 1.2 + 1.9 * len(phrases)))
    axes = fig.subplots(len(phrases), 1, squeeze=False)[:, 0]
    for i, (ax, notes) in enumerate(zip(axes, phrases, strict=True)):
        _draw_phrase(ax, notes, grid, tracks)
        ax.set_ylabel(f"{i + 1}\npitch", fontsize=8)
    axes[-1].set_xlabel("bar", fontsize=8)
    handles = [axes[0].plot([], [], color=f"C{k % 10}", linewidth=4)[0] for k in range(tracks)]
    fig.legend(handles, list(track_names_of(samples)), loc="upper right", fontsize=7,
               ncol=min(tracks, 4), frameon=False)
    if samples.title:
        fig.suptitle(samples.title, fontsize=10, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return save_figure(fig, path, dpi=100)


def _draw_phrase(ax: Any, notes: Sequence[Note], grid: RollGrid, tracks: int) -> None:
    for k in range(tracks):
        mine = [n for n in notes if n.track == k]
        if mine:
            ax.barh([n.pitch for n in mine], [n.end - n.start for n in mine], left=[n.start for n in mine],
                    height=0.8, color=f"C{k % 10}", alpha=0.85, edgecolor="black", linewidth=0.4)
    for b in range(1, grid.bars):
        ax.axvline(b * grid.steps_per_bar, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlim(0, grid.steps)
    ax.set_ylim(grid.lowest_pitch - 0.5, grid.highest_pitch + 0.5)
    lines = range(grid.bars + 1)
    ax.set_xticks([b * grid.steps_per_bar for b in lines], [str(b + 1) for b in lines], fontsize=7)
    ax.tick_params(axis="y", labelsize=7)


def soundfont() -> Path | None:
    """``$GANFORGE_SOUNDFONT`` when set, else the first of :data:`SOUNDFONTS` present (None if
    none is)."""
    named = os.environ.get("GANFORGE_SOUNDFONT")
    if named:
        return Path(named).expanduser()
    return next((p for p in SOUNDFONTS if p.is_file()), None)


def write_wav(samples: Samples, path: Path) -> Path:
    """The ``.wav`` writer: the ``.mid`` file rendered by ``fluidsynth`` at 22,050 Hz with a
    General MIDI soundfont (:func:`soundfont`). Checks the binary, the soundfont and music21
    before writing; renders in a temporary folder, then writes ``path`` atomically, so nothing
    half-written is left."""
    binary, font = shutil.which("fluidsynth"), soundfont()
    if binary is None or font is None or not font.is_file():
        raise GanforgeError("writing .wav needs fluidsynth and a General MIDI soundfont", WAV_FIX)
    require_music21()
    data = samples_midi(samples)
    with tempfile.TemporaryDirectory() as folder:
        mid, wav = Path(folder) / "samples.mid", Path(folder) / "samples.wav"
        mid.write_bytes(data)
        _render(binary, font, mid, wav)
        return atomic_write(path, lambda fh: fh.write(wav.read_bytes()))


def _render(binary: str, font: Path, mid: Path, wav: Path) -> None:
    """Run fluidsynth (``-ni -F wav -r 22050 font mid``); a one-line error when it fails."""
    command = [binary, "-ni", "-F", str(wav), "-r", str(WAV_RATE), str(font), str(mid)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        said = " ".join(str(err).split())[:120]
        raise GanforgeError(f"fluidsynth could not run: {said}", WAV_FIX) from None
    if done.returncode != 0 or not wav.is_file() or wav.stat().st_size <= 44:
        said = " ".join((done.stderr or done.stdout or "no output").split())[-160:]
        raise GanforgeError(f"fluidsynth could not render the samples: {said}", "write .mid instead")


MIDI = Writer(write_midi)
ROLL_PNG = Writer(write_pianoroll_png)
register_kind(DataKind(
    "pianoroll", {".png": ROLL_PNG, ".mid": MIDI, ".wav": Writer(write_wav), ".npz": NPZ},
    shape=None, metrics=(), preview_writer=ROLL_PNG, suggested=".mid",
    description="piano-roll phrases (tracks, steps, pitches) in [-1, 1]: onset 1, hold 0, rest -1"))
