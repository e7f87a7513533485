"""The metrics of music runs in the registry (source ``rolls``, inputs
:class:`~ganforge.metrics.registry.RollInputs`): a run's piano-roll phrases scored by
:func:`ganforge.metrics.music.music_report`, computed once for all of them; ``ganforge evaluate``
scores the held-out phrases the same way beside them (the reference row).

MuseGAN's objective metrics (Dong et al. 2018) are ``empty_bars``, ``used_pitch_classes``,
``qualified_notes`` and ``tonal_distance``; the chorale checks are ``pitch_class_distance`` (to
the training phrases' pitch-class histogram), ``polyphony``, ``range_violations`` (SATB ranges),
``in_key`` (Krumhansl-Schmuckler) and ``parallels`` (fifths and octaves per bar). Only the
distance and the violations have a direction; the rest are read against the real phrases' row.
"""

from __future__ import annotations

from ganforge.metrics.music import music_report
from ganforge.metrics.registry import LOWER, RollInputs, register_report_metrics


def _report(inputs: RollInputs) -> dict[str, float]:
    return music_report(inputs.rolls, inputs.reference, inputs.grid)


register_report_metrics(
    "rolls",
    {"music"},
    _report,
    (
        ("empty_bars", {"empty_bars": None}, "share of (phrase, voice, bar) with no note (MuseGAN's EB)"),
        (
            "used_pitch_classes",
            {"used_pitch_classes": None},
            "distinct pitch classes per non-empty voice bar (MuseGAN's UPC)",
        ),
        ("qualified_notes", {"qualified_notes": None}, "share of notes of at least an eighth (MuseGAN's QN)"),
        (
            "tonal_distance",
            {"tonal_distance": None},
            "mean tonal-centroid distance between voices in a bar (MuseGAN's TD, Harte et al. 2006)",
        ),
        (
            "pitch_class_distance",
            {"pitch_class_distance": LOWER},
            "total variation between each phrase's pitch-class histogram and the training phrases'",
        ),
        ("polyphony", {"polyphony": None}, "sounding pitches per step with any sounding"),
        ("range_violations", {"range_violations": LOWER}, "share of notes outside their voice's SATB range"),
        ("in_key", {"in_key": None}, "share of notes in the phrase's Krumhansl-Schmuckler key"),
        (
            "parallels",
            {"parallel_fifths": None, "parallel_octaves": None},
            "parallel fifths and octaves (or unisons) between voices, per bar",
        ),
    ),
)
