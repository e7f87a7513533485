"""Input-purifying defences, and a classifier behind one, as attacks see it.

A :class:`Defense` maps images in [0, 1] to images in [0, 1] before the classifier. What an
attack sees is the threat model (:mod:`ganforge.robust.evaluate`):

- oblivious: the attack differentiates the classifier alone, the defence is applied after;
- adaptive (white-box): the attack differentiates classifier(defence(x)). A defence whose output
  is the result of an optimisation (Defense-GAN) has no useful gradient, so it is crossed by
  BPDA (Backward Pass Differentiable Approximation, Athalye et al. 2018): the forward pass is the
  defence, the backward pass an approximation of its Jacobian (:meth:`Defense.approximate_vjp`;
  the identity by default, since defence(x) ~ x); its random restarts are handled by EOT (the
  attack averages gradients over several forward passes).

Defense-GAN (Samangouei, Kabkab and Chellappa 2018) projects x onto the range of a generator G
trained on clean data:

    z* = argmin_{z in {z_1..z_R}} ||G(z) - x||_2^2,   z_r after L gradient steps from z_r^0 ~ p(z)

and classifies G(z*). Each restart r runs L steps of Adam on its own z (the squared error of one
image depends only on its own code, so a batch of images and restarts is optimised at once).
``reconstruction_error`` is ||G(z*) - x||^2, the paper's detection score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.robust.classifier import in_batches


class Defense(nn.Module):
    """x (N, C, H, W) in [0, 1] -> purified x' in [0, 1] (subclasses define ``forward``).
    ``differentiable``: whether attacks may differentiate it (False: they cross it by BPDA,
    :func:`bpda`)."""

    differentiable = True

    def reseed(self, seed: int) -> None:
        """Restart the defence's own random draws from ``seed`` (none by default)."""

    def purify_for_attack(self, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """The purified images and what :meth:`approximate_vjp` needs of this forward pass."""
        return self(x), None

    def approximate_vjp(self, state: Any, grad: torch.Tensor) -> torch.Tensor:
        """BPDA's backward pass: grad_x of a loss, given its gradient at the purified images. The
        default takes the defence's Jacobian as the identity (g(x) = x)."""
        return grad


class _Bpda(torch.autograd.Function):
    """Forward: the defence; backward: its :meth:`Defense.approximate_vjp`."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, defense: Defense) -> torch.Tensor:  # noqa: ANN001
        with torch.enable_grad():
            out, state = defense.purify_for_attack(x.detach())
        ctx.defense, ctx.state = defense, state
        return out.detach()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: ANN001
        return ctx.defense.approximate_vjp(ctx.state, grad), None


def bpda(defense: Defense, x: torch.Tensor) -> torch.Tensor:
    """``defense(x)`` with :meth:`Defense.approximate_vjp` (by default the identity) as its
    backward pass: BPDA (Athalye, Carlini and Wagner 2018)."""
    return _Bpda.apply(x, defense)


class DefendedClassifier(nn.Module):
    """classifier(defense(x)), crossing a non-differentiable defence by BPDA in the backward pass.
    ``defense`` None: the classifier alone."""

    def __init__(self, classifier: nn.Module, defense: Defense | None = None) -> None:
        super().__init__()
        self.classifier, self.defense = classifier, defense

    def purify(self, x: torch.Tensor) -> torch.Tensor:
        if self.defense is None:
            return x
        if self.defense.differentiable:
            return self.defense(x)
        return bpda(self.defense, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.purify(x))


@dataclass
class Projection:
    """Defense-GAN's result for N images: ``images`` G(z*) in [0, 1], ``z`` (N, z_dim),
    ``error`` ||G(z*) - x||^2 (N,), and ``history`` (L + 1, N, R): every restart's error at every
    step (step 0 is the random start)."""

    images: torch.Tensor
    z: torch.Tensor
    error: torch.Tensor
    history: torch.Tensor


#: the backward passes BPDA may take through Defense-GAN (:meth:`DefenseGAN.approximate_vjp`)
BPDA_GRADIENTS = ("identity", "tangent")


class DefenseGAN(Defense):
    """Project onto the range of ``generator`` (z -> images in [-1, 1]): ``steps`` (L) Adam steps of
    rate ``lr`` from each of ``restarts`` (R) random codes, keep the best; see the module docstring.
    Its restarts draw from ``seed`` and go on drawing (reseed with :meth:`reseed`)."""

    differentiable = False

    def __init__(
        self,
        generator: nn.Module,
        *,
        steps: int = 100,
        restarts: int = 4,
        lr: float = 0.05,
        seed: int = 0,
        bpda: str = "identity",
    ) -> None:
        super().__init__()
        if bpda not in BPDA_GRADIENTS:
            raise GanforgeError(f"unknown BPDA gradient {bpda!r}", f"use {' or '.join(BPDA_GRADIENTS)}")
        self.bpda = bpda
        for what, value in (("steps (L)", steps), ("restarts (R)", restarts)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise GanforgeError(
                    f"Defense-GAN {what} must be a positive integer, got {value!r}",
                    "pass e.g. --steps 100 --restarts 4",
                )
        if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
            raise GanforgeError(f"Defense-GAN's rate must be a positive number, got {lr!r}", "pass e.g. 0.05")
        self.generator = generator.eval()
        for p in self.generator.parameters():
            p.requires_grad_(False)
        self.z_dim = int(generator.z_dim)
        self.steps, self.restarts, self.lr = steps, restarts, float(lr)
        self._codes = torch.Generator()
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self._codes.manual_seed(int(seed))

    def render(self, z: torch.Tensor) -> torch.Tensor:
        """G(z) on the [0, 1] pixel scale."""
        return (self.generator(z) + 1) / 2

    def project(self, x: torch.Tensor) -> Projection:
        n, r = len(x), self.restarts
        device = x.device
        target = x.detach().repeat_interleave(r, 0)
        z = torch.randn(n * r, self.z_dim, generator=self._codes).to(device).requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=self.lr)
        history = []
        with torch.enable_grad():
            for step in range(self.steps + 1):
                error = (self.render(z) - target).flatten(1).pow(2).sum(1)
                history.append(error.detach().view(n, r))
                if step == self.steps:
                    break
                optimizer.zero_grad(set_to_none=True)
                error.sum().backward()
                optimizer.step()
        final = history[-1]
        best = final.argmin(1)
        rows = torch.arange(n, device=device) * r + best
        z_best = z.detach()[rows]
        with torch.no_grad():
            images = self.render(z_best).clamp(0, 1)
        return Projection(
            images, z_best, final[torch.arange(n, device=device), best], torch.stack(history).cpu()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(x).images

    def purify_for_attack(self, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        p = self.project(x)
        return p.images, p.z

    def approximate_vjp(self, z: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """``identity``: grad itself. ``tangent``: grad projected onto the tangent space of G's range
        at G(z*), J (J^T J)^-1 J^T grad with J = dG/dz at z* (a small ridge keeps it solvable):
        the exact derivative of x -> G(z*(x)) where z* is the least-squares fit and G is locally
        linear, so only the part of a perturbation that moves along the range survives."""
        if self.bpda == "identity":
            return grad
        from torch.func import jacfwd, vmap

        def one(code: torch.Tensor) -> torch.Tensor:
            return self.render(code.unsqueeze(0)).flatten()

        with torch.enable_grad():
            J = vmap(jacfwd(one))(z.detach())  # (N, D, k)
        g = grad.flatten(1).unsqueeze(2)
        gram = J.transpose(1, 2) @ J + 1e-4 * torch.eye(J.shape[2], device=J.device)
        coefficients = torch.linalg.solve(gram, J.transpose(1, 2) @ g)
        return (J @ coefficients).view_as(grad)

    def reconstruction_error(self, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """||G(z*) - x||^2 per image (N,), on the CPU (each batch projected on G's device)."""
        return in_batches(lambda batch: self.project(batch).error, x, batch_size, self.generator)
