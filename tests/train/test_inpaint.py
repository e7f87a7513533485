"""The inpaint algorithm (context encoder): the hole-only L2 ignores pixels outside the hole, the
completed image keeps the known pixels, the L2-only baseline never evaluates D, the losses against
hand computations, bit-identical resume, the masked metrics, and validation errors.

The data are a stand-in for masked-fashion: scikit-learn's digits at 32x32 with a centre hole."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganforge.config import ExperimentConfig
from ganforge.data.digits import digits
from ganforge.data.paired import PairedDataset, square_masks
from ganforge.errors import GanforgeError
from ganforge.metrics.restoration import masked_scores
from ganforge.train import Experiment, Trainer, load_run
from ganforge.train.algorithms.inpaint import Inpaint, complete, hole_l2, hole_mask
from ganforge.train.algorithms.pix2pix import pix2pix_d_loss
from tests.train._image_to_image import assert_same_networks, resumed_checkpoints, tiny_config

TINY = {
    "seed": 1,
    "algorithm": {"name": "inpaint"},
    "data": {"name": "digits", "size": 32},
    "model": {"name": "pix2pix", "width": 4, "d_width": 4, "depth": 3, "receptive_field": 16,
              "dropout": 0.0, "dropout_layers": 0, "test_dropout": False},
    "train": {"steps": 4, "batch_size": 8, "log_every": 1, "sample_every": 2, "checkpoint_every": 2,
              "num_fixed_samples": 4},
}


def _cfg(**changes) -> ExperimentConfig:
    return tiny_config(TINY, **changes)


def masked(n: int = 200, mask_channel: bool = True) -> PairedDataset:
    x = digits(size=32).x[:n]
    m = square_masks(n, 32, 12, "centre", 0)
    cond = x * (1 - m)
    if mask_channel:
        cond = torch.cat([cond, 2 * m - 1], dim=1)
    return PairedDataset(x, cond, name="masked-digits")


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    return masked()


def test_hole_l2_ignores_pixels_outside_the_hole():
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(2, 1, 8, 8, generator=gen)
    mask = square_masks(2, 8, 4, "centre", 0)
    out = torch.rand(2, 1, 8, 8, generator=gen)
    changed = out + (1 - mask) * 5.0                      # only outside the hole
    assert torch.equal(hole_l2(out, target, mask), hole_l2(changed, target, mask))
    by_hand = ((out - target)[:, :, 2:6, 2:6] ** 2).mean()
    assert torch.allclose(hole_l2(out, target, mask), by_hand)


def test_completion_keeps_the_known_pixels_and_paints_the_hole(data):
    c, x = data.cond[:3], data.x[:3]
    out = torch.full_like(x, 0.5)
    m = hole_mask(c)
    done = complete(c, out)
    assert torch.equal(done * (1 - m), x * (1 - m))
    assert torch.all(done[m.expand_as(done) > 0] == 0.5)


def test_the_phases_compute_the_paper_losses(data):
    algo: Inpaint = Experiment(_cfg(), "cpu", dataset=data).algorithm
    batch = {k: v[:8] for k, v in data.tensors().items()}
    c, x = batch["cond"], batch["x"]
    loss, stats = algo.loss("G", batch, 0)
    out = algo.G(c)
    logits = algo.D(c, complete(c, out))
    m = hole_mask(c)
    rec = ((out - x) ** 2 * m).sum() / m.sum()
    want = 0.999 * rec + 0.001 * F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    assert torch.allclose(loss, want, atol=1e-6) and stats["rec"] == pytest.approx(rec.item(), rel=1e-5)
    loss_d, _ = algo.loss("D", batch, 0)
    with torch.no_grad():
        fake = complete(c, algo.G(c))
    assert torch.allclose(loss_d, pix2pix_d_loss(algo.D(c, x), algo.D(c, fake)), atol=1e-6)


def test_translate_returns_the_completed_image(data):
    algo: Inpaint = Experiment(_cfg(), "cpu", dataset=data).algorithm
    out = algo.translate(data.cond[:4])
    m = hole_mask(data.cond[:4])
    assert torch.equal(out * (1 - m), data.x[:4] * (1 - m))


def test_l2_only_never_touches_d(tmp_path, data):
    calls = []
    trainer = Trainer(_cfg(algorithm={"adversarial": False}), tmp_path / "l2", progress=False, dataset=data)
    assert [p.name for p in trainer.exp.phases] == ["G"]
    trainer.exp.algorithm.D.register_forward_hook(lambda *a: calls.append(1))
    trainer.fit()
    assert not calls
    header = (tmp_path / "l2" / "metrics.csv").read_text().splitlines()[0]
    assert "rec" in header and "loss_D" not in header


def test_resume_is_bit_identical(tmp_path, data):
    a, b = resumed_checkpoints(_cfg, tmp_path, data, 2)
    assert_same_networks(a, b)


@pytest.mark.parametrize("changes, fragment", [({"algorithm": {"rec_weight": 0}}, "rec_weight=0"),
                                               ({"algorithm": {"adv_weight": -1}}, "adv_weight")])
def test_bad_configs_are_one_line_errors(changes, fragment, data):
    with pytest.raises(GanforgeError, match=fragment):
        Experiment(_cfg(**changes), "cpu", dataset=data)


def test_inputs_without_a_mask_channel_are_refused():
    with pytest.raises(GanforgeError, match="mask_channel"):
        Experiment(_cfg(), "cpu", dataset=masked(20, mask_channel=False))


def test_masked_scores_use_only_the_hole():
    gen = torch.Generator().manual_seed(2)
    target = torch.rand(2, 1, 16, 16, generator=gen) * 2 - 1
    mask = square_masks(2, 16, 8, "centre", 0)
    out = target + 0.1 * mask * torch.randn(2, 1, 16, 16, generator=gen) + 3.0 * (1 - mask)
    got = masked_scores(out, target, mask)
    inside = ((out.clamp(-1, 1) - target)[:, :, 4:12, 4:12] ** 2).flatten(1).mean(1).double()
    assert np.allclose(got["psnr"], (10 * torch.log10(4 / inside)).numpy())
    from skimage.metrics import structural_similarity

    want = structural_similarity(target[0, :, 4:12, 4:12].double().numpy(),
                                 out[0, :, 4:12, 4:12].clamp(-1, 1).double().numpy(),
                                 data_range=2.0, channel_axis=0, win_size=7)
    assert got["ssim"][0] == pytest.approx(want)


@pytest.mark.slow
def test_inpainting_learns_to_fill_the_centre_hole_better_than_the_mean_and_biharmonic(tmp_path):
    """Context encoder + adversarial on the embedded digits (centre 12x12 holes): after a few
    hundred steps its held-out hole PSNR beats filling the hole with the mean pixel and
    scikit-image's biharmonic inpainting."""
    pytest.importorskip("skimage")
    from skimage.restoration import inpaint_biharmonic

    data = masked(1797)
    train, test = data.subset(slice(0, 1500)), data.subset(slice(1500, 1797))
    cfg = _cfg(model={"width": 16, "d_width": 16, "depth": 4},
               train={"steps": 600, "batch_size": 32, "sample_every": 10**6, "checkpoint_every": 10**6,
                      "log_every": 100})
    Trainer(cfg, tmp_path / "learn", progress=False, dataset=train).fit()
    algo = load_run(tmp_path / "learn").algorithm
    m = hole_mask(test.cond)
    gan = masked_scores(algo.translate(test.cond), test.x, m)["psnr"].mean()
    mean_fill = complete(test.cond, torch.full_like(test.x, train.x.mean().item()))
    biharmonic = torch.stack([torch.from_numpy(inpaint_biharmonic(
        test.x[i, 0].numpy(), m[i, 0].numpy().astype(bool))).float()[None] for i in range(len(test))])
    for name, baseline in (("mean", mean_fill), ("biharmonic", biharmonic)):
        base = masked_scores(baseline, test.x, m)["psnr"].mean()
        assert gan > base + 0.5, (name, gan, base)
