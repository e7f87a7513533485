from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

from ganforge import maths
from ganforge.data import build_dataset
from ganforge.errors import GanforgeError
from ganforge.train.batches import ShuffledBatches, StreamBatches
from ganforge.train.checkpoint import load_checkpoint, load_weights, save_checkpoint
from ganforge.train.ema import EMA
from ganforge.train.objectives import build_objective
from ganforge.train.trainer import grad_norm, resolve_device


def test_shuffled_batches_visit_every_sample_once_per_epoch_and_resume_exactly():
    ds = build_dataset({"name": "digits"})
    source = ShuffledBatches(ds, batch_size=100, seed=0)
    seen = torch.cat([source.order[i:i + 100] for i in range(0, 1700, 100)])
    assert len(set(seen.tolist())) == 1700
    for _ in range(20):   # crosses an epoch boundary (17 full batches per epoch)
        source.next()
    assert source.epoch == 1
    state = source.state_dict()
    expected = [source.next() for _ in range(30)]
    assert set(expected[0]) == {"x", "y"}  # a batch names its fields
    clone = ShuffledBatches(ds, batch_size=100, seed=123)
    clone.load_state_dict(state)
    for want in expected:
        got = clone.next()
        assert torch.equal(got["x"], want["x"]) and torch.equal(got["y"], want["y"])


def test_shuffled_batches_reject_tiny_datasets():
    ds = build_dataset({"name": "digits"})
    with pytest.raises(GanforgeError, match="fewer than train.batch_size"):
        ShuffledBatches(ds, batch_size=5000, seed=0)


def test_stream_batches_resume_exactly():
    source = StreamBatches(build_dataset({"name": "ring8"}), 64, seed=4)
    source.next()
    state = source.state_dict()
    a = source.next()["x"]
    other = StreamBatches(build_dataset({"name": "ring8"}), 64, seed=99)
    other.load_state_dict(state)
    assert torch.equal(other.next()["x"], a)
    unlabelled = StreamBatches(build_dataset({"name": "moons"}), 8, seed=0)
    assert set(unlabelled.next()) == {"x"}


def test_ema_follows_the_warmup_formula():
    model = nn.Linear(3, 1)
    ema = EMA(model, decay=0.99)
    start = ema.model.weight.clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    beta = min(0.99, 1 / 10)  # first update: (1 + 0) / (10 + 0)
    ema.update(model)
    assert torch.allclose(ema.model.weight, beta * start + (1 - beta) * model.weight)
    assert not ema.model.weight.requires_grad
    for _ in range(2000):
        ema.update(model)
    assert ema.current_decay() == 0.99
    assert torch.allclose(ema.model.weight, model.weight, atol=1e-6)


def test_standing_stats_are_the_average_batch_statistics_of_the_averaged_weights():
    from ganforge.train.ema import standing_batchnorm_stats

    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).eval()
    net[1].running_mean.fill_(7.0)  # stale statistics, e.g. copied from other weights
    batches = [torch.randn(16, 3, generator=torch.Generator().manual_seed(i)) for i in range(5)]
    feed = iter(batches)
    assert standing_batchnorm_stats(net, lambda: (next(feed),), batches=5) == 1
    h = [net[0](b).detach() for b in batches]
    want_mean = torch.stack([x.mean(0) for x in h]).mean(0)
    want_var = torch.stack([x.var(0, unbiased=True) for x in h]).mean(0)
    assert torch.allclose(net[1].running_mean, want_mean, atol=1e-6)
    assert torch.allclose(net[1].running_var, want_var, atol=1e-5)
    assert not net.training and net[1].momentum == 0.1
    assert standing_batchnorm_stats(nn.Linear(2, 2), lambda: (torch.randn(2, 2),)) == 0


def test_standard_objective_matches_the_maths():
    D = nn.Sequential(nn.Flatten(), nn.Linear(2, 1), nn.Flatten(0))
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    obj = build_objective({"name": "non-saturating"})
    out = obj.d_phase(lambda x, y=None: D(x), real, fake)
    assert torch.allclose(out.loss, maths.discriminator_loss(D(real), D(fake)))
    g = obj.g_phase(lambda x, y=None: D(x), fake)
    assert torch.allclose(g.loss, -nn.functional.logsigmoid(D(fake)).mean())
    sat = build_objective({"name": "minimax"}).g_phase(lambda x, y=None: D(x), fake)
    assert torch.allclose(sat.loss, nn.functional.logsigmoid(-D(fake)).mean())


def test_unknown_objective():
    with pytest.raises(GanforgeError, match="unknown loss 'wgan-xx'"):
        build_objective({"name": "wgan-xx"})


def test_grad_norm_is_the_global_l2_norm():
    m = nn.Linear(2, 2)
    for p in m.parameters():
        p.grad = torch.full_like(p, 2.0)
    assert grad_norm(m) == pytest.approx(2.0 * (6 ** 0.5))


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(GanforgeError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(GanforgeError, match="unknown device"):
        resolve_device("tpu9")


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_checkpoints_never_unpickle_code(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save(  # pickle protocol 2, the one torch.load expects, so only the class is refused
        {"format": "ganforge-checkpoint-v1", "x": Evil()}, path, pickle_protocol=2)
    with pytest.raises(GanforgeError, match="cannot read checkpoint"):
        load_checkpoint(path)
    assert "pwned" not in capsys.readouterr().out
    plain = tmp_path / "plain.pt"
    with plain.open("wb") as fh:
        pickle.dump({"a": 1}, fh)
    with pytest.raises(GanforgeError):
        load_checkpoint(plain)


def test_checkpoint_write_is_atomic_and_truncation_is_reported(tmp_path):
    from ganforge.train.checkpoint import REQUIRED

    sections = {"config": {}, "nets": {}}  # the mappings a checkpoint must hold as such
    path = save_checkpoint({**dict.fromkeys(REQUIRED, 0), **sections, "w": torch.arange(1000.0)},
                           tmp_path / "c.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
    assert torch.equal(load_checkpoint(path)["w"], torch.arange(1000.0))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(GanforgeError, match="corrupt"):
        load_checkpoint(path)


def test_weights_from_another_model_are_reported():
    with pytest.raises(GanforgeError, match="does not fit this generator"):
        load_weights(nn.Linear(3, 3), nn.Linear(4, 3).state_dict(), "generator", "x.pt")
