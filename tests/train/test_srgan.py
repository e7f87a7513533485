"""The srgan algorithm through the shared Trainer: its losses against hand computations, the MSE
pretraining phase leaves D untouched, SRResNet alone never evaluates D, bit-identical resume across
the pretraining / adversarial boundary, a loaded run translates with no data, and the Y-channel
metrics against scikit-image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganforge.config import ExperimentConfig
from ganforge.data import build_dataset
from ganforge.errors import GanforgeError
from ganforge.metrics.restoration import high_frequency_share, luma, y_scores
from ganforge.train import Experiment, Trainer, load_run
from ganforge.train.algorithms.srgan import SRGAN, perceptual_loss, srgan_d_loss
from tests.train._image_to_image import assert_same_networks, resumed_checkpoints, tiny_config

TINY = {
    "seed": 3,
    "algorithm": {"name": "srgan", "pretrain_steps": 2, "perceptual": None},
    "data": {"name": "photo-patches", "size": 16, "scale": 4, "n_patches": 64},
    "model": {"name": "srgan", "scale": 4, "width": 4, "blocks": 1, "d_width": 4},
    "train": {"steps": 4, "batch_size": 8, "log_every": 1, "sample_every": 2, "checkpoint_every": 2,
              "num_fixed_samples": 4},
}


def _cfg(**changes) -> ExperimentConfig:
    return tiny_config(TINY, **changes)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    return build_dataset(TINY["data"])


def test_d_loss_is_the_bce_of_real_as_1_and_fake_as_0():
    real, fake = torch.tensor([0.3, -1.0]), torch.tensor([-0.5, 1.5])
    by_hand = -torch.log(torch.sigmoid(real)).mean() - torch.log(1 - torch.sigmoid(fake)).mean()
    assert torch.allclose(srgan_d_loss(real, fake), by_hand)


def test_perceptual_loss_is_the_feature_mse_with_no_gradient_through_the_target():
    phi = torch.nn.Conv2d(3, 2, 3)
    out, target = torch.randn(2, 3, 8, 8, requires_grad=True), torch.randn(2, 3, 8, 8, requires_grad=True)
    loss = perceptual_loss(phi, out, target)
    assert torch.allclose(loss, ((phi(out) - phi(target)) ** 2).mean())
    loss.backward()
    assert out.grad is not None and target.grad is None


def test_the_phases_compute_the_paper_losses(data):
    algo: SRGAN = Experiment(_cfg(), "cpu", dataset=data).algorithm
    batch = {k: v[:8] for k, v in data.tensors().items()}
    c, x = batch["cond"], batch["x"]
    loss, stats = algo.loss("pretrain", batch, 0)
    assert torch.allclose(loss, ((algo.G(c) - x) ** 2).mean())
    loss_g, stats = algo.loss("G", batch, 3)
    fake = algo.G(c)
    logits = algo.D(fake)
    adv = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    expected = ((fake - x) ** 2).mean() + 1e-3 * adv
    assert torch.allclose(loss_g, expected, atol=1e-6)
    loss_d, stats = algo.loss("D", batch, 3)
    assert torch.allclose(loss_d, srgan_d_loss(algo.D(x), algo.D(fake.detach())), atol=1e-6)
    assert 0 < stats["fake_score"] < 1


def test_pretraining_phase_leaves_d_untouched(tmp_path, data):
    calls = []
    trainer = Trainer(_cfg(train={"steps": 2}), tmp_path / "pre", progress=False, dataset=data)
    assert [(p.name, p.start, p.stop) for p in trainer.exp.phases] == [("pretrain", 0, 2), ("D", 2, None),
                                                                        ("G", 2, None)]
    D = trainer.exp.algorithm.D
    D.register_forward_hook(lambda *a: calls.append(1))
    before = {k: v.clone() for k, v in D.state_dict().items()}
    g_before = {k: v.clone() for k, v in trainer.exp.algorithm.G.state_dict().items()}
    trainer.fit()
    assert not calls
    assert all(torch.equal(v, before[k]) for k, v in D.state_dict().items())
    assert any(not torch.equal(v, g_before[k]) for k, v in trainer.exp.algorithm.G.state_dict().items())


def test_srresnet_alone_has_only_the_mse_phase(tmp_path, data):
    trainer = Trainer(_cfg(algorithm={"adversarial": False}), tmp_path / "mse", progress=False, dataset=data)
    assert [(p.name, p.stop) for p in trainer.exp.phases] == [("pretrain", None)]
    trainer.fit()
    header = (tmp_path / "mse" / "metrics.csv").read_text().splitlines()[0]
    assert "mse" in header and "loss_D" not in header


def test_resume_across_the_pretraining_boundary_is_bit_identical(tmp_path, data):
    a, b = resumed_checkpoints(_cfg, tmp_path, data, 2)
    assert_same_networks(a, b)


def test_a_loaded_run_translates_with_no_data(tmp_path, data):
    Trainer(_cfg(train={"steps": 3}), tmp_path / "run", progress=False, dataset=data).fit()
    run = load_run(tmp_path / "run")
    out = run.algorithm.translate(data.cond[:5])
    assert out.shape == (5, 3, 16, 16)


def test_the_shipped_perceptual_network_trains(tmp_path, data):
    cfg = _cfg(algorithm={"perceptual": {"network": "photo", "layer": "relu1_2"}}, train={"steps": 3})
    Trainer(cfg, tmp_path / "vgg", progress=False, dataset=data).fit()
    header = (tmp_path / "vgg" / "metrics.csv").read_text().splitlines()[0]
    assert "content" in header


@pytest.mark.parametrize("changes, fragment", [
    ({"algorithm": {"pretrain_steps": -1}}, "pretrain_steps"),
    ({"algorithm": {"adversarial_weight": "big"}}, "adversarial_weight"),
    ({"algorithm": {"perceptual": {"net": "vgg19"}}}, "perceptual"),
    ({"model": {"scale": 2}}, "not 2 times larger"),
])
def test_bad_configs_are_one_line_errors(changes, fragment, data):
    with pytest.raises(GanforgeError, match=fragment):
        Experiment(_cfg(**changes), "cpu", dataset=data)


# ---------------------------------------------------------------------- the Y-channel metrics
def test_luma_matches_skimage_rgb2ycbcr():
    from skimage.color import rgb2ycbcr

    x = torch.rand(2, 3, 12, 12) * 2 - 1
    want = np.stack([rgb2ycbcr(((img + 1) / 2).permute(1, 2, 0).double().numpy())[..., 0] for img in x])
    assert np.allclose(luma(x).numpy(), want, atol=1e-9)


def test_y_psnr_and_ssim_match_skimage_with_the_border_cropped():
    from skimage.color import rgb2ycbcr
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    gen = torch.Generator().manual_seed(0)
    target = torch.rand(3, 3, 24, 24, generator=gen) * 2 - 1
    output = (target + 0.1 * torch.randn(3, 3, 24, 24, generator=gen)).clamp(-1, 1)
    got = y_scores(output, target, border=4)
    for i in range(3):
        yt = rgb2ycbcr(((target[i] + 1) / 2).permute(1, 2, 0).double().numpy())[4:-4, 4:-4, 0]
        yo = rgb2ycbcr(((output[i] + 1) / 2).permute(1, 2, 0).double().numpy())[4:-4, 4:-4, 0]
        assert got["psnr"][i] == pytest.approx(peak_signal_noise_ratio(yt, yo, data_range=255), rel=1e-6)
        assert got["ssim"][i] == pytest.approx(structural_similarity(yt, yo, data_range=255, win_size=7))


def test_high_frequency_share_orders_blurred_below_sharp():
    gen = torch.Generator().manual_seed(1)
    sharp = torch.rand(4, 3, 32, 32, generator=gen) * 2 - 1
    blurred = F.avg_pool2d(F.pad(sharp, (1, 1, 1, 1), mode="reflect"), 3, 1)
    assert (high_frequency_share(blurred) < high_frequency_share(sharp)).all()
    flat = torch.zeros(1, 3, 8, 8)
    assert high_frequency_share(flat).item() == 0


@pytest.mark.slow
def test_srresnet_learns_to_beat_bicubic_and_srgan_sharpens_it(tmp_path):
    """SRResNet (MSE) on augmented photo patches gains over bicubic on the held-out photographs
    within a few hundred steps; the adversarial + perceptual phase then raises the share of high
    frequencies (sharper, as Ledig et al. found) without wrecking the PSNR."""
    from ganforge.data.photos import DEFAULT_TEST, downsample, load_photo, upsample
    from ganforge.metrics.restoration import high_frequency_ratio

    photos = [load_photo(p, 2)[None, :, :148, :224] for p in DEFAULT_TEST]
    lr = [downsample(p, 4) for p in photos]

    def scores(outs):
        psnr = np.mean([float(y_scores(o, p, 4)["psnr"][0]) for o, p in zip(outs, photos, strict=True)])
        hf = np.mean([high_frequency_ratio(o[..., 4:-4, 4:-4], p[..., 4:-4, 4:-4])
                      for o, p in zip(outs, photos, strict=True)])
        return psnr, hf

    bicubic, _ = scores([upsample(x, 4) for x in lr])
    data = {"name": "photo-patches", "size": 32, "scale": 4, "n_patches": 8192, "augment": True}
    model = {"width": 16, "blocks": 2, "d_width": 8, "bicubic_skip": True}
    quiet = {"batch_size": 16, "sample_every": 10**6, "checkpoint_every": 10**6, "log_every": 100}
    cfg = _cfg(data=data, model=model, algorithm={"pretrain_steps": 800, "adversarial_weight": 1e-3,
                                                  "perceptual": {"network": "photo", "layer": "relu2_2"},
                                                  "perceptual_weight": 0.01},
               train={**quiet, "steps": 1100})
    trainer = Trainer(cfg, tmp_path / "sr", progress=False)
    while trainer.step < 800:  # the MSE pretraining: SRResNet
        trainer.train_step()
    srresnet, hf_mse = scores([trainer.exp.algorithm.translate(x) for x in lr])
    assert srresnet > bicubic + 0.3, (srresnet, bicubic)
    trainer.fit()  # then 300 adversarial + perceptual steps: SRGAN
    srgan, hf_gan = scores([trainer.exp.algorithm.translate(x) for x in lr])
    assert hf_gan > hf_mse and srgan > bicubic - 1.0, (hf_gan, hf_mse, srgan, bicubic)
