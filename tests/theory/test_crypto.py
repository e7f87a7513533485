"""Adversarial neural cryptography (Abadi and Andersen, 2016): networks, losses, training schedule,
the retrained-Eve evaluation and a short learning check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from ganforge.errors import GanforgeError
from ganforge.theory import crypto
from tests.theory._helpers import assert_pngs, checks

N = crypto.N_BITS


def _bits(n: int, seed: int) -> torch.Tensor:
    return crypto.random_bits(n, N, torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def quick_result(tmp_path_factory):
    """The quick run, once for the module (module fixtures start before conftest's one-thread one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("crypto")
    try:
        return out, crypto.run(out, seed=0, quick=True)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("cls, inputs", [(crypto.Alice, 2), (crypto.Bob, 2), (crypto.Eve, 1)])
def test_networks_shapes_range_and_gradients(cls, inputs):
    torch.manual_seed(0)
    net = cls()
    x = [_bits(64, i) for i in range(inputs)]
    out = net(*x)
    assert out.shape == (64, N) and out.abs().max() <= 1
    out.square().sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_the_mix_and_transform_stack():
    """FC 2N -> 2N (Eve: N -> 2N -> 2N), then convs [4, 1, 2] s1, [2, 2, 4] s2, [1, 4, 4] s1,
    [1, 4, 1] s1; the fast matrix forward is the conv1d forward."""
    torch.manual_seed(0)
    for net, fc_shapes in ((crypto.Alice(), [(32, 32)]), (crypto.Bob(), [(32, 32)]),
                           (crypto.Eve(), [(32, 16), (32, 32)])):
        assert [m.weight.shape for m in net.fc if isinstance(m, nn.Linear)] == fc_shapes
        assert [(c.weight.shape, c.stride[0]) for c in net.conv] == [
            ((2, 1, 4), 1), ((4, 2, 2), 2), ((4, 4, 1), 1), ((1, 4, 1), 1)]
        x = [_bits(200, 1), _bits(200, 2)][: 1 if isinstance(net, crypto.Eve) else 2]
        torch.testing.assert_close(net(*x), net.reference_forward(*x), atol=1e-6, rtol=0)


def test_first_conv_has_tensorflow_same_padding():
    """A tap k of the width-4 kernel reads x[t + k - 1] (one zero before the signal, two after)."""
    torch.manual_seed(0)
    net = crypto.Alice()
    x = torch.randn(3, 32)
    for k in range(4):
        kernel = torch.zeros(2, 1, 4)
        kernel[:, 0, k] = 1.0
        padded = torch.cat([torch.zeros(3, 1), x, torch.zeros(3, 2)], 1)
        band = torch.einsum("ok,kjt->jto", kernel[:, 0, :], net.shifts).reshape(32, 64)
        torch.testing.assert_close((x @ band).view(3, 32, 2)[:, :, 0], padded[:, k:k + 32])


def test_bits_wrong_counts_wrong_bits_and_is_the_l1_distance():
    g = torch.Generator().manual_seed(0)
    p = crypto.random_bits(500, N, g)
    q = crypto.random_bits(500, N, g)
    np.testing.assert_array_equal(crypto.bits_wrong(p, q).numpy(), (p.numpy() != q.numpy()).sum(1))
    soft = torch.rand(500, N, generator=g) * 2 - 1
    np.testing.assert_allclose(crypto.bits_wrong(p, soft).numpy(),
                               np.abs(p.numpy() - soft.numpy()).sum(1) / 2, rtol=1e-6)
    assert crypto.bits_wrong(p, p).max() == 0 and crypto.bits_wrong(p, -p).min() == N
    # guessing: any output independent of P scores N / 2 = 8 bits on average
    assert float(crypto.bits_wrong(p, q).mean()) == pytest.approx(8.0, abs=0.25)
    assert float(crypto.bits_wrong(p, torch.zeros_like(p)).mean()) == 8.0


def test_alice_bob_loss_by_hand():
    d_bob = torch.tensor([0.0, 1.0, 2.0, 1.0])
    d_eve = torch.tensor([4.0, 6.0, 5.0, 5.0])
    # E[d_Bob] = 1, E[d_Eve] = 5: 1 + (8 - 5)^2 / 8^2
    assert float(crypto.alice_bob_loss(d_bob, d_eve)) == pytest.approx(1 + 9 / 64)
    # the minibatch mean of Eve's error is squared, not the mean of squares: Eve at 8 bits on
    # average costs nothing, even if she is right on half the messages and wrong on the others
    assert float(crypto.alice_bob_loss(torch.zeros(2), torch.tensor([0.0, 16.0]))) == 0.0
    assert float(crypto.alice_bob_loss(torch.zeros(2), torch.full((2,), 16.0))) == pytest.approx(1.0)


def test_reference_loss_form_by_hand():
    """The authors' TensorFlow code: E[d_Bob / N + (N/2 - d_Eve)^2 / (N/2)^2], which is the paper's
    form with Bob's term divided by N plus Var(d_Eve) / (N/2)^2."""
    d_bob = torch.tensor([0.0, 1.0, 2.0, 1.0])
    d_eve = torch.tensor([4.0, 6.0, 5.0, 5.0])
    by_hand = (0 / 16 + 16 / 64 + 1 / 16 + 4 / 64 + 2 / 16 + 9 / 64 + 1 / 16 + 9 / 64) / 4
    assert float(crypto.alice_bob_loss(d_bob, d_eve, form="reference")) == pytest.approx(by_hand)
    g = torch.Generator().manual_seed(0)
    d_bob, d_eve = torch.rand(100, generator=g) * 3, torch.rand(100, generator=g) * 16
    identity = d_bob.mean() / 16 + (8 - d_eve.mean()) ** 2 / 64 + d_eve.var(unbiased=False) / 64
    torch.testing.assert_close(crypto.alice_bob_loss(d_bob, d_eve, form="reference"), identity)
    assert float(crypto.alice_bob_loss(torch.zeros(2), torch.tensor([0.0, 16.0]), form="reference")) == 1.0
    with pytest.raises(GanforgeError, match="unknown loss form 'l2'"):
        crypto.alice_bob_loss(d_bob, d_eve, form="l2")
    with pytest.raises(GanforgeError, match="unknown loss form"):
        crypto.train_alice_bob(steps=1, batch=8, seed=0, loss="l2")


def test_eve_trains_twice_per_alice_bob_step():
    counts: dict[int, int] = {}
    params: dict[int, set[int]] = {}

    def count(opt, args, kwargs):
        counts[id(opt)] = counts.get(id(opt), 0) + 1
        params[id(opt)] = {id(p) for group in opt.param_groups for p in group["params"]}

    handle = register_optimizer_step_post_hook(count)
    try:
        trained = crypto.train_alice_bob(steps=3, batch=16, seed=0)
    finally:
        handle.remove()
    by_params = {frozenset(params[k]): n for k, n in counts.items()}
    eve = frozenset(id(p) for p in trained.eve.parameters())
    alice_bob = frozenset(id(p) for net in (trained.alice, trained.bob) for p in net.parameters())
    assert by_params == {alice_bob: 3, eve: 6}
    assert (trained.alice_bob_steps, trained.eve_steps) == (3, 6)
    assert len(trained.bob_curve) == len(trained.eve_curve) == 3


def test_training_is_deterministic_per_seed():
    a, b, c = (crypto.train_alice_bob(steps=4, batch=32, seed=s) for s in (5, 5, 6))
    assert a.bob_curve == b.bob_curve and a.eve_curve == b.eve_curve
    for x, y in zip(a.alice.parameters(), b.alice.parameters(), strict=True):
        assert torch.equal(x, y)
    assert a.bob_curve != c.bob_curve


class _PlaintextAlice(nn.Module):
    """No encryption at all: C = P."""

    n_bits = N

    def forward(self, p, k):
        return p


class _OneTimePadAlice(nn.Module):
    """C = P XOR K (a product in the +-1 encoding): perfect secrecy for a uniform key."""

    n_bits = N

    def forward(self, p, k):
        return p * k


def test_retrained_eve_reads_plaintext_and_not_a_one_time_pad():
    """The evaluation attacker is real: a fresh Eve reads an unencrypted channel almost exactly,
    and cannot beat guessing (8 bits for *every* output, E|P - q| / 2 = 1 / 2 per bit) on a
    one-time pad."""
    plain = crypto.retrain_eve(_PlaintextAlice(), restarts=1, steps=1200, batch=256, seed=0, eval_every=300)
    pad = crypto.retrain_eve(_OneTimePadAlice(), restarts=2, steps=100, batch=256, seed=0, eval_every=50)
    assert len(plain) == 1 and plain[0] < 1.0
    assert len(pad) == 2 and min(pad) > crypto.EVE_TARGET
    assert min(pad) == pytest.approx(8.0, abs=0.1)


def test_quick_run_bob_learns_to_decrypt(quick_result):
    out, res = quick_result
    n = res["numbers"]
    assert_pngs(res, out)
    assert [p.name for p in res["figures"]] == ["crypto_errors.png"]
    assert n["seeds"] == crypto.QUICK["seeds"] == len(n["bob_bits_wrong"])
    # the short run: Bob reads Alice (well below 1 bit wrong of 16; 0.33 for seed 0). Whether Eve is
    # shut out yet is not asserted: at 1500 steps Alice has only begun to use the key
    assert n["bob_bits_wrong"][0] < 1.0
    assert len(n["cotrained_eve_bits_wrong"]) == 1 and 0 <= n["best_eve_bits_wrong"][0] <= 16
    assert 0.0 <= n["success_rate"] <= 1.0
    c = checks(res)
    assert all(v["passed"] is None for v in c.values()), "quick: the targets are reported, not checked"
    assert any("success rate" in k for k in c)


def test_cli_prints_the_crypto_table(tmp_path, capsys, monkeypatch, quick_result):
    from ganforge.cli import main

    monkeypatch.setattr(crypto, "run", lambda out_dir, seed=0, quick=False: quick_result[1])
    assert main(["theory", "crypto", "--out", str(tmp_path), "--quick"]) == 0
    out = capsys.readouterr().out
    assert "success rate" in out and "reported" in out and "FAIL" not in out


@pytest.mark.slow
def test_full_criterion_on_one_seed_with_the_reference_loss():
    """At the full budget, seed 0 with the TensorFlow code's loss meets the paper's criterion (Bob
    < 0.05 bits, best of 5 retrained Eves >= 7.5 bits); with the paper's formula the same seed does
    not (Bob's term, in bits, outweighs Eve's 16 times more). benchmarks/results/crypto*.json hold
    the rates over 10 seeds."""
    torch.set_num_threads(1)
    settings = {k: v for k, v in crypto.FULL.items() if k != "seeds"}
    r = crypto.run_seed(0, **{**settings, "loss": "reference"})
    assert r["bob_bits_wrong"] < crypto.BOB_TARGET
    assert r["best_eve_bits_wrong"] >= crypto.EVE_TARGET and r["success"]
