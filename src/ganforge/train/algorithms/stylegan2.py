"""StyleGAN2's training (Karras et al. 2020, sec. 3.1 and appendix B): the non-saturating GAN
with *lazy* regularisation, as four phases on two optimisers::

    D_reg  every k_D = 16    R1 (Mescheder et al. 2018): (gamma / 2) k_D E_x ||grad_x D(x)||^2
    D      every step        non-saturating D loss (and the gan algorithm's stabilisers)
    G_reg  every k_G = 4     path length: w_pl k_G E (||J_w^T y||_2 - a)^2,  y ~ N(0, I) / sqrt(HW)
    G      every step        non-saturating G loss

The regularisers run every k steps with their weight multiplied by k, and the optimiser that
also takes those extra steps uses lr * c and beta ** c with c = k / (k + 1), so that its
per-minibatch dynamics match the unregularised case (appendix B). ``phases.D_reg.every`` and
``phases.G_reg.every`` change the intervals; the weights and c follow. ``optim.G``/``optim.D``
settings given in the config are used as they are (the already adjusted values); the defaults
are the paper's lr 0.0025, betas (0, 0.99) adjusted by c.

Path length (sec. 3.2): J_w^T y is one backward pass of sum(g(w) * y) to the styles ws (the
per-layer w's, mixing included); ||J_w^T y|| is the RMS over layers of the per-layer norms (as
the official code). a = ``pl_mean`` is an EMA of the mean length (decay ``pl_decay``), kept in
the checkpoint. It runs on batch_size / ``pl_batch_shrink`` codes.

Randomness: codes and the path-length y from the gan algorithm's generator (seed + 1); noise
inputs and style mixing from the global torch RNG; all checkpointed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from ganforge.config import ExperimentConfig
from ganforge.data.base import AnyDataset
from ganforge.errors import GanforgeError
from ganforge.models.style import StyleGenerator
from ganforge.train.algorithms.base import OptimizerSpec, Phase, option_weight, register_algorithm
from ganforge.train.algorithms.gan import GAN, AdversarialOptions

R1_EVERY, PL_EVERY = 16, 4
PAPER_ADAM = {"name": "adam", "lr": 0.0025, "betas": (0.0, 0.99), "eps": 1e-8}


def lazy_adam(interval: int | None, settings: dict[str, Any] = PAPER_ADAM) -> dict[str, Any]:
    """Adam settings for an optimiser that also takes a regulariser step every ``interval``
    minibatches: lr * c, betas ** c with c = interval / (interval + 1) (None: unchanged)."""
    c = 1.0 if interval is None else interval / (interval + 1)
    b1, b2 = settings["betas"]
    return {**settings, "lr": settings["lr"] * c, "betas": (b1 ** c, b2 ** c)}


def r1_penalty(D: Any, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample ||grad_x D(x)||^2 (N,), differentiable (create_graph) for D's update."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x, y).sum(), x, create_graph=True)
    return grad.square().flatten(1).sum(1)


def path_lengths(G: StyleGenerator, z: torch.Tensor, noise: torch.Generator | None = None
                 ) -> torch.Tensor:
    """||J_w^T y||_2 per sample (N,), differentiable: y ~ N(0, I) / sqrt(H W) image-sized, J_w^T y
    = grad_ws sum(g(ws) * y), its norm the RMS over the num_ws layers of the per-layer norms."""
    ws = G.styles(z)
    img = G.synthesis(ws)
    y = torch.randn(img.shape, generator=noise).to(img) / math.sqrt(img.shape[2] * img.shape[3])
    (grad,) = torch.autograd.grad((img * y).sum(), ws, create_graph=True)
    return grad.square().sum(2).mean(1).sqrt()


@register_algorithm("stylegan2")
class StyleGAN2(GAN):
    """The gan algorithm (its loss, default non-saturating, and stabilisers) plus lazy R1 and
    path-length regularisation; see the module docstring. ``r1_gamma`` 0 or ``pl_weight`` 0 drop
    that phase (and its c adjustment)."""

    name = "stylegan2"

    @dataclass
    class Options(AdversarialOptions):
        r1_gamma: float = 10.0
        pl_weight: float = 2.0
        pl_decay: float = 0.01
        pl_batch_shrink: int = 2

        def __post_init__(self) -> None:
            option_weight(self.r1_gamma, "r1_gamma", "set e.g. algorithm.r1_gamma=10")
            option_weight(self.pl_weight, "pl_weight", "set e.g. algorithm.pl_weight=2")
            option_weight(self.pl_decay, "pl_decay", "set e.g. algorithm.pl_decay=0.01")
            if not 0 < self.pl_decay <= 1:
                raise GanforgeError(f"algorithm.pl_decay={self.pl_decay!r} is not in (0, 1]",
                                    "set e.g. algorithm.pl_decay=0.01 (the paper's)")
            if self.pl_batch_shrink < 1:
                raise GanforgeError(f"algorithm.pl_batch_shrink={self.pl_batch_shrink!r} is not an "
                                    "integer >= 1", "set e.g. algorithm.pl_batch_shrink=2")

    def __init__(self, cfg: ExperimentConfig, dataset: AnyDataset | None, *,
                 sample_shape: tuple[int, ...], num_classes: int | None, device: torch.device,
                 restoring: bool = False) -> None:
        super().__init__(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes,
                         device=device, restoring=restoring)
        options = self.options
        self.r1_gamma, self.pl_weight = options.r1_gamma, options.pl_weight
        self.pl_decay, self.pl_batch_shrink = options.pl_decay, options.pl_batch_shrink
        if self.pl_weight and not isinstance(self.G, StyleGenerator):
            raise GanforgeError(f"path-length regularisation needs a style-based generator, and model "
                                f"{cfg.model['name']!r} builds {type(self.G).__name__}",
                                "use model.name=stylegan2, or set algorithm.pl_weight=0")
        self.pl_mean = torch.zeros((), device=device)
        self._last = {"r1": float("nan"), "pl_length": float("nan")}

    # ------------------------------------------------------------------ phases and optimisers
    def interval(self, phase: str) -> int | None:
        """The configured interval of a regularisation phase (None when it is dropped)."""
        if (phase == "D_reg" and not self.r1_gamma) or (phase == "G_reg" and not self.pl_weight):
            return None
        default = R1_EVERY if phase == "D_reg" else PL_EVERY
        configured = self.cfg.phases.get(phase)
        every = configured.every if configured is not None else None
        return default if every is None else every

    def phases(self) -> list[Phase]:
        # each regulariser runs before its main phase, so the main phase logs a measured value
        phases = [Phase("D_reg", ("D",), every=R1_EVERY, loss=self.r1_loss)] if self.interval("D_reg") else []
        phases.append(Phase("D", ("D",), loss=self.d_loss))
        if self.interval("G_reg"):
            phases.append(Phase("G_reg", ("G",), every=PL_EVERY, uses_data=False, loss=self.pl_loss))
        phases.append(Phase("G", ("G",), uses_data=False, loss=self.g_loss))
        return phases

    def loss_columns(self) -> tuple[str, ...]:
        return ("loss_D", "loss_G", "loss_D_reg", "loss_G_reg", "r1", "pl_length", "pl_mean")

    def optimizers(self) -> dict[str, OptimizerSpec]:
        return {"G": OptimizerSpec(self.G, lazy_adam(self.interval("G_reg"))),
                "D": OptimizerSpec(self.D, lazy_adam(self.interval("D_reg")))}

    # ------------------------------------------------------------------ losses
    def d_loss(self, batch: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The gan algorithm's D loss, logged with the last lazy R1 value."""
        loss, stats = super().d_loss(batch, step)
        stats["r1"] = self._last["r1"]
        return loss, stats

    def g_loss(self, batch: dict[str, torch.Tensor] | None,
               step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The gan algorithm's G loss, logged with the last path length and its running mean."""
        loss, stats = super().g_loss(batch, step)
        stats.update(pl_length=self._last["pl_length"], pl_mean=float(self.pl_mean))
        return loss, stats

    def r1_loss(self, batch: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The D_reg phase: (gamma / 2) k_D E||grad_x D(x)||^2 on the (transformed) reals."""
        real = self.stabilisers.d_input(batch["x"].to(self.device, non_blocking=True), step)
        y = batch["y"].to(self.device) if self.conditional is not None else None
        r1 = r1_penalty(self.D, real, y).mean()
        self._last["r1"] = r1.item()
        return r1 * (self.r1_gamma / 2 * self.interval("D_reg")), {}

    def pl_loss(self, batch: dict[str, torch.Tensor] | None,
                step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The G_reg phase (no data): w_pl k_G E(||J_w^T y|| - a)^2, updating the running mean a."""
        n = max(1, self.cfg.train.batch_size // self.pl_batch_shrink)
        lengths = path_lengths(self.G, self.G.sample_z(n, self.noise, self.device), self.noise)
        with torch.no_grad():
            self.pl_mean.lerp_(lengths.mean(), self.pl_decay)
        self._last["pl_length"] = lengths.mean().item()
        penalty = (lengths - self.pl_mean).square().mean()
        return penalty * (self.pl_weight * self.interval("G_reg")), {}

    def after_update(self, phase: str, step: int) -> None:
        super().after_update("D" if phase == "D_reg" else phase, step)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "pl_mean": self.pl_mean.detach().cpu().clone(),
                "last": dict(self._last)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.pl_mean.copy_(state["pl_mean"])
        self._last = dict(state["last"])
