"""models/style.py, shared by StyleGAN and StyleGAN2: the mapping network and its learning-rate
multiplier, truncation in W, style mixing and its regularisation, and w_avg tracking."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.models.equalized import EqualLinear
from ganforge.models.style import MappingNetwork, StyleGenerator, mix_styles, truncate_w


class EchoG(StyleGenerator):
    """A style generator whose synthesis returns its styles, so tests can read what each layer got."""

    def __init__(self, z_dim: int = 4, w_dim: int = 3, num_ws: int = 5, **kwargs) -> None:
        super().__init__(w_dim, **kwargs)
        self.z_dim, self.w_dim, self.num_ws, self.out_shape = z_dim, w_dim, num_ws, (num_ws, w_dim)
        self.mapping = MappingNetwork(z_dim, w_dim, layers=2)

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        return ws


def test_mapping_network_is_pixelnorm_then_eight_equalised_layers_with_lr_mul():
    f = MappingNetwork(16, 32)
    linears = [m for m in f.modules() if isinstance(m, EqualLinear)]
    assert len(linears) == 8 and all(m.lr_mul == 0.01 for m in linears)
    assert [(m.in_features, m.out_features) for m in linears] == [(16, 32)] + [(32, 32)] * 7
    slopes = [m.negative_slope for m in f.modules() if isinstance(m, nn.LeakyReLU)]
    assert slopes == [0.2] * 8
    # z is normalised first: scaling z does not change w
    z = torch.randn(6, 16)
    torch.testing.assert_close(f(z), f(3.0 * z))
    assert f(z).shape == (6, 32)


def test_lr_mul_keeps_the_effective_weight_he_scaled_and_shrinks_the_sgd_step_100x():
    torch.manual_seed(0)
    slow = EqualLinear(256, 256, lr_mul=0.01)
    fast = EqualLinear(256, 256, lr_mul=1.0)
    he = math.sqrt(2 / 256)
    for layer in (slow, fast):
        assert layer.effective_weight().std().item() == pytest.approx(he, rel=0.02)
    # the same effective weights, the same loss: the stored weight's gradient is lr_mul times
    # smaller, so one SGD step moves the effective weights lr_mul^2 = 1e-4 times as far
    # (dW_eff = scale * dW_hat, dW_hat = -lr * scale * g, scale = c * lr_mul)...
    slow.double(), fast.double()  # float64: the stored slow weights are 100x larger than their step
    with torch.no_grad():
        slow.weight.copy_(fast.weight / 0.01)
    torch.testing.assert_close(slow.effective_weight(), fast.effective_weight())
    x = torch.randn(32, 256, dtype=torch.float64)
    steps, grads = [], []
    for layer in (slow, fast):
        before = layer.effective_weight().detach().clone()
        opt = torch.optim.SGD(layer.parameters(), lr=0.1)
        layer(x).pow(2).mean().backward()
        grads.append(layer.weight.grad.clone())
        opt.step()
        steps.append((layer.effective_weight().detach() - before).norm().item())
    torch.testing.assert_close(grads[0], 0.01 * grads[1])  # the stored weight's gradient x lr_mul
    assert steps[0] / steps[1] == pytest.approx(0.01 ** 2, rel=1e-3)
    # ... and under Adam, whose step on the stored weight is ~lr whatever the gradient scale, the
    # effective weight moves lr_mul times as far: the paper's "100x lower learning rate".
    adam_steps = []
    for layer in (EqualLinear(64, 64, lr_mul=0.01), EqualLinear(64, 64)):
        before = layer.effective_weight().detach().clone()
        opt = torch.optim.Adam(layer.parameters(), lr=1e-3)
        layer(torch.randn(16, 64)).pow(2).mean().backward()
        opt.step()
        adam_steps.append((layer.effective_weight().detach() - before).abs().mean().item())
    assert adam_steps[0] / adam_steps[1] == pytest.approx(0.01, rel=0.05)


def test_truncate_w_is_the_closed_form():
    w, avg = torch.randn(5, 7), torch.randn(7)
    torch.testing.assert_close(truncate_w(w, avg, 1.0), w)
    torch.testing.assert_close(truncate_w(w, avg, 0.0), avg.expand(5, 7))
    torch.testing.assert_close(truncate_w(w, avg, 0.7), avg + 0.7 * (w - avg))


def test_mix_styles_takes_the_first_crossover_layers_from_the_first_codes():
    a, b = torch.zeros(3, 4, 2), torch.ones(3, 4, 2)
    out = mix_styles(a, b, torch.tensor([0, 2, 4]))
    assert out[:, :, 0].tolist() == [[1, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 0]]


def test_mixing_regularisation_mixes_about_90_percent_with_uniform_crossovers():
    torch.manual_seed(1)
    G = EchoG(num_ws=5).train()
    n = 4000
    z = torch.randn(n, 4)
    own = G.mapping(z).detach()
    ws = G(z).detach()
    from_own = (ws - own[:, None]).abs().amax(-1) < 1e-6          # (n, num_ws)
    first = from_own[:, 0]
    assert first.all()  # layer 0 always comes from the sample's own code
    crossover = from_own.sum(1)                                   # own styles form a prefix
    assert torch.equal(from_own, torch.arange(5)[None] < crossover[:, None])
    mixed = crossover < 5
    share = mixed.float().mean().item()
    assert abs(share - 0.9) < 4 * math.sqrt(0.9 * 0.1 / n)
    counts = torch.bincount(crossover[mixed], minlength=5)[1:5].float()
    expected = mixed.sum() / 4
    assert ((counts - expected).abs() < 4 * expected.sqrt() + 1).all()  # uniform over 1..4
    # the second code is a fresh one, different for every mixed sample
    other = ws[mixed, -1]
    assert torch.cdist(other, own[mixed]).diagonal().min() > 1e-4


def test_no_mixing_in_eval_mode_or_with_mixing_prob_zero():
    z = torch.randn(64, 4)
    G = EchoG().eval()
    torch.testing.assert_close(G(z), G.broadcast(G.mapping(z)))
    G0 = EchoG(mixing_prob=0).train()
    torch.testing.assert_close(G0(z), G0.broadcast(G0.mapping(z)))


def test_w_avg_is_an_ema_of_the_batch_means_of_w_and_tracks_the_mean():
    G = EchoG(w_avg_beta=0.9).train()
    z = torch.randn(32, 4)
    G(z)
    torch.testing.assert_close(G.w_avg, 0.1 * G.mapping(z).mean(0).detach())
    for _ in range(150):
        G(torch.randn(256, 4))
    mean = G.mapping(torch.randn(100_000, 4)).mean(0).detach()
    spread = G.mapping(torch.randn(1000, 4)).std(0).detach()
    assert ((G.w_avg - mean).abs() < 0.1 * spread).all()
    frozen = G.w_avg.clone()
    G.eval()(torch.randn(8, 4))
    torch.testing.assert_close(G.w_avg, frozen)  # eval mode only reads it


def test_truncation_psi_one_is_the_identity_and_psi_to_zero_gives_w_avg():
    G = EchoG().eval()
    G.w_avg.copy_(torch.randn(3))
    z = torch.randn(10, 4)
    torch.testing.assert_close(G(z, psi=1.0), G(z))
    torch.testing.assert_close(G(z, psi=1e-7), G.w_avg.expand(10, 5, 3), atol=1e-6, rtol=0)
    torch.testing.assert_close(G(z, psi=0.5), truncate_w(G(z), G.w_avg, 0.5))
    assert G.truncation == "w"
    assert G.sample(4, torch.Generator().manual_seed(0), psi=0.5).shape == (4, 5, 3)


def test_bad_mixing_prob_labels_and_psi_are_one_line_errors():
    for bad in (1.5, -0.1, True, "0.9"):
        with pytest.raises(GanforgeError, match="mixing_prob must lie in"):
            EchoG(mixing_prob=bad)
    G = EchoG()
    with pytest.raises(GanforgeError, match="unconditional"):
        G(torch.randn(2, 4), torch.tensor([0, 1]))
    for psi in (0.0, 1.5, -1):
        with pytest.raises(GanforgeError, match=r"psi must lie in \(0, 1\]"):
            G.sample(2, psi=psi)
