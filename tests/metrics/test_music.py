"""Objective metrics of generated music: hand-made rolls with known answers for every metric,
the tonal centroid against Harte et al.'s formula worked by hand, the Krumhansl-Schmuckler key
against music21's analysis on random streams and Bach chorales, consecutive fifths and octaves
against music21's VoiceLeadingQuartet at its own verticalities, and the report's speed."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from ganforge.data.pianoroll import Note, RollGrid, notes_to_roll, roll_to_notes
from ganforge.errors import GanforgeError
from ganforge.metrics.music import (
    KK_MAJOR,
    KK_MINOR,
    MUSIC_METRICS,
    SATB_RANGES,
    best_key,
    empty_bars,
    in_key,
    key_correlations,
    key_profiles,
    music_report,
    parallel_motion,
    pitch_class_distance,
    pitch_class_histogram,
    polyphony,
    qualified_notes,
    range_violations,
    tonal_centroid,
    tonal_distance,
    used_pitch_classes,
)

GRID = RollGrid(bars=2, beats_per_bar=4, steps_per_quarter=4, lowest_pitch=36, pitches=48)  # 32 steps
WHITE = [m for m in range(36, 84) if m % 12 in (0, 2, 4, 5, 7, 9, 11)]
SQ3 = math.sqrt(3)


def roll(notes: list[Note], tracks: int = 4, grid: RollGrid = GRID) -> np.ndarray:
    """One phrase (1, tracks, steps, pitches) of ``notes``."""
    return notes_to_roll(notes, tracks, grid.steps, grid.lowest_pitch, grid.pitches)[None]


def chord(pitches: list[int], start: int = 0, end: int = 8) -> list[Note]:
    """One note per track, track k playing pitches[k]."""
    return [Note(k, start, end, p) for k, p in enumerate(pitches)]


# ------------------------------------------------------------------------------- thresholds


def test_raw_values_read_through_the_thresholds():
    """0.7 starts a note, 0.1 holds it, -0.9 rests (and 0.1 after a rest starts one): a raw roll
    scores as the exact roll of the notes it encodes."""
    raw = np.full((1, 4, GRID.steps, GRID.pitches), -0.9, np.float32)
    c4 = 60 - GRID.lowest_pitch
    raw[0, 0, 0:8, c4] = [0.7, 0.1, 0.1, -0.9, 0.7, 0.7, 0.1, -0.9]  # C4 0-3, 4-5, 5-7
    raw[0, 3, 2:6, c4 - 12] = [0.1, 0.1, 0.7, 0.1]  # C3 2-4 (onset after a rest), 4-6
    notes = [Note(0, 0, 3, 60), Note(0, 4, 5, 60), Note(0, 5, 7, 60), Note(3, 2, 4, 48), Note(3, 4, 6, 48)]
    in_order = sorted(notes, key=lambda n: (n.start, n.track, n.pitch))
    assert roll_to_notes(raw[0], GRID.lowest_pitch) == in_order
    exact = roll(notes)
    assert qualified_notes(raw, GRID) == pytest.approx(4 / 5)  # one note of 1 step
    a, b = music_report(raw, exact, GRID), music_report(exact, exact, GRID)
    assert list(a) == list(MUSIC_METRICS)
    np.testing.assert_equal([a[k] for k in MUSIC_METRICS], [b[k] for k in MUSIC_METRICS])


# --------------------------------------------------------------------------- MuseGAN's four


def test_empty_bars():
    x = roll([Note(0, 0, 4, 60), Note(1, 0, 4, 55), Note(1, 20, 24, 55)])  # bars of 16 steps
    assert empty_bars(x, GRID) == pytest.approx(5 / 8)  # track 0 bar 1, tracks 2-3 both bars
    assert empty_bars(np.full_like(x, -1.0), GRID) == 1.0
    full = roll(chord([72, 64, 55, 48], 0, 32))
    assert empty_bars(np.concatenate([x, full]), GRID) == pytest.approx(5 / 16)


def test_used_pitch_classes():
    x = roll([Note(0, 0, 4, 60), Note(0, 4, 8, 64), Note(0, 8, 12, 72),  # bar 0: C, E (C5 again C)
              Note(1, 16, 20, 60), Note(1, 18, 22, 61), Note(1, 24, 26, 50)])  # bar 1: C, C#, D
    assert used_pitch_classes(x, GRID) == pytest.approx((2 + 3) / 2)
    assert math.isnan(used_pitch_classes(np.full_like(x, -1.0), GRID))


def test_qualified_notes_by_hand():
    x = roll([Note(0, 0, 1, 60), Note(0, 1, 3, 62), Note(0, 3, 6, 64), Note(0, 6, 10, 65)])
    assert qualified_notes(x, GRID) == pytest.approx(3 / 4)  # default: an eighth note = 2 steps
    assert qualified_notes(x, GRID, min_steps=3) == pytest.approx(2 / 4)
    assert qualified_notes(x, GRID, min_steps=1) == 1.0
    assert qualified_notes(x, GRID, min_steps=40) == 0.0
    coarse = RollGrid(bars=2, beats_per_bar=4, steps_per_quarter=1, lowest_pitch=36, pitches=48)
    assert qualified_notes(roll([Note(0, 0, 1, 60)], grid=coarse), coarse) == 1.0  # default at least 1
    assert math.isnan(qualified_notes(np.full_like(x, -1.0), GRID))
    for bad in (0, 2.0, True):
        with pytest.raises(GanforgeError, match="min_steps"):
            qualified_notes(x, GRID, min_steps=bad)


def test_qualified_notes_match_roll_to_notes_on_raw_rolls():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (3, 4, GRID.steps, GRID.pitches)).astype(np.float32)
    x = np.where(rng.random(x.shape) < 0.7, np.float32(-1), x)  # mostly silent, some long notes
    durations = np.array([n.end - n.start for phrase in x for n in roll_to_notes(phrase, GRID.lowest_pitch)])
    assert durations.max() >= 4
    for m in (1, 2, 3, 4):
        assert qualified_notes(x, GRID, min_steps=m) == pytest.approx(np.mean(durations >= m))


def test_tonal_centroid_of_a_c_major_triad_by_hand():
    """Harte, Sandler and Gasser (2006): phi(l) on the circles of fifths (l 7pi/6), minor thirds
    (l 3pi/2) and major thirds (l 2pi/3, radius 1/2), worked out for C (0), E (4) and G (7)."""
    phi_c = np.array([0, 1, 0, 1, 0, 0.5])
    phi_e = np.array([SQ3 / 2, -1 / 2, 0, 1, SQ3 / 4, -1 / 4])  # 14pi/3 = 2pi/3, 6pi = 0, 8pi/3 = 2pi/3
    phi_g = np.array([1 / 2, SQ3 / 2, 1, 0, SQ3 / 4, -1 / 4])  # 49pi/6 = pi/6, 21pi/2 = pi/2, 14pi/3
    chroma = np.zeros(12)
    chroma[[0, 4, 7]] = 2.0  # any scale: the chroma is normalised to sum 1
    expected = (phi_c + phi_e + phi_g) / 3
    np.testing.assert_allclose(expected, [(SQ3 + 1) / 6, (1 + SQ3) / 6, 1 / 3, 2 / 3, SQ3 / 6, 0], atol=1e-15)
    np.testing.assert_allclose(tonal_centroid(chroma), expected, atol=1e-12)
    stacked = tonal_centroid(np.stack([chroma, np.eye(12)[4]]))
    np.testing.assert_allclose(stacked, [expected, phi_e], atol=1e-12)
    with pytest.raises(GanforgeError):
        tonal_centroid(np.zeros(12))


def test_tonal_distance():
    same = roll(chord([72, 67, 60, 48], 0, 16))  # C, G, C, C in bar 0
    assert tonal_distance(roll(chord([72, 60]), tracks=2), GRID) == pytest.approx(0.0, abs=1e-12)
    fifth = tonal_distance(roll(chord([67, 60]), tracks=2), GRID)
    tritone = tonal_distance(roll(chord([66, 60]), tracks=2), GRID)
    def phi(l: int) -> np.ndarray:
        a, b, c = l * 7 * np.pi / 6, l * 3 * np.pi / 2, l * 2 * np.pi / 3
        return np.array([np.sin(a), np.cos(a), np.sin(b), np.cos(b), 0.5 * np.sin(c), 0.5 * np.cos(c)])

    assert fifth == pytest.approx(np.linalg.norm(phi(0) - phi(7)))
    assert tritone == pytest.approx(np.linalg.norm(phi(0) - phi(6)))
    assert 0 < fifth < tritone
    # three pairs (0,1) (0,2) (0,3) at the fifth's distance, three of identical classes
    assert tonal_distance(same, GRID) == pytest.approx(fifth / 2)
    # tracks sounding in different bars make no pair
    assert math.isnan(tonal_distance(roll([Note(0, 0, 4, 60), Note(1, 16, 20, 60)], tracks=2), GRID))


# ---------------------------------------------------------------------------- pitch classes


def test_pitch_class_histogram_and_distance():
    ref = roll([Note(0, 0, 4, 60), Note(1, 0, 2, 55)])  # C 4 steps, G 2 steps
    h = pitch_class_histogram(ref, GRID)
    expected = np.zeros(12)
    expected[[0, 7]] = [4 / 6, 2 / 6]
    np.testing.assert_allclose(h, expected)
    same = roll([Note(2, 8, 16, 48), Note(3, 8, 12, 43)])  # C 8, G 4: the same proportions
    only_c = roll([Note(0, 0, 4, 72)])
    disjoint = roll([Note(0, 0, 4, 66)])
    empty = np.full_like(ref, -1.0)
    assert pitch_class_distance(same, h, GRID) == pytest.approx(0.0, abs=1e-12)
    assert pitch_class_distance(only_c, h, GRID) == pytest.approx(1 / 3)
    assert pitch_class_distance(disjoint, h * 3, GRID) == pytest.approx(1.0)  # the reference is normalised
    assert pitch_class_distance(np.concatenate([same, only_c, disjoint, empty]), h, GRID) == pytest.approx(
        (0 + 1 / 3 + 1 + 1) / 4)
    np.testing.assert_array_equal(pitch_class_histogram(empty, GRID), np.zeros(12))
    with pytest.raises(GanforgeError, match="reference"):
        pitch_class_distance(same, np.zeros(12), GRID)


def test_polyphony():
    x = roll(chord([72, 64, 55, 48], 0, 8))
    assert polyphony(x) == 4.0
    assert polyphony(roll(chord([60, 60, 55, 48], 0, 8))) == 4.0  # a doubled pitch counts twice
    x2 = roll(chord([72, 64, 55, 48], 0, 8) + [Note(0, 8, 16, 72), Note(0, 16, 32, 71), Note(1, 16, 32, 62)])
    assert polyphony(x2) == pytest.approx((8 * 4 + 8 * 1 + 16 * 2) / 32)
    assert polyphony(x2[0]) == polyphony(x2)  # one roll is one phrase
    assert math.isnan(polyphony(np.full_like(x, -1.0)))


def test_range_violations():
    x = roll([Note(0, 0, 2, 59), Note(0, 2, 4, 60), Note(0, 4, 6, 81), Note(0, 6, 8, 82),  # out in in out
              Note(3, 0, 8, 36), Note(3, 8, 16, 65), Note(1, 0, 4, 53), Note(2, 0, 4, 69)])  # in out in in
    assert range_violations(x, GRID) == pytest.approx(3 / 8)
    assert range_violations(x, GRID, ranges=[(0, 127)] * 4) == 0.0
    assert SATB_RANGES == ((60, 81), (53, 74), (48, 69), (36, 64))
    with pytest.raises(ValueError, match="3 ranges for rolls of 4 tracks"):
        range_violations(x, GRID, ranges=SATB_RANGES[:3])
    with pytest.raises(ValueError, match="4 ranges for rolls of 2 tracks"):
        range_violations(roll([Note(0, 0, 2, 60)], tracks=2), GRID)


# --------------------------------------------------------------------------------------- key


def scale_roll(midis: list[int], step: int = 2) -> np.ndarray:
    return roll([Note(0, i * step, (i + 1) * step, m) for i, m in enumerate(midis)], tracks=1)


def test_in_key():
    c_major = scale_roll([60, 62, 64, 65, 67, 69, 71, 72])
    assert best_key(pitch_class_histogram(c_major, GRID)) == (0, "major")
    assert in_key(c_major, GRID) == 1.0
    a_minor = scale_roll([57, 59, 60, 62, 64, 65, 68, 69, 68, 69, 57])  # harmonic minor: G# leading tone
    assert best_key(pitch_class_histogram(a_minor, GRID)) == (9, "minor")
    assert in_key(a_minor, GRID) == 1.0
    chromatic = scale_roll(list(range(60, 72)))  # a constant histogram: every key ties, C major
    assert np.all(key_correlations(pitch_class_histogram(chromatic, GRID)) == 0)
    assert in_key(chromatic, GRID) == pytest.approx(7 / 12)
    empty = np.full_like(c_major, -1.0)
    assert in_key(np.concatenate([c_major, empty, a_minor]), GRID) == 1.0  # the empty phrase is skipped
    assert in_key(np.concatenate([c_major, chromatic]), GRID) == pytest.approx((8 + 7) / 20)  # pooled by note
    assert math.isnan(in_key(empty, GRID))
    with pytest.raises(GanforgeError):
        best_key(np.zeros(12))


def test_key_profiles_are_music21s():
    pytest.importorskip("music21")
    from music21.analysis.discrete import KrumhanslSchmuckler

    ks = KrumhanslSchmuckler()
    np.testing.assert_array_equal(KK_MAJOR, ks.getWeights("major"))
    np.testing.assert_array_equal(KK_MINOR, ks.getWeights("minor"))
    np.testing.assert_array_equal(key_profiles(), [KK_MAJOR, KK_MINOR])


def test_key_profiles_without_music21(monkeypatch):
    """The hard-coded Krumhansl-Kessler numbers serve when music21 cannot be imported."""
    import sys

    monkeypatch.setitem(sys.modules, "music21.analysis.discrete", None)  # import raises ImportError
    np.testing.assert_array_equal(key_profiles.__wrapped__(), [KK_MAJOR, KK_MINOR])


def _m21_key(score) -> tuple[int, str]:
    k = score.analyze("KrumhanslSchmuckler")
    return k.tonic.pitchClass, k.mode


def _score_to_roll(score, spq: int = 4) -> tuple[np.ndarray, RollGrid]:
    """The parts of a music21 score as the tracks of one roll on a grid of one-quarter bars."""
    from fractions import Fraction

    notes = []
    for k, part in enumerate(score.parts):
        for n in part.flatten().notes:
            start, end = Fraction(n.offset) * spq, Fraction(n.offset + n.quarterLength) * spq
            assert start.denominator == end.denominator == 1
            notes += [Note(k, int(start), int(end), p.midi) for p in n.pitches]
    grid = RollGrid(bars=-(-max(n.end for n in notes) // spq), beats_per_bar=1, steps_per_quarter=spq,
                    lowest_pitch=24, pitches=84)
    return notes_to_roll(notes, len(score.parts), grid.steps, grid.lowest_pitch, grid.pitches)[None], grid


def _agree_unless_tied(score) -> bool:
    x, grid = _score_to_roll(score)
    corr = np.sort(key_correlations(pitch_class_histogram(x, grid)).ravel())
    if corr[-1] - corr[-2] < 1e-9:
        return False
    assert best_key(pitch_class_histogram(x, grid)) == _m21_key(score)
    return True


def test_best_key_against_music21_on_bach_chorales():
    pytest.importorskip("music21")
    from music21 import corpus

    keys = {}
    for name in ("bach/bwv66.6", "bach/bwv57.8", "bach/bwv10.7", "bach/bwv26.6", "bach/bwv40.8",
                 "bach/bwv255", "bach/bwv244.54"):
        score = corpus.parse(name)
        assert _agree_unless_tied(score)
        keys[name] = _m21_key(score)
    assert keys["bach/bwv66.6"] == (6, "minor") and keys["bach/bwv57.8"] == (10, "major")


def test_best_key_against_music21_on_random_streams():
    pytest.importorskip("music21")
    from music21 import note, stream

    rng = np.random.default_rng(1)
    compared = 0
    for trial in range(40):
        score = stream.Score()
        for _ in range(int(rng.integers(1, 4))):
            part, offset = stream.Part(), 0.0
            tonic = int(rng.integers(12))
            scale = (0, 2, 4, 5, 7, 9, 11) if trial % 2 else (0, 2, 3, 5, 7, 8, 11)  # major, harmonic minor
            for _ in range(int(rng.integers(3, 25))):
                pc = (tonic + scale[rng.integers(7)]) % 12 if trial % 4 < 2 else int(rng.integers(12))
                n = note.Note(midi=48 + pc + 12 * int(rng.integers(3)))
                n.quarterLength = float(rng.integers(1, 9)) / 4
                part.insert(offset, n)
                offset += n.quarterLength
            score.insert(0, part)
        compared += _agree_unless_tied(score)
    assert compared >= 35


# ----------------------------------------------------------------------------- voice leading


def voices(*lines: list[tuple[int, int, int]]) -> np.ndarray:
    """A phrase of voices given as (start, end, midi) notes, voice 0 first."""
    return roll([Note(k, s, e, m) for k, line in enumerate(lines) for s, e, m in line], tracks=len(lines))


@pytest.mark.parametrize(("upper", "lower", "fifths", "octaves"), [
    ([60, 62], [53, 55], 1, 0),  # C4/F3 -> D4/G3: parallel fifths
    ([60, 62], [48, 50], 0, 1),  # C4/C3 -> D4/D3: parallel octaves
    ([72, 74], [53, 55], 1, 0),  # a twelfth to a twelfth
    ([60, 62], [53, 43], 0, 0),  # fifth -> twelfth in contrary motion (music21: antiparallel, counted)
    ([60, 62], [53, 53], 0, 0),  # oblique motion
    ([60, 62], [60, 74], 0, 1),  # unison -> octave in similar motion (music21: not counted)
    ([60, 62], [53, 69], 1, 0),  # the voices cross: F3 -> A4 under/over C4 -> D4, a fifth both times
    ([60, 62], [55, 57], 0, 0),  # parallel fourths
    ([60, 61], [53, 54], 1, 0),  # chromatic: C4/F3 -> C#4/F#3
])
def test_parallel_motion_by_hand(upper, lower, fifths, octaves):
    x = voices([(0, 4, upper[0]), (4, 8, upper[1])], [(0, 4, lower[0]), (4, 8, lower[1])])
    assert parallel_motion(x, GRID) == (fifths / GRID.bars, octaves / GRID.bars)


def test_parallel_motion_moments():
    # a rest of both voices between the two fifths is passed over; per bar over N phrases
    x = voices([(0, 4, 60), (8, 12, 62)], [(0, 4, 53), (8, 12, 55)])
    assert parallel_motion(np.concatenate([x, x, np.full_like(x, -1.0)]), GRID) == (2 / 6, 0.0)
    # a moment needs both voices sounding: the upper voice's D4 under a rest of the lower is none
    x = voices([(0, 4, 60), (4, 8, 62), (8, 12, 64)], [(0, 4, 53), (8, 12, 57)])
    assert parallel_motion(x, GRID) == (1 / 2, 0.0)  # C/F -> E/A
    # each track's highest sounding pitch; a held lower note with a moving upper is oblique
    x = voices([(0, 4, 60), (0, 4, 64), (4, 8, 62), (4, 8, 67)], [(0, 8, 53)])
    assert parallel_motion(x, GRID) == (0.0, 0.0)
    x = voices([(0, 4, 60), (0, 4, 55), (4, 8, 62), (4, 8, 50)], [(0, 4, 53), (4, 8, 55)])
    assert parallel_motion(x, GRID) == (1 / 2, 0.0)  # tops C4 -> D4 over F3 -> G3
    # four voices, all moving up a tone: every pair counts
    x = voices([(0, 4, 72), (4, 8, 74)], [(0, 4, 65), (4, 8, 67)], [(0, 4, 60), (4, 8, 62)],
               [(0, 4, 53), (4, 8, 55)])
    assert parallel_motion(x, GRID) == (3 / 2, 2 / 2)  # fifths S/A, T/B, S/B (19); octaves S/T, A/B


def _random_voices(rng: np.random.Generator, n_voices: int, steps: int) -> list[list[tuple[int, int, int]]]:
    """Gapless white-key voices (every voice sounds from step 0 to the end), random walks over
    overlapping ranges (so the voices cross and meet), steps of up to a third, an octave added to
    one in five (so a unison can move to an octave), notes of 1-4 steps."""
    out = []
    for k in range(n_voices):
        i = int(rng.integers(12, 22)) - 3 * k
        line, t = [], 0
        while t < steps:
            d = int(rng.integers(1, 5))
            move = int(rng.integers(-2, 3)) + (int(rng.choice([-7, 7])) if rng.random() < 0.2 else 0)
            i = int(np.clip(i + move, 0, len(WHITE) - 1))
            line.append((t, min(t + d, steps), WHITE[i]))
            t += d
        out.append(line)
    return out


def _music21_parallels(lines: list[list[tuple[int, int, int]]], spq: int) -> tuple[int, int, int]:
    """(fifths, unisons or octaves, unison <-> octave) of music21's VoiceLeadingQuartets at its own
    verticalities (a timespan tree of the parts), in similar motion."""
    from music21 import note, stream

    score = stream.Score()
    for line in lines:
        part = stream.Part()
        for s, e, m in line:
            n = note.Note(midi=m)
            n.quarterLength = (e - s) / spq
            part.insert(s / spq, n)
        score.insert(0, part)
    fifths = octaves = mixed = 0
    for vertical in score.asTimespans(classList=(note.Note,)).iterateVerticalities():
        for q in vertical.getAllVoiceLeadingQuartets():
            if not q.similarMotion():
                continue
            fifths += q.parallelFifth()
            octaves += q.parallelUnisonOrOctave()
            names = {v.semiSimpleName for v in q.vIntervals}
            mixed += names == {"P1", "P8"}
    return fifths, octaves, mixed


def test_parallel_motion_against_music21():
    """On gapless white-key voices (every interval spelled as its semitones say), the counts equal
    music21's parallelFifth() / parallelUnisonOrOctave() in similar motion, plus the unison <->
    octave moves music21 does not count."""
    pytest.importorskip("music21")
    rng = np.random.default_rng(3)
    totals = np.zeros(3, int)
    for trial in range(40):
        lines = _random_voices(rng, 2 if trial % 2 else 4, GRID.steps)
        fifths, octaves, mixed = _music21_parallels(lines, GRID.steps_per_quarter)
        got = parallel_motion(voices(*lines), GRID)
        assert got == (fifths / GRID.bars, (octaves + mixed) / GRID.bars)
        totals += (fifths, octaves, mixed)
    assert totals[0] >= 5 and totals[1] >= 5 and totals[2] >= 1  # not vacuous


# ---------------------------------------------------------------------------------- the report


def test_music_report_on_a_chord_progression():
    # I - V in C major, SATB in range, no parallels: E/C/G/C -> D/B/G/G
    x = roll(chord([76, 67, 60, 48], 0, 16) + chord([74, 67, 59, 43], 16, 32))
    r = music_report(x, x, GRID)
    assert r == {"empty_bars": 0.0, "used_pitch_classes": 1.0, "qualified_notes": 1.0,
                 "tonal_distance": pytest.approx(tonal_distance(x, GRID)),
                 "pitch_class_distance": pytest.approx(0.0),
                 "polyphony": 4.0, "range_violations": 0.0, "in_key": 1.0, "parallel_fifths": 0.0,
                 "parallel_octaves": 0.0}
    assert math.isnan(music_report(x, x, GRID, ranges=None)["range_violations"])
    with pytest.raises(GanforgeError, match="grid"):
        music_report(x[:, :, :16], x, GRID)
    with pytest.raises(GanforgeError, match="reference"):
        music_report(x, np.full_like(x, -1.0), GRID)


def test_music_report_is_fast():
    """1,000 raw phrases (4, 64, 48) in well under 10 s on one thread (about 0.3 s)."""
    grid = RollGrid()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (1000, 4, grid.steps, grid.pitches)).astype(np.float32)
    start = time.perf_counter()
    report = music_report(x, x[:50], grid)
    assert time.perf_counter() - start < 10
    assert set(report) == set(MUSIC_METRICS) and all(isinstance(v, float) for v in report.values())
