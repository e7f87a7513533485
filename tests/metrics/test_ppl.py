"""Perceptual path length against closed forms on a linear style generator, against a jvp on a
tiny StyleGAN2, the paper's percentile trimming against numpy, and the in-project LeNet
feature space."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.metrics.ppl import (
    evaluate_ppl,
    lenet_features,
    path_distances,
    perceptual_path_length,
    slerp,
    trimmed_mean,
)
from ganforge.models import build


class LinearStyleG(nn.Module):
    """f(z) = M z, g(ws) = A mean_l(ws) as a (1, 2, 2) image: path lengths have closed forms."""

    def __init__(self, z_dim: int = 3, w_dim: int = 3, num_ws: int = 2) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.z_dim, self.num_ws = z_dim, num_ws
        self.M = torch.randn(w_dim, z_dim, dtype=torch.double)
        self.A = torch.randn(4, w_dim, dtype=torch.double)
        self.dummy = nn.Parameter(torch.zeros((), dtype=torch.double))  # device lookup

    def sample_z(self, n, generator=None, device=None):
        return torch.randn(n, self.z_dim, generator=generator).double()

    def mapping(self, z):
        return z @ self.M.T

    def broadcast(self, w):
        return w.unsqueeze(1).expand(-1, self.num_ws, -1)

    def synthesis(self, ws):
        return (ws.mean(1) @ self.A.T).view(-1, 1, 2, 2)


def flat(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1)


def test_w_space_path_length_of_a_linear_generator_is_exact():
    """d(g(lerp(w1, w2, t)), g(lerp(w1, w2, t + eps))) / eps^2 = ||A M (z2 - z1)||^2 for every t."""
    G = LinearStyleG()
    got = path_distances(G, flat, 50, space="w", generator=torch.Generator().manual_seed(3))
    z = torch.randn(100, 3, generator=torch.Generator().manual_seed(3)).double()
    expected = ((z[50:] - z[:50]) @ (G.A @ G.M).T).square().sum(1)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=0)


def test_z_space_path_length_is_the_slerp_derivative():
    """With slerp in Z: ||A M d/dt slerp(z1, z2, t)||^2, the derivative in closed form:
    omega (-cos((1 - t) omega) a + cos(t omega) b) / sin(omega) for unit a, b."""
    G = LinearStyleG(z_dim=4)
    gen = torch.Generator().manual_seed(4)
    got = path_distances(G, flat, 40, space="z", generator=gen, eps=1e-6)
    gen = torch.Generator().manual_seed(4)
    z = torch.randn(80, 4, generator=gen).double()
    t = torch.rand(40, generator=gen).double()[:, None]
    a = z[:40] / z[:40].norm(dim=1, keepdim=True)
    b = z[40:] / z[40:].norm(dim=1, keepdim=True)
    omega = torch.acos((a * b).sum(1, keepdim=True))
    velocity = omega * (-torch.cos((1 - t) * omega) * a + torch.cos(t * omega) * b) / torch.sin(omega)
    expected = (velocity @ (G.A @ G.M).T).square().sum(1)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-8)


def test_slerp_stays_on_the_sphere_between_its_ends():
    a, b = torch.randn(5, 6, dtype=torch.double), torch.randn(5, 6, dtype=torch.double)
    unit = lambda v: v / v.norm(dim=1, keepdim=True)  # noqa: E731
    torch.testing.assert_close(slerp(a, b, torch.zeros(5, dtype=torch.double)), unit(a))
    torch.testing.assert_close(slerp(a, b, torch.ones(5, dtype=torch.double)), unit(b))
    mid = slerp(a, b, torch.full((5,), 0.5, dtype=torch.double))
    torch.testing.assert_close(mid.norm(dim=1), torch.ones(5, dtype=torch.double))
    torch.testing.assert_close(mid, unit(unit(a) + unit(b)))


def test_untrimmed_mean_matches_the_expected_closed_form():
    """E ||A M (z2 - z1)||^2 = 2 ||A M||_F^2 for z ~ N(0, I)."""
    G = LinearStyleG()
    ppl = perceptual_path_length(G, flat, 20000, generator=torch.Generator().manual_seed(0),
                                 trim=None, batch_size=5000)
    assert ppl == pytest.approx(2 * (G.A @ G.M).square().sum().item(), rel=0.03)


def test_trimming_discards_the_1_and_99_percentiles_as_numpy_does():
    values = torch.randn(997, generator=torch.Generator().manual_seed(1)).double().exp()
    v = values.numpy()
    lo, hi = np.percentile(v, 1, method="lower"), np.percentile(v, 99, method="higher")
    expected = v[(v >= lo) & (v <= hi)].mean()
    assert trimmed_mean(values) == pytest.approx(expected, rel=1e-12)
    assert trimmed_mean(values, None) == pytest.approx(v.mean(), rel=1e-12)
    outlier = torch.cat([torch.ones(200, dtype=torch.double), torch.tensor([1e9], dtype=torch.double)])
    assert trimmed_mean(outlier) == 1.0


def test_a_stylegan2_generator_path_length_matches_its_jacobian():
    """On a real (tiny) synthesis network: the finite difference over eps equals ||J (w2 - w1)||^2
    from a forward-mode jvp, to O(eps); noise is the same for both images of a pair."""
    torch.manual_seed(0)
    G, _ = build({"name": "stylegan2", "z_dim": 4, "w_dim": 4, "mapping_layers": 2, "width": 2,
                  "max_width": 4}, (1, 8, 8))
    G = G.double()
    for layer in G.layers:
        nn.init.constant_(layer.noise_strength, 0.3)
    G.train()
    got = path_distances(G, flat, 6, generator=torch.Generator().manual_seed(2), eps=1e-5)
    assert G.training and G.noise_mode == "auto"  # restored
    G.eval()
    gen = torch.Generator().manual_seed(2)
    z = torch.randn(12, 4, generator=gen).double()
    t = torch.rand(6, generator=gen).double()
    with torch.no_grad():
        w1, w2 = G.mapping(z[:6]), G.mapping(z[6:])
    wt = torch.lerp(w1, w2, t[:, None])
    noise = G.make_noise(6, gen)  # the pair's shared maps, drawn after z and t
    _, jvp = torch.func.jvp(lambda w: G.synthesis(G.broadcast(w), noise).flatten(1), (wt,), (w2 - w1,))
    torch.testing.assert_close(got, jvp.square().sum(1), rtol=1e-3, atol=1e-9)


def test_refuses_a_generator_without_a_style_space_and_bad_arguments():
    G, _ = build({"name": "dcgan", "z_dim": 4, "width": 2}, (1, 8, 8))
    with pytest.raises(GanforgeError, match="style-based"):
        perceptual_path_length(G, flat, 4)
    with pytest.raises(GanforgeError, match="space"):
        perceptual_path_length(LinearStyleG(), flat, 4, space="x")
    with pytest.raises(GanforgeError, match="pair"):
        perceptual_path_length(LinearStyleG(), flat, 0)


def test_lenet_fashion_reads_the_centre_28_pixels_of_padded_images():
    features = lenet_features("fashion")
    from ganforge.metrics.extractors import LeNetExtractor

    x = torch.rand(3, 1, 32, 32) * 2 - 1
    torch.testing.assert_close(features(x), LeNetExtractor("fashion")(x[..., 2:30, 2:30])[0])
    torch.manual_seed(0)
    G, _ = build({"name": "stylegan2", "z_dim": 8, "w_dim": 8, "mapping_layers": 2, "width": 2,
                  "max_width": 4}, (1, 32, 32))
    ppl = perceptual_path_length(G, features, 20, generator=torch.Generator().manual_seed(0))
    assert math.isfinite(ppl) and ppl > 0
    columns = evaluate_ppl(G, 20, spaces=("w", "z"))
    assert list(columns) == ["ppl_w_lenet_fashion", "ppl_z_lenet_fashion"]
    assert columns["ppl_w_lenet_fashion"] == pytest.approx(ppl)
