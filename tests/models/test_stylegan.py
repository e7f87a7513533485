"""StyleGAN: the architecture, AdaIN against its closed form, the learned constant, the noise
inputs, truncation and mixing on the real generator, the EMA copy's w_avg, a bit-identical
resume, the one-line errors, the preset, and (slow) learning on the digits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tests.conftest import REPO
from tests.train.test_trainer import _assert_same_state

from ganforge.cli import main
from ganforge.config import ExperimentConfig, load_config
from ganforge.errors import GanforgeError
from ganforge.models import build
from ganforge.models.equalized import EqualConv2d
from ganforge.models.style import StyleGenerator, truncate_w
from ganforge.models.stylegan import AdaIN, NoiseInput, StyleGANDiscriminator, StyleGANGenerator
from ganforge.train import Trainer
from ganforge.train.checkpoint import load_checkpoint

FASHION = REPO.parent / "shared" / "data" / "fashion-mnist"
TINY_MODEL = {"name": "stylegan", "z_dim": 8, "w_dim": 8, "mapping_layers": 2, "width": 4, "max_width": 8}
TINY = {
    "seed": 5,
    "data": {"name": "digits", "size": 8},
    "model": TINY_MODEL,
    "algorithm": {"name": "gan", "loss": {"name": "r1", "gamma": 1.0}},
    "optim": {"G": {"name": "adam", "lr": 1e-3, "betas": [0.0, 0.99]},
              "D": {"name": "adam", "lr": 1e-3, "betas": [0.0, 0.99]}},
    "train": {"steps": 6, "batch_size": 8, "log_every": 2, "sample_every": 3,
              "checkpoint_every": 3, "num_fixed_samples": 8, "ema_decay": 0.9},
}


def tiny(side: int = 16, **kwargs) -> tuple[StyleGANGenerator, StyleGANDiscriminator]:
    return build({**TINY_MODEL, **kwargs}, (1, side, side))


def with_noise_scales(G: StyleGANGenerator, value: float = 0.5) -> StyleGANGenerator:
    for m in G.modules():
        if isinstance(m, NoiseInput):
            m.weight.data.fill_(value)
    return G


def test_32px_generator_has_two_adain_layers_per_resolution_from_a_4x4_constant():
    G, D = build({"name": "stylegan", "width": 16, "max_width": 32}, (1, 32, 32))
    assert isinstance(G, StyleGenerator) and G.truncation == "w"
    assert G.num_ws == 8 and G.ws_resolutions == (4, 4, 8, 8, 16, 16, 32, 32)
    assert len(G.mapping.net) == 1 + 2 * 8  # PixelNorm + 8 x (EqualLinear, LeakyReLU)
    assert G.const.shape == (1, 32, 4, 4)
    assert G.layers[0].conv is None and all(layer.conv.kernel_size == 3 for layer in G.layers[1:])
    assert [layer.upsample for layer in G.layers] == [False, False, True, False, True, False, True, False]
    assert [layer.adain.scale.out_features for layer in G.layers] == [32] * 6 + [16] * 2
    assert isinstance(G.to_rgb, EqualConv2d) and G.to_rgb.kernel_size == 1
    # one output per step: shape of every layer's activations
    ws = G.broadcast(G.mapping(torch.randn(3, 64)))
    x = G.const.expand(3, -1, -1, -1)
    sides = []
    for i, layer in enumerate(G.layers):
        x = layer(x, ws[:, i])
        sides.append(x.shape[-1])
    assert sides == list(G.ws_resolutions)
    assert G(torch.randn(3, 64)).shape == (3, 1, 32, 32)
    # D: fromRGB at 32 (16 ch), three blocks down to 4x4 (32 ch), mbstd, conv, dense, head
    assert len(D.blocks) == 3 and D.mbstd.group_size == 4
    assert D.conv.in_channels == 33 and D.dense.kernel_size == 4 and D.feature_dim == 32
    out = D.evaluate(torch.randn(6, 1, 32, 32))
    assert out.features.shape == (6, 32) and out.logits.shape == (6,)


def test_every_parameter_gets_a_gradient_through_D_of_G():
    G, D = tiny()
    G.train()
    D(G(torch.randn(4, 8))).sum().backward()
    # at init the first layer sees the constant (all ones) and zero-scaled noise: a flat map whose
    # instance-normalised value is 0, so its style scale y_s has nothing to scale (exactly as in
    # the paper's initialisation) until the noise scales leave 0
    flat = {"layers.0.adain.scale.weight", "layers.0.adain.scale.bias"}
    for name, p in [*G.named_parameters(), *D.named_parameters()]:
        assert p.grad is not None, name
        assert (p.grad.abs().sum() == 0) == (name in flat), name
    G.zero_grad()
    D(with_noise_scales(G, 0.1)(torch.randn(4, 8))).sum().backward()
    assert all(p.grad.abs().sum() > 0 for p in G.parameters())


def test_adain_gives_each_channel_the_styles_mean_and_std():
    torch.manual_seed(3)
    adain = AdaIN(5, 7)
    x, w = 3 * torch.randn(4, 5, 6, 6) + 2, torch.randn(4, 7)
    out = adain(x, w)
    y_s, y_b = adain.scale(w), adain.shift(w)
    torch.testing.assert_close(out.mean(dim=(2, 3)), y_b, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(dim=(2, 3), unbiased=False), y_s.abs(), atol=1e-5, rtol=1e-4)
    # the closed form with an independent instance norm
    ref = y_s[:, :, None, None] * F.instance_norm(x, eps=1e-8) + y_b[:, :, None, None]
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # y_s = A_s(w) is an equalised affine map whose bias starts at 1, y_b's at 0
    torch.testing.assert_close(y_s, w @ (adain.scale.weight / 7 ** 0.5).T + 1)
    torch.testing.assert_close(adain(x, torch.zeros(4, 7)), F.instance_norm(x, eps=1e-8), atol=1e-5, rtol=0)


def test_the_constant_input_is_a_learned_parameter_shared_by_every_sample():
    G, D = tiny()
    assert isinstance(G.const, torch.nn.Parameter) and torch.equal(G.const, torch.ones_like(G.const))
    assert "const" in dict(G.named_parameters())
    before = G.const.detach().clone()
    opt = torch.optim.Adam(G.parameters(), lr=1e-2)
    D(G(torch.randn(4, 8))).mean().backward()
    assert G.const.grad.abs().sum() > 0
    opt.step()
    assert not torch.equal(G.const, before)
    # the constant enters before any style: the first layer's input is the same for every z
    assert G.const.shape[0] == 1


def test_noise_has_no_effect_at_init_and_a_local_one_once_scaled():
    G, _ = tiny()
    G.eval()
    assert all(torch.equal(m.weight, torch.zeros_like(m.weight)) for m in G.modules()
               if isinstance(m, NoiseInput))
    ws = G.broadcast(G.mapping(torch.randn(2, 8)))
    gen = torch.Generator().manual_seed(0)
    a, b = G.synthesis(ws, G.make_noise(2, gen)), G.synthesis(ws, G.make_noise(2, gen))
    assert torch.equal(a, b)  # scales 0: the noise is multiplied away
    with_noise_scales(G)
    noise = G.make_noise(2, gen)
    base = G.synthesis(ws, noise)
    assert (base - G.synthesis(ws, G.make_noise(2, gen))).abs().max() > 1e-3
    # one pixel of the last layer's noise changes that pixel; the rest of the image moves only
    # through the instance statistics of AdaIN (1/HW of the effect)
    bumped = [n.clone() for n in noise]
    bumped[-1][:, :, 5, 9] += 3.0
    diff = (G.synthesis(ws, bumped) - base).abs()[:, 0]           # (2, 16, 16)
    peak = diff[:, 5, 9]
    rest = diff.clone()
    rest[:, 5, 9] = 0
    assert (peak > 20 * rest.amax(dim=(1, 2))).all()
    # the same pixel of the previous layer's noise reaches its 3x3 neighbourhood (one 3x3 conv)
    bumped = [n.clone() for n in noise]
    bumped[-2][:, :, 5, 9] += 3.0
    diff = (G.synthesis(ws, bumped) - base).abs()[:, 0]
    near = diff[:, 4:7, 8:11].clone()
    far = diff.clone()
    far[:, 4:7, 8:11] = 0
    assert (near.amax(dim=(1, 2)) > 20 * far.amax(dim=(1, 2))).all()


def test_noise_comes_from_the_global_rng_unless_given():
    G = with_noise_scales(tiny()[0]).eval()
    z = torch.randn(3, 8)
    torch.manual_seed(11)
    a = G(z)
    torch.manual_seed(11)
    assert torch.equal(a, G(z))
    assert not torch.equal(a, G(z))
    noise = G.make_noise(1, torch.Generator().manual_seed(1))  # batch 1 broadcasts
    ws = G.broadcast(G.mapping(z))
    assert torch.equal(G.synthesis(ws, noise), G.synthesis(ws, noise))


def test_truncation_psi_one_is_the_identity_and_psi_near_zero_gives_the_w_avg_image():
    G = with_noise_scales(tiny()[0])
    G.train()
    for _ in range(5):
        G(torch.randn(16, 8))  # w_avg tracked in training mode
    assert G.w_avg.abs().sum() > 0
    G.eval()
    z = torch.randn(4, 8)
    noise = G.make_noise(1, torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    plain = G(z)
    torch.manual_seed(0)
    assert torch.equal(G(z, psi=1.0), plain)
    truncated = G.synthesis(truncate_w(G.broadcast(G.mapping(z)), G.w_avg, 0.6), noise)
    torch.testing.assert_close(G.synthesis(G.styles(z, psi=0.6), noise), truncated)
    avg_image = G.synthesis(G.broadcast(G.w_avg[None]), noise)
    near_zero = G.synthesis(G.styles(z, psi=1e-6), noise)
    torch.testing.assert_close(near_zero, avg_image.expand_as(near_zero), atol=1e-4, rtol=0)


def test_training_mode_mixes_styles_between_the_synthesis_layers():
    G = tiny()[0].train()
    torch.manual_seed(4)
    z = torch.randn(200, 8)
    ws = G.styles(z)
    own = G.mapping(z)
    from_own = (ws - own[:, None]).abs().amax(-1) < 1e-6
    assert 0.8 < (~from_own[:, -1]).float().mean() < 0.98  # ~90% of the samples are mixed
    assert from_own[:, 0].all()


def test_resume_is_bit_identical_and_the_ema_generator_carries_w_avg(tmp_path, one_thread):
    trainer = Trainer(ExperimentConfig.from_dict(TINY), tmp_path / "full", progress=False)
    trainer.fit()
    # train/ema.py copies buffers: the EMA generator holds w_avg, so truncation works on it
    G, ema = trainer.algorithm.G, trainer.exp.sampling_network()
    assert ema is not G and isinstance(ema, StyleGANGenerator) and not ema.training
    assert G.w_avg.abs().sum() > 0 and torch.equal(ema.w_avg, G.w_avg)
    assert ema.sample(4, torch.Generator().manual_seed(0), psi=0.5).shape == (4, 1, 8, 8)

    half = {**TINY, "train": {**TINY["train"], "steps": 3}}
    Trainer(ExperimentConfig.from_dict(half), tmp_path / "split", progress=False).fit()
    Trainer(ExperimentConfig.from_dict(TINY), tmp_path / "split", resume=True, progress=False).fit()
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "final.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "final.pt")
    assert a["step"] == b["step"] == 6
    _assert_same_state(a, b)
    for name, tensor in a["ema"]["G"]["model"].items():
        assert torch.equal(tensor, b["ema"]["G"]["model"][name]), name
    noise_scales = [t for k, t in a["nets"]["G"].items() if k.endswith("noise.weight")]
    assert noise_scales and all(t.abs().sum() > 0 for t in noise_scales)  # the noise was in play


@pytest.mark.parametrize("shape, fragment", [
    ((1, 28, 28), "power of two >= 8, got 28x28"),
    ((1, 24, 24), "power of two"),
    ((1, 4, 4), "power of two >= 8"),
    ((1, 16, 8), "square"),
    ((2,), "needs images"),
])
def test_bad_shapes_are_one_line_errors(shape, fragment):
    with pytest.raises(GanforgeError, match=fragment) as err:
        build("stylegan", shape)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("key, value, fragment", [
    ("width", 0, "width=0 is not a positive integer"),
    ("mapping_layers", True, "mapping_layers"),
    ("mapping_lr_mul", 0, r"mapping_lr_mul=0 is not a number in \(0, 1\]"),
    ("w_avg_beta", 1.5, "w_avg_beta"),
    ("mixing_prob", 2, "mixing_prob must lie in"),
    ("colour", 3, "colour"),
])
def test_bad_model_options_are_one_line_errors(key, value, fragment):
    with pytest.raises(GanforgeError, match=fragment) as err:
        build({"name": "stylegan", key: value}, (1, 16, 16))
    assert "\n" not in str(err.value)


def test_bad_synthesis_inputs_and_class_labels_are_one_line_errors():
    G, _ = tiny()
    with pytest.raises(GanforgeError, match="synthesis needs ws of shape"):
        G.synthesis(torch.randn(2, 3, 8))
    with pytest.raises(GanforgeError, match="noise maps"):
        G.synthesis(torch.randn(2, G.num_ws, 8), noise=G.make_noise(1)[:2])
    with pytest.raises(GanforgeError, match="unconditional"):
        G(torch.randn(2, 8), torch.tensor([1, 2]))
    with pytest.raises(GanforgeError, match="psi must lie in"):
        G.sample(2, psi=0)


@pytest.mark.skipif(not (FASHION / "train-images-idx3-ubyte.gz").exists(), reason="no Fashion-MNIST")
def test_the_cli_refuses_unpadded_fashion_writing_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "fashion-stylegan", "--steps", "2", "--quiet", "--out", str(out),
                 "--set", f"data.root={FASHION}", "--set", "data.download=false",
                 "--set", "data.pad_to=null"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "28x28" in err[0] and "data.size" in err[0], err
    assert not out.exists()


def test_the_preset_is_a_32px_stylegan_with_r1_and_ema():
    cfg = load_config("fashion-stylegan")
    assert cfg.model["name"] == "stylegan" and cfg.algorithm["name"] == "gan"
    assert cfg.data["pad_to"] == 32 and cfg.train.threads == 1 and cfg.train.ema_decay
    assert cfg.algorithm["loss"]["name"] == "r1" and cfg.algorithm["loss"]["gamma"] > 0
    assert cfg.optim["G"]["betas"] == [0.0, 0.99]
    assert "measured" in cfg.description
    G, _ = build(cfg.model, (1, 32, 32))
    assert G.num_ws == 8 and cfg.model["mapping_layers"] == 8 and cfg.model["mapping_lr_mul"] == 0.01


@pytest.mark.slow
def test_stylegan_learns_digits_at_16px(tmp_path, one_thread):
    """800 steps (~1.5 min of one CPU thread; 3.8 min wall on a shared machine): FID (LeNet-digits
    features) of the EMA generator falls well below the untrained generator's, and coarse styles
    decide the digit more than fine ones."""
    from ganforge.data import build_dataset
    from ganforge.latent.style import style_layers
    from ganforge.metrics.evaluate import Evaluator

    tree = {"seed": 0, "data": {"name": "digits", "size": 16},
            "model": {"name": "stylegan", "z_dim": 32, "w_dim": 32, "width": 16, "max_width": 32},
            "algorithm": {"name": "gan", "loss": {"name": "r1", "gamma": 0.1}},
            "optim": {"G": {"name": "adam", "lr": 2e-3, "betas": [0.0, 0.99]},
                      "D": {"name": "adam", "lr": 2e-3, "betas": [0.0, 0.99]}},
            "train": {"steps": 800, "batch_size": 32, "log_every": 200, "sample_every": 800,
                      "checkpoint_every": 800, "num_fixed_samples": 16, "ema_decay": 0.99}}
    trainer = Trainer(ExperimentConfig.from_dict(tree), tmp_path / "run", progress=False)
    untrained = trainer.exp.sampling_network().eval()
    ds = build_dataset({"name": "digits", "size": 16})
    ev = Evaluator(ds, "fid", extractor="lenet_digits", num_samples=800, seed=0)
    gen = torch.Generator().manual_seed(1)
    fid_before = ev.score(untrained.sample(800, gen))["fid_lenet_digits"]
    trainer.fit()
    G = trainer.exp.sampling_network().eval()
    fid_after = ev.score(G.sample(800, torch.Generator().manual_seed(1)))["fid_lenet_digits"]
    baseline = ev.baseline()["fid_lenet_digits"]
    print(f"FID lenet_digits: untrained {fid_before:.2f}, trained {fid_after:.2f}, real {baseline:.2f}")
    assert fid_after < 0.2 * fid_before  # measured: 373 -> 35 (real 1.5)

    # coarse styles from B make the digit B's more often than fine styles from B do
    classify = ev.extractor
    z_a, z_b = G.sample_z(400, gen), G.sample_z(400, gen)
    noise = G.make_noise(1, gen)
    with torch.no_grad():
        ws_a, ws_b = G.broadcast(G.mapping(z_a)), G.broadcast(G.mapping(z_b))

        def label(ws):
            return classify(G.synthesis(ws, noise))[1].argmax(1)

        la, lb = label(ws_a), label(ws_b)
        share = {}
        for group in ("coarse", "fine"):
            idx = list(style_layers(G, group))
            mask = torch.zeros(G.num_ws, dtype=torch.bool)
            mask[idx] = True
            mixed = torch.where(mask[None, :, None], ws_b, ws_a)
            differ = la != lb
            share[group] = (label(mixed)[differ] == lb[differ]).float().mean().item()
    print(f"mixed digit follows B: coarse {share['coarse']:.2f}, fine {share['fine']:.2f}")
    assert share["coarse"] > share["fine"] + 0.3  # measured: 0.79 vs 0.05
