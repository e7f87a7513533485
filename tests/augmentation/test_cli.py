"""``ganforge augment``: outputs, formats and one-line errors (through ``ganforge.cli.main``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.cli import main
from ganforge.data import build_dataset
from tests.augmentation.conftest import IMBALANCED_DIGITS
from tests.conftest import one_error_line


def augment(*argv) -> int:
    return main(["augment", *(str(a) for a in argv)])


def test_npz_of_chosen_classes_float_and_uint8(acgan_run, tmp_path, capsys):
    out = tmp_path / "more.npz"
    assert augment(acgan_run, "--class", 3, "--class", 7, "-n", 5, "-o", out, "--seed", 2) == 0
    assert "wrote 10 samples (5 of class 3, 5 of class 7)" in capsys.readouterr().out
    with np.load(out) as f:
        x, y = f["x"], f["y"]
    assert x.dtype == np.float32 and x.shape == (10, 1, 8, 8) and x.min() >= -1 and x.max() <= 1
    assert y.tolist() == [3] * 5 + [7] * 5
    assert augment(acgan_run, "--class", 3, "--class", 7, "-n", 5, "-o", tmp_path / "u.npz",
                   "--seed", 2, "--dtype", "uint8") == 0
    with np.load(tmp_path / "u.npz") as f:
        assert f["x"].dtype == np.uint8
        assert np.abs(f["x"] / 127.5 - 1 - x).max() <= 1 / 127.5 + 1e-6
    # the same seed gives the same images; --ema another generator
    assert augment(acgan_run, "--class", 3, "--class", 7, "-n", 5, "-o", tmp_path / "again.npz",
                   "--seed", 2) == 0
    with np.load(tmp_path / "again.npz") as f:
        assert np.array_equal(f["x"], x)
    assert augment(acgan_run, "--class", 3, "-n", 5, "-o", tmp_path / "ema.npz", "--ema") == 0


def test_folder_output_is_read_back_by_the_folder_dataset(projection_run, tmp_path, capsys):
    out = tmp_path / "shirts"
    assert augment(projection_run, "--class", 3, "-n", 4, "-o", out) == 0
    assert sorted(p.name for p in (out / "3").iterdir()) == [f"{i:05d}.png" for i in range(4)]
    ds = build_dataset({"name": "folder", "root": str(out), "size": 8, "channels": 1, "labels": True,
                        "resize": False})
    assert len(ds) == 4 and ds.classes == ("3",)
    with _npz(projection_run, tmp_path) as f:  # the same samples as an .npz
        assert np.abs(ds.x.numpy() - f["x"]).max() <= 1 / 127.5 + 1e-6
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def _npz(run, tmp_path):
    assert augment(run, "--class", 3, "-n", 4, "-o", tmp_path / "same.npz") == 0
    return np.load(tmp_path / "same.npz")


def test_balance_tops_every_class_up_to_the_largest(acgan_run, tmp_path, capsys):
    import ganforge.augmentation  # noqa: F401

    counts = torch.bincount(build_dataset(IMBALANCED_DIGITS).y, minlength=10).tolist()
    out = tmp_path / "topup.npz"
    assert augment(acgan_run, "--balance", "-o", out) == 0
    with np.load(out) as f:
        added = np.bincount(f["y"], minlength=10).tolist()
    assert [c + a for c, a in zip(counts, added, strict=True)] == [max(counts)] * 10
    assert added[3] == max(counts) - counts[3] > 0


def test_filter_by_the_ac_head_and_by_a_shipped_classifier(acgan_run, projection_run, tmp_path, capsys):
    assert augment(acgan_run, "--class", 3, "-n", 4, "--filter", 0.01, "-o", tmp_path / "f.npz") == 0
    assert "filter  class 3:" in capsys.readouterr().out
    assert augment(projection_run, "--class", 3, "-n", 4, "--filter", 1e-12, "--judge", "lenet_digits",
                   "-o", tmp_path / "g.npz") == 0
    assert augment(acgan_run, "--class", 3, "-n", 4, "--filter", 1.0, "-o", tmp_path / "h.npz") == 2
    one_error_line(capsys, "reached confidence 1.0")
    assert not (tmp_path / "h.npz").exists()


def test_bad_inputs_are_one_line_exit_2_and_write_nothing(acgan_run, projection_run, plain_run,
                                                          tmp_path, capsys):
    out = tmp_path / "out"
    full = tmp_path / "full"
    full.mkdir()
    (full / "mine.txt").write_text("keep me")
    cases = [
        ([acgan_run, "--class", 10, "-n", 5, "-o", out], ["class 10 is not one of this run's 10"]),
        ([acgan_run, "--class", -1, "-n", 5, "-o", out], ["class -1"]),
        ([plain_run, "--class", 3, "-n", 5, "-o", out], ["not class-conditional"]),
        ([acgan_run, "--class", 3, "-n", 0, "-o", out], ["-n must be at least 1"]),
        ([acgan_run, "--class", 3, "-n", -4, "-o", out], ["-n must be at least 1"]),
        ([acgan_run, "--class", 3, "-o", out], ["needs -n"]),
        ([acgan_run, "-n", 3, "-o", out], ["either --class"]),
        ([acgan_run, "--class", 3, "--balance", "-o", out], ["either --class"]),
        ([acgan_run, "--class", 3, "-n", 5, "-o", full], ["exists and is not empty"]),
        ([tmp_path / "nowhere", "--class", 3, "-n", 5, "-o", out], ["does not exist"]),
        ([full, "--class", 3, "-n", 5, "-o", out], ["no checkpoints"]),
        ([acgan_run, "--class", 3, "-n", 5, "--filter", 1.5, "-o", out], ["--filter"]),
        ([acgan_run, "--class", 3, "-n", 5, "--judge", "ac", "-o", out], ["only matters with --filter"]),
        ([projection_run, "--class", 3, "-n", 5, "--filter", 0.5, "-o", out], ["no AC-GAN class head"]),
        ([acgan_run, "--class", 3, "-n", 5, "--filter", 0.5, "--judge", "lenet_fashion", "-o", out],
         ["reads 28x28"]),
        ([projection_run, "--class", 3, "-n", 5, "--ema", "-o", out], ["without EMA"]),
        ([acgan_run, "--class", 3, "-n", 5, "--dtype", "uint8", "-o", out], ["--dtype"]),
        ([acgan_run, "--class", 3, "--class", 3, "-n", 5, "-o", out], ["repeats"]),
    ]
    for argv, fragments in cases:
        assert augment(*argv) == 2, argv
        one_error_line(capsys, *fragments)
        assert not out.exists()
    assert [p.name for p in full.iterdir()] == ["mine.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("bad", ["-n", "--class"])
def test_non_integer_arguments(acgan_run, tmp_path, capsys, bad):
    argv = [acgan_run, "--class", 3, "-n", 5, "-o", tmp_path / "x.npz"]
    argv[argv.index(bad) + 1] = "many"
    assert augment(*argv) == 2
    one_error_line(capsys, "invalid int value")


def test_ganforge_train_accepts_the_imbalanced_dataset_then_augment_reads_it(tmp_path, capsys):
    import yaml

    config = tmp_path / "imb.yaml"
    config.write_text(yaml.safe_dump({
        "data": IMBALANCED_DIGITS, "model": {"name": "dcgan", "z_dim": 8, "width": 4,
                                             "conditional": "projection"},
        "train": {"steps": 2, "batch_size": 8, "sample_every": 1000, "checkpoint_every": 1000,
                  "num_fixed_samples": 4, "ema_decay": None}}))
    run = tmp_path / "run"
    assert main(["train", "--config", str(config), "--out", str(run), "--quiet"]) == 0
    assert "done: step 2" in capsys.readouterr().out
    assert augment(run, "--balance", "-n", 200, "-o", tmp_path / "b.npz") == 0
    with np.load(tmp_path / "b.npz") as f:
        counts = np.bincount(f["y"], minlength=10)
    assert counts[3] > counts.max() - 100  # class 3, cut to 20%, gets the most new images
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"data": {**IMBALANCED_DIGITS, "fraction": 2.0}}))
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "no")]) == 2
    one_error_line(capsys, "fraction")
    assert not (tmp_path / "no").exists()
