"""Objective metrics of generated music: phrases as piano rolls with onsets.

Every function reads rolls ``(N, tracks, steps, pitches)`` (one roll ``(tracks, steps, pitches)``
counts as N = 1) of the shared encoding of :mod:`ganforge.data.pianoroll` on a
:class:`~ganforge.data.pianoroll.RollGrid`: a generator's raw output in [-1, 1] is read through
the same thresholds as data (a cell *sounds* above -1/2, :func:`~ganforge.data.pianoroll.sounding`;
a note *starts* where :func:`~ganforge.data.pianoroll.onsets` says, and lasts while its cells sound
and no new onset comes, as in :func:`~ganforge.data.pianoroll.roll_to_notes`), never by exact
values. A *note* is one onset cell; its *duration* the number of steps it lasts; *duration
weighted* means counted once per sounding cell (step). Pitch p of the grid is the MIDI note
``lowest_pitch + p``, its pitch class (MIDI mod 12, C = 0). Tracks of a chorale are soprano,
alto, tenor, bass (track 0 the highest). All functions are numpy, vectorised over phrases.

From MuseGAN (Dong, Hsiao, Yang and Yang 2018, "MuseGAN: multi-track sequential generative
adversarial networks", AAAI), per (phrase, track, bar):

* ``empty_bars`` (:func:`empty_bars`, EB): the share of (phrase, track, bar) with no sounding cell.
* ``used_pitch_classes`` (:func:`used_pitch_classes`, UPC): the number of distinct pitch classes
  sounding in a bar, averaged over the non-empty (phrase, track, bar).
* ``qualified_notes`` (:func:`qualified_notes`, QN): the share of notes lasting at least
  ``min_steps`` steps (MuseGAN: 3 of 96 steps a bar, a 32nd note; here an eighth note).
* ``tonal_distance`` (:func:`tonal_distance`, TD): the mean Euclidean distance between the tonal
  centroids (Harte, Sandler and Gasser 2006) of two tracks' chroma in the same bar.

Others:

* ``pitch_class_distance`` (:func:`pitch_class_distance`): the mean total-variation distance
  between each phrase's duration-weighted pitch-class histogram and a reference one (the
  pitch-class histogram of Yang and Lerch 2020, "On the evaluation of generative models in
  music", compared as distributions).
* ``polyphony`` (:func:`polyphony`): muspy's polyphony (Dong et al. 2020): the mean number of
  sounding pitches over the steps where at least one sounds.
* ``range_violations`` (:func:`range_violations`): the share of notes outside their voice's
  range (:data:`SATB_RANGES`).
* ``in_key`` (:func:`in_key`): the share of notes whose pitch class is in the scale of their
  phrase's Krumhansl-Schmuckler key (:func:`best_key`).
* ``parallel_fifths`` / ``parallel_octaves`` (:func:`parallel_motion`): the consecutive fifths
  and octaves (or unisons) between pairs of voices per bar, as a chorale-rules checker counts
  them.

:func:`music_report` gives all of them at once (< 1 s for 1,000 phrases (4, 64, 48) on one CPU
thread). A value that has nothing to be computed on (no notes, no sounding bar, no pair of
sounding tracks) is NaN.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from ganforge.data.pianoroll import RollGrid, onsets, sounding
from ganforge.errors import GanforgeError

#: MIDI ranges (lowest, highest, inclusive) of soprano, alto, tenor and bass: C4-A5, F3-D5, C3-A4,
#: C2-E4. Generous textbook ranges (a choir's comfortable ranges are narrower), so that a violation
#: means a voice out of place, not a strained one: of the notes of music21's 334 four-part Bach
#: chorales all but one (a soprano A3) lie inside, and each bound is reached.
SATB_RANGES: tuple[tuple[int, int], ...] = ((60, 81), (53, 74), (48, 69), (36, 64))

#: Krumhansl and Kessler's (1982) probe-tone profiles, C major and C minor (Krumhansl 1990,
#: "Cognitive foundations of musical pitch", table 2.1), as music21's ``KrumhanslSchmuckler`` has
#: them; :func:`key_profiles` reads music21's when it is installed and these otherwise.
KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)

#: the pitch classes (relative to the tonic) of a major key: the 7 diatonic degrees
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
#: of a minor key: natural minor plus the raised 6th and 7th (melodic and harmonic minor's, the
#: leading tone of a chorale's cadences): 9 pitch classes
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 9, 10, 11)

#: the radii of the circle of fifths, of minor thirds and of major thirds of the tonal centroid
TONAL_RADII = (1.0, 1.0, 0.5)
MODES = ("major", "minor")
#: the keys of :func:`music_report`, in order
MUSIC_METRICS = ("empty_bars", "used_pitch_classes", "qualified_notes", "tonal_distance",
                 "pitch_class_distance", "polyphony", "range_violations", "in_key", "parallel_fifths",
                 "parallel_octaves")


# ------------------------------------------------------------------------------------- helpers


def _as_rolls(rolls: object, grid: RollGrid | None = None) -> np.ndarray:
    """Rolls as an array (N, tracks, steps, pitches) (a single roll gets N = 1), checked against
    the grid's steps and pitches."""
    x = np.asarray(rolls)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or min(x.shape) < 1:
        raise GanforgeError(f"rolls must be an array (N, tracks, steps, pitches), got shape {x.shape}",
                            "pass one or more phrases of at least one track, step and pitch")
    if grid is not None and (x.shape[2], x.shape[3]) != (grid.steps, grid.pitches):
        raise GanforgeError(f"rolls of {x.shape[2]} steps and {x.shape[3]} pitches do not fit the grid "
                            f"of {grid.steps} steps ({grid.bars} bars of {grid.steps_per_bar}) and "
                            f"{grid.pitches} pitches", "pass the grid the rolls were made on")
    return x


def _pitch_class_matrix(grid: RollGrid) -> np.ndarray:
    """(pitches, 12) one-hot: row p is the pitch class of MIDI lowest_pitch + p."""
    pcs = (grid.lowest_pitch + np.arange(grid.pitches)) % 12
    return (pcs[:, None] == np.arange(12)[None, :]).astype(np.float64)


def _bars(x: np.ndarray, grid: RollGrid) -> np.ndarray:
    """(N, K, steps, P) -> (N, K, bars, steps_per_bar, P)."""
    return x.reshape(x.shape[0], x.shape[1], grid.bars, grid.steps_per_bar, x.shape[3])


def _mean(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else float("nan")


class _Read:
    """One reading of rolls: which cells sound, which start notes (computed once for a report)."""

    def __init__(self, rolls: object, grid: RollGrid) -> None:
        self.grid = grid
        x = _as_rolls(rolls, grid)
        self.sound = sounding(x)
        self.start = onsets(x)
        self.pc = _pitch_class_matrix(grid)

    def bar_chroma(self) -> np.ndarray:
        """(N, K, bars, 12): sounding cells of each pitch class in each track's bar."""
        return _bars(self.sound, self.grid).sum(axis=3, dtype=np.int64) @ self.pc

    def phrase_histograms(self) -> np.ndarray:
        """(N, 12): sounding cells of each pitch class in each phrase, all tracks."""
        return self.sound.sum(axis=(1, 2), dtype=np.int64) @ self.pc


# ------------------------------------------------------------------------------ MuseGAN's four


def _empty_bars(r: _Read) -> float:
    return float(np.mean(~_bars(r.sound, r.grid).any(axis=(3, 4))))


def empty_bars(rolls: np.ndarray, grid: RollGrid) -> float:
    """EB (MuseGAN, Dong et al. 2018): the share of (phrase, track, bar) in which no cell sounds,

        EB = (1 / (N K B)) sum_{n,k,b} [no cell of track k sounds in bar b of phrase n].

    MuseGAN reports it per track; here it is pooled over the tracks."""
    return _empty_bars(_Read(rolls, grid))


def _used_pitch_classes(r: _Read) -> float:
    used = (r.bar_chroma() > 0).sum(axis=-1)  # (N, K, bars)
    filled = used > 0
    return _mean(used[filled].sum(), filled.sum())


def used_pitch_classes(rolls: np.ndarray, grid: RollGrid) -> float:
    """UPC (MuseGAN, Dong et al. 2018): the number of distinct pitch classes that sound in a
    (phrase, track, bar), averaged over the non-empty ones,

        UPC = sum_{n,k,b} |{pc(p) : some cell (t, p) of the bar sounds}| / #{non-empty (n, k, b)}

    (MuseGAN excludes empty bars the same way, by a NaN-mean). NaN if every bar is empty."""
    return _used_pitch_classes(_Read(rolls, grid))


def _note_steps(grid: RollGrid, min_steps: int | None) -> int:
    if min_steps is None:
        return max(1, grid.steps_per_quarter // 2)
    if isinstance(min_steps, bool) or not isinstance(min_steps, (int, np.integer)) or min_steps < 1:
        raise GanforgeError(f"min_steps={min_steps!r} is not a whole number of steps >= 1",
                            f"use e.g. min_steps={max(1, grid.steps_per_quarter // 2)} (an eighth note)")
    return int(min_steps)


def _qualified_notes(r: _Read, min_steps: int) -> float:
    steps = r.sound.shape[2]
    lasting = r.start.copy()  # notes lasting >= d + 1 steps: the next d cells go on, no new onset
    going_on = r.sound & ~r.start
    for d in range(1, min_steps):
        if d >= steps:
            lasting[:] = False
            break
        lasting[:, :, :steps - d] &= going_on[:, :, d:]
        lasting[:, :, steps - d:] = False
    return _mean(lasting.sum(), r.start.sum())


def qualified_notes(rolls: np.ndarray, grid: RollGrid, min_steps: int | None = None) -> float:
    """QN (MuseGAN, Dong et al. 2018): the share of notes that last at least ``min_steps`` steps,

        QN = #{notes of duration >= min_steps} / #{notes}

    (a note's duration: the steps from its onset until the first silent cell or the next onset of
    its pitch, :func:`~ganforge.data.pianoroll.roll_to_notes`; a note cut by the phrase's end
    counts the steps it has). MuseGAN used 3 of its 96 steps a bar (a 32nd note, below its
    16th-note grid, to catch fragmented notes); the default here is an eighth note,
    ``steps_per_quarter // 2`` steps (2 on a 16th-note grid), at least 1 (1 makes QN 1). NaN
    without notes."""
    return _qualified_notes(_Read(rolls, grid), _note_steps(grid, min_steps))


@functools.lru_cache(maxsize=1)
def _tonal_matrix() -> np.ndarray:
    """(12, 6): row l is Harte et al.'s phi(l)."""
    l = np.arange(12)
    r1, r2, r3 = TONAL_RADII
    return np.stack([r1 * np.sin(l * 7 * np.pi / 6), r1 * np.cos(l * 7 * np.pi / 6),
                     r2 * np.sin(l * 3 * np.pi / 2), r2 * np.cos(l * 3 * np.pi / 2),
                     r3 * np.sin(l * 2 * np.pi / 3), r3 * np.cos(l * 2 * np.pi / 3)], axis=1)


def _centroids(chroma: np.ndarray) -> np.ndarray:
    """(..., 12) -> (..., 6); an all-zero chroma gives 0."""
    total = chroma.sum(axis=-1, keepdims=True)
    norm = np.divide(chroma, total, out=np.zeros(chroma.shape), where=total > 0)
    return norm @ _tonal_matrix()


def tonal_centroid(chroma: np.ndarray) -> np.ndarray:
    """The 6-D tonal centroid of a chroma vector (12,) (or a stack (..., 12) -> (..., 6)), Harte,
    Sandler and Gasser (2006), "Detecting harmonic change in musical audio":

        zeta_d = (1 / ||c||_1) sum_{l=0}^{11} Phi(d, l) c_l,   d = 0..5,
        Phi(., l) = (r1 sin(l 7pi/6), r1 cos(l 7pi/6), r2 sin(l 3pi/2), r2 cos(l 3pi/2),
                     r3 sin(l 2pi/3), r3 cos(l 2pi/3)),

    pitch class l's position on the circle of fifths, of minor thirds and of major thirds, radii
    r1 = r2 = 1, r3 = 0.5 (:data:`TONAL_RADII`). The chroma must be >= 0 and not all 0."""
    c = np.asarray(chroma, dtype=np.float64)
    if c.shape[-1:] != (12,) or (c < 0).any() or (c.sum(axis=-1) <= 0).any():
        raise GanforgeError(f"a chroma vector is 12 non-negative weights, not all 0; got shape {c.shape}",
                            "pass the pitch-class weights C, C#, ..., B")
    return _centroids(c)


def _tonal_distance(r: _Read) -> float:
    chroma = r.bar_chroma()  # (N, K, bars, 12)
    zeta, filled = _centroids(chroma), chroma.sum(axis=-1) > 0
    total, pairs = 0.0, 0
    for i in range(chroma.shape[1]):
        for j in range(i + 1, chroma.shape[1]):
            both = filled[:, i] & filled[:, j]
            total += float(np.linalg.norm(zeta[:, i] - zeta[:, j], axis=-1)[both].sum())
            pairs += int(both.sum())
    return _mean(total, pairs)


def tonal_distance(rolls: np.ndarray, grid: RollGrid) -> float:
    """TD (MuseGAN, Dong et al. 2018): how far apart in harmony two tracks are,

        TD = mean over (n, b, i < j) with tracks i and j both sounding in bar b of phrase n of
             || zeta(c_{n,i,b}) - zeta(c_{n,j,b}) ||_2,

    c_{n,k,b} the duration-weighted chroma of track k in the bar (sounding cells per pitch class,
    normalised to sum 1) and zeta its tonal centroid (:func:`tonal_centroid`). 0 when the tracks
    play the same pitch classes in the same proportions; a fifth apart is closer than a tritone.
    MuseGAN reports it per pair of tracks; here it is pooled. NaN if no bar has two sounding
    tracks."""
    return _tonal_distance(_Read(rolls, grid))


# ---------------------------------------------------------------------------- pitch classes


def _normalise(h: np.ndarray) -> np.ndarray:
    total = h.sum(axis=-1, keepdims=True)
    return np.divide(h, total, out=np.zeros(h.shape), where=total > 0)


def pitch_class_histogram(rolls: np.ndarray, grid: RollGrid) -> np.ndarray:
    """The duration-weighted pitch-class histogram (12,) of all phrases and tracks: h_c = the number
    of sounding cells of pitch class c (C = 0), normalised to sum 1 (all 0 when nothing sounds)."""
    return _normalise(_Read(rolls, grid).phrase_histograms().sum(axis=0))


def _pitch_class_distance(r: _Read, reference: np.ndarray) -> float:
    h = r.phrase_histograms()
    empty = h.sum(axis=-1) == 0
    tv = 0.5 * np.abs(_normalise(h) - reference[None]).sum(axis=-1)
    return float(np.where(empty, 1.0, tv).mean())


def _reference(reference_histogram: np.ndarray) -> np.ndarray:
    ref = np.asarray(reference_histogram, dtype=np.float64)
    if ref.shape != (12,) or (ref < 0).any() or ref.sum() <= 0:
        raise GanforgeError(f"the reference histogram must be 12 non-negative weights, not all 0; got "
                            f"shape {ref.shape}", "pass pitch_class_histogram(reference_rolls, grid)")
    return ref / ref.sum()


def pitch_class_distance(rolls: np.ndarray, reference_histogram: np.ndarray, grid: RollGrid) -> float:
    """The mean over phrases of the total-variation distance between the phrase's pitch classes
    and a reference's,

        PCD = (1 / N) sum_n (1/2) sum_{c=0}^{11} | h_{n,c} - r_c |,

    h_n the phrase's duration-weighted pitch-class histogram (all tracks, normalised to sum 1),
    r the reference histogram (normalised; e.g. :func:`pitch_class_histogram` of real phrases).
    In [0, 1]: 0 when each phrase uses the pitch classes in the reference's proportions; a phrase
    with no sounding cell counts as 1. (A per-phrase version of Yang and Lerch 2020's pitch-class
    histogram comparison.)"""
    return _pitch_class_distance(_Read(rolls, grid), _reference(reference_histogram))


def _polyphony(sound: np.ndarray) -> float:
    count = sound.sum(axis=(1, 3))  # (N, steps)
    return _mean(count.sum(), (count > 0).sum())


def polyphony(rolls: np.ndarray) -> float:
    """Polyphony (muspy, Dong et al. 2020): the mean number of sounding pitches over the steps at
    which at least one pitch sounds,

        polyphony = sum_{n,t} s_{n,t} / #{(n, t) : s_{n,t} > 0},   s_{n,t} = sum_{k,p} [cell sounds],

    all tracks together: a pitch sounding in two tracks counts twice (a four-voice chord is 4
    even where two voices double a note). NaN if nothing sounds."""
    return _polyphony(sounding(_as_rolls(rolls)))


def _check_ranges(ranges: Sequence[tuple[int, int]], tracks: int) -> np.ndarray:
    arr = np.asarray(ranges, dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise GanforgeError(f"ranges must be (lowest, highest) MIDI pairs, one per track; got {ranges!r}",
                            "pass e.g. SATB_RANGES")
    if len(arr) != tracks:
        raise GanforgeError(f"{len(arr)} ranges for rolls of {tracks} tracks",
                            "pass one (lowest, highest) MIDI range per track")
    return arr


def _range_violations(r: _Read, ranges: np.ndarray) -> float:
    notes = r.start.sum(axis=(0, 2), dtype=np.int64)  # (K, P)
    midi = r.grid.lowest_pitch + np.arange(notes.shape[1])
    outside = (midi[None, :] < ranges[:, :1]) | (midi[None, :] > ranges[:, 1:])
    return _mean(notes[outside].sum(), notes.sum())


def range_violations(rolls: np.ndarray, grid: RollGrid,
                     ranges: Sequence[tuple[int, int]] = SATB_RANGES) -> float:
    """The share of notes outside their track's range,

        RV = #{notes of track k with MIDI pitch outside [lo_k, hi_k]} / #{notes},

    ``ranges`` one (lo, hi) inclusive MIDI pair per track (default :data:`SATB_RANGES`: soprano
    C4-A5, alto F3-D5, tenor C3-A4, bass C2-E4, generous textbook ranges). Raises ``ValueError``
    (a :class:`~ganforge.errors.GanforgeError`) when the rolls have another number of tracks.
    NaN without notes."""
    r = _Read(rolls, grid)
    return _range_violations(r, _check_ranges(ranges, r.sound.shape[1]))


# --------------------------------------------------------------------------------------- key


@functools.lru_cache(maxsize=1)
def key_profiles() -> np.ndarray:
    """(2, 12): the Krumhansl-Kessler profiles of C major and C minor, read once from music21's
    ``analysis.discrete.KrumhanslSchmuckler().getWeights`` (the hard-coded :data:`KK_MAJOR` and
    :data:`KK_MINOR`, the same numbers, when music21 is not installed)."""
    try:
        from music21.analysis.discrete import KrumhanslSchmuckler
    except ImportError:
        return np.array([KK_MAJOR, KK_MINOR], dtype=np.float64)
    ks = KrumhanslSchmuckler()
    return np.array([ks.getWeights("major"), ks.getWeights("minor")], dtype=np.float64)


@functools.lru_cache(maxsize=1)
def _rotated_profiles() -> np.ndarray:
    """(24, 12) centred and unit-norm: row m * 12 + k is mode m's profile with tonic k,
    w_m[(c - k) mod 12] for pitch class c."""
    prof = key_profiles()
    c = np.arange(12)
    rot = np.stack([prof[m][(c - k) % 12] for m in range(2) for k in range(12)])
    rot = rot - rot.mean(axis=1, keepdims=True)
    return rot / np.linalg.norm(rot, axis=1, keepdims=True)


def _correlations(h: np.ndarray) -> np.ndarray:
    """(..., 12) histograms -> (..., 24) Pearson correlations (0 for a constant histogram)."""
    centred = h - h.mean(axis=-1, keepdims=True)
    norm = np.linalg.norm(centred, axis=-1, keepdims=True)
    flat = norm <= 1e-12 * np.abs(h).max(axis=-1, keepdims=True)  # constant up to rounding
    unit = np.divide(centred, norm, out=np.zeros(h.shape), where=~flat)
    return unit @ _rotated_profiles().T


def key_correlations(histogram: np.ndarray) -> np.ndarray:
    """(2, 12): the Pearson correlation between a pitch-class histogram (12,) and the
    Krumhansl-Kessler profile (:func:`key_profiles`) of each mode (0 major, 1 minor) rotated to
    each tonic k (row m, column k: r(h, w_m[(c - k) mod 12])). All 0 for a constant histogram."""
    h = np.asarray(histogram, dtype=np.float64)
    if h.shape != (12,) or (h < 0).any() or h.sum() <= 0:
        raise GanforgeError(f"a pitch-class histogram is 12 non-negative weights, not all 0; got shape "
                            f"{h.shape}", "pass the weights of C, C#, ..., B (a phrase with notes)")
    return _correlations(h).reshape(2, 12)


def best_key(histogram: np.ndarray) -> tuple[int, str]:
    """The Krumhansl-Schmuckler key of a duration-weighted pitch-class histogram (12,): the
    (tonic pitch class, ``"major"`` | ``"minor"``) whose rotated Krumhansl-Kessler profile
    correlates best with it (:func:`key_correlations`; Krumhansl 1990, the algorithm of music21's
    ``analyze('KrumhanslSchmuckler')``). A tie goes to the first of major before minor, tonic
    C, C#, ..., B (music21 breaks ties otherwise)."""
    best = int(np.argmax(key_correlations(histogram)))
    return best % 12, MODES[best // 12]


@functools.lru_cache(maxsize=1)
def _scale_masks() -> np.ndarray:
    """(24, 12) bool: row m * 12 + k, which pitch classes are in mode m's scale on tonic k."""
    masks = np.zeros((24, 12), dtype=bool)
    for m, scale in enumerate((MAJOR_SCALE, MINOR_SCALE)):
        for k in range(12):
            masks[m * 12 + k, [(k + d) % 12 for d in scale]] = True
    return masks


def _in_key(r: _Read) -> float:
    notes = r.start.sum(axis=(1, 2), dtype=np.int64) @ r.pc  # (N, 12) notes per pitch class
    has = notes.sum(axis=-1) > 0
    if not has.any():
        return float("nan")
    keys = np.argmax(_correlations(r.phrase_histograms()[has]), axis=-1)
    inside = (notes[has] * _scale_masks()[keys]).sum()
    return float(inside) / float(notes[has].sum())


def in_key(rolls: np.ndarray, grid: RollGrid) -> float:
    """The share of notes in their phrase's key,

        IK = sum_n #{notes of phrase n whose pitch class is in scale(key_n)} / sum_n #{notes of n},

    key_n = :func:`best_key` of the phrase's duration-weighted pitch-class histogram (all tracks);
    a major key's scale is its 7 diatonic degrees (:data:`MAJOR_SCALE`), a minor key's natural
    minor plus the raised 6th and 7th (:data:`MINOR_SCALE`, 9 pitch classes: chorales use the
    leading tone). Notes are counted one per onset, all phrases pooled; phrases without notes are
    skipped (NaN if none has any)."""
    return _in_key(_Read(rolls, grid))


# -------------------------------------------------------------------------------- voice leading


def _parallel_motion(r: _Read) -> tuple[float, float]:
    n, tracks, steps, pitches = r.sound.shape
    sounds = r.sound.any(axis=3)  # (N, K, T)
    starts = r.start.any(axis=3)
    top = pitches - 1 - np.argmax(r.sound[..., ::-1], axis=3)  # highest sounding pitch (where any)
    t = np.arange(steps)
    fifths = octaves = 0
    for i in range(tracks):
        for j in range(i + 1, tracks):
            moment = (starts[:, i] | starts[:, j]) & sounds[:, i] & sounds[:, j]  # (N, T)
            last = np.maximum.accumulate(np.where(moment, t, -1), axis=1)
            prev = np.full_like(last, -1)
            prev[:, 1:] = last[:, :-1]
            pair = moment & (prev >= 0)
            before = np.maximum(prev, 0)
            a0, a1 = np.take_along_axis(top[:, i], before, axis=1), top[:, i]
            b0, b1 = np.take_along_axis(top[:, j], before, axis=1), top[:, j]
            da, db = a1 - a0, b1 - b0
            similar = pair & (da != 0) & (db != 0) & (np.sign(da) == np.sign(db))
            iv0, iv1 = np.abs(a0 - b0) % 12, np.abs(a1 - b1) % 12
            fifths += int((similar & (iv0 == 7) & (iv1 == 7)).sum())
            octaves += int((similar & (iv0 == 0) & (iv1 == 0)).sum())
    bars = n * r.grid.bars
    return fifths / bars, octaves / bars


def parallel_motion(rolls: np.ndarray, grid: RollGrid) -> tuple[float, float]:
    """Consecutive (parallel) fifths and octaves per bar, counted as a chorale-rules checker does:
    ``(fifths_per_bar, octaves_per_bar)``.

    For each phrase and pair of tracks i < j, the *moments* are the steps at which either track
    has an onset and both sound; at a moment each track's pitch is its highest sounding pitch
    (p_i, p_j). For each two consecutive moments s < t (consecutive among the moments; a rest of
    one track between them is passed over) at which both voices move, in the same direction
    (p_i(t) != p_i(s), p_j(t) != p_j(s), sign(p_i(t) - p_i(s)) = sign(p_j(t) - p_j(s))):

    * a parallel fifth when |p_i - p_j| mod 12 = 7 at both s and t (fifths, twelfths, ...;
      absolute, so that a fifth stays a fifth when the voices cross),
    * a parallel octave when |p_i - p_j| mod 12 = 0 at both (unisons, octaves, and a unison
      moving to an octave or back).

    The counts over all phrases and pairs are divided by the number of bars, N * ``grid.bars``.
    Against music21's ``VoiceLeadingQuartet`` at the same two moments, a fifth here is
    ``parallelFifth() and similarMotion()`` and an octave ``parallelUnisonOrOctave() and
    similarMotion()``, except that music21 (a) also counts *antiparallel* fifths and octaves
    (contrary motion, e.g. a fifth to a twelfth), which are not counted here, (b) names intervals
    by spelling (a roll has none: 7 semitones spelled as a diminished sixth is no fifth to it)
    and (c) does not count a unison moving to an octave or an octave to a unison."""
    return _parallel_motion(_Read(rolls, grid))


# ---------------------------------------------------------------------------------- the report


def music_report(rolls: np.ndarray, reference_rolls: np.ndarray, grid: RollGrid,
                 ranges: Sequence[tuple[int, int]] | None = SATB_RANGES,
                 min_steps: int | None = None) -> dict[str, float]:
    """All the metrics of generated ``rolls`` at once, rolls read once (module docstring), as
    plain floats under :data:`MUSIC_METRICS`: ``empty_bars``, ``used_pitch_classes``,
    ``qualified_notes`` (``min_steps``: :func:`qualified_notes`), ``tonal_distance``,
    ``pitch_class_distance`` (against :func:`pitch_class_histogram` of ``reference_rolls``, real
    phrases on the same grid), ``polyphony``, ``range_violations`` (``ranges``: one per track,
    NaN when None), ``in_key``, ``parallel_fifths`` and ``parallel_octaves`` (per bar,
    :func:`parallel_motion`)."""
    r = _Read(rolls, grid)
    reference = _Read(reference_rolls, grid).phrase_histograms().sum(axis=0)
    if reference.sum() <= 0:
        raise GanforgeError("nothing sounds in the reference rolls", "pass real phrases as the reference")
    fifths, octaves = _parallel_motion(r)
    return {
        "empty_bars": _empty_bars(r),
        "used_pitch_classes": _used_pitch_classes(r),
        "qualified_notes": _qualified_notes(r, _note_steps(grid, min_steps)),
        "tonal_distance": _tonal_distance(r),
        "pitch_class_distance": _pitch_class_distance(r, _reference(reference)),
        "polyphony": _polyphony(r.sound),
        "range_violations": (float("nan") if ranges is None
                             else _range_violations(r, _check_ranges(ranges, r.sound.shape[1]))),
        "in_key": _in_key(r),
        "parallel_fifths": float(fifths),
        "parallel_octaves": float(octaves),
    }


__all__ = ["KK_MAJOR", "KK_MINOR", "MAJOR_SCALE", "MINOR_SCALE", "MODES", "MUSIC_METRICS", "SATB_RANGES",
           "TONAL_RADII", "best_key", "empty_bars", "in_key", "key_correlations", "key_profiles",
           "music_report", "parallel_motion", "pitch_class_distance", "pitch_class_histogram",
           "polyphony", "qualified_notes", "range_violations", "tonal_centroid", "tonal_distance",
           "used_pitch_classes"]
