"""Video from the command line: ``ganforge train`` on a folder of the user's clips, ``sample``
writing GIF / MP4 / PNG / NPZ, ``predict`` continuing a clip, ``evaluate`` on prediction and clip
runs, and every bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from ganforge.cli import main
from ganforge.data.digits import digits
from ganforge.data.kinds import Samples
from ganforge.data.sequence import MovingDigits, write_sequence_gif
from ganforge.predict import main as predict_main
from tests.conftest import one_error_line

FRAMES, SIZE = 8, 24


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def _digits() -> np.ndarray:
    x = digits(size=8).x[:, 0]
    return ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    """Six GIF clips of 10 frames (24x24) and one of 3 frames (skipped: shorter than 8)."""
    folder = tmp_path_factory.mktemp("clips")
    data = MovingDigits(_digits(), frames=10, size=SIZE, num_digits=1)
    x = data.sample(7, torch.Generator().manual_seed(0))[0]
    for i in range(6):
        write_sequence_gif(Samples(x[i : i + 1]), folder / f"clip{i}.gif")
    write_sequence_gif(Samples(x[6:7, :3]), folder / "short.gif")
    return folder


def _train(tmp_path_factory, name: str, config: dict) -> str:
    torch.set_num_threads(1)
    work = tmp_path_factory.mktemp(name)
    (work / "cfg.yaml").write_text(yaml.safe_dump(config))
    run = work / "run"
    assert main(["train", "--config", str(work / "cfg.yaml"), "--out", str(run), "--quiet"]) == 0
    return str(run)


@pytest.fixture(scope="module")
def predictor(tmp_path_factory, clip_folder):
    return _train(
        tmp_path_factory,
        "predictor",
        {
            "seed": 0,
            "algorithm": {
                "name": "frame-predictor",
                "observed": 4,
                "gdl_weight": 1.0,
                "adversarial_weight": 0.05,
                "context": 2,
            },
            "data": {"name": "clips", "path": str(clip_folder), "frames": FRAMES},
            "model": {"name": "convlstm", "hidden": [8], "d_width": 4},
            "train": {
                "steps": 3,
                "batch_size": 4,
                "log_every": 1,
                "sample_every": 3,
                "checkpoint_every": 3,
                "num_fixed_samples": 3,
            },
        },
    )


@pytest.fixture(scope="module")
def mocogan(tmp_path_factory, clip_folder):
    return _train(
        tmp_path_factory,
        "mocogan",
        {
            "seed": 0,
            "algorithm": {"name": "mocogan"},
            "data": {"name": "clips", "path": str(clip_folder), "frames": FRAMES, "size": 16},
            "model": {
                "name": "mocogan",
                "content_dim": 4,
                "motion_dim": 3,
                "noise_dim": 2,
                "width": 4,
                "d_width": 4,
            },
            "train": {
                "steps": 2,
                "batch_size": 4,
                "log_every": 1,
                "sample_every": 2,
                "checkpoint_every": 2,
                "num_fixed_samples": 4,
            },
        },
    )


def test_training_on_a_folder_of_clips_skips_short_ones(predictor, capsys):
    cfg = yaml.safe_load(open(f"{predictor}/config.yaml"))
    assert cfg["algorithm"]["name"] == "frame-predictor"
    assert (torch.load(f"{predictor}/checkpoints/final.pt", weights_only=True)["step"]) == 3


def test_sample_writes_every_format(predictor, mocogan, tmp_path, capsys):
    for ext in (".gif", ".png", ".npz", ".mp4"):
        assert main(["sample", predictor, "-n", "3", "-o", str(tmp_path / f"p{ext}")]) == 0
    assert "4 observed + 4 predicted" in capsys.readouterr().out
    with np.load(tmp_path / "p.npz") as f:
        assert f["x"].shape == (3, FRAMES, 1, SIZE, SIZE) and f["truth"].shape == (3, FRAMES, 1, SIZE, SIZE)
        np.testing.assert_allclose(f["x"][:, :4], f["truth"][:, :4])
    gif = Image.open(tmp_path / "p.gif")
    assert gif.n_frames == FRAMES
    assert main(["sample", mocogan, "-n", "5", "-o", str(tmp_path / "m.gif")]) == 0
    assert main(["sample", mocogan, "-n", "5", "-o", str(tmp_path / "m.npz")]) == 0
    with np.load(tmp_path / "m.npz") as f:
        assert f["x"].shape == (5, FRAMES, 1, 16, 16)


def test_predict_continues_a_gif_a_folder_and_an_npz(predictor, clip_folder, tmp_path, capsys):
    assert (
        predict_main([predictor, "--input", str(clip_folder / "clip0.gif"), "-o", str(tmp_path / "o.npz")])
        == 0
    )
    with np.load(tmp_path / "o.npz") as f:
        assert f["x"].shape == (1, 8, 1, SIZE, SIZE) and f["prediction"].shape == (1, 4, 1, SIZE, SIZE)
        assert int(f["observed"]) == 4
    frames = tmp_path / "frames"
    frames.mkdir()
    gif = Image.open(clip_folder / "clip1.gif")
    for i in range(gif.n_frames):
        gif.seek(i)
        gif.convert("L").save(frames / f"f{i}.png")
    assert (
        main(["predict", predictor, "--input", str(frames), "-o", str(tmp_path / "o.gif"), "--horizon", "6"])
        == 0
    )
    assert Image.open(tmp_path / "o.gif").n_frames == 10
    np.savez(tmp_path / "many.npz", x=np.zeros((3, 5, 1, SIZE, SIZE), np.float32))
    assert (
        main(["predict", predictor, "--input", str(tmp_path / "many.npz"), "-o", str(tmp_path / "m.npz")])
        == 0
    )
    assert "of 3 clips" in capsys.readouterr().out


def _refused(argv, capsys, fragment, tmp_path):
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(argv) == 2
    one_error_line(capsys, fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_predict_bad_inputs(predictor, mocogan, clip_folder, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    base = ["predict", predictor, "--input"]
    _refused(
        [*base, str(clip_folder / "short.gif"), "-o", str(out / "o.gif")],
        capsys,
        "holds 3 frames, and this run reads 4",
        out,
    )
    small = tmp_path / "small.npz"
    np.savez(small, x=np.zeros((6, 16, 16), np.uint8))
    _refused([*base, str(small), "-o", str(out / "o.gif")], capsys, "was trained on 24x24", out)
    _refused([*base, str(clip_folder / "clip0.gif"), "-o", str(out / "o.txt")], capsys, "writes", out)
    corrupt = tmp_path / "bad.gif"
    corrupt.write_bytes(b"GIF89a not really")
    _refused([*base, str(corrupt), "-o", str(out / "o.gif")], capsys, "bad.gif", out)
    empty = tmp_path / "empty"
    empty.mkdir()
    _refused([*base, str(empty), "-o", str(out / "o.gif")], capsys, "no frames", out)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.new("L", (24, 24)).save(mixed / "a.png")
    Image.new("L", (16, 16)).save(mixed / "b.png")
    _refused([*base, str(mixed), "-o", str(out / "o.gif")], capsys, "16x16", out)
    _refused(
        [*base, str(clip_folder / "clip0.gif"), "-o", str(out / "o.gif"), "--horizon", "0"],
        capsys,
        "--horizon",
        out,
    )
    _refused(
        ["predict", mocogan, "--input", str(clip_folder / "clip0.gif"), "-o", str(out / "o.gif")],
        capsys,
        "frame prediction",
        out,
    )


def test_evaluate_a_prediction_run_and_a_clip_run(predictor, mocogan, tmp_path, capsys):
    assert main(["evaluate", predictor, "-n", "5", "-o", str(tmp_path / "p.json")]) == 0
    result = json.loads((tmp_path / "p.json").read_text())
    metrics = result["metrics"]
    assert {
        "frame_mse",
        "frame_psnr",
        "frame_ssim",
        "gradient_energy_ratio",
        "sharpness_difference",
        "fd_lenet_frames",
        "frame_change_ratio",
    } <= set(metrics)
    assert len(result["per_horizon"]["mse"]) == 4
    assert set(result["baselines"]) == {"copy_last", "mean_frame"}
    assert result["baselines"]["copy_last"]["frame_mse"] == pytest.approx(
        np.mean(result["baselines_per_horizon"]["copy_last"]["mse"]))
    table = capsys.readouterr().out
    assert "frame_mse" in table and "nan" not in table.split("frame_mse")[1].splitlines()[0]
    assert main(["evaluate", mocogan, "-n", "5", "-o", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())["metrics"]
    assert {"fd_lenet_frames", "identity_drift_log_gap"} <= set(metrics) and "frame_mse" not in metrics
    assert main(["evaluate", mocogan, "--metrics", "frame_mse"]) == 2
    one_error_line(capsys, "does not apply to a run that generates clips")
    assert main(["evaluate", predictor, "--metrics", "fid"]) == 2
    one_error_line(capsys, "does not apply to a frame-prediction run")
