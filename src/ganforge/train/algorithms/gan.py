"""The GAN (Goodfellow et al. 2014, Algorithm 1): every loss, stabiliser and conditioning mode.

Phases (defaults; ``phases.D.repeat`` is the classic n_disc, TTUR is ``optim.G.lr != optim.D.lr``)::

    D  (repeat k):  sample (x, y) ~ p_data, z ~ p_z;  minimise
                    objective.d_loss + objective.d_penalty + the stabilisers' D terms
    G:              sample z ~ p_z (and y ~ p(y) for a conditional model);  minimise
                    objective.g_loss + the stabilisers' G terms

A conditional model's fakes in the D phase reuse the real batch's labels; p(y) is uniform, or
the clusters' sizes for a self-conditioned run (:mod:`ganforge.train.self_condition`, whose data
are clustered again before the update of every ``self_condition_every``-th step). D sees every
batch through the stabilisers' input transform (DiffAugment, instance noise) in both phases.
Options (``algorithm: {name: gan, ...}``): ``loss`` (the objective's section, default
non-saturating: ``{name: hinge}``, ``{name: wgan-gp, gp_weight: 10}``...), ``stabilisers``
(:class:`~ganforge.train.stabilisers.StabiliserConfig`) and ``penalty_until``: D's gradient
penalties (the loss's R1 or GP term and ``stabilisers.r1``) apply before that step and are
dropped from then on. The algorithms built on this one share ``loss`` and ``stabilisers``
(:class:`AdversarialOptions`).

Monitoring is honest about what D outputs: for the cross-entropy losses D(x) is a probability and
the log has ``real_score`` = mean sigmoid(D(x)) and ``fake_score``; for the others (Wasserstein,
hinge, least squares) D is a critic and the log has its mean raw values ``critic_real``,
``critic_fake`` and their difference ``critic_gap`` (the W1 estimate for the Wasserstein losses).

Randomness: latent codes and labels from a dedicated generator (seed + 1), fixed sample noise
(seed + 2), the stabilisers' draws (seed + 4); all checkpointed.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganforge.config import ExperimentConfig
from ganforge.data.base import AnyDataset, StreamDataset
from ganforge.data.kinds import Samples
from ganforge.errors import GanforgeError
from ganforge.models.base import Discriminator, Generator
from ganforge.models.compose import build
from ganforge.models.style import StyleGenerator
from ganforge.train.algorithms.base import (
    Algorithm,
    ClassConditioned,
    LatentSimulation,
    LatentSpace,
    OptimizerSpec,
    Phase,
    StyleMixing,
    Truncatable,
    register_algorithm,
)
from ganforge.train.objectives import build_objective
from ganforge.train.self_condition import SelfConditioning, check_conditioning, proportional_labels
from ganforge.train.stabilisers import StabiliserConfig, Stabilisers

DEFAULT_LOSS = "non-saturating"
ADAM_GAN = {"name": "adam", "lr": 2e-4, "betas": (0.5, 0.999)}


@dataclass
class AdversarialOptions:
    """The options of every algorithm built on :class:`GAN`: ``loss``, the objective's config
    section (checked by the objective registry; empty: non-saturating), and ``stabilisers``."""

    loss: dict[str, Any] = field(default_factory=dict)
    stabilisers: StabiliserConfig = field(default_factory=StabiliserConfig)


@register_algorithm("gan")
class GAN(Algorithm, ClassConditioned, Truncatable, StyleMixing, LatentSpace, LatentSimulation):
    """A generator G(z[, y]) against a discriminator D(x[, y]); see the module docstring.

    ``restoring`` skips a self-conditioned run's first clustering, for a caller that restores
    the labels from a checkpoint.
    """

    name = "gan"

    @dataclass
    class Options(AdversarialOptions):
        penalty_until: int | None = None

        def __post_init__(self) -> None:
            if self.penalty_until is not None and self.penalty_until < 0:
                raise GanforgeError(f"algorithm.penalty_until={self.penalty_until!r} is not a step >= 0",
                                    "set it to the step at which to drop D's gradient penalty, or null")

    options: AdversarialOptions

    def __init__(self, cfg: ExperimentConfig, dataset: AnyDataset | None, *,
                 sample_shape: tuple[int, ...], num_classes: int | None, device: torch.device,
                 restoring: bool = False) -> None:
        super().__init__(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes,
                         device=device)
        stabilisers = self.options.stabilisers
        #: the step from which D's gradient penalties are dropped (None: never)
        self.penalty_until = self.options.penalty_until if isinstance(self.options, GAN.Options) else None
        #: ``concat`` | ``acgan`` | ``projection`` for a class-conditional model, else None
        self._conditional: str | None = cfg.model.get("conditional")
        clusters = stabilisers.self_condition
        if clusters:  # self-conditioned: the labels are D's clusters, never the dataset's own
            check_conditioning(self._conditional, clusters)
            num_classes = clusters
        elif self._conditional is not None and dataset is not None and "y" not in dataset.fields:
            raise GanforgeError(f"model.conditional={self._conditional} needs labelled data, but "
                                "this dataset has no labels",
                                "use a labelled dataset or drop model.conditional")
        self.num_classes = num_classes
        self.G, self.D = build(cfg.model, self.sample_shape, num_classes,
                               extras=stabilisers.discriminator_extras())
        if not isinstance(self.G, Generator) or not isinstance(self.D, Discriminator):
            raise GanforgeError(f"model {cfg.model['name']!r} is not a GAN family (it builds "
                                f"{type(self.G).__name__}, {type(self.D).__name__})",
                                "use its own algorithm, e.g. algorithm.name=vae for vae-* models")
        pack = stabilisers.pack
        if pack > 1 and cfg.train.batch_size % pack:
            raise GanforgeError(f"algorithm.stabilisers.pack={pack} packs the batch, and train.batch_size="
                                f"{cfg.train.batch_size} is not a multiple of it",
                                f"set train.batch_size to a multiple of {pack}")
        self.G.to(device)
        self.D.to(device)
        self.networks = {"G": self.G, "D": self.D}
        self._train_data = dataset
        self._label_prior: torch.Tensor | None = None  # a loaded run's, see label_prior
        self.self_conditioning: SelfConditioning | None = None
        if clusters and dataset is not None:
            data = dataset
            if isinstance(data, StreamDataset):
                data = data.materialise(stabilisers.self_condition_pool, seed=cfg.seed)
            self.self_conditioning = SelfConditioning(
                data, clusters, every=stabilisers.self_condition_every, seed=cfg.seed,
                device=device)
            self._train_data = self.self_conditioning.data
            if not restoring:
                self.self_conditioning.cluster(self.D)
        section = dict(self.options.loss)
        section.setdefault("name", DEFAULT_LOSS)
        self.objective = build_objective(section)
        self.stabilisers = Stabilisers(stabilisers, self.objective, self.G, self.D,
                                       total_steps=cfg.train.steps, seed=cfg.seed)
        self.noise = torch.Generator().manual_seed(cfg.seed + 1)
        n_fixed = cfg.train.num_fixed_samples
        self.fixed_z = self.G.sample_z(n_fixed, torch.Generator().manual_seed(cfg.seed + 2))
        self.fixed_y = self.labels_for(n_fixed)  # 0..K-1 cycled
        self._last_real: tuple[torch.Tensor, torch.Tensor | None] | None = None
        probability = self.objective.cross_entropy
        scores = ("real_score", "fake_score") if probability else ("critic_real", "critic_fake",
                                                                    "critic_gap")
        self.columns = (*self.loss_columns(), *scores, "grad_norm_G", "grad_norm_D",
                        *self.stabilisers.columns(self._conditional))

    # ------------------------------------------------------------------ options and capabilities
    @classmethod
    def labels_are_classes(cls, cfg: ExperimentConfig) -> bool:
        """A conditional model that is not self-conditioned (whose labels are clusters of D's
        features, not the dataset's classes)."""
        return (cfg.model.get("conditional") is not None
                and not cls.parse_options(cfg.algorithm).stabilisers.self_condition)

    @property
    def self_conditioned(self) -> bool:
        """Whether G's labels are clusters of D's features (``stabilisers.self_condition``)."""
        return bool(self.options.stabilisers.self_condition)

    def check_distributable(self) -> None:
        if self.self_conditioned:
            raise GanforgeError("self-conditioning clusters the data once per process, which the ranks "
                                "would do differently", "train self-conditioned runs in one process")

    @property
    def loss_name(self) -> str | None:
        return self.objective.name

    # ------------------------------------------------------------------ data and labels
    @property
    def train_data(self) -> AnyDataset | None:
        return self._train_data

    @property
    def conditional(self) -> str | None:
        return self._conditional

    # ------------------------------------------------------------------ capabilities
    @property
    def conditions_on_classes(self) -> bool:
        """Whether G's labels are the dataset's classes (a conditional, not self-conditioned run)."""
        return self._conditional is not None and not self.self_conditioned

    @property
    def truncation_trick(self) -> str | None:
        return self.G.truncation

    @property
    def mixes_styles(self) -> bool:
        return isinstance(self.G, StyleGenerator)

    @property
    def label_prior(self) -> torch.Tensor | None:
        """p(y) for G's labels when it is not uniform: a self-conditioned run's clusters' sizes
        (from its clustering, or set from the checkpoint when the data are not loaded)."""
        if self.self_conditioning is not None:
            return self.self_conditioning.prior
        return self._label_prior

    def labels_for(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """Class labels for n generated samples of a conditional model: draws from ``generator``
        (uniform, or from ``label_prior``), or without it 0..K-1 cycled (counts proportional to
        ``label_prior``); None for an unconditional model."""
        if self._conditional is None:
            return None
        if self.label_prior is not None:
            if generator is None:
                return proportional_labels(self.label_prior, n).to(self.device)
            return torch.multinomial(self.label_prior, n, replacement=True,
                                     generator=generator).to(self.device)
        if generator is None:
            return torch.arange(n, device=self.device) % self.num_classes
        return torch.randint(self.num_classes, (n,), generator=generator).to(self.device)

    # ------------------------------------------------------------------ the Trainer's contract
    def optimizers(self) -> dict[str, OptimizerSpec]:
        return {"G": OptimizerSpec(self.G, dict(ADAM_GAN)), "D": OptimizerSpec(self.D, dict(ADAM_GAN))}

    def phases(self) -> list[Phase]:
        return [Phase("D", ("D",), loss=self.d_loss), Phase("G", ("G",), uses_data=False, loss=self.g_loss)]

    def loss_columns(self) -> tuple[str, ...]:
        """The first metrics.csv columns: the phases' losses (and what a family logs beside them);
        the scores, gradient norms and the stabilisers' terms follow."""
        return ("loss_D", "loss_G")

    def penalising(self, step: int) -> bool:
        return self.penalty_until is None or step < self.penalty_until

    def begin_step(self, step: int) -> None:
        if self.self_conditioning is not None and self.self_conditioning.due(step):
            self.self_conditioning.cluster(self.D)
            self.fixed_y = self.labels_for(self.cfg.train.num_fixed_samples)

    def d_loss(self, batch: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The D phase's objective on a batch of real data: ``objective.d_loss`` on D's outputs
        for the (transformed) reals and G's fakes under the reals' labels, plus the loss's
        gradient penalty and the stabilisers' D terms (penalties before ``penalty_until``). Draws
        z from ``self.noise``; the stats are the terms and D's scores. A family extends it by
        calling it and adding its own terms."""
        G, D, stab, dev = self.G, self.D, self.stabilisers, self.device
        real = batch["x"].to(dev, non_blocking=True)
        y_real = batch["y"].to(dev) if self._conditional is not None else None
        z = G.sample_z(len(real), self.noise, dev)
        with torch.no_grad():
            fake = G(z, y_real)
        real_in, fake_in = stab.d_input(real, step), stab.d_input(fake, step)
        out_real, out_fake = D.evaluate(real_in, y_real), D.evaluate(fake_in, y_real)
        loss = self.objective.d_loss(out_real.logits, out_fake.logits)
        penalise = self.penalising(step)
        terms = stab.d_terms(D, real_in, y_real, out_real, out_fake, y_real, penalties=penalise)
        penalty = (self.objective.d_penalty(functools.partial(D, y=y_real), real_in, fake_in)
                   if penalise else None)
        if penalty is not None:
            terms["penalty"] = penalty
        self._last_real = (real_in, y_real)
        stats = {k: v.item() for k, v in terms.items() if k != "penalty"}
        real_out, fake_out = out_real.logits.detach(), out_fake.logits.detach()
        if self.objective.cross_entropy:
            stats["real_score"] = torch.sigmoid(real_out).mean().item()
            stats["fake_score"] = torch.sigmoid(fake_out).mean().item()
        else:
            stats["critic_real"], stats["critic_fake"] = real_out.mean().item(), fake_out.mean().item()
            stats["critic_gap"] = stats["critic_real"] - stats["critic_fake"]
        return loss + sum(terms.values()), stats

    def g_loss(self, batch: dict[str, torch.Tensor] | None,
               step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The G phase's objective (no data: ``batch`` is unused): ``objective.g_loss`` on D's
        outputs for ``train.batch_size`` fakes with labels from :meth:`labels_for`, plus the
        stabilisers' G terms (feature matching reads the last D phase's reals). Draws z and the
        labels from ``self.noise``. A family extends it by calling it and adding its own terms."""
        G, D, stab = self.G, self.D, self.stabilisers
        n = self.cfg.train.batch_size
        z = G.sample_z(n, self.noise, self.device)
        y_fake = self.labels_for(n, self.noise)
        out_g = D.evaluate(stab.d_input(G(z, y_fake), step), y_fake)
        real_features = None
        if stab.needs_real_features_for_g:
            if self._last_real is None:
                raise GanforgeError("feature matching needs a D phase before the G phase",
                                    "keep the D phase active whenever G trains")
            real_in, y_real = self._last_real
            with torch.no_grad():
                real_features = D.evaluate(real_in, y_real).features
        loss_g = self.objective.g_loss(out_g.logits)
        terms = stab.g_terms(G, out_g, y_fake, real_features)
        # FM's replace mode drops the adversarial term, but always adds its own
        total = (loss_g if stab.keeps_adversarial_g_loss else 0.0) + sum(terms.values())
        stats = {k: v.item() for k, v in terms.items()}
        if self.options.stabilisers.instance_noise:
            stats["instance_noise"] = stab.noise_std(step)
        return total, stats

    def after_update(self, phase: str, step: int) -> None:
        if phase == "D":
            self.objective.after_d_step(self.D)
            self.stabilisers.after_d_step(self.D)
        else:
            self.stabilisers.after_g_step(self.G)

    def progress_text(self, row: Mapping[str, float]) -> str:
        text = f"loss_D {row['loss_D']:.3f}  loss_G {row['loss_G']:.3f}  "
        if "real_score" in row:
            return text + f"D(x) {row['real_score']:.2f}  D(G(z)) {row['fake_score']:.2f}"
        return text + f"critic gap {row['critic_gap']:.3f}"

    # ------------------------------------------------------------------ artefacts
    @torch.no_grad()
    def snapshot(self, path: Path, generator: nn.Module, step: int) -> Path:
        """A PNG of the fixed noise batch (images) or a real-vs-fake scatter over D's field (2D)."""
        from ganforge import viz

        was_training = generator.training
        generator.eval()
        fake = generator(self.fixed_z, self.fixed_y).cpu()
        generator.train(was_training)
        path.parent.mkdir(parents=True, exist_ok=True)
        if tuple(fake.shape[1:]) != (2,):  # not points in the plane: the data kind's figure (a
            # conditional run's fixed labels cycle 0..K-1: one column per class)
            return self.kind.preview(Samples(fake, nrow=self.num_classes if self._conditional else None,
                                             title=f"step {step}"), path)
        dataset = self.dataset
        real = self.snapshot_reals(len(fake))
        D = self.D
        D.eval()
        centers = getattr(dataset, "centers", None)
        pack = getattr(D, "pack", 1)  # a PacGAN D scores packs: show D(x) on a pack of m copies of x
        outputs_probability = self.objective.cross_entropy

        def field_fn(pts: torch.Tensor) -> torch.Tensor:
            out = D(pts.repeat_interleave(pack, dim=0).to(self.device)).cpu()
            return torch.sigmoid(out) if outputs_probability else out

        # a conditional D has one field per class: show the points alone
        field = field_fn if self._conditional is None else None
        label = "D(x)" if outputs_probability else "critic f(x)"
        out = viz.plot_2d_field(real, fake, path, prob_fn=field, title=f"step {step}",
                                centers=centers, field_label=label)
        D.train()
        return out

    def snapshot_reals(self, n: int) -> torch.Tensor:
        """The real points a 2-D snapshot shows beside ``n`` fakes: the data's first ``n`` (a
        sampled dataset's are drawn with seed + 3). A family whose data must not be shown
        returns none."""
        if isinstance(self.dataset, StreamDataset):
            return self.dataset.materialise(n, seed=self.cfg.seed + 3).x
        return self.dataset.x[:n]

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "noise": self.noise.get_state(),
            "stabilisers": self.stabilisers.state_dict(),
            "self_condition": (None if self.self_conditioning is None
                               else self.self_conditioning.state_dict()),
            "fixed_z": self.fixed_z.cpu(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if (state.get("self_condition") is None) != (self.self_conditioning is None):
            raise GanforgeError("the checkpoint and the config disagree on self-conditioning",
                                "resume with the run's own config.yaml")
        self.noise.set_state(state["noise"])
        if state.get("stabilisers") is not None:
            self.stabilisers.load_state_dict(state["stabilisers"])
        if self.self_conditioning is not None:
            self.self_conditioning.load_state_dict(state["self_condition"])
        self.fixed_z = state["fixed_z"].to(self.device)
        self.fixed_y = self.labels_for(self.cfg.train.num_fixed_samples)  # the restored prior's

    def load_sampling_state(self, state: dict[str, Any]) -> None:
        if state.get("self_condition") is not None:  # G's labels follow the clusters' sizes
            self._label_prior = state["self_condition"]["prior"]
