"""``ganforge rare --tail``: Hill tail indices of a statistic on a run's samples and its data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ganforge.cli import main
from ganforge.config import ExperimentConfig
from ganforge.maths.tails import hill_estimator
from ganforge.rare.tails import tail_report
from ganforge.train import load_run
from tests.conftest import one_error_line, train_tiny


def _rare(*args: object) -> int:
    return main(["rare", *map(str, args)])


def _pareto_csv(path: Path, alpha: float = 2.0, n: int = 3000) -> Path:
    rng = np.random.default_rng(0)
    pd.DataFrame({"loss": rng.pareto(alpha, n) + 1.0, "other": rng.normal(size=n)}).to_csv(path, index=False)
    return path


def _run(tmp: Path, prior: str) -> Path:
    csv = _pareto_csv(tmp / "losses.csv")
    cfg = ExperimentConfig.from_dict(
        {
            "seed": 0,
            "data": {"name": "columns", "path": str(csv), "columns": ["loss"], "scale": "median"},
            "model": {
                "name": "mlp",
                "z_dim": 2,
                "g_hidden": [16],
                "d_hidden": [16],
                "prior": prior,
                "prior_df": 2.0,
            },
            "train": {
                "steps": 30,
                "batch_size": 64,
                "log_every": 10,
                "sample_every": 30,
                "checkpoint_every": 30,
            },
        }
    )
    return train_tiny(cfg, tmp / f"run-{prior}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("tails")
    return {prior: _run(tmp, prior) for prior in ("normal", "student-t")}


def test_tail_report_compares_samples_with_the_data(runs):
    from ganforge.data import build_dataset

    run = load_run(runs["normal"])
    data = build_dataset(run.config.data).x
    report = tail_report(run, "value(0)", n=20_000, data=data)
    assert report.alpha_data == pytest.approx(hill_estimator(data[:, 0].numpy()), rel=1e-9)
    assert 1.4 < report.alpha_data < 2.8  # Pareto(2) data
    assert report.k == int(np.sqrt(len(data)))
    summary = report.summary()
    assert summary["ratio"] == pytest.approx(report.alpha_samples / report.alpha_data)


def test_a_student_t_latent_gives_the_generator_a_heavier_tail(runs):
    light = tail_report(load_run(runs["normal"]), "value(0)", n=50_000).alpha_samples
    heavy = tail_report(load_run(runs["student-t"]), "value(0)", n=50_000).alpha_samples
    # a piecewise-linear G keeps the latent's power law (index 2) and cannot make one from a Gaussian
    assert heavy < 4.0 < light


def test_cli_prints_the_indices_and_writes_the_qq_figure(runs, tmp_path, capsys):
    png, js = tmp_path / "qq.png", tmp_path / "tail.json"
    assert _rare(runs["student-t"], "--tail", "value(0)", "-n", "20000", "-o", png, "--json", js) == 0
    out = capsys.readouterr().out
    assert "Hill tail index" in out and "ratio" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads(js.read_text())
    assert summary["n_samples"] == 20_000 and summary["alpha_data"] > 0
    assert main(["rare", str(runs["student-t"]), "--tail", "value(0)", "-n", "5000", "--no-data"]) == 0
    assert "data " not in capsys.readouterr().out.replace("data /", "")


def test_cli_tail_bad_input(runs, tmp_path, capsys):
    assert main(["rare", str(runs["normal"]), "--tail", "value(3)"]) == 2
    one_error_line(capsys, "value: coordinate 3 is out of range 0..0")
    assert main(["rare", str(runs["normal"]), "--tail", "value(0)", "-n", "5"]) == 2
    one_error_line(capsys, "-n must be a whole number >= 10")
