"""`ganforge latent RUN mix`, `interpolate --space w` and `sample --truncation` on a tiny
StyleGAN run, and their one-line refusals on a DCGAN run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.cli import main as ganforge_main
from ganforge.config import ExperimentConfig
from ganforge.latent.cli import main as latent_main
from ganforge.latent.style import map_to_w, style_mixing_grid, synthesise_w
from ganforge.train import Trainer
from ganforge.train.run import load_run

STYLE = {
    "seed": 5, "data": {"name": "digits", "size": 8},
    "model": {"name": "stylegan", "z_dim": 8, "w_dim": 8, "mapping_layers": 2, "width": 4, "max_width": 8},
    "algorithm": {"name": "gan", "loss": {"name": "r1", "gamma": 1.0}},
    "train": {"steps": 2, "batch_size": 8, "log_every": 1, "sample_every": 2, "checkpoint_every": 2,
              "num_fixed_samples": 8},
}


@pytest.fixture(scope="module")
def style_run(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("style") / "run"
    Trainer(ExperimentConfig.from_dict(STYLE), out, progress=False).fit()
    return out


def test_mix_writes_the_style_mixing_grid(style_run, tmp_path, capsys):
    out = tmp_path / "mix.png"
    assert latent_main([str(style_run), "mix", "--rows", "1", "2", "--cols", "3", "4", "5",
                        "--layers", "2,3", "-o", str(out)]) == 0
    assert "2 x 3 style-mixing grid" in capsys.readouterr().out
    G = load_run(style_run).generator.eval()
    want = style_mixing_grid(G, torch.stack([torch.randn(8, generator=torch.Generator().manual_seed(s))
                                             for s in (1, 2)]),
                             torch.stack([torch.randn(8, generator=torch.Generator().manual_seed(s))
                                          for s in (3, 4, 5)]),
                             [2, 3], generator=torch.Generator().manual_seed(0))
    assert want.shape[:2] == (3, 4)
    grid = np.asarray(Image.open(out))
    assert grid.shape[0] < grid.shape[1]  # 3 rows of 4 cells


def test_interpolate_in_w_passes_through_the_keyframes_styles(style_run, tmp_path, capsys):
    out = tmp_path / "w.png"
    assert latent_main([str(style_run), "interpolate", "--space", "w", "--seeds", "0", "1",
                        "--steps", "5", "-o", str(out)]) == 0
    assert "5 images along straight lines in W" in capsys.readouterr().out
    G = load_run(style_run).generator.eval()
    from ganforge.latent.codes import codes_from_seeds

    w = map_to_w(G, codes_from_seeds(G, [0, 1]))
    mid = synthesise_w(G, w.mean(0, keepdim=True), torch.Generator().manual_seed(0))
    ends = synthesise_w(G, w, torch.Generator().manual_seed(0))
    assert mid.shape == (1, 1, 8, 8) and not torch.equal(ends[0], ends[1])


def test_sample_with_truncation_moves_towards_the_mean_style(style_run, tmp_path):
    for psi in ("1", "0.5", "0.01"):
        assert ganforge_main(["sample", str(style_run), "-n", "16", "--truncation", psi,
                              "-o", str(tmp_path / f"t{psi}.npz")]) == 0
    spread = [np.load(tmp_path / f"t{p}.npz")["x"].std(0).mean() for p in ("1", "0.5", "0.01")]
    assert spread[0] > spread[1] > spread[2]


def test_style_tools_refuse_a_dcgan_run(tmp_path, capsys):
    from tests.conftest import train_tiny

    run = train_tiny("digits-dcgan", tmp_path / "dcgan", {"data.size": 8, "model.z_dim": 8,
                                                          "model.width": 4, "train.steps": 2})
    for argv, fragment in ((["mix", "-o", str(tmp_path / "m.png")], "is not a style-based generator"),
                           (["interpolate", "--space", "w", "-o", str(tmp_path / "m.png")],
                            "is not a style-based generator")):
        assert latent_main([str(run), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert fragment in err and len(err.splitlines()) == 1, err
        assert not (tmp_path / "m.png").exists()
