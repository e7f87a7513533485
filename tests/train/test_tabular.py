"""The table algorithms (CTGAN, TVAE): training-by-sampling's law, the per-pack gradient penalty,
the generator's output layout and gradients, learning a dependence between two columns,
conditional sampling (Python API and CLI), exact resume, and ``ganforge evaluate`` on a table run.
Tiny tables built here, tiny networks, one thread."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ganforge.cli import main
from ganforge.config import ExperimentConfig
from ganforge.maths.penalties import gradient_penalty
from ganforge.models.ctgan import build_ctgan
from ganforge.train import Trainer, load_run
from ganforge.train.algorithms.ctgan import ConditionalSampler
from ganforge.train.checkpoint import load_checkpoint
from tests.train._image_to_image import assert_same_networks


def _two_columns(path: Path, n: int = 400, seed: int = 0) -> Path:
    """a in {x, y}; b ~ N(0, 1) when a = x, N(5, 1) when a = y; c a noisy copy of b (a target)."""
    rng = np.random.default_rng(seed)
    a = rng.choice(["x", "y"], n)
    b = np.where(a == "x", rng.normal(0, 1, n), rng.normal(5, 1, n)).round(3)
    pd.DataFrame({"a": a, "b": b}).to_csv(path, index=False)
    return path


CTGAN = {"seed": 0, "algorithm": {"name": "ctgan"}, "data": {"name": "table"},
         "model": {"name": "ctgan", "z_dim": 8, "generator_dims": [32, 32], "discriminator_dims": [32, 32],
                   "pac": 5},
         "optim": {"G": {"name": "adam", "lr": 1e-3, "betas": [0.5, 0.9]},
                   "D": {"name": "adam", "lr": 1e-3, "betas": [0.5, 0.9]}},
         "train": {"steps": 400, "batch_size": 50, "log_every": 50, "sample_every": 1000,
                   "checkpoint_every": 1000}}
TVAE = {"seed": 0, "algorithm": {"name": "tvae"}, "data": {"name": "table"},
        "model": {"name": "tvae", "z_dim": 8, "compress_dims": [32, 32], "decompress_dims": [32, 32]},
        "train": {"steps": 300, "batch_size": 50, "log_every": 50, "sample_every": 1000,
                  "checkpoint_every": 1000}}


def _cfg(base: dict, csv: Path, **sections: dict) -> ExperimentConfig:
    tree = copy.deepcopy(base)
    tree["data"]["path"] = str(csv)
    for key, value in sections.items():
        tree[key] = {**tree.get(key, {}), **value}
    return ExperimentConfig.from_dict(tree)


def _train(cfg: ExperimentConfig, out: Path) -> Path:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(cfg, out, progress=False).fit()
    finally:
        torch.set_num_threads(before)
    return out


# ---------------------------------------------------------------------- training-by-sampling
def _rows_with_counts(counts: list[int], other: list[int] | None = None) -> tuple[torch.Tensor, list]:
    """Transformed rows: a value column (tanh, 1 wide) then one-hot columns with these counts."""
    n = sum(counts)
    first = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    first = first[torch.randperm(n, generator=torch.Generator().manual_seed(0))]
    parts = [torch.rand(n, 1) * 2 - 1, torch.nn.functional.one_hot(first, len(counts)).float()]
    spans = [(1, len(counts))]
    if other is not None:
        second = torch.repeat_interleave(torch.arange(len(other)), torch.tensor(other))
        parts.append(torch.nn.functional.one_hot(second, len(other)).float())
        spans.append((1 + len(counts), len(other)))
    return torch.cat(parts, 1), spans


@pytest.mark.parametrize("log_frequency", [True, False])
def test_condvec_draws_categories_with_the_log_frequency_law(log_frequency):
    counts = [900, 90, 10]
    x, spans = _rows_with_counts(counts)
    sampler = ConditionalSampler(x, spans, 50, log_frequency=log_frequency,
                                 generator=torch.Generator().manual_seed(1))
    c, column, category = sampler.condvec(20_000)
    weights = np.log1p(counts) if log_frequency else np.asarray(counts, float)
    expected = weights / weights.sum()
    observed = np.bincount(category.numpy(), minlength=3) / 20_000
    assert np.abs(observed - expected).max() < 0.02, (observed, expected)
    assert (column == 0).all()
    # c is the one-hot of (column, category)
    assert c.shape == (20_000, 3) and torch.equal(c.sum(1), torch.ones(20_000))
    assert torch.equal(c.argmax(1), category)


def test_condvec_picks_columns_uniformly_and_rows_for_has_the_category():
    x, spans = _rows_with_counts([60, 30, 10], other=[50, 50])
    sampler = ConditionalSampler(x, spans, 50, generator=torch.Generator().manual_seed(2))
    c, column, category = sampler.condvec(10_000)
    assert abs((column == 0).float().mean().item() - 0.5) < 0.02
    assert c.shape == (10_000, 5) and torch.equal(c.sum(1), torch.ones(10_000))
    offsets = sampler.cond_offset[column] + category
    assert torch.equal(c.argmax(1), offsets)
    for j, (_, width) in enumerate(spans):  # the one-hot lies inside the chosen column's block
        block = c[column == j][:, sampler.cond_offset[j]:sampler.cond_offset[j] + width]
        assert torch.equal(block.sum(1), torch.ones(len(block)))
    rows = sampler.rows_for(column, category)
    for j, (start, width) in enumerate(spans):
        mine = column == j
        assert torch.equal(x[rows[mine], start:start + width].argmax(1), category[mine])
    batch = sampler.next()
    assert batch["x"].shape == (50, x.shape[1]) and batch["c_real"].shape == batch["c_fake"].shape == (50, 5)
    # the real rows have the categories of c_real (the shuffled c_fake)
    for j, (start, width) in enumerate(spans):
        block = batch["c_real"][:, sampler.cond_offset[j]:sampler.cond_offset[j] + width]
        chosen = block.sum(1) > 0
        assert torch.equal(batch["x"][chosen, start:start + width].argmax(1), block[chosen].argmax(1))
    assert sorted(batch["c_real"].argmax(1).tolist()) == sorted(batch["c_fake"].argmax(1).tolist())


# ---------------------------------------------------------------------- the per-pack penalty
class _Quadratic(torch.nn.Module):
    """D(pack) = (w . pack)^2 over packs of ``pac`` rows: its input gradient depends on the point."""

    def __init__(self, dim: int, pac: int) -> None:
        super().__init__()
        self.pac = pac
        self.w = torch.nn.Parameter(torch.randn(dim * pac, generator=torch.Generator().manual_seed(3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.reshape(len(x) // self.pac, -1) @ self.w) ** 2


def test_gradient_penalty_with_pack_equals_a_hand_computation():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(12, 3, generator=g), torch.randn(12, 3, generator=g)
    alpha = torch.rand(4, generator=g)
    D = _Quadratic(3, pac=3)
    gp = gradient_penalty(D, real, fake, alpha, pack=3)
    w = D.w.detach()
    norms = []
    for p in range(4):  # one alpha per pack; grad of (w.x)^2 is 2 (w.x) w over the pack's 9 values
        pack = slice(3 * p, 3 * p + 3)
        x_hat = alpha[p] * real[pack].reshape(-1) + (1 - alpha[p]) * fake[pack].reshape(-1)
        norms.append(torch.linalg.vector_norm(2 * (w @ x_hat) * w))
    expected = ((torch.stack(norms) - 1) ** 2).mean()
    assert gp.item() == pytest.approx(expected.item(), rel=1e-5)
    gp.backward()  # differentiable into D's weights
    assert D.w.grad is not None and D.w.grad.abs().sum() > 0


def test_gradient_penalty_pack_one_is_the_per_sample_penalty():
    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(8, 2, 2, generator=g), torch.randn(8, 2, 2, generator=g)
    alpha = torch.rand(8, generator=g)
    D = _Quadratic(4, pac=1)
    w = D.w.detach()
    x_hat = alpha[:, None] * real.reshape(8, -1) + (1 - alpha[:, None]) * fake.reshape(8, -1)
    norms = (2 * (x_hat @ w)).abs() * torch.linalg.vector_norm(w)
    expected = ((norms - 1) ** 2).mean()
    assert gradient_penalty(D, real, fake, alpha).item() == pytest.approx(expected.item(), rel=1e-5)
    assert gradient_penalty(D, real, fake, alpha, pack=1).item() == pytest.approx(expected.item(), rel=1e-5)


# ---------------------------------------------------------------------- the generator
def test_the_ctgan_generator_output_has_the_transform_layout():
    layout = [[1, "tanh", "value"], [3, "softmax", "mode"], [4, "softmax", "category"]]
    G, D = build_ctgan((8,), z_dim=6, generator_dims=[16, 16], discriminator_dims=[16], pac=4, cond_dim=4,
                       layout=layout)
    z, c = torch.randn(20, 6), torch.nn.functional.one_hot(torch.arange(20) % 4, 4).float()
    soft = G(z, c)
    assert soft.shape == (20, 8)
    assert (soft[:, 0].abs() < 1).all()
    for start, width in ((1, 3), (4, 4)):
        part = soft[:, start:start + width]
        assert torch.allclose(part.sum(1), torch.ones(20), atol=1e-5) and (part >= 0).all()
    G.hard = True
    hard = G(z, c)
    for start, width in ((1, 3), (4, 4)):
        part = hard[:, start:start + width]
        assert torch.equal(part.sum(1), torch.ones(20)) and set(part.unique().tolist()) <= {0.0, 1.0}
    assert D(torch.cat([soft, c], 1)).shape == (5,)


def test_the_generator_loss_reaches_every_generator_parameter(tmp_path):
    csv = _two_columns(tmp_path / "t.csv", 100)
    trainer = Trainer(_cfg(CTGAN, csv, train={"steps": 1}), tmp_path / "run", progress=False)
    algo = trainer.algorithm
    assert [s.role for s in algo.transformer.spans] == ["category", "value", "mode"]
    loss, stats = algo.g_loss(None, 0)
    assert set(stats) == {"loss_G", "cond_ce"} and stats["cond_ce"] > 0
    loss.backward()
    for name, p in algo.G.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # the conditional cross-entropy alone reaches G's output layer through the discrete logits
    algo.G.zero_grad()
    c = algo.sampler.condvec(50)[0]
    raw = algo.G.raw(algo.G.sample_z(50, None, algo.device), c)
    ce = algo.cond_loss(raw, c)
    expected = torch.nn.functional.cross_entropy(raw[:, 0:2], c.argmax(1))  # a is the only discrete column
    assert ce.item() == pytest.approx(expected.item(), rel=1e-5)
    ce.backward()
    assert algo.G.out.weight.grad[0:2].abs().sum() > 0
    assert algo.G.out.weight.grad[2:].abs().sum() == 0  # the value and mode logits are not in it


# ---------------------------------------------------------------------- learning a dependence
def _mean_b(run: Path, a: str, n: int = 600) -> float:
    """The mean of b in ``n`` rows drawn under the condition a=``a`` (all of which have it)."""
    rows = load_run(run).draw(n, conditions={"a": a}).table
    assert len(rows) == n and (rows["a"] == a).all()
    return float(rows["b"].mean())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A CTGAN run of 400 steps and a TVAE run of 600 on the two-column table, and both after 1 step."""
    root = tmp_path_factory.mktemp("tables")
    csv = _two_columns(root / "t.csv")
    out = {}
    for name, base in (("ctgan", CTGAN), ("tvae", TVAE)):
        out[name] = _train(_cfg(base, csv, train={"steps": 400 if name == "ctgan" else 600}), root / name)
        out[name + "0"] = _train(_cfg(base, csv, train={"steps": 1}), root / (name + "0"))
    out["csv"] = csv
    return out


@pytest.mark.parametrize("name", ["ctgan", "tvae"])
def test_a_few_hundred_steps_learn_that_b_depends_on_a(runs, name):
    y, y0 = _mean_b(runs[name], "y"), _mean_b(runs[name + "0"], "y")
    assert abs(y - 5) < abs(y0 - 5) and abs(y - 5) < 1.5, (y, y0)
    x = _mean_b(runs[name], "x", 200)
    assert y - x > 2, (y, x)  # the groups are apart


def test_ctgan_separates_the_groups_cleanly_with_wider_batches(tmp_path):
    csv = _two_columns(tmp_path / "t.csv")
    run = _train(_cfg(CTGAN, csv, train={"steps": 1200, "batch_size": 100},
                      model={"generator_dims": [64, 64], "discriminator_dims": [64, 64], "pac": 10}),
                 tmp_path / "run")
    y, x = _mean_b(run, "y"), _mean_b(run, "x")
    assert y - x > 4 and abs(y - 5) < 1 and abs(x) < 1.5, (y, x)


def test_rows_under_a_condition_honour_it_through_the_cli(runs, tmp_path, capsys):
    loaded = load_run(runs["tvae"])
    rows = loaded.draw(200, conditions={"a": "y"}, seed=3).table
    assert len(rows) == 200 and (rows["a"] == "y").all() and abs(rows["b"].mean() - 5) < 1.5
    assert loaded.draw(200, conditions={"a": "y"}, seed=3).table.equals(rows)  # seeded
    for name in ("ctgan", "tvae"):
        out = tmp_path / f"{name}.csv"
        assert main(["sample", str(runs[name]), "-n", "20", "-o", str(out), "--condition", "a=y"]) == 0
        step = load_run(runs[name]).step
        assert f"wrote 20 rows from step {step}, a=y to {out}" in capsys.readouterr().out
        back = pd.read_csv(out)
        assert list(back.columns) == ["a", "b"] and len(back) == 20 and (back["a"] == "y").all()
    # without conditions the categories follow the data's shares
    free = load_run(runs["ctgan"]).draw(400).table
    assert set(free["a"]) == {"x", "y"}
    assert main(["sample", str(runs["ctgan"]), "-n", "30", "-o", str(tmp_path / "m.png")]) == 0
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------------- resume
@pytest.mark.parametrize("base, nets", [(CTGAN, ("G", "D")), (TVAE, ("encoder", "decoder"))])
def test_resume_continues_exactly(tmp_path, one_thread, base, nets):
    csv = _two_columns(tmp_path / "t.csv", 120)
    train = {"steps": 6, "checkpoint_every": 3, "log_every": 3}
    Trainer(_cfg(base, csv, train=train), tmp_path / "full", progress=False).fit()
    Trainer(_cfg(base, csv, train={**train, "steps": 3}), tmp_path / "split", progress=False).fit()
    resumed = Trainer(_cfg(base, csv, train=train), tmp_path / "split", resume=True, progress=False)
    assert resumed.step == 3
    resumed.fit()
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "final.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "final.pt")
    assert_same_networks(a, b, nets)
    assert a["step"] == b["step"] == 6
    if base is CTGAN:
        assert a["algorithm"]["sampler"]["draws"] == b["algorithm"]["sampler"]["draws"] == 6
        assert torch.equal(a["algorithm"]["sampler"]["generator"], b["algorithm"]["sampler"]["generator"])


# ---------------------------------------------------------------------- evaluate
@pytest.mark.filterwarnings("ignore:ml_efficacy:RuntimeWarning")  # a tiny run may miss a label class
def test_evaluate_a_table_run_scores_rows_against_a_real_baseline(tmp_path, capsys, one_thread):
    rng = np.random.default_rng(0)
    n = 200
    a = rng.choice(["x", "y"], n)
    b = np.where(a == "x", rng.normal(0, 1, n), rng.normal(5, 1, n)).round(3)
    label = np.where(b + rng.normal(0, 1, n) > 2.5, "hi", "lo")
    pd.DataFrame({"a": a, "b": b, "label": label}).to_csv(tmp_path / "t.csv", index=False)
    cfg = _cfg(TVAE, tmp_path / "t.csv", data={"target": "label"}, train={"steps": 100})
    run = _train(cfg, tmp_path / "run")
    capsys.readouterr()
    assert main(["evaluate", str(run), "-n", "200"]) == 0
    printed = capsys.readouterr().out
    assert "synthetic rows vs 160 training and 40 held-out rows" in printed
    result = json.loads((run / "eval.json").read_text())
    metrics, baseline = result["metrics"], result["baseline"]
    for key in ("quality", "column_shapes", "pair_trends", "detection_auc", "detection_score", "mia_auc",
                "tstr_accuracy", "trtr_accuracy"):
        assert key in metrics and math.isfinite(metrics[key]), key
    assert 0 <= metrics["quality"] <= 1 and 0 <= metrics["detection_auc"] <= 1
    assert "quality" in baseline and "detection_auc" in baseline and math.isfinite(baseline["quality"])
    assert result["generated_samples"] == 160 and result["step"] == 100
    # without a target there is no efficacy
    cfg = _cfg(TVAE, tmp_path / "t.csv", train={"steps": 2})
    run = _train(cfg, tmp_path / "plain")
    assert main(["evaluate", str(run), "-n", "50", "-o", str(tmp_path / "e.json")]) == 0
    metrics = json.loads((tmp_path / "e.json").read_text())["metrics"]
    assert "quality" in metrics and not any(k.startswith("tstr") for k in metrics)


def test_a_condition_on_an_integer_coded_category_is_read_from_text(tmp_path, capsys, one_thread):
    """``--condition k=1`` names category 1 of a column of whole numbers (categorical: <= 10
    values); it used to be refused as "'1' is not one of its categories: 0, 1, 2"."""
    rng = np.random.default_rng(0)
    pd.DataFrame({"k": rng.integers(0, 3, 80), "b": rng.normal(0, 1, 80).round(2)}).to_csv(
        tmp_path / "t.csv", index=False)
    run = _train(_cfg(TVAE, tmp_path / "t.csv", train={"steps": 2}), tmp_path / "run")
    assert main(["sample", str(run), "-n", "10", "-o", str(tmp_path / "s.csv"), "--condition", "k=1"]) == 0
    back = pd.read_csv(tmp_path / "s.csv")
    assert list(back.columns) == ["k", "b"] and (back["k"] == 1).all()
    assert (load_run(run).draw(5, conditions={"k": 2}).table["k"] == 2).all()  # the Python API's ints


# ---------------------------------------------------------------------- the copula as a run
def test_the_copula_baseline_is_a_run_that_samples_conditions_and_evaluates_like_the_others(tmp_path, capsys):
    csv = _two_columns(tmp_path / "t.csv", 300)
    cfg = ExperimentConfig.from_dict({"seed": 0, "algorithm": {"name": "copula"},
                                      "data": {"name": "table", "path": str(csv)},
                                      "model": {"name": "copula"},
                                      "train": {"steps": 1, "log_every": 1, "sample_every": 1,
                                                "checkpoint_every": 1}})
    run = _train(cfg, tmp_path / "run")
    loaded = load_run(run)
    rows = loaded.draw(400, seed=3).table
    assert list(rows.columns) == ["a", "b"] and set(rows["a"]) <= {"x", "y"}
    # the copula keeps the dependence it can: b's mean under a = y is well above its mean under a = x
    assert _mean_b(run, "y") - _mean_b(run, "x") > 2
    again = load_run(run).draw(400, seed=3).table  # the fitted copula comes back from the checkpoint
    pd.testing.assert_frame_equal(rows, again)
    capsys.readouterr()
    assert main(["evaluate", str(run), "-n", "200", "--metrics", "quality"]) == 0
    assert json.loads((run / "eval.json").read_text())["metrics"]["column_shapes"] > 0.8
