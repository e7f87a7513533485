"""The pianoroll data kind (grids, the .mid/.png/.wav/.npz writers, reading MIDI back) and the music
datasets (scores to grid notes, transposition, phrases, the split by piece, the cache, bad input)."""

from __future__ import annotations

import shutil
import sys
import time
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import build_dataset, datasets_of_kind, music
from ganforge.data.kinds import get_kind
from ganforge.data.music import (
    SATB,
    PianoRollDataset,
    grid_array,
    grid_from_array,
    grid_of,
    phrase_notes,
    read_midi_rolls,
    write_midi,
)
from ganforge.data.pianoroll import HOLD, ONSET, REST, Note, RollGrid, notes_to_roll, roll_to_notes
from ganforge.data.writers import Samples
from ganforge.errors import GanforgeError

#: I IV V I in A major, one whole note a bar: (soprano, alto, tenor, bass)
A_MAJOR = [(73, 64, 57, 45), (74, 62, 57, 50), (71, 64, 56, 52), (69, 64, 57, 45)]


def _one_line(err: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(err.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


def _score(chords: list[tuple[int, ...]], beats: int = 4, key_sharps: int | None = None,
           pattern: list[Fraction] | None = None):
    """A music21 Score, one part per voice of ``chords`` (one bar per chord), each bar filled by
    notes of the lengths ``pattern`` (default one note a bar) on the chord's pitch."""
    pytest.importorskip("music21")
    from music21 import key, meter, note, stream

    pattern = pattern or [Fraction(beats)]
    score = stream.Score()
    for voice in range(len(chords[0])):
        part = stream.Part()
        part.partName = SATB[voice] if len(chords[0]) == 4 else f"voice {voice}"
        for b, chord in enumerate(chords):
            measure = stream.Measure(number=b + 1)
            if b == 0:
                measure.insert(0, meter.TimeSignature(f"{beats}/4"))
                if key_sharps is not None:
                    measure.insert(0, key.KeySignature(key_sharps))
            for length in pattern:
                measure.append(note.Note(chord[voice], quarterLength=length))
            part.append(measure)
        score.insert(0, part)
    return score


def _write(score, path: Path) -> Path:
    score.write("musicxml", fp=path)
    return path


def _notes_score(notes: list[Note], steps_per_quarter: int):
    """The grid notes as a music21 Score (for key analysis)."""
    from music21 import note, stream

    score = stream.Score()
    for k in sorted({n.track for n in notes}):
        part = stream.Part()
        for n in notes:
            if n.track == k:
                part.insert(Fraction(n.start, steps_per_quarter),
                            note.Note(n.pitch, quarterLength=Fraction(n.end - n.start, steps_per_quarter)))
        score.insert(0, part)
    return score


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch) -> Path:
    """Note caches of this test under its own folder."""
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "music"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Five four-part pieces of 8 bars in 4/4 (A, A#, B, C, C# major: the highest reaches MIDI 80)
    and one in 3/4."""
    pytest.importorskip("music21")
    root = tmp_path_factory.mktemp("scores")
    for i in range(5):
        shift = i
        chords = [tuple(p + shift for p in c) for c in A_MAJOR * 2]
        _write(_score(chords, key_sharps=3), root / f"piece{i}.musicxml")
    (root / "sub").mkdir()
    _write(_score(A_MAJOR * 2, beats=3, pattern=[Fraction(3)]), root / "sub" / "waltz.xml")
    return root


@pytest.fixture(scope="module")
def bach() -> PianoRollDataset:
    """bach-chorales with defaults (the full corpus, cached under the user's cache folder)."""
    pytest.importorskip("music21")
    return music.bach_chorales()


@pytest.fixture(scope="module")
def bach_test() -> PianoRollDataset:
    pytest.importorskip("music21")
    return music.bach_chorales(split="test")


def _random_rolls(n: int = 3, grid: RollGrid | None = None, tracks: int = 4, seed: int = 0) -> np.ndarray:
    """Rolls of random notes (some repeated at once, some held long)."""
    grid = grid or RollGrid()
    rng = np.random.default_rng(seed)
    rolls = []
    for _ in range(n):
        notes = []
        for k in range(tracks):
            t = 0
            while t < grid.steps:
                length = int(rng.integers(1, 9))
                if rng.random() < 0.8:
                    notes.append(Note(k, t, min(t + length, grid.steps),
                                      int(rng.integers(grid.lowest_pitch, grid.highest_pitch + 1))))
                t += length
        rolls.append(notes_to_roll(notes, tracks, grid.steps, grid.lowest_pitch, grid.pitches))
    return np.stack(rolls)


# ---------------------------------------------------------------------- grids and rolls
def test_grid_array_round_trips_and_bad_grids_are_one_line():
    grid = RollGrid(bars=2, beats_per_bar=3, steps_per_quarter=6, lowest_pitch=40, pitches=30)
    assert grid_array(grid).tolist() == [2, 3, 6, 40, 30]
    assert grid_from_array(grid_array(grid)) == grid
    assert grid_from_array(torch.tensor([4, 4, 4, 36, 48])) == RollGrid()
    for bad in ([4, 4, 4, 36], [0, 4, 4, 36, 48], [4, 4, 4, 100, 48], [4, 4, 4.5, 36, 48]):
        with pytest.raises(GanforgeError) as err:
            grid_from_array(np.array(bad))
        _one_line(err, "grid")


def test_grid_of_samples_reads_the_array_or_fits_the_default():
    x = torch.zeros(2, 3, 32, 20)
    assert grid_of(Samples(x)) == RollGrid(bars=2, pitches=20)
    grid = RollGrid(bars=1, steps_per_quarter=8, pitches=20)
    assert grid_of(Samples(x, arrays={"grid": grid_array(grid)})) == grid
    with pytest.raises(GanforgeError) as err:
        grid_of(Samples(x, arrays={"grid": grid_array(RollGrid())}))
    _one_line(err, "64 steps", "32")
    with pytest.raises(GanforgeError) as err:
        grid_of(Samples(torch.zeros(2, 3, 30, 20)))
    _one_line(err, "30 steps")


def test_hand_made_rolls_keep_repeated_notes_holds_and_a_note_crossing_the_phrase_start():
    grid = RollGrid(bars=1)
    notes = [Note(0, 0, 2, 60), Note(0, 2, 4, 60), Note(0, 4, 16, 60),  # repeated, then held
             Note(1, 3, 9, 50), Note(1, 3, 9, 55)]  # a chord in one track
    roll = notes_to_roll(notes, 2, grid.steps, grid.lowest_pitch, grid.pitches)
    assert roll[0, [0, 2, 4], 24].tolist() == [ONSET] * 3 and roll[0, 5:, 24].tolist() == [HOLD] * 11
    assert roll_to_notes(roll, grid.lowest_pitch) == sorted(notes, key=lambda n: (n.start, n.track, n.pitch))
    # seen from a phrase of steps 16..32: a note of steps 10..30 starts at 0 as an onset, one of
    # 30..40 is cut at the phrase's end, one of 2..8 is not in it
    piece = np.array([[0, 10, 30, 60], [0, 30, 40, 62], [1, 2, 8, 48]], np.int32)
    inside = phrase_notes(piece, 16, grid.steps)
    assert inside.tolist() == [[0, 0, 14, 60], [0, 14, 16, 62]]
    roll = notes_to_roll([Note(*map(int, n)) for n in inside], 2, grid.steps, grid.lowest_pitch, grid.pitches)
    assert roll[0, 0, 24] == ONSET and roll[0, 14, 24] == REST and roll[0, 15, 26] == HOLD
    assert roll_to_notes(roll, grid.lowest_pitch) == [Note(0, 0, 14, 60), Note(0, 14, 16, 62)]


def test_a_triplet_is_rounded_to_the_grid():
    pytest.importorskip("music21")
    third = Fraction(1, 3)
    chords = [(72, 67, 64, 48)]
    score = _score(chords, pattern=[third, third, third, Fraction(3)])
    notes, bars = music.piece_notes(score, RollGrid(bars=1), 4)
    soprano = [(n.start, n.end) for n in notes if n.track == 0]
    assert soprano == [(0, 1), (1, 3), (3, 4), (4, 16)]  # 0, 4/3, 8/3 rounded; every note kept
    assert bars == [0]
    notes12, _ = music.piece_notes(_score(chords, pattern=[third, third, third, Fraction(3)]),
                                   RollGrid(bars=1, steps_per_quarter=12), 4)
    assert [(n.start, n.end) for n in notes12 if n.track == 0] == [(0, 4), (4, 8), (8, 12), (12, 48)]


def test_a_pickup_and_a_bar_split_at_a_repeat_start_no_extra_bars():
    pytest.importorskip("music21")
    from music21 import note, stream

    part = stream.Part()
    for number, length in [(0, 1), (1, 4), (2, 3), (2, 1), (3, 4), (4, 3)]:
        measure = stream.Measure(number=number)
        measure.append(note.Note(60, quarterLength=length))
        part.append(measure)
    assert music.bar_starts(part, RollGrid()) == [4, 20, 36]
    assert music.longest_run([4, 20, 36], 16) == 3 and music.longest_run([0, 16, 40], 16) == 2


# ---------------------------------------------------------------------- Bach and the round trip
def test_bach_chorales_hold_phrases_of_four_voices(bach, bach_test):
    assert isinstance(bach, PianoRollDataset) and bach.kind == "pianoroll"
    assert bach.track_names == SATB and bach.grid == RollGrid() and bach.y is None
    assert bach.x.dtype == torch.float32 and bach.x.shape[1:] == (4, 64, 48)
    assert bool(((bach.x == -1) | (bach.x == 0) | (bach.x == 1)).all()) and bool((bach.x == 1).any())
    assert bach.extractor is None and bach.fields == ("x",)
    assert len(bach.phrase_piece) == len(bach) and bach.phrase_piece.max() < len(bach.pieces)
    assert bach.skipped["parts"] > 0 and bach.skipped["time signature"] > 0  # 5-part and 3/4 chorales
    assert len(bach) > 2000 and 50 < len(bach_test) < len(bach) / 10
    assert not set(bach.pieces) & set(bach_test.pieces)
    assert len(bach_test.pieces) == max(1, round(0.1 * (len(bach.pieces) + len(bach_test.pieces))))
    assert {"bach-chorales", "music-folder"} <= set(datasets_of_kind("pianoroll"))


def test_the_split_is_by_piece_and_reproducible_by_seed(bach, bach_test):
    again = music.bach_chorales(split="test")  # from the cache
    assert again.pieces == bach_test.pieces and torch.equal(again.x, bach_test.x)
    other = music.bach_chorales(split="test", seed=1)
    assert other.pieces != bach_test.pieces
    train, test = music.split_pieces(20, 0.1, 3)
    assert sorted([*train, *test]) == list(range(20)) and len(test) == 2
    assert music.split_pieces(20, 0.1, 3)[1].tolist() == test.tolist()
    assert len(music.split_pieces(5, 0.01, 0)[1]) == 1  # at least one test piece
    assert len(music.split_pieces(3, 0.9, 0)[0]) == 1  # and at least one training piece


def test_a_chorale_survives_grid_rolls_midi_and_back(tmp_path):
    pytest.importorskip("music21")
    path = dict((name, p) for p, name in music.bach_files())["bwv10.7"]
    grid = RollGrid()
    piece = music.read_piece(path, "bwv10.7", grid, 4, to_c=False)
    score = music.parse_score(path).stripTies()
    assert len(piece.notes) == sum(len(n.pitches) for part in score.parts for n in part.flatten().notes)
    starts = music.window_starts(piece.bars, grid, grid.bars)
    expected = [[Note(*map(int, n)) for n in phrase_notes(piece.notes, s, grid.steps)] for s in starts]
    rolls = np.stack([notes_to_roll(p, 4, grid.steps, grid.lowest_pitch, grid.pitches) for p in expected])
    write_midi(Samples(torch.from_numpy(rolls), arrays={"grid": grid_array(grid)}), tmp_path / "c.mid")
    back = read_midi_rolls(tmp_path / "c.mid", grid, 4)
    assert back.shape == rolls.shape
    for i, notes in enumerate(expected):
        assert roll_to_notes(back[i], grid.lowest_pitch) == sorted(notes, key=lambda n: (n.start, n.track,
                                                                                          n.pitch)), i


# ---------------------------------------------------------------------- folders, keys, augmentation
def test_a_folder_skips_and_counts_a_three_four_piece(folder, tmp_cache, capsys):
    ds = build_dataset({"name": "music-folder", "path": str(folder), "bars": 2, "test_fraction": 0.2})
    assert ds.skipped == {"time signature": 1}
    assert "skipped 1 of 6 pieces (1 time signature)" in capsys.readouterr().out
    assert len(ds.pieces) == 4 and ds.track_names == SATB
    assert len(ds) == 4 * 7  # 8 full bars: windows of 2 at every bar line
    test = music.music_folder(str(folder), split="test", bars=2, test_fraction=0.2)
    assert len(test.pieces) == 1 and len(test) == 4 and not set(test.pieces) & set(ds.pieces)


def test_transposition_to_c_moves_an_a_major_piece_to_c_major(folder):
    pytest.importorskip("music21")
    grid = RollGrid(bars=2)
    path = folder / "piece0.musicxml"  # A major
    original = music.parse_score(path)
    assert str(original.analyze("key")) == "A major" and music.key_shift(original) == 3
    plain = music.read_piece(path, "p", grid, 4, to_c=False)
    moved = music.read_piece(path, "p", grid, 4, to_c=True)
    assert np.array_equal(moved.notes[:, 3], plain.notes[:, 3] + 3)
    assert str(_notes_score(moved.note_list(), grid.steps_per_quarter).analyze("key")) == "C major"


def test_augment_adds_every_transposition_that_fits_to_train_only(folder, tmp_cache):
    kw = {"bars": 2, "test_fraction": 0.2}
    plain = music.music_folder(str(folder), transpose="none", **kw)
    aug = music.music_folder(str(folder), transpose="augment", **kw)
    grid = plain.grid
    expected = 0
    for roll in plain.x.numpy():
        pitches = [n.pitch for n in roll_to_notes(roll, grid.lowest_pitch)]
        expected += sum(grid.lowest_pitch <= min(pitches) + d and max(pitches) + d <= grid.highest_pitch
                        for d in range(-5, 7))
    assert len(aug) == expected and expected < 12 * len(plain)  # some shifts leave the range
    assert aug.phrase_piece.tolist() == sorted(aug.phrase_piece.tolist())
    rows = {r.tobytes() for r in aug.x.numpy()}
    assert all(r.tobytes() in rows for r in plain.x.numpy())  # shift 0 is kept
    test_aug = music.music_folder(str(folder), split="test", transpose="augment", **kw)
    test_plain = music.music_folder(str(folder), split="test", transpose="none", **kw)
    assert torch.equal(test_aug.x, test_plain.x)


def test_the_cache_gives_identical_arrays_faster(folder, tmp_cache):
    kw = {"bars": 2, "test_fraction": 0.2, "seed": 2}
    start = time.perf_counter()
    first = music.music_folder(str(folder), **kw)
    parsed = time.perf_counter() - start
    assert len(list(tmp_cache.glob("notes-*.npz"))) == 1
    start = time.perf_counter()
    second = music.music_folder(str(folder), **kw)
    cached = time.perf_counter() - start
    assert torch.equal(first.x, second.x) and first.pieces == second.pieces
    assert np.array_equal(first.phrase_piece, second.phrase_piece) and first.skipped == second.skipped
    assert cached < parsed / 2, (parsed, cached)
    (next(tmp_cache.glob("notes-*.npz"))).write_bytes(b"damaged")
    assert torch.equal(music.music_folder(str(folder), **kw).x, first.x)  # rebuilt


# ---------------------------------------------------------------------- the kind's writers
def _check_midi_layout(path: Path, names: tuple[str, ...]) -> None:
    """Each track of the file is a named part on its own channel, played by the church organ
    (General MIDI program 19), at 100 quarter notes a minute."""
    from music21 import midi

    mf = midi.MidiFile()
    mf.open(str(path))
    mf.read()
    mf.close()
    events = [e for t in mf.tracks for e in t.events if not isinstance(e, midi.DeltaTime)]
    programs = {(e.channel, e.data) for e in events if e.type == midi.ChannelVoiceMessages.PROGRAM_CHANGE}
    assert programs == {(c, music.ORGAN) for c in music.TRACK_CHANNELS[:len(names)]}
    tempo = [e for e in events if e.type == midi.MetaEvents.SET_TEMPO]
    assert midi.getNumber(tempo[0].data, 3)[0] == 60_000_000 // music.TEMPO_QPM
    named = [e.data for e in events if e.type == midi.MetaEvents.SEQUENCE_TRACK_NAME]
    assert [n.decode() if isinstance(n, bytes) else n for n in named] == list(names)


def test_every_writer_writes_a_readable_file(tmp_path):
    pytest.importorskip("music21")
    grid = RollGrid(bars=2)
    rolls = _random_rolls(3, grid)
    arrays = {"grid": grid_array(grid), "track_names": np.array(SATB)}
    samples = Samples(torch.from_numpy(rolls), arrays=arrays, title="three phrases")
    kind = get_kind("pianoroll")
    assert set(kind.writers) == {".mid", ".png", ".wav", ".npz"} and kind.shape is None
    kind.writer("s.mid").write(samples, tmp_path / "s.mid")
    assert np.array_equal(read_midi_rolls(tmp_path / "s.mid", grid, 4), rolls)
    _check_midi_layout(tmp_path / "s.mid", SATB)
    kind.preview(samples, tmp_path / "s.png")
    with Image.open(tmp_path / "s.png") as image:
        assert image.format == "PNG" and image.size[0] > 200
    with np.load(kind.writer("s.npz").write(samples, tmp_path / "s.npz")) as f:
        assert np.array_equal(f["x"], rolls) and f["grid"].tolist() == grid_array(grid).tolist()
        assert tuple(f["track_names"]) == SATB
    if shutil.which("fluidsynth") is None or music.soundfont() is None:
        pytest.skip("fluidsynth or a General MIDI soundfont is not installed")
    kind.writer("s.wav").write(samples, tmp_path / "s.wav")
    assert (tmp_path / "s.wav").read_bytes()[:4] == b"RIFF"
    with wave.open(str(tmp_path / "s.wav")) as w:
        assert w.getframerate() == music.WAV_RATE
        frames = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    assert np.abs(frames).max() > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.mid", "s.npz", "s.png", "s.wav"]


def test_a_generators_raw_output_is_read_by_the_thresholds(tmp_path):
    pytest.importorskip("music21")
    grid = RollGrid(bars=1)
    raw = np.full((1, 1, grid.steps, grid.pitches), -0.9, np.float32)
    raw[0, 0, 0:4, 10] = [0.7, 0.1, -0.2, 0.8]  # an onset, two holds, a new onset
    write_midi(Samples(torch.from_numpy(raw), arrays={"grid": grid_array(grid)}), tmp_path / "r.mid")
    back = read_midi_rolls(tmp_path / "r.mid", grid, 1)
    assert roll_to_notes(back[0], grid.lowest_pitch) == [Note(0, 0, 3, 46), Note(0, 3, 4, 46)]
    silent = np.full((3, 2, grid.steps, grid.pitches), -1.0, np.float32)  # an untrained generator's
    silent[1, 1, 5, 0] = 1.0  # one note in the middle phrase
    write_midi(Samples(torch.from_numpy(silent), arrays={"grid": grid_array(grid)}), tmp_path / "s.mid")
    assert np.array_equal(read_midi_rolls(tmp_path / "s.mid", grid, 2), silent)  # silent phrases count
    write_midi(Samples(torch.from_numpy(silent[[0]]), arrays={"grid": grid_array(grid)}), tmp_path / "0.mid")
    assert read_midi_rolls(tmp_path / "0.mid", grid, 2).shape == (1, 2, grid.steps, grid.pitches)


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("option", "fragment"), [
    ({"bars": 0}, "data.bars=0"), ({"steps_per_quarter": 13}, "data.steps_per_quarter=13"),
    ({"transpose": "up"}, "data.transpose='up'"), ({"test_fraction": 1.0}, "data.test_fraction=1.0"),
    ({"hop": 0}, "data.hop=0"), ({"split": "val"}, "data.split='val'"), ({"seed": -1}, "data.seed=-1")])
def test_bad_options_are_one_line(option, fragment):
    with pytest.raises(GanforgeError) as err:
        music.bach_chorales(**option)
    _one_line(err, fragment)


def test_a_corrupt_score_is_skipped_and_a_folder_of_them_is_an_error(folder, tmp_path, tmp_cache, capsys):
    mixed = tmp_path / "mixed"
    shutil.copytree(folder, mixed)
    (mixed / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06not midi at all")
    ds = music.music_folder(str(mixed), bars=2, test_fraction=0.2)
    assert ds.skipped == {"time signature": 1, "unreadable": 1}
    assert "1 unreadable" in capsys.readouterr().out
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.mid").write_bytes(b"hello")
    (broken / "b.mxl").write_bytes(b"not a zip")
    with pytest.raises(GanforgeError) as err:
        music.music_folder(str(broken))
    _one_line(err, "none of the 2 scores", "2 unreadable")


def test_missing_paths_empty_folders_and_too_many_bars_are_one_line(folder, tmp_path, tmp_cache):
    with pytest.raises(GanforgeError) as err:
        music.music_folder(str(tmp_path / "nowhere"))
    _one_line(err, "does not exist")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanforgeError) as err:
        music.music_folder(str(tmp_path / "empty"))
    _one_line(err, "no scores found")
    with pytest.raises(GanforgeError) as err:
        music.music_folder(str(folder), bars=64)
    _one_line(err, "no piece has 64 full bars", "the longest has 8", "at most 8")


def test_wav_without_fluidsynth_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    samples = Samples(torch.from_numpy(_random_rolls(1)))
    with pytest.raises(GanforgeError) as err:
        get_kind("pianoroll").writer("s.wav").write(samples, tmp_path / "s.wav")
    _one_line(err, "writing .wav needs fluidsynth", "apt-get install fluidsynth")
    assert list(tmp_path.iterdir()) == []


def test_without_music21_reading_and_writing_say_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "music21", None)  # `import music21` now raises ImportError
    with pytest.raises(GanforgeError) as err:
        music.bach_chorales()
    _one_line(err, "reading music needs music21", "pip install 'ganforge[music]'")
    with pytest.raises(GanforgeError) as err:
        music.music_folder(str(tmp_path))
    _one_line(err, "music21")
    with pytest.raises(GanforgeError) as err:
        write_midi(Samples(torch.from_numpy(_random_rolls(1))), tmp_path / "s.mid")
    _one_line(err, "music21")
    assert list(tmp_path.iterdir()) == []
