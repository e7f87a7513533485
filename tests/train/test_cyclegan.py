"""The CycleGAN algorithm through the shared Trainer: the least-squares terms, cycle and identity
losses against hand computations, the image pool's sampling, bit-identical resume (pools
included), a loaded run translates with no data, errors, and short learning checks.

The unpaired stand-in: scikit-learn's digits at 32 x 32 as domain A, and other digits thickened
by a grey-scale dilation as domain B."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from ganforge.config import ExperimentConfig
from ganforge.data.digits import digits
from ganforge.data.unpaired import UnpairedDataset, thicken
from ganforge.errors import GanforgeError
from ganforge.train import Experiment, Trainer, load_run
from ganforge.train.algorithms.cyclegan import (
    CycleGAN,
    cycle_loss,
    identity_loss,
    lsgan_d_loss,
    lsgan_g_loss,
)
from ganforge.train.image_pool import ImagePool
from tests.train._image_to_image import assert_same_networks, resumed_checkpoints, tiny_config, train_tiny_run

TINY = {
    "seed": 3,
    "algorithm": {"name": "cyclegan", "pool_size": 6},
    "data": {"name": "digits", "size": 32},
    "model": {"name": "cyclegan", "width": 4, "n_blocks": 1, "receptive_field": 16},
    "train": {"steps": 8, "batch_size": 4, "log_every": 1, "sample_every": 4,
              "checkpoint_every": 4, "num_fixed_samples": 4},
}


def _cfg(**changes) -> ExperimentConfig:
    return tiny_config(TINY, **changes)


def thin_thick(n: int = 200) -> UnpairedDataset:
    x = digits(size=32).x
    return UnpairedDataset(x[:n], thicken(x[n:2 * n], 1), seed=0, name="digit-thickness")


@pytest.fixture(scope="module")
def data():
    return thin_thick()


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data):
    return train_tiny_run(tmp_path_factory, "cyclegan", _cfg(), data)


# ---------------------------------------------------------------------- the losses
def test_lsgan_terms_match_a_hand_computation():
    real, fake = torch.tensor([[0.5, 1.5], [1.0, -0.5]]), torch.tensor([[0.2, -0.4], [1.0, 0.0]])
    d = 0.5 * (((0.5 - 1) ** 2 + (1.5 - 1) ** 2 + 0 + (-0.5 - 1) ** 2) / 4
               + (0.2 ** 2 + 0.4 ** 2 + 1 + 0) / 4)
    assert lsgan_d_loss(real, fake).item() == pytest.approx(d)
    g = ((0.2 - 1) ** 2 + (-0.4 - 1) ** 2 + 0 + 1) / 4
    assert lsgan_g_loss(fake).item() == pytest.approx(g)
    assert lsgan_d_loss(torch.ones(3), torch.zeros(3)).item() == 0
    assert lsgan_g_loss(torch.ones(3)).item() == 0


def test_cycle_and_identity_losses_are_mean_absolute_errors():
    a, b = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    assert cycle_loss(a, a, b, b).item() == 0 and identity_loss(a, a, b, b).item() == 0
    assert cycle_loss(a, a + 0.5, b, b - 0.25).item() == pytest.approx(0.75)
    assert identity_loss(a, a - 1, b, b + 2).item() == pytest.approx(3.0)


class _Identity(nn.Module):
    """A 'generator' that returns its input (one unused parameter, for the optimiser)."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, x, generator=None):
        return x


def test_cycle_loss_of_identity_generators_is_zero(data):
    algo: CycleGAN = Experiment(_cfg(), "cpu", dataset=data).algorithm
    algo.G_AB, algo.G_BA = _Identity(), _Identity()
    _, stats = algo.loss("G", {k: v[:4] for k, v in data.tensors().items()}, 0)
    assert stats["cycle"] == 0 and stats["identity"] == 0


def test_the_phases_compute_the_paper_losses(data):
    algo: CycleGAN = Experiment(_cfg(algorithm={"lambda_cycle": 7.0, "lambda_identity": 0.3}), "cpu",
                                dataset=data).algorithm
    batch = {k: v[:4] for k, v in data.tensors().items()}
    a, b = batch["cond"], batch["x"]
    G, F, D_A, D_B = algo.G_AB, algo.G_BA, algo.D_A, algo.D_B
    loss_g, stats = algo.loss("G", batch, 0)
    with torch.no_grad():
        adv = ((D_B(G(a)) - 1) ** 2).mean() + ((D_A(F(b)) - 1) ** 2).mean()
        cyc = (F(G(a)) - a).abs().mean() + (G(F(b)) - b).abs().mean()
        idt = (G(b) - b).abs().mean() + (F(a) - a).abs().mean()
        fake_a, fake_b = F(b), G(a)
    assert loss_g.item() == pytest.approx((adv + 7 * cyc + 0.3 * 7 * idt).item(), rel=1e-5)
    assert stats["cycle"] == pytest.approx(cyc.item(), rel=1e-5)
    rng = algo.pool_rng.get_state()
    loss_d, stats = algo.loss("D", None, 0)
    # the pools were empty: they store the fakes and return them (drawing from pool_rng)
    assert not torch.equal(algo.pool_rng.get_state(), rng) and len(algo.pool_A) == 4
    with torch.no_grad():
        expected = (0.5 * (((D_A(a) - 1) ** 2).mean() + (D_A(fake_a) ** 2).mean())
                    + 0.5 * (((D_B(b) - 1) ** 2).mean() + (D_B(fake_b) ** 2).mean()))
    assert loss_d.item() == pytest.approx(expected.item(), rel=1e-5)
    assert stats["loss_D_A"] + stats["loss_D_B"] == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(GanforgeError, match="without a G phase"):
        algo.loss("D", None, 0)                       # the step's images were used up
    algo.loss("G", batch, 1)
    with pytest.raises(GanforgeError, match="without a G phase"):
        algo.loss("D", None, 2)                       # stale images of an earlier step


# ---------------------------------------------------------------------- the image pool
def test_pool_of_size_zero_returns_the_input():
    pool, x = ImagePool(0), torch.randn(5, 1, 2, 2)
    assert torch.equal(pool.query(x, torch.Generator().manual_seed(0)), x) and len(pool) == 0


def test_pool_fills_first_then_returns_old_images_about_half_the_time():
    gen = torch.Generator().manual_seed(0)
    pool = ImagePool(50)
    first = torch.arange(50.0).view(50, 1, 1, 1)
    assert torch.equal(pool.query(first, gen), first) and len(pool) == 50   # filling: the new ones
    old = new = 0
    seen = set(range(50))
    for k in range(40):
        batch = (1000.0 + 100 * k + torch.arange(25.0)).view(25, 1, 1, 1)
        out = pool.query(batch, gen)
        for o, x in zip(out.flatten().tolist(), batch.flatten().tolist(), strict=True):
            if o == x:
                new += 1
            else:
                assert o in seen      # an image stored earlier (maybe in this batch), never invented
                old += 1
            seen.add(x)
    share = old / (old + new)
    assert abs(share - 0.5) < 4 * (0.25 / 1000) ** 0.5, share          # 1000 draws, 4 sigma
    assert len(pool) == 50


def test_pool_state_round_trips():
    gen = torch.Generator().manual_seed(1)
    pool = ImagePool(4)
    pool.query(torch.randn(6, 1, 2, 2), gen)
    copy = ImagePool(4)
    copy.load_state_dict(pool.state_dict())
    state = gen.get_state()
    batch = torch.randn(3, 1, 2, 2)
    out = pool.query(batch, gen)
    gen.set_state(state)
    assert torch.equal(copy.query(batch, gen), out)
    with pytest.raises(GanforgeError, match="pool_size"):
        ImagePool(2).load_state_dict(pool.state_dict())
    with pytest.raises(GanforgeError, match="pool_size"):
        ImagePool(-1)


# ---------------------------------------------------------------------- runs
def test_resume_is_bit_identical_including_the_pools(tmp_path, data):
    a, b = resumed_checkpoints(_cfg, tmp_path, data, 4, train={"sample_every": 100, "log_every": 4})
    assert_same_networks(a, b, ("G_AB", "G_BA", "D_A", "D_B"))
    for key in ("pool_rng", "pool_A", "pool_B"):
        assert torch.equal(a["algorithm"][key], b["algorithm"][key]), key
    assert len(a["algorithm"]["pool_A"]) == 6      # 8 steps x 4 images filled the pool of 6


def test_the_log_has_the_columns_and_the_schedule_decays(tmp_path, data):
    cfg = _cfg(train={"lr_schedule": "linear", "lr_decay_start": 4, "checkpoint_every": 100,
                      "sample_every": 100})
    Trainer(cfg, tmp_path / "run", progress=False, dataset=data).fit()
    lines = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    for col in ("loss_G", "loss_D", "cycle", "identity", "loss_D_A", "D_B_fake", "grad_norm_D_B"):
        assert col in header, col
    lr = [float(row.split(",")[header.index("lr_G")]) for row in lines[1:]]
    # the row of step s logs the rate of update s - 1: 1 until step 4, then 1 - (s - 4) / 4
    assert lr == pytest.approx([2e-4] * 5 + [1.5e-4, 1e-4, 5e-5])


def test_a_loaded_run_translates_with_no_data(tiny_run, data):
    run = load_run(tiny_run)
    algo: CycleGAN = run.algorithm
    assert algo.dataset is None and algo.cond_shape == (1, 32, 32)  # from the checkpoint, not the config
    assert "cond_shape" not in run.config.algorithm
    out = algo.translate(data.cond[:3])
    assert out.shape == (3, 1, 32, 32) and torch.equal(run.sample(3, labels=data.cond[:3]), out)
    assert list(algo.panels(2)) == ["input", "output", "cycle", "B example", "F(b)"]
    assert len(algo.pool_B) == 6
    assert sorted(p.name for p in (Path(tiny_run) / "samples").glob("*.png")) == [
        "step_0000004.png", "step_0000008.png"]


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"algorithm": {"lambda_cycle": -1.0}}, "lambda_cycle=-1"),
    ({"algorithm": {"lambda_identity": "x"}}, "lambda_identity"),
    ({"algorithm": {"pool_size": -2}}, "pool_size"),
    ({"model": {"in_channels": 3}}, "in_channels=3"),
    ({"algorithm": {"loss": {"name": "hinge"}}}, "unknown key 'algorithm.loss' for algorithm 'cyclegan'"),
])
def test_bad_configs_are_one_line_errors(changes, fragment, data):
    with pytest.raises(GanforgeError, match=fragment) as err:
        Experiment(_cfg(**changes), "cpu", dataset=data)
    assert "\n" not in str(err.value)


def test_a_two_network_family_is_refused(data):
    cfg = ExperimentConfig.from_dict({**TINY, "model": {"name": "pix2pix", "width": 4, "depth": 3}})
    with pytest.raises(GanforgeError, match="four networks"):
        Experiment(cfg, "cpu", dataset=data)


def test_cycle_reconstruction_improves_quickly(tmp_path, data):
    """30 steps of a small CycleGAN: the held-out cycle L1 falls well below its initial value
    (0.61 -> 0.24 measured)."""
    from ganforge.metrics.unpaired import cycle_l1

    held_out = digits(size=32).x[1000:1100]
    cfg = _cfg(model={"width": 8}, train={"steps": 30, "batch_size": 8, "sample_every": 1000,
                                          "checkpoint_every": 1000, "log_every": 20})
    before = cycle_l1(Experiment(cfg, "cpu", dataset=data).algorithm, held_out)
    Trainer(cfg, tmp_path / "learn", progress=False, dataset=data).fit()
    after = cycle_l1(load_run(tmp_path / "learn").algorithm, held_out)
    assert after < 0.6 * before, (before, after)


SHARED_MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


@pytest.mark.slow
def test_cyclegan_thickens_mnist_strokes(tmp_path):
    """mnist-thickness, unpaired: on held-out pairs G(thin) is closer to the true thick digit than
    the thin input is (PSNR above the identity baseline)."""
    from ganforge.data import build_dataset
    from ganforge.metrics.unpaired import evaluate_unpaired

    if not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("the MNIST test files are not at hand")
    section = {"name": "mnist-thickness", "root": str(SHARED_MNIST)}
    cfg = _cfg(data=section, model={"width": 16, "n_blocks": 3, "receptive_field": 70},
               algorithm={"pool_size": 50},
               train={"steps": 800, "batch_size": 8, "sample_every": 10**6, "checkpoint_every": 10**6,
                      "log_every": 100, "lr_schedule": "linear", "lr_decay_start": 400})
    Trainer(cfg, tmp_path / "run", progress=False).fit()
    test = build_dataset({**section, "split": "test"})
    result = evaluate_unpaired(load_run(tmp_path / "run").algorithm, test.cond[:500], partner=test.x[:500])
    assert result["paired"]["psnr"] > result["identity"]["psnr"] + 1.0, result
