"""Differentially private GAN training: DP-SGD on the discriminator, with Opacus.

Only D reads the training records, so only D is trained with DP-SGD (Abadi et al. 2016; for GANs
Xie et al. 2018, DPGAN, and Torkzadehmahani et al. 2019, DP-CGAN); G is updated from D's
outputs on G's own samples and is private by post-processing. One D update (phase ``D``; each
``repeat`` is one update)::

    real rows   Poisson sampling: each of the N records (x, y) joins with probability
                q = train.batch_size / N, drawn from this algorithm's own seeded generator
    fake rows   train.batch_size samples G(z, y'), z ~ p_z, y' ~ uniform (never the real labels)
    one forward of D over [real; fake]: one row, one loss l_i, one per-sample gradient per sample
    l_i         the objective's real term (real rows) or fake term (fake rows) of that row alone,
                plus its label-smoothing or AC-GAN class term
    g_i         = grad l_i (opacus.GradSampleModule), clipped: g_i min(1, C / ||g_i||), fakes too
    D's step    on (sum_i clip(g_i) + N(0, sigma^2 C^2 I)) / (2 train.batch_size)
                (opacus.optimizers.DPOptimizer around D's optimiser, Adam by default)
    accountant  one Poisson-subsampled Gaussian mechanism (sigma, q) per D update (RDP or PRV),
                stepped by the DPOptimizer's step hook, so a skipped update costs nothing

The guarantee is (epsilon, delta)-DP for adding or removing one record, for everything computed
from D's and G's weights (checkpoints, samples, snapshots of images). The diagnostics the
Trainer logs from the private batch (``loss_D``, ``real_score``/``critic_real``,
``grad_norm_D``: the raw, unclipped gradient) and evaluation metrics against the data are not
covered: keep them private. The noise comes from a generator seeded by ``seed`` (bit-identical
resume); for a release, keep the seed secret (Opacus' ``secure_mode`` is not used).

Options (``algorithm: {name: dp-gan, ...}``): the gan algorithm's ``loss`` and ``stabilisers``,
``privacy`` (:class:`PrivacyConfig`), ``private`` and ``pool``.

``privacy.epsilon``: the noise multiplier is computed (Opacus' ``get_noise_multiplier``) for the
run's D updates at rate q, and training ends (``stop_reason``) before an update that would spend
more than epsilon; a resumed run keeps the noise multiplier it started with, so training it
longer stops at the budget. ``privacy.noise_multiplier``: sigma as given, the epsilon spent is
reported. metrics.csv's ``epsilon`` is exact at every row the log schedule writes (each step
reports the epsilon of its logging window's end, so the window's mean is that value; an
unscheduled row, e.g. an evaluation's, reads a little high). ``real_batch`` is the Poisson
batch's size. A rollback (``train.on_nonfinite``) keeps the accounting of the discarded updates
and draws fresh randomness.

``private: false`` trains exactly the same way (same Poisson batches, rows, loss and
1 / (2 batch_size) scaling) with a plain optimiser step and no accounting: the non-private
baseline (and, with ``noise_multiplier=0`` and a huge ``max_grad_norm``, the private run's twin).
``pool``: the number of records drawn once from a sampled (toy 2D) dataset.

Refused with a one-line error, as they have no per-sample gradient or leak records: gradient
penalties (losses ``wgan-gp``, ``r1``; ``stabilisers.r1``), D options that mix the samples of a
batch (``pack``, ``minibatch_std``, ``minibatch_discrimination``), ``spectral_norm``,
``historical_averaging_d``, ``feature_matching`` (G would read real features),
``self_condition`` (clusters the records), and multi-process training. BatchNorm in D is replaced
by GroupNorm (``opacus.validators.ModuleValidator.fix``), said in one printed line.

Randomness: the Poisson sampler (seed + 5) and the DP noise (seed + 6), besides the GAN's own
generators (:mod:`.gan`); all checkpointed, with the accountant's history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from ganforge.config import ExperimentConfig
from ganforge.data.base import AnyDataset, StreamDataset
from ganforge.errors import GanforgeError
from ganforge.maths.regularisers import label_smoothing_term
from ganforge.train.algorithms.base import Phase, register_algorithm
from ganforge.train.algorithms.gan import GAN, AdversarialOptions
from ganforge.train.algorithms.private import PrivacyConfig, PrivateCritic, import_opacus
from ganforge.train.objectives import Objective

#: stabilisers that cannot train privately -> why (each a one-line error)
UNSUPPORTED_STABILISERS = {
    "r1": "a gradient penalty needs gradients of per-sample gradients, which Opacus does not compute",
    "pack": "D would judge several samples at once, so no per-sample gradient exists",
    "minibatch_std": "D's output for one sample would depend on the others in its batch",
    "minibatch_discrimination": "D's output for one sample would depend on the others in its batch",
    "spectral_norm": "Opacus computes no per-sample gradients through its weight parametrisation",
    "historical_averaging_d": "a term of D's weights alone has no per-sample gradient to clip",
    "feature_matching": "G would read the features of real records, outside the guarantee",
    "self_condition": "it clusters the private records and hands their cluster sizes to G",
}


def _check_private_stabilisers(options: DPGAN.Options) -> None:
    s = options.stabilisers
    for key, why in UNSUPPORTED_STABILISERS.items():
        value = getattr(s, key)
        if value and not (key == "pack" and value == 1):
            raise GanforgeError(f"algorithm.stabilisers.{key} cannot train with differential privacy "
                                f"({why})", f"drop algorithm.stabilisers.{key} for algorithm dp-gan")


def _has_penalty(objective: Objective, sample_shape: tuple[int, ...]) -> bool:
    """Whether the objective adds a gradient penalty (probed on a dummy critic)."""
    if type(objective).d_penalty is Objective.d_penalty:
        return False
    x = torch.zeros(2, *sample_shape)
    return objective.d_penalty(lambda v: v.flatten(1).sum(1), x, x) is not None


@register_algorithm("dp-gan")
class DPGAN(PrivateCritic, GAN):
    """A GAN whose discriminator trains with DP-SGD (Opacus); see the module docstring."""

    name = "dp-gan"

    @dataclass
    class Options(AdversarialOptions):
        private: bool = True
        pool: int = 10_000
        privacy: PrivacyConfig = field(default_factory=PrivacyConfig)

        def __post_init__(self) -> None:
            if self.pool < 1:
                raise GanforgeError(f"algorithm.pool must be a number of records >= 1, got {self.pool!r}",
                                    "set e.g. algorithm.pool=10000")
            privacy, at = self.privacy, "algorithm.privacy."
            if self.private and not privacy.enabled:
                raise GanforgeError(f"algorithm dp-gan needs {at}epsilon or {at}noise_multiplier",
                                    f"set e.g. {at}epsilon=10 (or algorithm.private=false for the "
                                    "non-private baseline)")
            if not self.private and privacy.enabled:
                key = "epsilon" if privacy.epsilon is not None else "noise_multiplier"
                raise GanforgeError(f"algorithm.private=false trains without privacy, and {at}{key} "
                                    "is set", f"set {at}{key}=null, or algorithm.private=true")
            _check_private_stabilisers(self)

    options: DPGAN.Options

    def __init__(self, cfg: ExperimentConfig, dataset: AnyDataset | None, *,
                 sample_shape: tuple[int, ...], num_classes: int | None, device: torch.device,
                 restoring: bool = False) -> None:
        import_opacus()  # before anything is built: the one-line install hint
        options = self.parse_options(cfg.algorithm)
        private, privacy = options.private, options.privacy
        records = dataset
        if isinstance(dataset, StreamDataset):  # a fixed set of records to protect
            records = dataset.materialise(options.pool, seed=cfg.seed)
        super().__init__(cfg, records, sample_shape=sample_shape, num_classes=num_classes,
                         device=device, restoring=restoring)
        if _has_penalty(self.objective, self.sample_shape):
            raise GanforgeError(f"loss {self.objective.name!r} adds a gradient penalty, which needs "
                                "gradients of per-sample gradients (not computed by Opacus)",
                                "use algorithm.loss non-saturating, hinge, lsgan or wgan for "
                                "algorithm dp-gan")
        self.setup_privacy(records, privacy, private=private, batch_size=cfg.train.batch_size,
                           fake_rows=cfg.train.batch_size, restoring=restoring)
        self.columns = (*self.columns, *(("epsilon",) if private else ()), "real_batch")

    # ------------------------------------------------------------------ set-up
    def phases(self) -> list[Phase]:
        return [Phase("D", ("D",), loss=self.private_d_loss, batch_source=self.record_batches),
                Phase("G", ("G",), uses_data=False, loss=self.private_g_loss)]

    def check_distributable(self) -> None:
        raise GanforgeError("algorithm dp-gan trains in one process (Opacus' clipping and the "
                            "privacy accountant are per process)", "run it without torchrun")

    # ------------------------------------------------------------------ accounting
    # ------------------------------------------------------------------ the losses
    def _per_row(self, fn, logits: torch.Tensor) -> torch.Tensor:
        """fn(one logit of shape (1,)) for every logit: the rows' own loss terms."""
        if len(logits) == 0:
            return logits.new_zeros(0)
        try:
            return torch.func.vmap(lambda v: fn(v.reshape(1)))(logits)
        except Exception:  # an objective vmap cannot batch: one call per row
            return torch.stack([fn(v.reshape(1)) for v in logits])

    def private_d_loss(self, batch: dict[str, torch.Tensor], step: int
                       ) -> tuple[torch.Tensor, dict[str, float]]:
        """The D phase on a Poisson batch of the records (:attr:`record_batches`): one forward of
        D over the real and ``train.batch_size`` fake rows, one loss term per row (see the module
        docstring); refused once the privacy budget is spent."""
        self.check_budget_and_announce()
        G, D, stab, dev, obj = self.G, self.D, self.stabilisers, self.device, self.objective
        real = batch["x"].to(dev)
        n_real, n_fake = len(real), self.cfg.train.batch_size
        conditional = self.conditional is not None
        y_real = batch["y"].to(dev) if conditional else None
        z = G.sample_z(n_fake, self.noise, dev)
        y_fake = self.labels_for(n_fake, self.noise)  # uniform: fakes never carry real labels
        with torch.no_grad():
            fake = G(z, y_fake)
        x = torch.cat([stab.d_input(real, step), stab.d_input(fake, step)])
        y = torch.cat([y_real, y_fake]) if conditional else None
        if self._gsm is not None:
            self._gsm.enable_hooks()
        out = D.evaluate(x, y)  # ONE forward: one row, one per-sample gradient, per sample
        real_logits, fake_logits = out.logits[:n_real], out.logits[n_real:]
        zero = out.logits.new_zeros(1)
        rows_real = self._per_row(lambda v: obj.d_loss(v, zero), real_logits)
        rows_fake = self._per_row(lambda v: obj.d_loss(zero, v), fake_logits)
        stats: dict[str, float] = {}
        smoothing = self.options.stabilisers.label_smoothing
        if smoothing:
            rows_real = rows_real + smoothing * real_logits
        if out.class_logits is not None:
            ce_real = F.cross_entropy(out.class_logits[:n_real], y_real, reduction="none")
            rows_real = rows_real + ce_real
            ac = ce_real.detach().mean() if n_real else out.logits.new_zeros(())
            if getattr(D, "ac_fake_loss", False):
                ce_fake = F.cross_entropy(out.class_logits[n_real:], y_fake, reduction="none")
                rows_fake = rows_fake + ce_fake
                ac = ac + ce_fake.detach().mean()
            stats["ac_D"] = ac.item()
        rows = torch.cat([rows_real, rows_fake])
        loss = self.dp_loss(rows)  # the twin (private: false) divides the plain sum by 2 batch_size
        with torch.no_grad():
            r, f = real_logits.detach(), fake_logits.detach()
            if n_real:
                value = obj.d_loss(r, f)
                if smoothing:
                    stats["label_smoothing"] = label_smoothing_term(r, smoothing).item()
                    value = value + stats["label_smoothing"]
                stats["loss_D"] = value.item() + stats.get("ac_D", 0.0)
            if obj.cross_entropy:
                stats["real_score"] = torch.sigmoid(r).mean().item() if n_real else math.nan
                stats["fake_score"] = torch.sigmoid(f).mean().item()
            else:
                stats["critic_real"] = r.mean().item() if n_real else math.nan
                stats["critic_fake"] = f.mean().item()
                stats["critic_gap"] = stats["critic_real"] - stats["critic_fake"]
        stats["real_batch"] = float(n_real)
        stats.update(self._epsilon_stats(step))
        return loss, stats

    def private_g_loss(self, batch: dict[str, torch.Tensor] | None, step: int
                       ) -> tuple[torch.Tensor, dict[str, float]]:
        """The gan algorithm's G loss with D's per-sample hooks off, logged with epsilon."""
        if self._gsm is not None:
            self._gsm.disable_hooks()  # G's backward through D must not touch D's per-sample grads
        loss, stats = self.g_loss(batch, step)
        stats.update(self._epsilon_stats(step))
        return loss, stats

    # ------------------------------------------------------------------ artefacts
    def snapshot_reals(self, n: int) -> torch.Tensor:
        """None: a 2-D snapshot shows the samples over D's field without the real records (which
        a private run must not draw)."""
        return torch.zeros(0, *self.sample_shape)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        out["dp"] = self.privacy_state()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        dp = state.get("dp")
        self.check_privacy_state(dp)
        super().load_state_dict(state)
        self.load_privacy_state(dp)
