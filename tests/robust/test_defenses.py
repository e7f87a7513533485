"""Defense-GAN's projection, BPDA, APE-GAN, the detector, the classifier and their files."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.robust import (
    APEConfig,
    ClassifierConfig,
    DefendedClassifier,
    DefenseGAN,
    DetectorConfig,
    accuracy,
    attack_images,
    bpda,
    parse_attack,
    roc_auc,
    train_ape_gan,
    train_classifier,
    train_detector,
)
from ganforge.robust.apegan import ape_from_state
from ganforge.robust.classifier import load_classifier, load_part, save_part
from ganforge.robust.defenses import Defense
from tests.conftest import SHARED_MNIST, needs_mnist
from tests.robust.conftest import needs_torchattacks


class TinyGenerator(nn.Module):
    """z (N, 8) -> (N, 1, 28, 28) in [-1, 1]: a fixed random smooth map."""

    z_dim = 8

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.net = nn.Sequential(nn.Linear(8, 64), nn.Tanh(), nn.Linear(64, 784), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, 1, 28, 28)


def test_the_projection_lowers_the_error_at_every_step_and_keeps_the_best_restart():
    G = TinyGenerator()
    x = (G(torch.randn(6, 8, generator=torch.Generator().manual_seed(1))).detach() + 1) / 2
    defense = DefenseGAN(G, steps=100, restarts=3, lr=0.05, seed=0)
    p = defense.project(x)
    mean = p.history.mean((1, 2))
    assert p.history.shape == (101, 6, 3)
    assert (mean[1:] <= mean[:-1] + 1e-5).all()  # Adam at this rate descends monotonically here
    assert mean[-1] < 1e-3 * mean[0]  # x is in G's range: the projection finds it
    # the kept code is the restart with the smallest final error, and it renders that error
    assert torch.allclose(p.error, p.history[-1].min(1).values)
    assert torch.allclose(((defense.render(p.z) - x) ** 2).flatten(1).sum(1), p.error, rtol=1e-4, atol=1e-5)
    assert torch.allclose(p.images, defense.render(p.z).clamp(0, 1))


def test_the_projection_is_reproducible_by_seed_and_leaves_the_generator_alone():
    G = TinyGenerator()
    before = [q.clone() for q in G.parameters()]
    x = torch.rand(4, 1, 28, 28)
    a, b = DefenseGAN(G, steps=5, restarts=2, seed=3), DefenseGAN(G, steps=5, restarts=2, seed=3)
    assert torch.equal(a(x), b(x))
    assert not torch.equal(a(x), b.reseed(3) or b(x))  # a went on drawing new codes, b started again
    a.reseed(3)
    b.reseed(3)
    assert torch.equal(a(x), b(x))
    assert all(torch.equal(p, q) for p, q in zip(before, G.parameters(), strict=True))


@pytest.mark.parametrize(
    "kwargs, words", [({"steps": 0}, "steps"), ({"restarts": 1.5}, "restarts"), ({"lr": -1.0}, "rate")]
)
def test_bad_projection_options_are_one_line_errors(kwargs, words):
    with pytest.raises(GanforgeError, match=words):
        DefenseGAN(TinyGenerator(), **kwargs)


class Halve(Defense):
    """A non-differentiable defence stand-in: x / 2 computed without a graph."""

    differentiable = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x / 2).detach()


def test_bpda_passes_the_gradient_through_as_the_identity():
    x = torch.rand(3, 1, 28, 28, requires_grad=True)
    w = torch.randn(3, 1, 28, 28)
    out = bpda(Halve(), x)
    assert torch.allclose(out, x.detach() / 2)
    (w * out).sum().backward()
    assert torch.equal(x.grad, w)  # d/dx of w . g(x) with g's Jacobian taken as I


def test_a_defended_classifier_uses_bpda_only_for_a_non_differentiable_defence():
    clf = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    x = torch.rand(2, 1, 28, 28, requires_grad=True)
    DefendedClassifier(clf, Halve())(x).sum().backward()
    bpda_grad = x.grad.clone()
    x.grad = None
    clf(x).sum().backward()
    assert torch.allclose(bpda_grad, x.grad)  # the identity's gradient: the classifier's own at x/2
    x.grad = None

    class Scale(Defense):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x / 2

    DefendedClassifier(clf, Scale())(x).sum().backward()
    assert torch.allclose(x.grad, bpda_grad / 2)  # true chain rule through a differentiable defence


def test_the_classifier_learns_and_its_file_round_trips(classifier, test_set, tmp_path):
    x, y = test_set
    assert accuracy(classifier, x, y) > 0.9
    path = save_part(classifier, tmp_path / "clf.pt", "classifier", classifier.meta)
    again = load_classifier(path)
    assert torch.equal(again(x), classifier(x)) and again.meta["dataset"] == "fashion-mnist"
    with pytest.raises(GanforgeError, match="holds a classifier, not a ape-gan"):
        load_part(path, "ape-gan")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(GanforgeError, match="not a ganforge classifier file"):
        load_classifier(tmp_path / "junk.pt")
    wide = save_part(
        classifier, tmp_path / "wide.pt", "classifier", {**classifier.meta, "shape": [1, 32, 32]}
    )
    with pytest.raises(GanforgeError, match=r"shape \[1, 32, 32\]"):
        load_classifier(wide)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"epochs": 0}, "epochs"),
        ({"adv_eps": 1.5}, "outside"),
        ({"lr": float("nan")}, "lr"),
        ({"adv_warmup": 1.0}, "adv_warmup"),
    ],
)
def test_bad_classifier_options_are_one_line_errors(kwargs, words, train_set):
    with pytest.raises(GanforgeError, match=words):
        train_classifier(*train_set, ClassifierConfig(**kwargs))


def test_images_the_classifier_cannot_take_are_refused():
    with pytest.raises(GanforgeError, match=r"not \(N, 1, 28, 28\)"):
        train_classifier(torch.rand(4, 1, 32, 32), torch.zeros(4).long())
    with pytest.raises(GanforgeError, match=r"\[0, 1\]"):
        train_classifier(torch.rand(4, 1, 28, 28) * 2 - 1, torch.zeros(4).long())


@needs_torchattacks
def test_pgd_adversarial_training_buys_robustness(classifier, train_set, test_set, one_thread):
    torch.manual_seed(0)
    x, y = train_set
    robust = train_classifier(
        x[:800], y[:800], ClassifierConfig(epochs=2, batch_size=64, adv_eps=0.2, adv_steps=3)
    )
    x, y = test_set
    attack = parse_attack("pgd:0.2", pgd_steps=10)
    plain_acc = accuracy(classifier, attack_images(attack, classifier, x, y), y)
    robust_acc = accuracy(robust, attack_images(attack, robust, x, y), y)
    assert robust_acc > plain_acc + 0.3, (plain_acc, robust_acc)


@needs_torchattacks
def test_ape_gan_learns_to_undo_fgsm(classifier, train_set, test_set, tmp_path, one_thread):
    G = train_ape_gan(
        classifier, *train_set, APEConfig(epochs=3, batch_size=64, eps=(0.3,), width=16, lr=1e-3)
    )
    x, y = test_set
    adversarial = attack_images(parse_attack("fgsm:0.3"), classifier, x, y)
    with torch.no_grad():
        cleaned = G(adversarial)
    assert cleaned.shape == x.shape and cleaned.min() >= 0 and cleaned.max() <= 1
    assert ((cleaned - x) ** 2).mean() < 0.5 * ((adversarial - x) ** 2).mean()
    assert accuracy(classifier, cleaned, y) > accuracy(classifier, adversarial, y) + 0.3
    path = save_part(G, tmp_path / "ape.pt", "ape-gan", G.meta)
    again = ape_from_state(*load_part(path, "ape-gan"))
    assert torch.equal(again(adversarial), G(adversarial))


@needs_torchattacks
def test_the_detector_tells_attacked_images_from_clean_ones(classifier, train_set, test_set, one_thread):
    detector = train_detector(
        classifier, *train_set, DetectorConfig(epochs=3, width=8), attacks=[parse_attack("fgsm:0.2")]
    )
    x, y = test_set
    adversarial = attack_images(parse_attack("fgsm:0.2"), classifier, x, y)
    assert roc_auc(detector.score(x), detector.score(adversarial)) > 0.9


def test_roc_auc_against_its_definition():
    clean, adversarial = torch.tensor([0.1, 0.4, 0.35]), torch.tensor([0.8, 0.3, 0.9, 0.5])
    # the share of (clean, adversarial) pairs ranked right: 10 of 12
    pairs = [(c < a) + 0.5 * (c == a) for c in clean.tolist() for a in adversarial.tolist()]
    assert roc_auc(clean, adversarial) == pytest.approx(sum(pairs) / len(pairs))


class BlockGenerator(nn.Module):
    """The range of the block images: a soft choice among the ten blocks on the dark background."""

    z_dim = 10

    def __init__(self) -> None:
        super().__init__()
        masks = torch.zeros(10, 1, 28, 28)
        for k in range(10):
            r, c = 2 + 12 * (k // 5), 1 + 5 * (k % 5)
            masks[k, 0, r:r + 7, c:c + 7] = 1
        self.register_buffer("masks", masks.flatten(1))
        self.scale = nn.Parameter(torch.tensor(0.75))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        image = 0.1 + self.scale * torch.softmax(3 * z, 1) @ self.masks
        return (image * 2 - 1).view(-1, 1, 28, 28)


@needs_torchattacks
def test_defense_gan_on_the_data_s_range_undoes_an_oblivious_attack(classifier, test_set, one_thread):
    x, y = test_set
    adversarial = attack_images(parse_attack("fgsm:0.3"), classifier, x, y)
    projection = DefenseGAN(BlockGenerator(), steps=60, restarts=2, lr=0.1)
    defended = DefendedClassifier(classifier, projection).eval()
    attacked = accuracy(classifier, adversarial, y)
    assert accuracy(defended, adversarial, y) > attacked + 0.3, attacked
    assert accuracy(defended, x, y) > 0.9


@needs_mnist
def test_the_classifier_learns_real_mnist_digits(one_thread):
    from ganforge.robust import load_images

    x, y = load_images("mnist", "test", str(SHARED_MNIST))
    model = train_classifier(x[:3000], y[:3000], ClassifierConfig(epochs=2, batch_size=64))
    assert accuracy(model, x[-2000:], y[-2000:]) > 0.9


class LinearGenerator(nn.Module):
    """G(z) = A z + b: its range is an affine subspace, and the least-squares projection is linear."""

    z_dim = 3

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.A = nn.Linear(3, 784)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.A(z).view(-1, 1, 28, 28)


def test_the_tangent_bpda_gradient_is_the_exact_derivative_of_a_linear_projection():
    G = LinearGenerator()
    defense = DefenseGAN(G, bpda="tangent")
    z, grad = torch.randn(4, 3), torch.randn(4, 1, 28, 28)
    # render(z) = (A z + b + 1) / 2 = A' z + b'; z*(x) = (A'^T A')^-1 A'^T (x - b'), so
    # d/dx f(render(z*(x))) = P grad f with P = A' (A'^T A')^-1 A'^T, the projection onto A''s columns
    A = G.A.weight.detach() / 2
    P = A @ torch.linalg.inv(A.T @ A) @ A.T
    assert torch.allclose(defense.approximate_vjp(z, grad).flatten(1), grad.flatten(1) @ P.T, atol=1e-4)
    assert torch.equal(DefenseGAN(G).approximate_vjp(z, grad), grad)  # the identity by default
    with pytest.raises(GanforgeError, match="unknown BPDA gradient 'exact'"):
        DefenseGAN(G, bpda="exact")
