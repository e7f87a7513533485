"""The stabilisers of one GAN training run: their options (:class:`StabiliserConfig`, the GAN
algorithms' ``algorithm.stabilisers``) and the loss-side and input-side hooks.

Architecture options (spectral norm, packing, minibatch layers) are applied when the models
are built (:mod:`ganforge.models.compose`); this module adds the rest to each update::

    D inputs   x -> DiffAugment(x) + sigma_t * eps          (real and fake, both phases)
    L_D       += s * E[l(x)]                               one-sided label smoothing
               + gamma / 2 * E||grad_x l(x)||^2            R1
               + lambda_D * ||theta_D - mean(theta_D)||^2  historical averaging
               + CE(c(x), y) [+ CE(c(G(z, y)), y)]         AC-GAN class head (fake term optional)
    L_G        = L_adv (or 0 in FM replace mode)
               + w * ||E f(x) - E f(G(z))||^2              feature matching
               + lambda_G * ||theta_G - mean(theta_G)||^2  historical averaging
               + CE(c(G(z, y)), y)                         AC-GAN

Random draws (augmentation, instance noise) come from one dedicated, checkpointed generator.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganforge import maths
from ganforge.errors import GanforgeError
from ganforge.maths.regularisers import (
    HistoricalAverage,
    feature_matching_loss,
    instance_noise_std,
    label_smoothing_term,
)
from ganforge.models.base import DiscriminatorOutput
from ganforge.models.compose import DiscriminatorExtras
from ganforge.train.augment import diff_augment, parse_policy
from ganforge.train.objectives import Objective

FEATURE_MATCHING_MODES = ("replace", "add")


@dataclass
class StabiliserConfig:
    """The ``stabilisers`` option of the GAN algorithms (``algorithm.stabilisers``; a top-level
    section in the legacy layout): remedies for the classic GAN failure modes; every one composes
    with any model and loss (see docs/stabilisers.md for the equations and the measured effect of
    each).

    Discriminator architecture: ``spectral_norm`` (every weight layer of D), ``pack`` (PacGAN:
    D judges m samples at once), ``minibatch_std`` and ``minibatch_discrimination`` (with
    ``mbd_kernels`` B and ``mbd_kernel_dim`` C) on D's features before its head.
    D loss: ``label_smoothing`` s (one-sided: real target 1 - s; cross-entropy losses only),
    ``r1`` gamma (adds gamma/2 E||grad_x D(x)||^2), ``historical_averaging_d``.
    G loss: ``feature_matching`` weight (mode ``replace``: L_G = w * FM, Salimans et al.;
    ``add``: L_G = L_adv + w * FM), ``historical_averaging_g``.
    D inputs (real and fake, both phases): ``diffaugment`` policy (``color,translation,cutout``)
    and ``instance_noise`` std annealed linearly to 0 over ``instance_noise_anneal`` steps
    (default: all of train.steps).
    Training data: ``self_condition`` K > 0 trains a self-conditioned GAN (Liu et al. 2020; needs
    ``model.conditional`` projection or acgan): the data are labelled by k-means on D's features
    into K clusters, G draws its labels from the clusters' sizes, and the data are clustered again
    every ``self_condition_every`` steps (null: once, at the start). A sampled (toy 2D) dataset is
    first drawn ``self_condition_pool`` times to give a fixed set to cluster.
    """

    spectral_norm: bool = False
    pack: int = 1
    minibatch_std: bool = False
    minibatch_discrimination: bool = False
    mbd_kernels: int = 50
    mbd_kernel_dim: int = 5
    label_smoothing: float = 0.0
    r1: float = 0.0
    historical_averaging_d: float = 0.0
    historical_averaging_g: float = 0.0
    feature_matching: float = 0.0
    feature_matching_mode: str = "replace"
    diffaugment: str = ""
    instance_noise: float = 0.0
    instance_noise_anneal: int | None = None
    self_condition: int = 0
    self_condition_every: int | None = None
    self_condition_pool: int = 20_000

    def __post_init__(self) -> None:
        at = "algorithm.stabilisers."
        for name in ("pack", "mbd_kernels", "mbd_kernel_dim", "self_condition_pool"):
            if getattr(self, name) < 1:
                raise GanforgeError(f"{at}{name} must be at least 1, got {getattr(self, name)}",
                                    f"set {at}{name} to a positive integer")
        for name in ("r1", "historical_averaging_d", "historical_averaging_g", "feature_matching",
                     "instance_noise"):
            value = getattr(self, name)
            if not 0.0 <= value < float("inf"):
                raise GanforgeError(f"{at}{name} must be a finite number >= 0, got {value}",
                                    f"set {at}{name} to 0 (off) or a positive weight")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise GanforgeError(f"{at}label_smoothing must lie in [0, 1), got {self.label_smoothing}",
                                "use e.g. 0.1 (real label 0.9), or 0 to disable")
        if self.feature_matching_mode not in FEATURE_MATCHING_MODES:
            raise GanforgeError(f"unknown {at}feature_matching_mode {self.feature_matching_mode!r}",
                                f"choose one of: {', '.join(FEATURE_MATCHING_MODES)}")
        if self.self_condition < 0 or self.self_condition == 1:
            raise GanforgeError(f"{at}self_condition must be 0 (off) or at least 2 clusters, got "
                                f"{self.self_condition}", f"set e.g. {at}self_condition=50")
        if self.self_condition_every is not None and self.self_condition_every < 1:
            raise GanforgeError(f"{at}self_condition_every must be at least 1 step, got "
                                f"{self.self_condition_every}", "set a positive number of steps, or null")
        if self.instance_noise_anneal is not None and self.instance_noise_anneal < 1:
            raise GanforgeError(f"{at}instance_noise_anneal must be at least 1 step",
                                "set a positive number of steps, or null for the whole run")

    def discriminator_extras(self) -> DiscriminatorExtras:
        """The architecture options (applied when D is built, :mod:`ganforge.models.compose`)."""
        mbd = (self.mbd_kernels, self.mbd_kernel_dim) if self.minibatch_discrimination else None
        return DiscriminatorExtras(spectral_norm=self.spectral_norm, pack=self.pack,
                                   minibatch_std=self.minibatch_std, minibatch_discrimination=mbd)


class Stabilisers:
    """Per-update hooks for the trainer, built from a :class:`StabiliserConfig`."""

    def __init__(self, cfg: StabiliserConfig, objective: Objective, G: nn.Module, D: nn.Module, *,
                 total_steps: int, seed: int) -> None:
        self.cfg = cfg
        if cfg.label_smoothing and not objective.cross_entropy:
            raise GanforgeError(f"algorithm.stabilisers.label_smoothing applies to cross-entropy "
                                f"losses, not loss {objective.name!r}",
                                "use algorithm.loss non-saturating, saturating or r1, or drop "
                                "label_smoothing")
        self.policy = parse_policy(cfg.diffaugment) if cfg.diffaugment else ()
        if self.policy and len(G.out_shape) != 3:
            raise GanforgeError(f"algorithm.stabilisers.diffaugment applies to images, but this model "
                                f"generates samples of shape {tuple(G.out_shape)}",
                                "drop algorithm.stabilisers.diffaugment")
        self.anneal_steps = cfg.instance_noise_anneal or total_steps
        self.history_g = HistoricalAverage(G) if cfg.historical_averaging_g else None
        self.history_d = HistoricalAverage(D) if cfg.historical_averaging_d else None
        self.rng = torch.Generator().manual_seed(seed + 4)

    @property
    def needs_real_features_for_g(self) -> bool:
        return self.cfg.feature_matching > 0

    # ------------------------------------------------------------------ inputs
    def d_input(self, x: torch.Tensor, step: int) -> torch.Tensor:
        """What D sees of a batch: DiffAugment, then instance noise (differentiable in x)."""
        if self.policy:
            x = diff_augment(x, self.policy, self.rng)
        std = self.noise_std(step)
        if std > 0:
            x = x + std * torch.randn(x.shape, generator=self.rng, dtype=x.dtype).to(x.device)
        return x

    def noise_std(self, step: int) -> float:
        if not self.cfg.instance_noise:
            return 0.0
        return instance_noise_std(step, self.cfg.instance_noise, self.anneal_steps)

    # ------------------------------------------------------------------ loss terms
    def d_terms(self, D: nn.Module, real_in: torch.Tensor, y_real: torch.Tensor | None,
                out_real: DiscriminatorOutput, out_fake: DiscriminatorOutput,
                y_fake: torch.Tensor | None, *, penalties: bool = True) -> dict[str, torch.Tensor]:
        """D's extra loss terms; ``penalties=False`` (after ``algorithm.penalty_until``) logs R1 as 0."""
        cfg, terms = self.cfg, {}
        if cfg.label_smoothing:
            terms["label_smoothing"] = label_smoothing_term(out_real.logits, cfg.label_smoothing)
        if cfg.r1 and penalties:
            terms["r1"] = 0.5 * cfg.r1 * maths.r1_penalty(functools.partial(D, y=y_real), real_in)
        elif cfg.r1:
            terms["r1"] = real_in.new_zeros(())
        if self.history_d is not None:
            terms["hist_avg_D"] = cfg.historical_averaging_d * self.history_d.penalty(D)
        if out_real.class_logits is not None:
            terms["ac_D"] = F.cross_entropy(out_real.class_logits, y_real)
            if getattr(D, "ac_fake_loss", False):
                terms["ac_D"] = terms["ac_D"] + F.cross_entropy(out_fake.class_logits, y_fake)
        return terms

    def g_terms(self, G: nn.Module, out_fake: DiscriminatorOutput, y_fake: torch.Tensor | None,
                real_features: torch.Tensor | None) -> dict[str, torch.Tensor]:
        cfg, terms = self.cfg, {}
        if cfg.feature_matching:
            terms["feature_matching"] = cfg.feature_matching * feature_matching_loss(
                real_features, out_fake.features)
        if self.history_g is not None:
            terms["hist_avg_G"] = cfg.historical_averaging_g * self.history_g.penalty(G)
        if out_fake.class_logits is not None:
            terms["ac_G"] = F.cross_entropy(out_fake.class_logits, y_fake)
        return terms

    @property
    def keeps_adversarial_g_loss(self) -> bool:
        return not (self.cfg.feature_matching and self.cfg.feature_matching_mode == "replace")

    def columns(self, conditional: str | None) -> list[str]:
        """The metrics.csv columns the terms above fill."""
        cfg, out = self.cfg, []
        for name, on in (("label_smoothing", cfg.label_smoothing), ("r1", cfg.r1),
                         ("hist_avg_D", cfg.historical_averaging_d),
                         ("feature_matching", cfg.feature_matching),
                         ("hist_avg_G", cfg.historical_averaging_g)):
            if on:
                out.append(name)
        if conditional == "acgan":
            out += ["ac_D", "ac_G"]
        if cfg.instance_noise:
            out.append("instance_noise")
        return out

    # ------------------------------------------------------------------ after the updates
    def after_d_step(self, D: nn.Module) -> None:
        if self.history_d is not None:
            self.history_d.update(D)

    def after_g_step(self, G: nn.Module) -> None:
        if self.history_g is not None:
            self.history_g.update(G)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": self.rng.get_state(),
            "history_g": None if self.history_g is None else self.history_g.state_dict(),
            "history_d": None if self.history_d is None else self.history_d.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.set_state(state["rng"])
        for name in ("history_g", "history_d"):
            mine = getattr(self, name)
            if (mine is None) != (state[name] is None):
                raise GanforgeError("the checkpoint and the config disagree on historical averaging",
                                    "resume with the run's own config.yaml")
            if mine is not None:
                mine.load_state_dict(state[name])
