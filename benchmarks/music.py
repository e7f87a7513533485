"""Music on the Bach chorales: MuseGAN and a recurrent GAN against a maximum-likelihood LSTM and the
real held-out chorales, at one CPU-time budget per model, with seeds.

* Data: ``data.name=bach-chorales`` (music21's corpus: the 4-voice chorales in 4/4, transposed to
  C major / A minor, 4-bar phrases on a 16th-note grid of 48 pitches); a seeded split by piece
  (10 % of the chorales held out; their phrases without overlap are the reference row).
* Models (presets): ``MuseGAN`` = ``chorales-musegan`` (WGAN-GP, 5 critic steps), ``C-RNN-GAN`` =
  ``chorales-crnngan``, ``LSTM (MLE)`` = ``chorales-lstm``. Each trains for ``--budget`` CPU
  seconds of one thread (the step count follows from its speed), seeds 0, 1, 2, ``--jobs``
  processes at a time; then draws ``--phrases`` phrases (1,000) from its EMA generator (the LSTM:
  its own weights) with seed 10,000 + seed.
* Scores (:func:`ganforge.metrics.music.music_report`): MuseGAN's EB, UPC, QN, TD; the pitch-class
  histogram distance to the training phrases; polyphony; SATB range violations; the in-key share
  (Krumhansl-Schmuckler); parallel fifths and octaves per bar. Closeness to the real held-out
  phrases is |model - real| per metric.

    python benchmarks/music.py [--quick] [--budget 600] [--seeds 0,1,2] [--jobs 2] [--models MuseGAN,...]

``--models`` reruns some models; the others' runs are kept from ``music.json``.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    RESULTS,
    budget_parser,
    print_checks,
    print_table,
    train_for_budget,
    write_result,
)
from ganforge.data import build_dataset  # noqa: E402
from ganforge.data.kinds import Samples  # noqa: E402
from ganforge.data.pianoroll import onsets, sounding  # noqa: E402
from ganforge.metrics.music import music_report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"
EXAMPLES = ROOT / "docs" / "music"
QUIET = {
    "train.sample_every": 10**9,
    "train.checkpoint_every": 10**9,
    "train.log_every": 50,
    "train.steps": 10**7,
}
PRESETS = {"MuseGAN": "chorales-musegan", "C-RNN-GAN": "chorales-crnngan", "LSTM (MLE)": "chorales-lstm"}
GANS = ("MuseGAN", "C-RNN-GAN")
METRICS = (
    "empty_bars",
    "used_pitch_classes",
    "qualified_notes",
    "tonal_distance",
    "pitch_class_distance",
    "polyphony",
    "range_violations",
    "in_key",
    "parallel_fifths",
    "parallel_octaves",
)
DEFAULT = {"budget": 600.0, "phrases": 1000, "seeds": (0, 1, 2)}
QUICK = {"budget": 15.0, "phrases": 100, "seeds": (0,)}
DATA = {"name": "bach-chorales", "bars": 4, "steps_per_quarter": 4, "transpose": "c"}


def read_cells(rolls: np.ndarray) -> np.ndarray:
    """Raw phrases as the int8 cells their thresholds read (1 onset, 0 hold, -1 rest): what every
    writer makes of them, in a small file."""
    return np.where(onsets(rolls), 1, np.where(sounding(rolls), 0, -1)).astype(np.int8)


def seed0_phrases(label: str, tag: str) -> Path:
    """Where seed 0's phrases of model ``label`` are kept (a ``--quick`` run's apart)."""
    return RESULTS / "music_runs" / f"{label.split()[0]}_seed0{'_' + tag if tag else ''}.npz"


def run_one(job: tuple[str, int, float, int, str]) -> dict[str, Any]:
    """Train model ``label`` with ``seed``; the scores of ``phrases`` of its phrases (seed 0's
    first 16 kept for the figures, under a name with ``tag``)."""
    label, seed, budget, phrases, tag = job
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        trainer, info = train_for_budget(PRESETS[label], {**QUIET, "seed": seed, "train.threads": 1}, budget,
                                         Path(tmp) / "run")
        algorithm = trainer.algorithm
        network = trainer.exp.sampling_network(ema=True)
        start = time.perf_counter()
        rolls = algorithm.sample_rolls(phrases, torch.Generator().manual_seed(10_000 + seed), network)
        reference = build_dataset({**DATA, "split": "train"}).x.numpy()
        report = music_report(rolls.numpy(), reference, algorithm.grid)
        out = {
            "model": label,
            "preset": PRESETS[label],
            "seed": seed,
            **info,
            **report,
            "eval_seconds": time.perf_counter() - start,
        }
        if seed == 0:
            RESULTS.joinpath("music_runs").mkdir(parents=True, exist_ok=True)
            np.savez_compressed(seed0_phrases(label, tag), x=read_cells(rolls[:16].numpy()))
        return out


def references() -> dict[str, Any]:
    """The held-out and the training phrases scored like a model's."""
    train = build_dataset({**DATA, "split": "train"})
    test = build_dataset({**DATA, "split": "test"})
    reference = train.x.numpy()
    return {
        "held-out chorales": {**music_report(test.x.numpy(), reference, test.grid), "phrases": len(test)},
        "training chorales": {**music_report(reference, reference, train.grid), "phrases": len(train)},
        "pieces": {"train": len(train.pieces), "test": len(test.pieces)},
        "skipped": dict(train.skipped),
    }


def _mean_se(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    se = float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else float("nan")
    return {"mean": float(a.mean()), "se": se}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label in PRESETS:
        rows = [r for r in runs if r["model"] == label]
        if rows:
            out[label] = {
                "seeds": [r["seed"] for r in rows],
                "steps": [r["steps"] for r in rows],
                **{m: _mean_se([r[m] for r in rows]) for m in METRICS},
            }
    return out


def checks(summary: dict[str, Any], real: dict[str, float]) -> dict[str, Any]:
    """The issue's targets, for each GAN."""
    out: dict[str, Any] = {}
    for gan in GANS:
        if gan not in summary:
            continue
        s = {m: summary[gan][m]["mean"] for m in METRICS}
        out[f"{gan}: in-key share within 10% of the real chorales'"] = (
            abs(s["in_key"] - real["in_key"]) <= 0.1 * real["in_key"]
        )
        out[f"{gan}: pitch-class distance within 10% of the real chorales'"] = (
            abs(s["pitch_class_distance"] - real["pitch_class_distance"])
            <= 0.1 * real["pitch_class_distance"]
        )
        out[f"{gan}: empty bars < 5%"] = s["empty_bars"] < 0.05
        out[f"{gan}: range violations < 5%"] = s["range_violations"] < 0.05
        writes_notes = bool(np.isfinite(s["polyphony"]))  # a silent model has no parallels to avoid
        for kind in ("parallel_fifths", "parallel_octaves"):
            key = f"{gan}: {kind.replace('_', ' ')} per bar within 2x the real rate"
            out[key] = writes_notes and s[kind] <= 2 * real[kind]
        if "LSTM (MLE)" in summary:
            mle = {m: summary["LSTM (MLE)"][m]["mean"] for m in METRICS}
            closer = sum(abs(s[m] - real[m]) <= abs(mle[m] - real[m]) for m in METRICS)
            key = f"{gan}: as close to the real chorales as the LSTM on a majority ({closer}/{len(METRICS)})"
            out[key] = closer > len(METRICS) / 2
    return out


def small_wav(samples: Samples, path: Path) -> Path:
    """The kind's ``.wav`` of ``samples``, made mono at half the rate (11,025 Hz) so the examples
    committed under docs/ stay small."""
    import wave

    from ganforge.data.kinds import get_kind

    with tempfile.TemporaryDirectory() as tmp:
        full = get_kind("pianoroll").writer("x.wav").write(samples, Path(tmp) / "full.wav")
        with wave.open(str(full)) as w:
            channels, rate = w.getnchannels(), w.getframerate()
            pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, channels)
    mono = pcm.astype(np.float32).mean(axis=1)
    mono = mono[: len(mono) // 2 * 2].reshape(-1, 2).mean(axis=1)  # a 2-tap average, then every other sample
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate // 2)
        w.writeframes(np.clip(mono, -32768, 32767).astype(np.int16).tobytes())
    return path


def figures(tag: str) -> list[str]:
    """Piano rolls of real vs generated phrases; one MIDI and WAV example of each (full run only)."""
    from ganforge.data.kinds import get_kind
    from ganforge.data.music import grid_array

    written = []
    kind = get_kind("pianoroll")
    test = build_dataset({**DATA, "split": "test"})
    suffix = f"-{tag}" if tag else ""
    out_dir = FIGURES if not tag else RESULTS / "music_runs"
    arrays = {"grid": grid_array(test.grid), "track_names": np.array(test.track_names)}
    examples = {"real": torch.from_numpy(test.x.numpy()[:: max(1, len(test) // 4)][:4])}
    for label in PRESETS:
        path = seed0_phrases(label, tag)
        if path.exists():
            examples[label] = torch.from_numpy(read_cells(np.load(path)["x"][:4]).astype(np.float32))
    for label, x in examples.items():
        slug = label.split()[0].lower()
        title = "held-out chorale phrases" if label == "real" else f"{label}, seed 0"
        written.append(str(kind.writer("x.png").write(Samples(x, arrays, title=title),
                                                      out_dir / f"music-{slug}{suffix}.png")))
        if not tag:
            one = Samples(x[:1], arrays)
            written.append(str(kind.writer("x.mid").write(one, EXAMPLES / f"{slug}.mid")))
            try:
                written.append(str(small_wav(one, EXAMPLES / f"{slug}.wav")))
            except Exception as err:  # noqa: BLE001  (no fluidsynth: the MIDI files still count)
                print(f"  {label} .wav: {err}")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = budget_parser(__doc__.splitlines()[0], "15 s per model, 100 phrases, seed 0", list(PRESETS))
    args = parser.parse_args(argv)
    setting = QUICK if args.quick else DEFAULT
    budget = args.budget if args.budget is not None else setting["budget"]
    seeds = tuple(int(s) for s in args.seeds.split(",")) if args.seeds else setting["seeds"]
    models = [m for m in args.models.split(",") if m]
    if unknown := [m for m in models if m not in PRESETS]:
        parser.error(f"unknown model {unknown[0]!r}: choose from {', '.join(PRESETS)}")
    tag = "quick" if args.quick else ""
    start = time.perf_counter()
    build_dataset({**DATA, "split": "train"})  # parse the corpus once, into the cache, before the workers
    jobs = [(label, seed, budget, setting["phrases"], tag) for label in models for seed in seeds]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        refs_future = pool.submit(references)
        runs = list(pool.map(run_one, jobs))
    refs = refs_future.result()
    previous = RESULTS / "music.json"
    if set(models) != set(PRESETS) and not tag and previous.exists():  # rerun some models: keep the others
        kept = [r for r in json.loads(previous.read_text())["runs"] if r["model"] not in models]
        print(f"kept {len(kept)} runs of the other models from {previous.name}")
        runs = kept + runs
    summary = summarise(runs)
    real = refs["held-out chorales"]
    payload: dict[str, Any] = {
        "budget_cpu_seconds": budget,
        "seeds": list(seeds),
        "phrases": setting["phrases"],
        "data": DATA,
        "references": refs,
        "summary": summary,
        "runs": runs,
    }
    payload["checks"] = checks(summary, real)
    payload["figures"] = figures(tag)
    payload["wall_seconds"] = time.perf_counter() - start
    rows = [
        {"phrases": name, **{m: refs[name][m] for m in METRICS}}
        for name in ("held-out chorales", "training chorales")
    ]
    rows += [
        {
            "phrases": label,
            **{m: summary[label][m]["mean"] for m in METRICS},
            "steps": sum(summary[label]["steps"]) / len(summary[label]["steps"]),
        }
        for label in summary
    ]
    print_table(rows, ["phrases", *METRICS, "steps"])
    print_checks(payload["checks"])
    path = write_result(f"music{'_quick' if tag else ''}", payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
