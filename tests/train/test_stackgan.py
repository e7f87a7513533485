"""The stackgan algorithm through the shared Trainer: the matching-aware losses, the phase switch
at ``stage1_steps``, the frozen stage I, bit-identical resume across the switch, sampling a loaded
run with no dataset, and (slow) that the text's class is learnt.

The data are a stand-in for the ``fashion-captions`` dataset: scikit-learn's digits at 32 x 32
with K caption embeddings per image, each its class's fixed random vector plus noise."""

from __future__ import annotations

import csv

import pytest
import torch

from ganforge.config import ExperimentConfig
from ganforge.data.base import ArrayDataset
from ganforge.data.digits import digits
from ganforge.errors import GanforgeError
from ganforge.train import Experiment, Trainer, load_run
from ganforge.train.algorithms.stackgan import (
    StackGAN,
    generator_loss,
    matching_aware_d_loss,
    mismatched_indices,
    pick_captions,
)
from ganforge.train.checkpoint import load_checkpoint

E, K = 12, 3


class FakeCaptioned(ArrayDataset):
    """Digits at 32 x 32 with fields x, y, text: text[i, k] = v[y_i] + 0.1 noise, v a fixed
    random unit vector per class; ``captions`` name the class; no encoder or vocabulary."""

    def __init__(self, n: int = 512, seed: int = 0) -> None:
        base = digits(size=32)
        gen = torch.Generator().manual_seed(seed)
        x, y = base.x[:n], base.y[:n]
        v = torch.nn.functional.normalize(torch.randn(10, E, generator=gen), dim=1) * 2
        self.text = v[y][:, None, :] + 0.1 * torch.randn(len(y), K, E, generator=gen)
        super().__init__(x, y, name="fake-captions", num_classes=10)
        self.class_vectors = v
        self.captions = [[f"digit {int(c)} take {k}" for k in range(K)] for c in y]
        self.text_dim, self.encoder, self.vocab = E, None, None

    @property
    def fields(self) -> tuple[str, ...]:
        return ("x", "y", "text")

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"x": self.x, "y": self.y, "text": self.text}


TINY = {
    "seed": 3,
    "algorithm": {"name": "stackgan", "stage1_steps": 6, "bank_size": 20},
    "data": {"name": "digits", "size": 32},
    "model": {"name": "stackgan", "text_dim": E, "z_dim": 8, "c_dim": 6, "code_dim": 6,
              "g1_width": 8, "d1_width": 8, "g2_width": 8, "d2_width": 8, "residual_blocks": 1},
    "train": {"steps": 12, "batch_size": 16, "log_every": 1, "sample_every": 6,
              "checkpoint_every": 6, "num_fixed_samples": 8},
}


def _cfg(**changes) -> ExperimentConfig:
    tree = {**TINY}
    for key, value in changes.items():
        tree[key] = {**tree.get(key, {}), **value}
    return ExperimentConfig.from_dict(tree)


@pytest.fixture(scope="module")
def data():
    return FakeCaptioned()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data):
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("stackgan") / "run"
    Trainer(_cfg(), run, progress=False, dataset=data).fit()
    return run


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


# ---------------------------------------------------------------------- the losses
def test_matching_aware_d_loss_labels_matched_real_pairs_real_and_the_rest_fake():
    big = torch.full((8,), 20.0)
    # a D that says +big on (real, right text) and -big on both fake pairs is optimal: loss ~ 0
    assert matching_aware_d_loss(big, -big, -big) < 1e-6
    # fooled on any pair: the loss grows, with the paper's weights 1, 1/2, 1/2
    assert matching_aware_d_loss(-big, -big, -big).item() == pytest.approx(20.0, rel=1e-3)
    assert matching_aware_d_loss(big, big, -big).item() == pytest.approx(10.0, rel=1e-3)
    assert matching_aware_d_loss(big, -big, big).item() == pytest.approx(10.0, rel=1e-3)
    zero = torch.zeros(8)
    log2 = torch.log(torch.tensor(2.0)).item()
    assert matching_aware_d_loss(zero, zero, zero).item() == pytest.approx(2 * log2)


def test_generator_loss_is_non_saturating_plus_weighted_kl():
    s = torch.tensor([0.3, -1.2])
    mu, logvar = torch.tensor([[1.0, 0.0], [0.0, 0.5]]), torch.zeros(2, 2)
    loss, kl = generator_loss(s, mu, logvar, kl_weight=2.0)
    expected_kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1).mean()
    adv = torch.nn.functional.softplus(-s).mean()  # -log sigmoid(s)
    assert kl.item() == pytest.approx(expected_kl.item())
    assert loss.item() == pytest.approx(adv.item() + 2.0 * expected_kl.item())


def test_wrong_text_comes_from_another_class():
    y = torch.tensor([0, 0, 1, 2, 2, 2, 1, 0])
    for seed in range(5):
        j = mismatched_indices(y, torch.Generator().manual_seed(seed))
        assert (y[j] != y).all()
    assert torch.equal(mismatched_indices(torch.zeros(4, dtype=torch.long)), torch.tensor([1, 2, 3, 0]))
    picks = {int(mismatched_indices(y, torch.Generator().manual_seed(s))[0]) for s in range(30)}
    assert picks == {2, 3, 4, 5, 6}  # uniform over the other classes' images


def test_pick_captions_takes_one_of_each_images_captions():
    text = torch.arange(4 * 3 * 2, dtype=torch.float).view(4, 3, 2)
    picked = pick_captions(text, torch.Generator().manual_seed(0))
    assert picked.shape == (4, 2)
    for i in range(4):
        assert any(torch.equal(picked[i], text[i, k]) for k in range(3))


def test_the_d_phase_scores_right_fake_and_wrong_pairs(data):
    exp = Experiment(_cfg(), dataset=data)
    algo: StackGAN = exp.algorithm
    calls = []

    class Spy(torch.nn.Module):
        def forward(self, x, text):
            calls.append((x.clone(), text.clone()))
            return torch.zeros(len(x))

        def scores(self, x, text):
            return self(x, text), None

    algo.D1 = Spy()
    batch = {k: v[:16] for k, v in data.tensors().items()}
    loss, stats = algo.loss("D1", batch, 0)
    (real, right), (fake, right2), (real2, wrong) = calls
    assert real.shape == fake.shape == (16, 1, 16, 16) and torch.equal(real, real2)
    assert torch.equal(right, right2)
    # each right text is one of the image's captions, each wrong text another class's caption
    text, y = batch["text"], batch["y"]
    for i in range(16):
        assert any(torch.equal(right[i], text[i, k]) for k in range(K))
        owners = [j for j in range(16) if torch.equal(wrong[i], right[j])]
        assert owners and all(y[j] != y[i] for j in owners)
    assert set(stats) == {"real_score", "fake_score", "wrong_score"}


def test_the_class_head_adds_tac_gan_cross_entropies(data):
    """With model.class_head, D's loss gains class_weight * CE(real images' classes) and G's
    class_weight * CE(the fakes' classes = their captions' classes); class_weight 0 removes them."""
    batch = {k: v[:16] for k, v in data.tensors().items()}
    losses = {}
    for w in (0.0, 2.0):
        torch.manual_seed(0)
        exp = Experiment(_cfg(algorithm={"class_weight": w}, model={"class_head": True}), dataset=data)
        algo: StackGAN = exp.algorithm
        algo.noise.manual_seed(5)
        loss_d, stats = algo.loss("D1", batch, 0)
        algo.noise.manual_seed(6)
        loss_g, _ = algo.loss("G1", batch, 0)
        losses[w] = (loss_d.item(), loss_g.item(), stats["class_loss"])
        if w:
            # the G term: recompute the fakes from the same draws and their class CE by hand
            algo.noise.manual_seed(6)
            _, text, y = algo._batch(batch)
            fake, mu, logvar = algo._fake(1, text)
            s_fake, c_fake = algo.D1.scores(fake, text)
            adversarial, _ = generator_loss(s_fake, mu, logvar, algo.kl_weight)
            ce = torch.nn.functional.cross_entropy(c_fake, y)
            assert loss_g.item() == pytest.approx((adversarial + w * ce).item(), rel=1e-5)
    (d0, g0, ce0), (d2, g2, ce2) = losses[0.0], losses[2.0]
    assert ce0 == pytest.approx(ce2) and ce0 > 0
    assert d2 == pytest.approx(d0 + 2.0 * ce0, rel=1e-5)
    assert g2 > g0


# ---------------------------------------------------------------------- phases and stages
def test_phases_switch_at_stage1_steps(tiny_run):
    with (tiny_run / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {"loss_D1", "loss_G1", "loss_D2", "loss_G2", "kl", "real_score", "fake_score",
            "wrong_score"} <= set(rows[0])
    for row in rows:
        stage2 = int(row["step"]) - 1 >= 6  # a row is logged after its step, as step + 1
        assert (row["loss_D2"] != "") == stage2 and (row["loss_D1"] != "") == (not stage2), row["step"]
    assert (tiny_run / "samples").is_dir() and any((tiny_run / "samples").iterdir())


def test_stage_one_is_frozen_in_stage_two(tiny_run, data):
    early = load_checkpoint(tiny_run / "checkpoints" / "step_0000006.pt")
    final = load_checkpoint(tiny_run / "checkpoints" / "final.pt")
    g_early, g_final = early["nets"]["G"], final["nets"]["G"]
    for name, t in g_early.items():
        if name.startswith("stage1."):  # weights and BatchNorm statistics
            assert torch.equal(t, g_final[name]), name
    assert any(not torch.equal(t, g_final[n]) for n, t in g_early.items() if n.startswith("stage2."))
    for name, t in early["nets"]["D1"].items():
        assert torch.equal(t, final["nets"]["D1"][name]), name
    assert not bool(g_early["stage2_active"]) and bool(g_final["stage2_active"])
    # and no gradient reaches stage I from a stage-II G loss
    exp = Experiment(_cfg(), dataset=data)
    algo = exp.algorithm
    algo.begin_step(6)
    algo.train()
    assert not algo.G.stage1.training and algo.G.stage2.training
    loss, _ = algo.loss("G2", {k: v[:16] for k, v in data.tensors().items()}, 6)
    loss.backward()
    assert all(p.grad is None for p in algo.G.stage1.parameters())
    assert all(p.grad is not None for p in algo.G.stage2.parameters())


def test_resume_across_the_stage_switch_is_bit_identical(tmp_path, data):
    Trainer(_cfg(), tmp_path / "full", progress=False, dataset=data).fit()
    Trainer(_cfg(train={"steps": 4}), tmp_path / "split", progress=False, dataset=data).fit()
    Trainer(_cfg(), tmp_path / "split", resume=True, progress=False, dataset=data).fit()
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "final.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "final.pt")
    for net in ("G", "D1", "D2"):
        for name, t in a["nets"][net].items():
            assert torch.equal(t, b["nets"][net][name]), f"{net}.{name}"
    assert torch.equal(a["algorithm"]["noise"], b["algorithm"]["noise"])


# ---------------------------------------------------------------------- a loaded run
def test_a_loaded_run_samples_with_no_dataset(tiny_run, data):
    run = load_run(tiny_run)
    algo: StackGAN = run.algorithm
    assert algo.dataset is None and len(algo.bank_text) == 20 and len(algo.bank_captions) == 20
    x = run.sample(10, seed=1)
    assert x.shape == (10, 1, 32, 32) and torch.equal(x, run.sample(10, seed=1))
    by_class = algo.sample(4, torch.Generator().manual_seed(0), torch.tensor([1, 1, 2, 2]), run.generator)
    assert by_class.shape == (4, 1, 32, 32)
    low, high = algo.sample_stages(3, torch.Generator().manual_seed(0), data.text[:3, 0], run.generator)
    assert low.shape == (3, 1, 16, 16) and high.shape == (3, 1, 32, 32)
    with pytest.raises(GanforgeError, match="text encoder"):
        algo.encode_text(["a digit"])  # this stand-in dataset had no encoder


def test_a_loaded_run_turns_new_captions_into_images(tmp_path, data):
    from ganforge.text import TextEncoder, Vocabulary, encode_texts

    vocab = Vocabulary.build(caption for caps in data.captions for caption in caps)
    encoder = TextEncoder(len(vocab), out_dim=E).eval()
    data.encoder, data.vocab = encoder, vocab
    try:
        Trainer(_cfg(train={"steps": 7}), tmp_path / "run", progress=False, dataset=data).fit()
    finally:
        data.encoder, data.vocab = None, None
    run = load_run(tmp_path / "run")
    texts = ["digit 7 take 1", "a digit 0", "an unheard-of word"]
    e = run.algorithm.encode_text(texts)
    assert torch.allclose(e, encode_texts(encoder, vocab, texts))
    x = run.algorithm.sample(3, torch.Generator().manual_seed(0), e, run.generator)
    assert x.shape == (3, 1, 32, 32) and torch.isfinite(x).all()


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("changes, fragment", [
    ({"algorithm": {"stage1_steps": -1}}, "stage1_steps"),
    ({"algorithm": {"kl_weight": -2}}, "kl_weight"),
    ({"algorithm": {"bank_size": 0}}, "bank_size"),
    ({"model": {"text_dim": 7}}, "text_dim=12"),
    ({"algorithm": {"loss": {"name": "hinge"}}}, "unknown key 'algorithm.loss' for algorithm 'stackgan'"),
])
def test_bad_stackgan_configs_are_one_line_errors(changes, fragment, data):
    with pytest.raises(GanforgeError, match=fragment):
        Experiment(_cfg(**changes), dataset=data)


def test_a_dataset_without_captions_is_refused():
    with pytest.raises(GanforgeError, match="'text'"):
        Experiment(_cfg(), dataset=digits(size=32))


# ---------------------------------------------------------------------- learning
@pytest.mark.slow
def test_stackgan_learns_the_class_its_text_names(tmp_path, data):
    """Generated images, classified by the nearest real class mean, mostly match the class whose
    caption embedding they were given (chance: 10%)."""
    cfg = _cfg(algorithm={"stage1_steps": 1300, "kl_weight": 0.1},
               model={"g1_width": 16, "d1_width": 16, "g2_width": 8, "d2_width": 8,
                      "condition_every_layer": True, "projection": True, "class_head": True},
               train={"steps": 1500, "batch_size": 64, "log_every": 100, "sample_every": 1500,
                      "checkpoint_every": 1500})
    Trainer(cfg, tmp_path / "run", progress=False, dataset=data).fit()
    run = load_run(tmp_path / "run")
    gen = torch.Generator().manual_seed(0)
    classes = torch.arange(200) % 10
    text = data.class_vectors[classes] + 0.1 * torch.randn(200, E, generator=gen)
    x = run.algorithm.sample(200, gen, text, run.generator)
    means = torch.stack([data.x[data.y == c].mean(0) for c in range(10)]).flatten(1)
    predicted = torch.cdist(x.flatten(1), means).argmin(1)
    accuracy = (predicted == classes).float().mean().item()
    assert accuracy > 0.6, accuracy


# ---------------------------------------------------------------------- the command line
@pytest.fixture(scope="module")
def text_run(tmp_path_factory, data):
    from ganforge.text import TextEncoder, Vocabulary

    vocab = Vocabulary.build(caption for caps in data.captions for caption in caps)
    data.encoder, data.vocab = TextEncoder(len(vocab), out_dim=E).eval(), vocab
    try:
        run = tmp_path_factory.mktemp("stackgan-text") / "run"
        Trainer(_cfg(train={"steps": 7}), run, progress=False, dataset=data).fit()
    finally:
        data.encoder, data.vocab = None, None
    return run


def test_sample_text_draws_one_row_per_caption(text_run, tmp_path, capsys):
    import numpy as np

    from ganforge.cli import main

    captions = tmp_path / "captions.txt"
    captions.write_text("digit 3 take 0\n\n  a word never seen  \n")
    out = tmp_path / "s.npz"
    assert main(["sample", str(text_run), "--text", "digit 7 take 1", "--text-file", str(captions),
                 "-n", "4", "-o", str(out)]) == 0
    with np.load(out) as f:
        assert f["x"].shape == (12, 1, 32, 32)
        assert list(f["caption"][::4]) == ["digit 7 take 1", "digit 3 take 0", "a word never seen"]
    png = tmp_path / "s.png"
    assert main(["sample", str(text_run), "--text", "digit 1", "-n", "3", "-o", str(png)]) == 0
    assert png.is_file()


@pytest.mark.parametrize("args, fragment", [
    (["--text", "  "], "--text is empty"),
    (["--text-file", "missing.txt"], "does not exist"),
    (["--text", "digit 1", "--class", "1"], "--class and --text"),
])
def test_sample_text_errors_are_one_line_and_write_nothing(text_run, tmp_path, capsys, monkeypatch,
                                                           args, fragment):
    from ganforge.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["sample", str(text_run), *args, "-o", "s.png"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0]
    assert not (tmp_path / "s.png").exists()


def test_text_on_a_run_without_text_is_refused(tiny_run, tmp_path, capsys, monkeypatch):
    from ganforge.cli import main

    (tmp_path / "empty.txt").write_text("\n \n")
    assert main(["sample", str(tiny_run), "--text-file", str(tmp_path / "empty.txt"), "-o",
                 str(tmp_path / "s.png")]) == 2
    assert "has no captions" in capsys.readouterr().err
    assert main(["sample", str(tiny_run), "--text", "digit 1", "-o", str(tmp_path / "s.png")]) == 2
    assert "has no text encoder" in capsys.readouterr().err  # a stackgan run trained without one
    assert not (tmp_path / "s.png").exists()
