"""Progressive growing (Karras et al. 2018): ProGAN's schedule, WGAN-GP with the drift term.

Growth schedule (``stage_steps`` T, ``fade_steps`` F, default T / 2; stage 0 at
``start_resolution``, each later stage doubles it up to the data's side S)::

    stage s covers steps [s T, (s + 1) T)  (the last stage runs to the end of training)
    alpha(t) = min(1, (t - s T) / F)       for s >= 1  (fade-in of the new blocks, then stable)

Before every step the networks' ``level`` and ``alpha`` buffers are set from the step alone, so a
run killed mid-fade resumes at the same stage and alpha. As in the authors' released code, Adam's
state is reset when a fade starts and when it ends (each is a Trainer stage; EMA copies are kept).

Everything is trained at the current resolution r: real images are avg-pooled to r x r and,
during a fade, blended between resolutions like G's output (the paper's appendix A),

    x_r = (1 - alpha) * upsample2(avgpool2(x_r)) + alpha * x_r,

and D scores r x r images (``ProGANDiscriminator.score``), so the gradient penalty is taken at
r x r as well. Losses (n_critic = 1)::

    L_D = E[D(G(z))] - E[D(x)] + lambda * GP + epsilon_drift * E[D(x)^2]     lambda 10, eps 0.001
    L_G = -E[D(G(z))]

Adam lr 1e-3, betas (0, 0.99) by default (the ``optim`` section overrides them).

Randomness: latent codes and the penalty's interpolation weights from one generator (seed + 1),
the fixed sample noise from seed + 2; both checkpointed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganforge import maths
from ganforge.config import ExperimentConfig
from ganforge.data.base import AnyDataset
from ganforge.errors import GanforgeError
from ganforge.models.base import MODELS
from ganforge.models.progan import (
    ProGANDiscriminator,
    ProGANGenerator,
    downsample,
    is_growable,
    upsample,
)
from ganforge.train.algorithms.base import (
    Algorithm,
    LatentSimulation,
    LatentSpace,
    OptimizerSpec,
    Phase,
    option_count,
    option_weight,
    register_algorithm,
)

ADAM_PROGAN = {"name": "adam", "lr": 1e-3, "betas": (0.0, 0.99), "eps": 1e-8}


def drift_penalty(real_scores: torch.Tensor) -> torch.Tensor:
    """E[D(x_real)^2] (Karras et al. 2018, appendix A.1), without its weight epsilon_drift: keeps
    the critic's values near 0 so the Wasserstein loss cannot drift away."""
    return real_scores.pow(2).mean()


def fade_reals(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """Real images at resolution r blended with their r/2 version, as G's output is during a fade:
    (1 - alpha) * upsample2(avgpool2(x)) + alpha * x (x itself when alpha = 1)."""
    if alpha >= 1.0:
        return x
    return (1.0 - alpha) * upsample(downsample(x, 2), 2) + alpha * x


@register_algorithm("progan")
class ProGAN(Algorithm, LatentSpace, LatentSimulation):
    """ProGAN's growing G and D trained with WGAN-GP + drift; see the module docstring."""

    name = "progan"
    columns = ("loss_D", "loss_G", "critic_real", "critic_fake", "critic_gap", "gp", "drift",
               "resolution", "alpha", "grad_norm_G", "grad_norm_D")

    @dataclass
    class Options:
        stage_steps: int = 1000
        fade_steps: int | None = None
        start_resolution: int = 4
        gp_weight: float = 10.0
        drift: float = 0.001
        reset_optimizers: bool = True

        def __post_init__(self) -> None:
            option_count(self.stage_steps, "stage_steps", 1,
                   "set algorithm.stage_steps to the steps per resolution, e.g. 1000")
            if self.fade_steps is not None:
                option_count(self.fade_steps, "fade_steps", 0,
                       "set algorithm.fade_steps to 0..stage_steps (null: half a stage)")
                if self.fade_steps > self.stage_steps:
                    raise GanforgeError(f"algorithm.fade_steps={self.fade_steps} is longer than a stage "
                                        f"(stage_steps={self.stage_steps})", "set fade_steps <= stage_steps")
            option_weight(self.gp_weight, "gp_weight", "set algorithm.gp_weight=10 (the paper's)")
            option_weight(self.drift, "drift", "set algorithm.drift=0.001 (the paper's)")

    def __init__(self, cfg: ExperimentConfig, dataset: AnyDataset | None, *,
                 sample_shape: tuple[int, ...], num_classes: int | None, device: torch.device,
                 restoring: bool = False) -> None:
        super().__init__(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes,
                         device=device)
        options = self.options
        self.stage_steps = options.stage_steps
        self.fade_steps = options.stage_steps // 2 if options.fade_steps is None else options.fade_steps
        self.gp_weight, self.drift = options.gp_weight, options.drift
        self.reset_optimizers = options.reset_optimizers
        start_resolution = options.start_resolution
        side = self.sample_shape[-1] if len(self.sample_shape) == 3 else 0
        self.G, self.D = MODELS.build(cfg.model, self.sample_shape, num_classes)
        if not isinstance(self.G, ProGANGenerator) or not isinstance(self.D, ProGANDiscriminator):
            raise GanforgeError(f"algorithm progan grows ProGAN's networks, not model "
                                f"{cfg.model['name']!r}", "set model.name=progan")
        if not is_growable(start_resolution) or start_resolution > side:
            raise GanforgeError(f"algorithm.start_resolution={start_resolution!r} is not a power of "
                                f"two in 4..{side}", "set algorithm.start_resolution=4")
        self.start_level = int(math.log2(start_resolution)) - 2
        self.num_stages = self.G.levels - self.start_level
        self.G.to(device)
        self.D.to(device)
        self.networks = {"G": self.G, "D": self.D}
        self.noise = torch.Generator().manual_seed(cfg.seed + 1)
        self.fixed_z = self.G.sample_z(cfg.train.num_fixed_samples,
                                       torch.Generator().manual_seed(cfg.seed + 2))
        self._set_growth(0)

    # ------------------------------------------------------------------ the schedule
    def growth_at(self, step: int) -> tuple[int, float]:
        """(stage, alpha) at ``step``: stage s >= 1 fades in over its first ``fade_steps`` steps."""
        stage = min(step // self.stage_steps, self.num_stages - 1)
        into = step - stage * self.stage_steps
        if stage == 0 or into >= self.fade_steps:
            return stage, 1.0
        return stage, into / self.fade_steps

    def stage_at(self, step: int) -> int:
        """The Trainer's stage: 2s - 1 while stage s fades in, 2s once it is stable (a change
        rebuilds the optimisers); always 0 without ``reset_optimizers``."""
        if not self.reset_optimizers:
            return 0
        stage, alpha = self.growth_at(step)
        return 2 * stage - (alpha < 1.0)

    def enter_stage(self, stage: int) -> tuple[str, ...]:
        return ()  # the shapes never change: fresh optimisers only, the EMA copy is kept

    def _set_growth(self, step: int) -> None:
        stage, alpha = self.growth_at(step)
        for net in (self.G, self.D):
            net.set_growth(self.start_level + stage, alpha)

    def begin_step(self, step: int) -> None:
        self._set_growth(step)

    # ------------------------------------------------------------------ the Trainer's contract
    def optimizers(self) -> dict[str, OptimizerSpec]:
        return {"G": OptimizerSpec(self.G, dict(ADAM_PROGAN)), "D": OptimizerSpec(self.D, dict(ADAM_PROGAN))}

    def phases(self) -> list[Phase]:
        return [Phase("D", ("D",), loss=self.d_loss), Phase("G", ("G",), uses_data=False, loss=self.g_loss)]

    def reals(self, x: torch.Tensor) -> torch.Tensor:
        """Full-size real images (N, C, S, S) at the current resolution r, faded as G's output."""
        x = downsample(x, self.G.side // self.G.resolution)
        return fade_reals(x, self.G.growth[1]) if self.G.growth[0] > 0 else x

    def g_loss(self, batch: None, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The G phase: the Wasserstein generator loss on a fresh batch of codes."""
        G, dev = self.G, self.device
        z = G.sample_z(self.cfg.train.batch_size, self.noise, dev)
        return maths.wasserstein_generator_loss(self.D.score(G.synthesize(z))), {}

    def d_loss(self, batch: dict[str, torch.Tensor],
               step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The D phase: the critic loss, WGAN-GP's penalty and the drift term, on faded reals."""
        G, D, dev = self.G, self.D, self.device
        real = self.reals(batch["x"].to(dev, non_blocking=True))
        z = G.sample_z(len(real), self.noise, dev)
        with torch.no_grad():
            fake = G.synthesize(z)
        d_real, d_fake = D.score(real), D.score(fake)
        gp = maths.gradient_penalty(D.score, real, fake, generator=self.noise)
        drift = drift_penalty(d_real)
        loss = maths.wasserstein_critic_loss(d_real, d_fake) + self.gp_weight * gp + self.drift * drift
        critic_real, critic_fake = d_real.mean().item(), d_fake.mean().item()
        return loss, {"critic_real": critic_real, "critic_fake": critic_fake,
                      "critic_gap": critic_real - critic_fake, "gp": gp.item(),
                      "drift": drift.item(), "resolution": float(G.resolution),
                      "alpha": G.growth[1]}

    def progress_text(self, row: Mapping[str, float]) -> str:
        return (f"{int(row['resolution'])}px alpha {row['alpha']:.2f}  loss_D {row['loss_D']:.3f}  "
                f"loss_G {row['loss_G']:.3f}  critic gap {row['critic_gap']:.3f}")

    # ------------------------------------------------------------------ artefacts
    @torch.no_grad()
    def snapshot(self, path: Path, generator: nn.Module, step: int) -> Path:
        """A PNG of the fixed noise batch at the generator's current resolution (upsampled)."""
        from ganforge import viz

        was_training = generator.training
        generator.eval()
        fake = generator(self.fixed_z.to(self.device)).cpu()
        generator.train(was_training)
        path.parent.mkdir(parents=True, exist_ok=True)
        return viz.save_grid(fake, path)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        level, alpha = self.G.growth
        return {"noise": self.noise.get_state(), "fixed_z": self.fixed_z.cpu(),
                "level": level, "alpha": alpha}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.noise.set_state(state["noise"])
        self.load_sampling_state(state)

    def load_sampling_state(self, state: dict[str, Any]) -> None:
        self.fixed_z = state["fixed_z"].to(self.device)
        for net in (self.G, self.D):
            net.set_growth(int(state["level"]), float(state["alpha"]))
