"""photo-patches: the photographs load offline, training and held-out photographs never mix,
LR = bicubic x1/4 of HR, colorization's Lab round trip, and validation errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganforge.data import build_dataset
from ganforge.data.photos import DEFAULT_TEST, PHOTOS, dihedral, lab_to_rgb, load_photo, tiles
from ganforge.errors import GanforgeError


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_every_photograph_loads_offline_as_rgb_in_range():
    for name in PHOTOS:
        x = load_photo(name, 4)
        assert x.shape[0] == 3 and x.min() >= -1 and x.max() <= 1


def test_train_patches_are_hr_with_bicubic_lr():
    d = build_dataset({"name": "photo-patches", "n_patches": 50, "size": 32, "scale": 4})
    assert d.fields == ("x", "cond") and d.x.shape == (50, 3, 32, 32) and d.cond.shape == (50, 3, 8, 8)
    want = F.interpolate(d.x, scale_factor=0.25, mode="bicubic", antialias=True).clamp(-1, 1)
    assert torch.allclose(d.cond, want)
    again = build_dataset({"name": "photo-patches", "n_patches": 50})
    assert torch.equal(again.x, d.x)


def test_augment_applies_one_of_the_eight_square_symmetries_to_each_crop():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4).repeat(200, 1, 1, 1)
    out = dihedral(x, torch.Generator().manual_seed(0))
    symmetries = [torch.rot90(x[:1], k, (2, 3)).flip(3) if f else torch.rot90(x[:1], k, (2, 3))
                  for k in range(4) for f in (False, True)]
    seen = set()
    for image in out[::2]:
        (hit,) = [i for i, s in enumerate(symmetries) if torch.equal(s[0], image)]
        seen.add(hit)
    assert seen == set(range(8))  # all eight occur among 200 draws
    plain = build_dataset({"name": "photo-patches", "n_patches": 40})
    turned = build_dataset({"name": "photo-patches", "n_patches": 40, "augment": True})
    assert not torch.equal(plain.x, turned.x)
    assert torch.allclose(turned.cond, F.interpolate(turned.x, scale_factor=0.25, mode="bicubic",
                                                     antialias=True).clamp(-1, 1))
    with pytest.raises(GanforgeError, match="augment"):
        build_dataset({"name": "photo-patches", "augment": "yes"})


def test_held_out_tiles_are_the_whole_test_photographs_and_never_training_crops():
    test = build_dataset({"name": "photo-patches", "split": "test", "size": 32})
    want = torch.cat([tiles(load_photo(p, 2), 32) for p in DEFAULT_TEST])
    assert torch.equal(test.x, want)
    train = build_dataset({"name": "photo-patches", "n_patches": 300})
    flat_test = test.x.flatten(1)
    # no training crop equals any held-out tile (they come from other photographs)
    dist = torch.cdist(train.x.flatten(1), flat_test)
    assert dist.min() > 1.0


def test_tiles_match_a_hand_made_grid():
    photo = torch.arange(3 * 5 * 7, dtype=torch.float32).view(3, 5, 7)
    t = tiles(photo, 2)
    assert t.shape == (2 * 3, 3, 2, 2)
    assert torch.equal(t[4], photo[:, 2:4, 2:4])


def test_colorization_is_l_in_and_ab_out_and_round_trips():
    d = build_dataset({"name": "photo-patches", "split": "test", "task": "colorization"})
    assert d.cond.shape[1] == 1 and d.x.shape[1] == 2
    rgb = build_dataset({"name": "photo-patches", "split": "test"}).x
    back = lab_to_rgb(d.cond, d.x)
    assert float((back - rgb).abs().max()) < 1e-3


@pytest.mark.parametrize("section, word", [
    ({"split": "val"}, "split"), ({"task": "denoise"}, "task"), ({"size": 30}, "multiple"),
    ({"train_photos": ["chelsea"]}, "both"), ({"test_photos": ["lena"]}, "unknown photograph"),
])
def test_bad_sections_are_one_line_errors(section, word):
    with pytest.raises(GanforgeError, match=word):
        build_dataset({"name": "photo-patches", **section})


def test_photos_list_is_natural_colour_photographs():
    assert {"astronaut", "coffee", "chelsea", "rocket", "china", "flower"} <= set(PHOTOS)
    assert all(load_photo(p, 8).shape[0] == 3 for p in PHOTOS)
    assert np.isfinite(load_photo("flower", 8).numpy()).all()


def test_colourfulness_matches_a_hand_computation():
    from ganforge.metrics.restoration import colourfulness

    gen = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 5, 4, generator=gen) * 2 - 1
    for img, got in zip(images, colourfulness(images), strict=True):
        r, g, b = ((img.double() + 1) * 127.5).reshape(3, -1).numpy()
        rg, yb = r - g, 0.5 * (r + g) - b
        want = np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
        assert float(got) == pytest.approx(want, rel=1e-12)
    grey = torch.zeros(1, 3, 4, 4)
    assert float(colourfulness(grey)) == 0.0


def test_a_colorize_run_trains_as_pix2pix_and_shows_rgb_panels(tmp_path):
    from ganforge.config import ExperimentConfig
    from ganforge.train import Trainer

    cfg = ExperimentConfig.from_dict({
        "seed": 0, "algorithm": {"name": "colorize", "l1_weight": 10.0},
        "data": {"name": "photo-patches", "task": "colorization", "size": 16, "n_patches": 32},
        "model": {"name": "pix2pix", "width": 4, "d_width": 4, "depth": 3, "receptive_field": 16},
        "train": {"steps": 2, "batch_size": 8, "log_every": 1, "sample_every": 2, "checkpoint_every": 2,
                  "num_fixed_samples": 4}})
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    trainer.fit()
    panels = trainer.exp.algorithm.panels()
    assert panels["input"].shape[1] == 1 and panels["output"].shape[1] == 3 and panels["target"].shape[1] == 3
    assert any((tmp_path / "run" / "samples").iterdir())
    # `ganforge translate` on a colorize run reads RGB images, keeps their L, writes RGB
    from PIL import Image

    from ganforge.data.photos import rgb_to_lab_pair
    from ganforge.translate import main as translate_main

    photo = (torch.rand(3, 16, 16) * 255).to(torch.uint8)
    Image.fromarray(photo.permute(1, 2, 0).numpy()).save(tmp_path / "in.png")
    assert translate_main([str(tmp_path / "run"), "--input", str(tmp_path / "in.png"),
                           "-o", str(tmp_path / "out.npz")]) == 0
    with np.load(tmp_path / "out.npz") as f:
        out, cond = torch.from_numpy(f["x"]), torch.from_numpy(f["cond"])
    assert out.shape == cond.shape == (1, 3, 16, 16) and out.abs().max() <= 1
    l_in = rgb_to_lab_pair(photo[None].float() / 127.5 - 1)[0]
    l_out = rgb_to_lab_pair(out)[0]
    assert (l_out - l_in).abs().max() < 0.05  # the lightness survives; G only chose the colours
