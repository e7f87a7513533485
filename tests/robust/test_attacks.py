"""The attacks: names and budgets, torchattacks against closed forms, EOT, restarts."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.robust.attacks import AttackSpec, attack_images, make_attack, parse_attack, require_torchattacks
from tests.robust.conftest import needs_torchattacks


@pytest.mark.parametrize(
    "text, words",
    [
        ("fgsm:1.5", "outside (0, 1]"),
        ("pgd:0", "outside (0, 1]"),
        ("pgd:-0.1", "outside (0, 1]"),
        ("fgsm:nan", "outside (0, 1]"),
        ("fgsm", "no eps"),
        ("pgd:x", "no eps"),
        ("deepfool:0.1", "unknown attack"),
        ("cw:0.3", "CW-L2 has no eps"),
    ],
)
def test_bad_attacks_are_one_line_errors(text, words):
    with pytest.raises(GanforgeError, match=words.replace("(", r"\(").replace(")", r"\)")) as err:
        parse_attack(text)
    assert "\n" not in str(err.value)


def test_attack_names_budgets_and_labels():
    assert parse_attack("FGSM:0.3") == AttackSpec("fgsm", 0.3, steps=1)
    pgd = parse_attack("pgd:0.1", pgd_steps=40, restarts=3)
    assert (pgd.key, pgd.label) == ("pgd40-0.1", "PGD-40 x3 eps=0.1")
    assert parse_attack("cw", cw_c=10).label == "CW-L2 (c=10, 100 steps)"
    with pytest.raises(GanforgeError, match="positive integer"):
        parse_attack("pgd:0.1", pgd_steps=0)


def test_a_missing_torchattacks_is_one_line_naming_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchattacks", None)
    with pytest.raises(GanforgeError, match="no-deps torchattacks") as err:
        require_torchattacks()
    assert "\n" not in str(err.value)


class Linear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(28 * 28, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


@needs_torchattacks
def test_fgsm_from_torchattacks_is_the_clipped_sign_of_the_input_gradient_of_a_linear_model():
    torch.manual_seed(0)
    model = Linear()
    x, y = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    # closed form: d CE / dx = W^T (softmax(Wx + b) - onehot(y))
    p = F.softmax(model(x), 1) - F.one_hot(y, 10).float()
    gradient = (p @ model.fc.weight.detach()).view_as(x)
    expected = (x + 0.1 * gradient.sign()).clamp(0, 1)
    assert torch.allclose(attack_images(parse_attack("fgsm:0.1"), model, x, y), expected, atol=1e-6)


@needs_torchattacks
def test_pgd_stays_in_the_ball_and_the_pixel_range_and_beats_fgsm(classifier, test_set):
    x, y = test_set
    pgd = attack_images(parse_attack("pgd:0.3", pgd_steps=20), classifier, x, y, seed=1)
    assert (pgd - x).abs().max() <= 0.3 + 1e-6 and pgd.min() >= 0 and pgd.max() <= 1
    fgsm = attack_images(parse_attack("fgsm:0.3"), classifier, x, y)

    def acc(images: torch.Tensor) -> float:
        return float((classifier(images).argmax(1) == y).float().mean())

    assert acc(pgd) <= acc(fgsm) < acc(x)
    # the random starts come from the seed, and the global RNG is left alone
    state = torch.get_rng_state()
    again = attack_images(parse_attack("pgd:0.3", pgd_steps=20), classifier, x, y, seed=1)
    assert torch.equal(pgd, again) and torch.equal(state, torch.get_rng_state())


@needs_torchattacks
def test_eot_and_restarts_build_the_matching_torchattacks_objects(classifier):
    import torchattacks

    assert isinstance(make_attack(parse_attack("pgd:0.1"), classifier, eot=3), torchattacks.EOTPGD)
    assert isinstance(make_attack(parse_attack("fgsm:0.1"), classifier, eot=2), torchattacks.EOTPGD)
    assert isinstance(make_attack(parse_attack("pgd:0.1", restarts=2), classifier), torchattacks.MultiAttack)
    assert isinstance(make_attack(parse_attack("cw"), classifier), torchattacks.CW)


@needs_torchattacks
def test_images_outside_the_unit_range_are_refused(classifier):
    with pytest.raises(GanforgeError, match=r"\[0, 1\]"):
        attack_images(
            parse_attack("fgsm:0.1"), classifier, torch.full((2, 1, 28, 28), -1.0), torch.zeros(2).long()
        )
