"""The fully connected GAN: output heads, the seed MNIST preset, dropout, checks, learning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.config import load_preset
from ganforge.errors import GanforgeError
from ganforge.models import build
from ganforge.models.mlp import MLPDiscriminator, MLPGenerator


def linear_dims(module: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, nn.Linear)]


def test_defaults_for_points_give_a_linear_output() -> None:
    torch.manual_seed(0)
    G, D = build("mlp", (2,))
    assert isinstance(G, MLPGenerator) and isinstance(D, MLPDiscriminator)
    assert (G.z_dim, G.out_shape, D.in_shape) == (64, (2,), (2,))
    assert linear_dims(G) == [(64, 256), (256, 256), (256, 2)]
    assert linear_dims(D) == [(2, 256), (256, 256), (256, 1)]
    assert not any(isinstance(m, nn.Tanh | nn.Dropout | nn.BatchNorm1d)
                   for m in [*G.modules(), *D.modules()])
    with torch.no_grad():
        G.out.bias.fill_(5.0)  # a linear head can place points anywhere, e.g. beyond 1
        x = G(torch.randn(16, 64))
    assert x.shape == (16, 2) and x.min() > 1
    assert D(x).shape == (16,)


def test_images_get_a_tanh_output_in_image_shape() -> None:
    torch.manual_seed(0)
    G, D = build({"name": "mlp", "z_dim": 10}, (1, 28, 28))
    assert linear_dims(G)[-1] == (256, 784) and linear_dims(D)[0] == (784, 256)
    with torch.no_grad():
        G.out.bias.fill_(5.0)
        x = G(10 * torch.randn(8, 10))
    assert x.shape == (8, 1, 28, 28)
    assert x.min() >= -1 and x.max() <= 1 and x.max() > 0.99
    assert D(x).shape == (8,)


def test_seed_mnist_preset_is_the_reference_architecture() -> None:
    G, D = build(load_preset("mnist-mlp")["model"], (1, 28, 28))
    assert G.z_dim == 100
    assert linear_dims(G) == [(100, 256), (256, 512), (512, 1024), (1024, 784)]
    assert linear_dims(D) == [(784, 1024), (1024, 512), (512, 256), (256, 1)]
    slopes = {m.negative_slope for m in [*G.modules(), *D.modules()] if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.2}
    assert [m.p for m in D.modules() if isinstance(m, nn.Dropout)] == [0.3, 0.3, 0.3]
    assert isinstance(G.squash, nn.Tanh)


def test_dropout_is_active_only_in_train_mode() -> None:
    torch.manual_seed(0)
    _, D = build({"name": "mlp", "d_dropout": 0.3}, (1, 8, 8))
    x = torch.randn(32, 1, 8, 8)
    D.train()
    assert not torch.equal(D(x), D(x))
    D.eval()
    assert torch.equal(D(x), D(x))


def test_generator_batchnorm_option() -> None:
    torch.manual_seed(0)
    G, _ = build({"name": "mlp", "g_batchnorm": True, "g_hidden": [32, 16]}, (2,))
    norms = [m for m in G.modules() if isinstance(m, nn.BatchNorm1d)]
    assert [m.num_features for m in norms] == [32, 16]
    assert [m.bias is None for m in G.modules() if isinstance(m, nn.Linear)] == [True, True, False]
    assert G(torch.randn(5, 64)).shape == (5, 2)


def test_hidden_widths_and_slope_are_configurable() -> None:
    G, D = build({"name": "mlp", "z_dim": 3, "g_hidden": [7], "d_hidden": [], "slope": 0.1},
                 (2,))
    assert linear_dims(G) == [(3, 7), (7, 2)]
    assert linear_dims(D) == [(2, 1)]  # no hidden layers: logistic regression
    assert [m.negative_slope for m in G.modules() if isinstance(m, nn.LeakyReLU)] == [0.1]


@pytest.mark.parametrize("g_batchnorm", [False, True])
def test_gradients_reach_every_generator_parameter_through_d(g_batchnorm: bool) -> None:
    torch.manual_seed(0)
    G, D = build({"name": "mlp", "g_batchnorm": g_batchnorm, "d_dropout": 0.2}, (1, 8, 8))
    D(G(torch.randn(6, 64))).mean().backward()
    for module in (G, D):
        for name, p in module.named_parameters():
            assert p.grad is not None, name
            assert torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    ("section", "match"),
    [
        ({"name": "mlp", "hidden": [64]}, "'hidden'.*g_hidden"),
        ({"name": "mlp", "d_dropout": 1.0}, "d_dropout"),
        ({"name": "mlp", "g_hidden": [256, 0]}, "g_hidden"),
        ({"name": "mlp", "d_hidden": "256"}, "d_hidden"),
        ({"name": "mlp", "z_dim": 0}, "z_dim"),
        ({"name": "mlp", "slope": -0.2}, "slope"),
        ({"name": "mlp", "g_batchnorm": "yes"}, "g_batchnorm"),
    ],
)
def test_bad_config_is_a_one_line_error(section: dict, match: str) -> None:
    with pytest.raises(GanforgeError, match=match) as err:
        build(section, (2,))
    assert "\n" not in str(err.value)


def test_unsupported_sample_shape() -> None:
    with pytest.raises(GanforgeError, match=r"\(28, 28\)"):
        build("mlp", (28, 28))


def test_num_classes_and_labels_are_accepted_and_ignored() -> None:
    torch.manual_seed(0)
    G, D = build("mlp", (2,), num_classes=3)
    z, y = torch.randn(4, 64), torch.tensor([0, 1, 2, 0])
    assert torch.equal(G(z, y), G(z))
    assert torch.equal(D(G(z), y), D(G(z)))



def test_mlp_gan_learns_the_mean_of_a_gaussian(one_thread: None) -> None:
    """Non-saturating GAN on N((3, 3), 0.5^2 I): G starts near the origin and must move ~4.2.

    GAN iterates circle the target, so the check averages G's batch means over the last 50
    steps (seeds 0..11 all end within 0.3 per coordinate)."""
    torch.manual_seed(0)
    z_dim, n = 8, 64
    G, D = build({"name": "mlp", "z_dim": z_dim, "g_hidden": [64, 64], "d_hidden": [64, 64]},
                 (2,))
    g_opt = torch.optim.Adam(G.parameters(), 1e-3, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(D.parameters(), 1e-3, betas=(0.5, 0.999))
    mu = torch.tensor([3.0, 3.0])
    ones, zeros = torch.ones(n), torch.zeros(n)
    with torch.no_grad():
        start = G(torch.randn(1000, z_dim)).mean(0)
    batch_means = []
    for _ in range(200):
        real = mu + 0.5 * torch.randn(n, 2)
        fake = G(torch.randn(n, z_dim))
        d_loss = (F.binary_cross_entropy_with_logits(D(real), ones)
                  + F.binary_cross_entropy_with_logits(D(fake.detach()), zeros))
        d_opt.zero_grad()
        d_loss.backward()
        d_opt.step()
        fake = G(torch.randn(n, z_dim))
        g_loss = F.binary_cross_entropy_with_logits(D(fake), ones)  # non-saturating
        g_opt.zero_grad()
        g_loss.backward()
        g_opt.step()
        batch_means.append(fake.detach().mean(0))
    end = torch.stack(batch_means[-50:]).mean(0)
    assert (start - mu).abs().min() > 2.5
    assert (end - mu).abs().max() < 0.5
