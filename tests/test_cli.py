from __future__ import annotations

import gzip
import struct
import subprocess
import sys

import numpy as np
import pytest
import yaml
from PIL import Image

from ganforge.cli import main
from tests.conftest import TINY_DIGITS, TINY_RING


def _write_config(tmp_path, tree, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(tree))
    return path


def _fails_cleanly(capsys, argv, fragment, tmp_path=None):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert fragment in lines[0], lines[0]
    return lines[0]


def test_train_sample_info_end_to_end(tmp_path, capsys):
    cfg = _write_config(tmp_path, TINY_DIGITS)
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "samples" in printed and str(out / "plots") in printed
    assert main(["sample", str(out), "-n", "5", "-o", str(tmp_path / "s.npz")]) == 0
    arrays = np.load(tmp_path / "s.npz")
    assert arrays["x"].shape == (5, 1, 8, 8) and arrays["x"].dtype == np.float32
    assert np.abs(arrays["x"]).max() <= 1.0
    assert main(["sample", str(out), "-n", "9", "--ema", "-o", str(tmp_path / "g.png")]) == 0
    assert Image.open(tmp_path / "g.png").size[0] > 8
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "step: 6 / 6" in info and "loss_D=" in info and "name: dcgan" in info
    assert _to_a_closed_pipe(["info", str(out)]).returncode == 1  # plain print


def test_sample_points_and_steps_seed_flags(tmp_path):
    cfg = _write_config(tmp_path, TINY_RING)
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out), "--quiet", "--steps", "4",
                 "--seed", "9"]) == 0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["train"]["steps"] == 4 and saved["seed"] == 9
    assert main(["sample", str(out), "-n", "7", "-o", str(tmp_path / "p.npz")]) == 0
    assert np.load(tmp_path / "p.npz")["x"].shape == (7, 2)


def test_resume_extends_a_run(tmp_path):
    cfg = _write_config(tmp_path, TINY_RING)
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out), "--quiet", "--steps", "6"]) == 0
    assert main(["train", "--resume", str(out), "--steps", "9", "--quiet"]) == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["steps"] == 9


def test_presets_lists_descriptions(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in ("digits-dcgan", "mnist-mlp", "mnist-dcgan", "ring8-mlp", "grid25-mlp"):
        assert name in out


def test_python_dash_m_ganforge_is_the_command():
    """`python -m ganforge` (what benchmarks/first_run.py times) runs the same CLI, exit codes included."""
    ok = subprocess.run([sys.executable, "-m", "ganforge", "presets"], capture_output=True, text=True)
    assert ok.returncode == 0 and "digits-dcgan" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "ganforge", "train", "no-such-preset"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    # a reader that left (`ganforge info RUN | head -1`) is not an error: no traceback
    assert _to_a_closed_pipe(["presets"]).returncode == 1  # rich's console: quiet, exit 1


def _to_a_closed_pipe(argv: list[str]) -> subprocess.CompletedProcess:
    """Run the CLI with stdout a pipe nobody reads (`ganforge info RUN | head -1` once head left);
    it must exit quietly, without a traceback."""
    closed_reader = ("import os, sys; r, w = os.pipe(); os.close(r); os.dup2(w, 1)\n"
                     f"from ganforge.cli import main; sys.exit(main({argv!r}))")
    done = subprocess.run([sys.executable, "-c", closed_reader], capture_output=True, text=True)
    assert done.stderr == ""
    return done


def _idx_bytes(magic, dims, payload):
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + payload


@pytest.mark.parametrize("case", [
    "unknown-preset", "unknown-key", "wrong-type", "missing-data-dir", "bad-magic",
    "truncated-idx", "mixed-sizes", "bad-flag", "unknown-model-key"])
def test_bad_input_is_one_line_exit_2_and_leaves_no_run_dir(tmp_path, capsys, case):
    out = tmp_path / "run"
    base = ["train", "--out", str(out), "--quiet"]
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    if case == "bad-magic":
        (mnist / "t10k-images-idx3-ubyte").write_bytes(_idx_bytes(1234, [2, 28, 28], bytes(1568)))
        (mnist / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(2049, [2], bytes(2)))
    if case == "truncated-idx":
        (mnist / "t10k-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(_idx_bytes(2051, [2, 28, 28], bytes(1000))))
        (mnist / "t10k-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(_idx_bytes(2049, [2], bytes(2))))
    if case == "mixed-sizes":
        folder = tmp_path / "imgs"
        folder.mkdir()
        Image.new("L", (10, 10)).save(folder / "a.png")
        Image.new("L", (12, 12)).save(folder / "b.png")
    mnist_args = ["--set", "data.name=mnist", "--set", f"data.root={mnist}",
                  "--set", "data.split=test", "--set", "data.download=false"]
    argv, fragment = {
        "unknown-preset": (base + ["no-such-preset"], "unknown preset"),
        "unknown-key": (base + ["--set", "train.stepz=3"], "unknown key"),
        "wrong-type": (base + ["--set", "train.batch_size=big"], "must be an integer"),
        "missing-data-dir": (base + ["--set", "data.name=mnist",
                                     "--set", f"data.root={tmp_path / 'nowhere'}"], "nowhere"),
        "bad-magic": (base + mnist_args, "magic"),
        "truncated-idx": (base + mnist_args, "t10k-images"),
        "mixed-sizes": (base + ["--set", "data.name=folder", "--set", f"data.root={tmp_path / 'imgs'}",
                                "--set", "data.resize=false", "--set", "data.size=10"], "mixed sizes"),
        "bad-flag": (base + ["--stepz", "3"], "unrecognized arguments"),
        "unknown-model-key": (base + ["--set", "model.depth=3"], "unknown key 'depth'"),
    }[case]
    _fails_cleanly(capsys, argv, fragment)
    assert not out.exists()


def test_checkpoint_from_another_model_is_refused(tmp_path, capsys):
    cfg = _write_config(tmp_path, TINY_RING)
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out), "--quiet", "--steps", "3"]) == 0
    edited = yaml.safe_load((out / "config.yaml").read_text())
    edited["model"]["g_hidden"] = [32, 32]
    (out / "config.yaml").write_text(yaml.safe_dump(edited))
    _fails_cleanly(capsys, ["train", "--resume", str(out), "--steps", "6", "--quiet"],
                   "does not fit this network G")


def test_sample_errors(tmp_path, capsys):
    _fails_cleanly(capsys, ["sample", str(tmp_path / "none"), "-o", str(tmp_path / "x.npz")],
                   "does not exist")
    _fails_cleanly(capsys, ["sample", str(tmp_path), "-o", str(tmp_path / "x.txt")], ".npz or .png")
    cfg = _write_config(tmp_path, TINY_RING)
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out), "--quiet", "--steps", "3"]) == 0
    capsys.readouterr()
    _fails_cleanly(capsys, ["sample", str(out), "--ema", "-o", str(tmp_path / "x.npz")],
                   "without EMA")
    assert not (tmp_path / "x.npz").exists()
    for psi, fragment in (("0.5", "has no truncation trick"), ("0", "psi must lie in (0, 1]"),
                          ("1.5", "psi must lie in (0, 1]"), ("nan", "psi must lie in (0, 1]")):
        _fails_cleanly(capsys, ["sample", str(out), "--truncation", psi, "-o", str(tmp_path / "x.npz")],
                       fragment)
    assert not (tmp_path / "x.npz").exists()
    assert main(["sample", str(out), "--truncation", "1", "-o", str(tmp_path / "x.npz")]) == 0
