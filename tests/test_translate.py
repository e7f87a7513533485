"""``ganforge translate``, and ``sample`` / ``evaluate`` on an image-to-image run: outputs in
every format, the one-line errors (exit 2, nothing written), and the paired metrics against
scikit-image."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.cli import main as ganforge_main
from ganforge.config import ExperimentConfig
from ganforge.data.digits import digits
from ganforge.data.paired import PairedDataset, sobel_edges
from ganforge.train import Trainer
from ganforge.translate import main as translate_main

CFG = {
    "seed": 0,
    "algorithm": {"name": "pix2pix"},
    "data": {"name": "digits", "size": 32},
    "model": {"name": "pix2pix", "width": 4, "d_width": 4, "depth": 3, "receptive_field": 16},
    "train": {"steps": 2, "batch_size": 8, "log_every": 1, "sample_every": 2, "checkpoint_every": 2,
              "num_fixed_samples": 4},
}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def pairs():
    x = digits(size=32).x[:64]
    return PairedDataset(x, sobel_edges(x, 0.15), name="digit-edges")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, pairs):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("translate") / "run"
    Trainer(ExperimentConfig.from_dict(CFG), out, progress=False, dataset=pairs).fit()
    return out


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, pairs):
    folder = tmp_path_factory.mktemp("inputs")
    for i in range(3):
        Image.fromarray(((pairs.cond[i, 0].numpy() + 1) * 127.5).astype(np.uint8)).save(folder / f"e{i}.png")
    np.savez(folder.parent / "edges.npz", x=pairs.cond[:5].numpy())
    return folder


def test_translate_writes_npz_png_and_a_folder(run_dir, inputs, tmp_path, capsys):
    assert translate_main([str(run_dir), "--input", str(inputs.parent / "edges.npz"),
                           "-o", str(tmp_path / "out.npz")]) == 0
    with np.load(tmp_path / "out.npz") as f:
        assert f["x"].shape == (5, 1, 32, 32) and f["cond"].shape == (5, 1, 32, 32)
        assert np.abs(f["x"]).max() <= 1
    translate = ["translate", str(run_dir), "--input", str(inputs), "-o"]
    assert ganforge_main([*translate, str(tmp_path / "g.png")]) == 0
    assert Image.open(tmp_path / "g.png").size[0] > 64
    assert ganforge_main([*translate, str(tmp_path / "dir")]) == 0
    assert sorted(p.name for p in (tmp_path / "dir").iterdir()) == ["e0.png", "e1.png", "e2.png"]
    assert Image.open(tmp_path / "dir" / "e0.png").size == (32, 32)
    # an RGB input is converted to the grey the generator takes
    rgb = tmp_path / "rgb"
    rgb.mkdir()
    Image.new("RGB", (16, 16), (255, 0, 0)).save(rgb / "r.png")
    assert translate_main([str(run_dir), "--input", str(rgb / "r.png"), "-o", str(tmp_path / "r.npz"),
                           "--seed", "3"]) == 0
    assert "translated 1 image" in capsys.readouterr().out


def _refused(argv, capsys, fragment, written):
    assert translate_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1, err
    assert not written.exists() or (written.is_dir() and [p.name for p in written.iterdir()] == ["keep"])


def test_translate_errors_are_one_line_exit_2_nothing_written(run_dir, tmp_path, capsys):
    np.savez(tmp_path / "odd.npz", x=np.zeros((2, 1, 20, 20), np.float32))
    np.savez(tmp_path / "two.npz", x=np.zeros((2, 2, 32, 32), np.float32))
    out = tmp_path / "o.npz"
    _refused([str(run_dir), "--input", str(tmp_path / "odd.npz"), "-o", str(out)], capsys,
             "multiples of 8", out)
    _refused([str(run_dir), "--input", str(tmp_path / "two.npz"), "-o", str(out)], capsys,
             "2-channel images", out)
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep").write_text("x")
    _refused([str(run_dir), "--input", str(tmp_path / "odd.npz"), "-o", str(full)], capsys,
             "exists and is not empty", full)
    _refused([str(run_dir), "--input", str(tmp_path / "nothing"), "-o", str(out)], capsys,
             "does not exist", out)
    _refused([str(run_dir), "--input", str(tmp_path / "odd.npz"), "-o", str(tmp_path / "o.txt")],
             capsys, "must be a .npz", tmp_path / "o.txt")


def test_translate_refuses_a_run_that_is_not_image_to_image(tmp_path, capsys):
    cfg = ExperimentConfig.from_dict({"seed": 0, "data": {"name": "ring8"}, "model": {"name": "mlp"},
                                      "train": {"steps": 1, "batch_size": 8, "sample_every": 1,
                                                "checkpoint_every": 1}})
    Trainer(cfg, tmp_path / "gan", progress=False).fit()
    np.savez(tmp_path / "in.npz", x=np.zeros((1, 1, 32, 32), np.float32))
    _refused([str(tmp_path / "gan"), "--input", str(tmp_path / "in.npz"), "-o", str(tmp_path / "o.npz")],
             capsys, "has no image-to-image translation (capability Translates", tmp_path / "o.npz")


def test_sample_writes_input_output_target(run_dir, tmp_path):
    assert ganforge_main(["sample", str(run_dir), "-n", "6", "-o", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").is_file()
    assert ganforge_main(["sample", str(run_dir), "-n", "6", "-o", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as f:
        assert f["x"].shape == f["cond"].shape == f["target"].shape == (6, 1, 32, 32)


def test_paired_metrics_match_scikit_image():
    skm = pytest.importorskip("skimage.metrics")
    from ganforge.metrics.paired import PSNR_CAP, paired_scores

    gen = torch.Generator().manual_seed(0)
    target = torch.rand(3, 1, 16, 16, generator=gen) * 2 - 1
    output = (target + 0.2 * torch.randn(3, 1, 16, 16, generator=gen)).clamp(-1, 1)
    s = paired_scores(output, target)
    t, o = target[1, 0].double().numpy(), output[1, 0].double().numpy()
    assert s["l1"][1] == pytest.approx(np.abs(t - o).mean())
    assert s["psnr"][1] == pytest.approx(10 * np.log10(4 / ((t - o) ** 2).mean()))
    assert s["ssim"][1] == pytest.approx(skm.structural_similarity(t, o, data_range=2.0))
    same = paired_scores(target, target)
    assert (same["psnr"] == PSNR_CAP).all() and np.allclose(same["ssim"], 1) and (same["l1"] == 0).all()


def test_evaluate_reports_l1_psnr_ssim_on_held_out_pairs(run_dir, tmp_path, capsys, monkeypatch):
    pytest.importorskip("skimage")
    import ganforge.metrics.paired as paired

    held = PairedDataset(digits(size=32).x[100:140], sobel_edges(digits(size=32).x[100:140], 0.15),
                         name="digit-edges")
    monkeypatch.setattr(paired, "held_out_pairs", lambda section, options=None: (held, dict(section)))
    out = tmp_path / "eval.json"
    assert ganforge_main(["evaluate", str(run_dir), "-n", "30", "-o", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["metrics"]) == {"l1", "psnr", "ssim"} and result["images"] == 30
    assert set(result["baselines"]) == {"blank", "identity"}
    assert "psnr" in capsys.readouterr().out
    assert ganforge_main(["evaluate", str(run_dir), "--metrics", "kid", "-o", str(out)]) == 2


def test_an_older_run_that_recorded_cond_shape_in_its_config_still_loads(run_dir, tmp_path):
    """Runs written before the input shape moved to the checkpoint's algorithm state kept it in
    the config's algorithm section; they load and sample as before."""
    import shutil

    from ganforge.train import load_run

    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    path = old / "checkpoints" / "final.pt"
    state = torch.load(path, weights_only=True)
    state["config"]["algorithm"]["cond_shape"] = [1, 32, 32]
    torch.save(state, path)
    run = load_run(old)
    assert run.config.algorithm["cond_shape"] == [1, 32, 32] and run.algorithm.cond_shape == (1, 32, 32)
    assert torch.equal(run.sample(3, seed=1), load_run(run_dir).sample(3, seed=1))
