"""The attacks, from ``torchattacks`` (Kim 2020; an optional install), by name and budget.

Pixels are in [0, 1] and every budget is an L-infinity radius on that scale (FGSM, PGD) except
CW-L2's, which minimises the L2 distance itself (Carlini and Wagner 2017, with constant ``c``).

- ``fgsm:EPS``  x' = clip(x + eps sign(grad_x CE(f(x), y)), 0, 1) (Goodfellow et al. 2015)
- ``pgd:EPS``   ``steps`` projected sign-gradient steps of size ``2.5 eps / steps`` from a random
  start in the eps-ball, ``restarts`` times, keeping per image the first restart that fools f
  (Madry et al. 2018)
- ``cw``        CW-L2: Adam on w with x' = (tanh(w) + 1) / 2, minimising ||x' - x||^2 + c f(x')

With ``eot > 1`` FGSM and PGD average the gradient over ``eot`` calls of a random model
(Expectation over Transformation, Athalye et al. 2018): torchattacks' EOTPGD.

``torchattacks`` declares torchvision and an old ``requests`` as requirements but imports
neither, and installing torchvision beside a CPU build of torch replaces or breaks it, so it is
installed with ``pip install --no-deps torchattacks`` (see README).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType

import torch
from torch import nn

from ganforge.errors import GanforgeError

ATTACKS = ("fgsm", "pgd", "cw")
INSTALL = "pip install --no-deps torchattacks==3.5.1 (its torchvision requirement is never imported)"


def require_torchattacks() -> ModuleType:
    """The ``torchattacks`` module, or a one-line error saying how to install it."""
    try:
        import torchattacks
    except ImportError:
        raise GanforgeError(
            "the attacks need the torchattacks package, which is not installed", INSTALL
        ) from None
    return torchattacks


@dataclass(frozen=True)
class AttackSpec:
    """One attack: ``name`` (:data:`ATTACKS`), its L-inf ``eps`` (None for ``cw``), PGD's
    ``steps`` and ``restarts``, CW's ``steps`` and constant ``c``."""

    name: str
    eps: float | None = None
    steps: int = 40
    restarts: int = 1
    c: float = 1.0

    @property
    def key(self) -> str:
        """A short name for tables and JSON: ``fgsm-0.3``, ``pgd40-0.1``, ``cw``."""
        if self.name == "cw":
            return "cw"
        steps = f"{self.steps}" if self.name == "pgd" else ""
        return f"{self.name}{steps}-{self.eps:g}"

    @property
    def label(self) -> str:
        if self.name == "cw":
            return f"CW-L2 (c={self.c:g}, {self.steps} steps)"
        if self.name == "fgsm":
            return f"FGSM eps={self.eps:g}"
        runs = f" x{self.restarts}" if self.restarts > 1 else ""
        return f"PGD-{self.steps}{runs} eps={self.eps:g}"


def parse_attack(
    text: str, *, pgd_steps: int = 40, restarts: int = 1, cw_steps: int = 100, cw_c: float = 1.0
) -> AttackSpec:
    """``fgsm:EPS``, ``pgd:EPS`` or ``cw`` -> an :class:`AttackSpec` (eps in (0, 1])."""
    name, _, value = str(text).strip().lower().partition(":")
    if name not in ATTACKS:
        raise GanforgeError(f"unknown attack {text!r}", "use fgsm:EPS, pgd:EPS or cw, e.g. --attack pgd:0.1")
    for what, number in (("PGD steps", pgd_steps), ("restarts", restarts), ("CW steps", cw_steps)):
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise GanforgeError(f"{what} must be a positive integer, got {number!r}", "pass e.g. 40")
    if name == "cw":
        if value:
            raise GanforgeError(
                f"attack {text!r}: CW-L2 has no eps (it minimises the L2 distance)", "write just cw"
            )
        if not (isinstance(cw_c, int | float) and math.isfinite(cw_c) and cw_c > 0):
            raise GanforgeError(f"CW's constant c must be a positive number, got {cw_c!r}", "pass e.g. 1")
        return AttackSpec("cw", None, steps=cw_steps, c=float(cw_c))
    try:
        eps = float(value)
    except ValueError:
        raise GanforgeError(
            f"attack {text!r} has no eps", f"write {name}:EPS with EPS in (0, 1], e.g. {name}:0.1"
        ) from None
    if not (math.isfinite(eps) and 0 < eps <= 1):
        raise GanforgeError(
            f"attack {text!r}: eps {value} is outside (0, 1] (pixels are in [0, 1])",
            f"pass e.g. {name}:0.1 or {name}:0.3",
        )
    return AttackSpec(name, eps, steps=pgd_steps if name == "pgd" else 1, restarts=restarts)


def make_attack(spec: AttackSpec, model: nn.Module, *, eot: int = 1):
    """The torchattacks object of ``spec`` against ``model`` (images in [0, 1] -> logits)."""
    ta = require_torchattacks()
    if spec.name == "cw":
        return ta.CW(model, c=spec.c, kappa=0, steps=spec.steps, lr=0.01)
    assert spec.eps is not None
    if spec.name == "fgsm":
        if eot == 1:
            return ta.FGSM(model, eps=spec.eps)
        return ta.EOTPGD(model, eps=spec.eps, alpha=spec.eps, steps=1, eot_iter=eot, random_start=False)
    alpha = 2.5 * spec.eps / spec.steps
    if eot == 1:
        one = [
            ta.PGD(model, eps=spec.eps, alpha=alpha, steps=spec.steps, random_start=True)
            for _ in range(spec.restarts)
        ]
    else:
        one = [
            ta.EOTPGD(model, eps=spec.eps, alpha=alpha, steps=spec.steps, eot_iter=eot, random_start=True)
            for _ in range(spec.restarts)
        ]
    return one[0] if len(one) == 1 else ta.MultiAttack(one)


def attack_images(
    spec: AttackSpec,
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    eot: int = 1,
    seed: int = 0,
    batch_size: int = 250,
) -> torch.Tensor:
    """Adversarial versions of ``images`` (N, C, H, W) in [0, 1] against ``model``, in batches,
    with the random starts drawn from ``seed`` (the global RNG is restored afterwards)."""
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise GanforgeError("images to attack must be in [0, 1]", "map [-1, 1] images with (x + 1) / 2")
    device = next(model.parameters()).device
    attack = make_attack(spec, model, eot=eot)
    out = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size].to(device)
            y = labels[start : start + batch_size].to(device)
            out.append(attack(x, y).detach().cpu())
    if not out:
        return images.clone()
    return torch.cat(out).clamp_(0, 1)
