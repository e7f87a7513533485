"""DCGAN: the exact 28x28 table, the same rule at other sizes, init, gradients, and learning."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.models import build
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator


def stage_shapes(net: nn.Sequential, x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Per-sample output shape of each named stage of ``net``, stepping through it on ``x``."""
    shapes = {}
    for name, stage in net.named_children():
        x = stage(x)
        shapes[name] = tuple(x.shape[1:])
    return shapes


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("channels", [1, 3])
def test_28x28_table_shapes(channels: int) -> None:
    G, D = build("dcgan", (channels, 28, 28))
    assert isinstance(G, DCGANGenerator) and isinstance(D, DCGANDiscriminator)
    assert (G.z_dim, G.out_shape, D.in_shape) == (100, (channels, 28, 28), (channels, 28, 28))

    g_shapes = stage_shapes(G.net, torch.randn(2, 100))
    assert g_shapes == {
        "project": (256, 7, 7),
        "up1": (128, 14, 14),
        "up2": (64, 28, 28),
        "to_image": (channels, 28, 28),
    }
    d_shapes = stage_shapes(D.net, torch.randn(2, channels, 28, 28))
    assert d_shapes == {
        "down1": (64, 14, 14),
        "down2": (128, 7, 7),
        "down3": (256, 4, 4),
        "flatten": (4096,),
    }
    assert D.feature_dim == 4096 and D.head.in_features == 4096 and D.head.out_features == 1


def test_28x28_table_uses_5x5_kernels_and_seed_activations() -> None:
    G, D = build("dcgan", (1, 28, 28))
    modules = [*G.modules(), *D.modules()]
    convs = [m for m in modules if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert len(convs) == 6 and all(m.kernel_size == (5, 5) for m in convs)
    assert [m.stride for m in convs] == [(2, 2), (2, 2), (1, 1), (2, 2), (2, 2), (2, 2)]
    assert sum(isinstance(m, nn.ReLU) for m in G.modules()) == 3
    assert isinstance(G.net.to_image[-1], nn.Tanh)
    slopes = [m.negative_slope for m in D.modules() if isinstance(m, nn.LeakyReLU)]
    assert slopes == [0.2, 0.2, 0.2]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())  # the seed table


def test_28x28_parameter_counts_by_hand() -> None:
    G, D = build("dcgan", (1, 28, 28))
    # G (no bias before BatchNorm; each BatchNorm has a scale and a shift per channel)
    project = 100 * 7 * 7 * 256 + 2 * 256  # 1_254_400 + 512
    up1 = 256 * 128 * 5 * 5 + 2 * 128  # 819_200 + 256
    up2 = 128 * 64 * 5 * 5 + 2 * 64  # 204_800 + 128
    to_image = 64 * 1 * 5 * 5 + 1  # 1_600 + 1 bias
    assert project + up1 + up2 + to_image == 2_280_897
    assert n_params(G) == 2_280_897
    assert [n_params(s) for s in G.net] == [project, up1, up2, to_image]
    # D (every conv has a bias: no BatchNorm in the seed table)
    down1 = 1 * 64 * 5 * 5 + 64  # 1_600 + 64
    down2 = 64 * 128 * 5 * 5 + 128  # 204_800 + 128
    down3 = 128 * 256 * 5 * 5 + 256  # 819_200 + 256
    logit = 4 * 4 * 256 + 1  # 4_096 + 1
    assert down1 + down2 + down3 + logit == 1_030_145
    assert n_params(D) == 1_030_145


@pytest.mark.parametrize("size", [8, 16, 28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_same_rule_at_other_sizes(size: int, channels: int) -> None:
    w, z_dim = 8, 12
    G, D = build({"name": "dcgan", "width": w, "z_dim": z_dim}, (channels, size, size))
    g_shapes = stage_shapes(G.net, torch.randn(2, z_dim))
    assert list(g_shapes.values()) == [
        (4 * w, size // 4, size // 4),
        (2 * w, size // 2, size // 2),
        (w, size, size),
        (channels, size, size),
    ]
    s1, s2, s3 = (math.ceil(size / 2**k) for k in (1, 2, 3))
    d_shapes = stage_shapes(D.net, torch.randn(2, channels, size, size))
    assert list(d_shapes.values()) == [
        (w, s1, s1), (2 * w, s2, s2), (4 * w, s3, s3), (4 * w * s3 * s3,),
    ]
    assert D.head.in_features == 4 * w * s3 * s3
    assert G(torch.randn(3, z_dim)).shape == (3, channels, size, size)
    assert D(torch.randn(3, channels, size, size)).shape == (3,)


def test_default_width_is_the_seed_table_at_64x64() -> None:
    G, D = build("dcgan", (3, 64, 64))
    assert G.net.project[0].out_features == 256 * 16 * 16
    assert D.head.in_features == 256 * 8 * 8


@pytest.mark.parametrize("shape", [(1, 30, 30), (1, 28, 32), (3, 2, 2), (1, 10, 10)])
def test_bad_image_size_names_size_and_fix(shape: tuple[int, int, int]) -> None:
    with pytest.raises(GanforgeError) as err:
        build("dcgan", shape)
    message = str(err.value)
    assert f"{shape[1]}x{shape[2]}" in message and "data.size=" in message
    assert "\n" not in message


def test_points_are_refused_with_a_pointer_to_mlp() -> None:
    with pytest.raises(GanforgeError, match="mlp"):
        build("dcgan", (2,))


def test_unknown_config_key_is_named() -> None:
    with pytest.raises(GanforgeError, match="'widht'.*width"):
        build({"name": "dcgan", "widht": 32}, (1, 28, 28))


@pytest.mark.parametrize(("key", "value"), [("width", 0), ("z_dim", "100"), ("d_batchnorm", "no")])
def test_bad_config_values(key: str, value: object) -> None:
    with pytest.raises(GanforgeError, match=key):
        build({"name": "dcgan", key: value}, (1, 16, 16))


def test_d_batchnorm_skips_the_input_layer() -> None:
    _, D = build({"name": "dcgan", "width": 8, "d_batchnorm": True}, (1, 16, 16))
    has_bn = [any(isinstance(m, nn.BatchNorm2d) for m in D.net[i]) for i in range(3)]
    assert has_bn == [False, True, True]
    assert D.net.down1[0].bias is not None
    assert D.net.down2[0].bias is None and D.net.down3[0].bias is None
    assert D(torch.randn(4, 1, 16, 16)).shape == (4,)


def test_outputs_tanh_range_and_logit_shape() -> None:
    torch.manual_seed(0)
    G, D = build({"name": "dcgan", "width": 8}, (3, 16, 16))
    with torch.no_grad():
        G.net.to_image[0].bias.fill_(10.0)  # push the tanh into saturation
        x = G(100 * torch.randn(8, 100))
    assert x.shape == (8, 3, 16, 16)
    assert x.min() >= -1 and x.max() <= 1 and x.max() > 0.99
    logits = D(x)
    assert logits.shape == (8,) and logits.dtype == torch.float32


@pytest.mark.parametrize("d_batchnorm", [False, True])
def test_gradients_reach_every_generator_parameter_through_d(d_batchnorm: bool) -> None:
    torch.manual_seed(0)
    G, D = build({"name": "dcgan", "width": 8, "d_batchnorm": d_batchnorm}, (1, 16, 16))
    D(G(torch.randn(6, 100))).mean().backward()
    for module in (G, D):
        for name, p in module.named_parameters():
            assert p.grad is not None, name
            assert torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name


def test_dcgan_init_statistics() -> None:
    torch.manual_seed(0)
    G, D = build("dcgan", (1, 28, 28))
    modules = [*G.modules(), *D.modules()]
    weighted = [m for m in modules if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear)]
    assert len(weighted) == 8
    for m in weighted:
        if m.weight.numel() >= 1000:  # enough draws for a tight std estimate
            assert m.weight.std().item() == pytest.approx(0.02, rel=0.1)
            assert abs(m.weight.mean().item()) < 0.002
        if m.bias is not None:
            assert torch.all(m.bias == 0)
    everything = torch.cat([m.weight.flatten() for m in weighted])
    assert everything.std().item() == pytest.approx(0.02, rel=0.01)
    norms = [m for m in modules if isinstance(m, nn.BatchNorm2d)]
    scales = torch.cat([m.weight for m in norms])
    assert len(norms) == 3 and scales.numel() == 256 + 128 + 64
    assert scales.mean().item() == pytest.approx(1.0, abs=0.005)
    assert scales.std().item() == pytest.approx(0.02, rel=0.2)
    assert all(torch.all(m.bias == 0) for m in norms)


def test_num_classes_and_labels_are_accepted_and_ignored() -> None:
    torch.manual_seed(0)
    G, D = build({"name": "dcgan", "width": 8}, (1, 8, 8), num_classes=10)
    G.eval()
    D.eval()
    z, y = torch.randn(4, 100), torch.arange(4)
    assert torch.equal(G(z, y), G(z))
    assert torch.equal(D(G(z), y), D(G(z)))


# ---------------------------------------------------------------------------------------------
# Learning checks: tiny, seeded, and with wide margins over what every seed 0..7 achieved.



def bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def bright_squares(n: int) -> torch.Tensor:
    """16x16 images: a +1 square (8x8) in the middle of a -1 background; mean pixel -0.5."""
    x = torch.full((n, 1, 16, 16), -1.0)
    x[:, :, 4:12, 4:12] = 1.0
    return x


def test_discriminator_learns_to_separate_squares_from_initial_fakes(one_thread: None) -> None:
    torch.manual_seed(0)
    G, D = build({"name": "dcgan", "z_dim": 16, "width": 16}, (1, 16, 16))
    real = bright_squares(32)
    with torch.no_grad():
        fake = G(torch.randn(32, 16))
    opt = torch.optim.Adam(D.parameters(), 1e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(20):
        loss = bce(D(real), 1.0) + bce(D(fake), 0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(math.log(4), abs=0.05)  # chance: D knows nothing yet
    assert losses[-1] < 0.3  # seeds 0..7 all reach < 0.1


def test_generator_learns_a_bright_square(one_thread: None) -> None:
    torch.manual_seed(0)
    G, D = build({"name": "dcgan", "z_dim": 16, "width": 16}, (1, 16, 16))
    g_opt = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    real, z_eval = bright_squares(32), torch.randn(64, 16)

    def mean_image() -> torch.Tensor:
        G.eval()
        with torch.no_grad():
            x = G(z_eval).mean(0)
        G.train()
        return x

    before = mean_image()
    for _ in range(40):
        d_loss = bce(D(real), 1.0) + bce(D(G(torch.randn(32, 16)).detach()), 0.0)
        d_opt.zero_grad()
        d_loss.backward()
        d_opt.step()
        g_loss = bce(D(G(torch.randn(32, 16))), 1.0)  # the non-saturating loss
        g_opt.zero_grad()
        g_loss.backward()
        g_opt.step()
    after = mean_image()

    target = real[0]
    assert abs(before.mean() - target.mean()) > 0.45  # starts grey (about 0) vs -0.5
    assert abs(after.mean() - target.mean()) < 0.15
    # Not just the mean pixel: the square's layout appears (per-pixel error was 1.0).
    assert (before - target).abs().mean() > 0.95
    assert (after - target).abs().mean() < 0.4
