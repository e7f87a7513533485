"""The truncation trick: BigGAN resampling and psi interpolation towards the mean code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from ganforge.errors import GanforgeError
from ganforge.latent import (
    generate,
    psi_sweep,
    threshold_sweep,
    truncate_psi,
    truncate_resample,
    truncated_normal,
    truncation_codes,
)
from ganforge.latent import truncation as truncation_module
from ganforge.models import build


@pytest.fixture
def G():
    torch.manual_seed(0)
    G, _ = build({"name": "mlp", "z_dim": 4, "g_hidden": [8]}, (2,))
    return G


def _codes(n: int = 64, d: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def test_resampling_replaces_exactly_the_entries_beyond_the_threshold():
    z = _codes()
    beyond = z.abs() > 0.5
    assert 0 < beyond.sum() < z.numel()
    out = truncate_resample(z, 0.5, torch.Generator().manual_seed(1))
    assert torch.equal(out[~beyond], z[~beyond])  # kept bit for bit
    assert (out[beyond] != z[beyond]).all()       # every outlier redrawn ...
    assert (out.abs() <= 0.5).all()               # ... into [-c, c]
    assert torch.equal(z, _codes())               # the input is not modified


def test_resampling_is_reproducible_per_generator_seed():
    z = _codes()
    a = truncate_resample(z, 1.0, torch.Generator().manual_seed(3))
    b = truncate_resample(z, 1.0, torch.Generator().manual_seed(3))
    c = truncate_resample(z, 1.0, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("threshold", [1.0, 1e-4])
def test_truncated_draws_follow_the_truncated_normal(threshold, monkeypatch):
    if threshold < 1e-3:  # rejection would need ~10^4 rounds: force the inverse-CDF leftovers
        monkeypatch.setattr(truncation_module, "MAX_ROUNDS", 2)
    z = truncated_normal(4000, 1, threshold, torch.Generator().manual_seed(0)).double().numpy().ravel()
    assert np.abs(z).max() <= threshold
    ks = stats.kstest(z, stats.truncnorm(-threshold, threshold).cdf)
    assert ks.pvalue > 1e-3, ks


def test_psi_one_is_identity_and_psi_zero_is_the_mean():
    z = _codes(8, 5)
    assert torch.equal(truncate_psi(z, 1.0), z)
    assert torch.equal(truncate_psi(z, 0.0), torch.zeros_like(z))
    mean = torch.arange(5.0)
    assert torch.equal(truncate_psi(z, 0.0, mean), mean.expand(8, 5))
    torch.testing.assert_close(truncate_psi(z, 0.25, mean) - mean, 0.25 * (z - mean))


@pytest.mark.parametrize("call", [
    lambda z: truncate_psi(z, 1.5),
    lambda z: truncate_psi(z, -0.1),
    lambda z: truncate_psi(z, 0.5, torch.zeros(3)),
    lambda z: truncate_resample(z, 0.0),
    lambda z: truncate_resample(z, -1.0),
    lambda z: truncate_resample(z, float("inf")),
    lambda z: truncation_codes(z),
])
def test_out_of_range_settings_raise(call):
    with pytest.raises(GanforgeError):
        call(_codes(4, 5))


def test_sweeps_render_the_same_codes_at_each_setting(G):
    z = _codes(6, 4)
    rows = psi_sweep(G, z, [1.0, 0.5, 0.0])
    assert rows.shape == (3, 6, 2)
    torch.testing.assert_close(rows[0], generate(G, z))                      # psi = 1: plain G(z)
    torch.testing.assert_close(rows[1], generate(G, 0.5 * z))
    torch.testing.assert_close(rows[2], generate(G, torch.zeros(1, 4)).expand(6, 2))  # all G(0)
    labels, codes = truncation_codes(z, [0.7], [1.0, 0.5], seed=9)
    assert labels == ["psi=0.7", "threshold=1", "threshold=0.5"]
    assert torch.equal(codes[1], truncate_resample(z, 1.0, torch.Generator().manual_seed(9)))
    by_threshold = threshold_sweep(G, z, [1.0, 0.5], seed=9)
    torch.testing.assert_close(by_threshold, torch.stack([generate(G, c) for c in codes[1:]]))
