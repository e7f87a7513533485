"""The music algorithms through the shared Trainer: MuseGAN and the recurrent GAN as
``pianoroll-gan``, the LSTM language model as ``pianoroll-lm``; bit-identical resume, a loaded run
that writes MIDI on its own grid without data, one-line errors, and learning checks (the GAN's
in-key share rises; the language model's likelihood beats uniform guessing).

The data are synthetic four-voice phrases in C major (quarter notes on a random walk over the
scale, each voice in its SATB range), so neither music21 nor the corpus is needed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.config import ExperimentConfig
from ganforge.data.digits import digits
from ganforge.data.kinds import get_kind
from ganforge.data.music import PianoRollDataset, read_midi_rolls
from ganforge.data.pianoroll import Note, RollGrid, notes_to_roll, roll_to_notes
from ganforge.errors import GanforgeError
from ganforge.metrics.music import in_key, pitch_class_distance, pitch_class_histogram
from ganforge.train import Experiment, Trainer, load_run
from ganforge.train.algorithms.base import ComposesMusic, LatentSpace, has
from tests.train._image_to_image import assert_same_networks, resumed_checkpoints, tiny_config

GRID = RollGrid(bars=2, beats_per_bar=4, steps_per_quarter=2, lowest_pitch=40, pitches=36)
C_MAJOR = (0, 2, 4, 5, 7, 9, 11)
RANGES = ((60, 74), (55, 69), (48, 64), (41, 57))
MUSEGAN = {
    "seed": 5,
    "algorithm": {"name": "pianoroll-gan", "loss": {"name": "wgan-gp", "gp_weight": 10}},
    "data": {"name": "bach-chorales", "bars": 2, "steps_per_quarter": 2},
    "model": {"name": "musegan", "bars": 2, "part_dim": 4, "g_width": 16, "d_width": 8},
    "optim": {"G": {"lr": 1e-3, "betas": [0.5, 0.9]}, "D": {"lr": 1e-3, "betas": [0.5, 0.9]}},
    "train": {"steps": 4, "batch_size": 8, "log_every": 1, "sample_every": 2, "checkpoint_every": 2,
              "num_fixed_samples": 4, "ema_decay": 0.9},
}
CRNNGAN = {**MUSEGAN, "algorithm": {"name": "pianoroll-gan"},
           "model": {"name": "crnngan", "noise_dim": 4, "g_hidden": 8, "d_hidden": 8, "layers": 1}}
LSTM = {**MUSEGAN, "algorithm": {"name": "pianoroll-lm"},
        "model": {"name": "roll-lstm", "embed": 4, "hidden": 16, "layers": 1},
        "optim": {"G": {"lr": 1e-2}}}


def c_major_phrases(n: int, seed: int = 0) -> PianoRollDataset:
    """``n`` phrases of four voices walking over C major in quarter notes."""
    rng = np.random.default_rng(seed)
    scale = np.array([p for p in range(GRID.lowest_pitch, GRID.highest_pitch + 1) if p % 12 in C_MAJOR])
    rolls = []
    for _ in range(n):
        notes = []
        for voice, (low, high) in enumerate(RANGES):
            choices = np.flatnonzero((scale >= low) & (scale <= high))
            i = int(rng.choice(choices))
            for start in range(0, GRID.steps, GRID.steps_per_quarter):
                notes.append(Note(voice, start, start + GRID.steps_per_quarter, int(scale[i])))
                i = int(np.clip(i + rng.integers(-1, 2), choices[0], choices[-1]))
        rolls.append(notes_to_roll(notes, 4, GRID.steps, GRID.lowest_pitch, GRID.pitches))
    return PianoRollDataset(torch.from_numpy(np.stack(rolls)), name="c-major", grid=GRID,
                            track_names=("soprano", "alto", "tenor", "bass"), pieces=("walk",),
                            phrase_piece=np.zeros(n, np.int64), skipped={})


@pytest.fixture(scope="module")
def phrases() -> PianoRollDataset:
    return c_major_phrases(64)


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def _cfg(base: dict, **changes) -> ExperimentConfig:
    return tiny_config(base, **changes)


@pytest.mark.parametrize("base", [MUSEGAN, CRNNGAN, LSTM], ids=["musegan", "crnngan", "lstm"])
def test_a_loaded_run_writes_midi_on_its_grid_without_data(tmp_path, phrases, base) -> None:
    Trainer(_cfg(base), tmp_path / "run", progress=False, dataset=phrases).fit()
    run = load_run(tmp_path / "run")
    algorithm = run.algorithm
    assert has(run, ComposesMusic) and algorithm.kind.name == "pianoroll"
    assert algorithm.grid == GRID and algorithm.track_names == ("soprano", "alto", "tenor", "bass")
    samples = run.draw(3, seed=2)
    assert samples.x.shape == (3, 4, GRID.steps, GRID.pitches)
    torch.testing.assert_close(samples.x, run.draw(3, seed=2).x)
    path = algorithm.kind.writer("out.mid").write(samples, tmp_path / "out.mid")
    written = read_midi_rolls(path, GRID, 4)
    decoded = [roll_to_notes(r, GRID.lowest_pitch) for r in samples.x.numpy()]
    assert [roll_to_notes(r, GRID.lowest_pitch) for r in written] == decoded
    assert (tmp_path / "run" / "samples").is_dir()
    assert isinstance(algorithm, LatentSpace) == (base is not LSTM)


@pytest.mark.parametrize("base, nets", [(MUSEGAN, ("G", "D")), (LSTM, ("G",))], ids=["musegan", "lstm"])
def test_resume_is_bit_identical(tmp_path, phrases, base, nets) -> None:
    full, split = resumed_checkpoints(lambda **c: _cfg(base, **c), tmp_path, phrases, 2)
    assert_same_networks(full, split, nets)


def test_the_language_model_logs_its_likelihood(tmp_path, phrases) -> None:
    Trainer(_cfg(LSTM), tmp_path / "run", progress=False, dataset=phrases).fit()
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0]
    assert "nll" in header and "accuracy" in header and "loss_D" not in header


def test_mismatches_are_one_line_errors(phrases) -> None:
    images = digits(size=8)
    with pytest.raises(GanforgeError, match="piano-roll phrases"):
        Experiment(_cfg(MUSEGAN), "cpu", dataset=images)
    with pytest.raises(GanforgeError, match="not a language model over piano rolls"):
        Experiment(ExperimentConfig.from_dict({**LSTM, "model": MUSEGAN["model"]}), "cpu", dataset=phrases)
    with pytest.raises(GanforgeError, match="bars"):
        Experiment(_cfg(MUSEGAN, model={"bars": 3}), "cpu", dataset=phrases)


def test_the_writers_refuse_an_image_suffix(tmp_path, phrases) -> None:
    with pytest.raises(GanforgeError, match=r"\.mid"):
        get_kind("pianoroll").writer(tmp_path / "x.gif")


# ---------------------------------------------------------------------- learning checks
def test_musegan_learns_to_stay_in_key(tmp_path, phrases) -> None:
    cfg = _cfg(MUSEGAN, model={"part_dim": 8, "g_width": 32, "d_width": 16}, phases={"D": {"repeat": 5}},
               optim={"G": {"lr": 5e-4}, "D": {"lr": 5e-4}},
               train={"steps": 400, "sample_every": 10**6, "checkpoint_every": 10**6, "log_every": 100})
    trainer = Trainer(cfg, tmp_path / "run", progress=False, dataset=phrases)
    algorithm, reference = trainer.algorithm, phrases.x.numpy()

    def scores() -> tuple[float, float]:
        x = algorithm.sample_rolls(200, torch.Generator().manual_seed(0)).numpy()
        return in_key(x, GRID), pitch_class_distance(x, pitch_class_histogram(reference, GRID), GRID)

    key_before, distance_before = scores()
    trainer.fit()
    key_after, distance_after = scores()
    assert in_key(reference, GRID) > 0.95  # a phrase's best key may be G major, say
    # untrained, G starts silent (no notes: no key, distance 1 per phrase)
    assert key_after > 0.9 and not key_before > 0.9, (key_before, key_after)
    assert distance_after < 0.5 * distance_before, (distance_before, distance_after)


def test_the_language_model_beats_uniform_guessing(tmp_path, phrases) -> None:
    cfg = _cfg(LSTM, train={"steps": 300, "sample_every": 10**6, "checkpoint_every": 10**6, "log_every": 50})
    Trainer(cfg, tmp_path / "run", progress=False, dataset=phrases).fit()
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    column = rows[0].split(",").index("nll")
    last = float(rows[-1].split(",")[column])
    assert last < 0.35 * np.log(2 * GRID.pitches + 1)  # uniform guessing: log(2P + 1) nats
    run = load_run(tmp_path / "run")
    assert in_key(run.algorithm.sample_rolls(100, torch.Generator().manual_seed(0)).numpy(), GRID) > 0.9
