"""Piano rolls with onsets: the encoding every music module shares.

A phrase is a float32 array (tracks, steps, pitches): track k is one voice (soprano, alto, tenor,
bass for a chorale), step t one cell of the time grid (``steps_per_quarter`` cells a quarter
note: 4 is a sixteenth-note grid), pitch p the MIDI note ``lowest_pitch + p``. A cell holds

    ONSET  =  1   a note of that pitch starts at this step
    HOLD   =  0   the note that sounds at this pitch goes on
    REST   = -1   that pitch is silent

so repeated notes stay separate notes (binary rolls, MuseGAN's, merge them). A generator's
output in [-1, 1] is read by the same thresholds: a cell sounds when its value exceeds -1/2; a
note starts where a cell sounds and either exceeds 1/2 or follows a silent cell, and ends at the
first silent cell or the next onset (:func:`roll_to_notes`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import numpy as np
import torch

ONSET, HOLD, REST = 1.0, 0.0, -1.0
#: the thresholds between REST | HOLD and HOLD | ONSET
SOUNDING, STARTING = -0.5, 0.5


@dataclass(frozen=True)
class RollGrid:
    """The time and pitch grid of phrases: ``bars`` bars of ``beats_per_bar`` quarter notes,
    ``steps_per_quarter`` cells each; ``pitches`` MIDI notes from ``lowest_pitch``."""

    bars: int = 4
    beats_per_bar: int = 4
    steps_per_quarter: int = 4
    lowest_pitch: int = 36
    pitches: int = 48

    @property
    def steps_per_bar(self) -> int:
        return self.beats_per_bar * self.steps_per_quarter

    @property
    def steps(self) -> int:
        return self.bars * self.steps_per_bar

    @property
    def highest_pitch(self) -> int:
        return self.lowest_pitch + self.pitches - 1


class Note(NamedTuple):
    """A note on the grid: ``track``, steps [``start``, ``end``) and its MIDI ``pitch``."""

    track: int
    start: int
    end: int
    pitch: int


def notes_to_roll(
    notes: Iterable[Note], tracks: int, steps: int, lowest_pitch: int, pitches: int
) -> np.ndarray:
    """The roll (tracks, steps, pitches) of ``notes``: ONSET at a note's first step, HOLD after,
    REST elsewhere. A note is cut where a later note of its pitch starts in its track; notes
    outside the grid's steps are clipped, pitches outside it raise ``ValueError``."""
    roll = np.full((tracks, steps, pitches), REST, np.float32)
    for note in sorted(notes, key=lambda n: n.start):
        p = note.pitch - lowest_pitch
        if not 0 <= p < pitches:
            raise ValueError(
                f"pitch {note.pitch} is outside the grid's MIDI {lowest_pitch}..{lowest_pitch + pitches - 1}"
            )
        start, end = max(note.start, 0), min(note.end, steps)
        if start >= end:
            continue
        roll[note.track, start + 1 : end, p] = HOLD
        roll[note.track, start, p] = ONSET
    return roll


Cells = TypeVar("Cells", np.ndarray, torch.Tensor)


def _cells(roll: Any) -> Any:
    """``roll`` as an array: a numpy array or a torch tensor as it is (on its device), else
    ``np.asarray``."""
    return roll if isinstance(roll, np.ndarray | torch.Tensor) else np.asarray(roll)


def sounding(roll: Cells) -> Cells:
    """Which cells sound (value > -1/2), a bool array (or tensor) of the roll's shape."""
    return _cells(roll) > SOUNDING


def onsets(roll: Cells) -> Cells:
    """Which cells start a note: sounding, and above 1/2 or after a silent cell (step axis -2).
    Numpy arrays and torch tensors alike (the training code reads batches on their device)."""
    roll = _cells(roll)
    on = roll > SOUNDING
    start = on & (roll > STARTING)
    start[..., 0, :] |= on[..., 0, :]
    start[..., 1:, :] |= on[..., 1:, :] & ~on[..., :-1, :]
    return start


def roll_to_notes(roll: np.ndarray, lowest_pitch: int) -> list[Note]:
    """The notes of one roll (tracks, steps, pitches), sorted by (start, track, pitch): a note
    starts at each onset cell (:func:`onsets`) and lasts while its cells sound and no new onset
    comes."""
    roll = np.asarray(roll)
    if roll.ndim != 3:
        raise ValueError(f"a roll has shape (tracks, steps, pitches), got {roll.shape}")
    on, start = sounding(roll), onsets(roll)
    steps = roll.shape[1]
    notes = []
    for k, t, p in zip(*np.nonzero(start), strict=True):
        end = t + 1
        while end < steps and on[k, end, p] and not start[k, end, p]:
            end += 1
        notes.append(Note(int(k), int(t), int(end), int(p) + lowest_pitch))
    return sorted(notes, key=lambda n: (n.start, n.track, n.pitch))
