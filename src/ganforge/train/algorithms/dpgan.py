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
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.config import ExperimentConfig
from ganforge.data.base import AnyDataset, ArrayDataset, StreamDataset
from ganforge.errors import GanforgeError
from ganforge.maths.regularisers import label_smoothing_term
from ganforge.train.algorithms.base import Phase, register_algorithm
from ganforge.train.algorithms.gan import GAN, AdversarialOptions
from ganforge.train.batches import PoissonBatches
from ganforge.train.objectives import Objective

ACCOUNTANTS = ("rdp", "prv")


@dataclass
class PrivacyConfig:
    """The ``privacy`` option of the ``dp-gan`` algorithm (``algorithm.privacy``; a top-level
    section in the legacy layout): DP-SGD on D with Opacus.

    Exactly one of ``epsilon`` (the target: the noise multiplier is then computed for the run's
    D steps and sampling rate) and ``noise_multiplier`` (sigma; the epsilon spent is reported);
    both null (the default) leaves the section unused. ``delta`` must lie below 1/N for a training
    set of N records (checked when the data is loaded); ``max_grad_norm`` C clips every
    per-sample gradient of D; ``accountant``: ``rdp`` (Renyi DP, Mironov 2017) or ``prv``
    (privacy random variables, Gopi et al. 2021, tighter and slower).
    """

    epsilon: float | None = None
    noise_multiplier: float | None = None
    delta: float = 1e-5
    max_grad_norm: float = 1.0
    accountant: str = "rdp"

    def __post_init__(self) -> None:
        inf, at = float("inf"), "algorithm.privacy."
        if self.epsilon is not None and not 0.0 < self.epsilon < inf:
            raise GanforgeError(f"{at}epsilon must be a finite number > 0, got {self.epsilon}",
                                f"set e.g. {at}epsilon=10 (smaller is more private)")
        if self.noise_multiplier is not None and not 0.0 <= self.noise_multiplier < inf:
            raise GanforgeError(f"{at}noise_multiplier must be a finite number >= 0, got "
                                f"{self.noise_multiplier}", f"set e.g. {at}noise_multiplier=1.0")
        if self.epsilon is not None and self.noise_multiplier is not None:
            raise GanforgeError(f"{at}epsilon and {at}noise_multiplier are both set",
                                "set only one: epsilon (the noise is computed for the run) or "
                                "noise_multiplier (the epsilon spent is reported)")
        if not 0.0 < self.delta < 1.0:
            raise GanforgeError(f"{at}delta must lie in (0, 1), got {self.delta}",
                                f"set e.g. {at}delta=1e-5 (below 1 / the number of training records)")
        if not 0.0 < self.max_grad_norm < inf:
            raise GanforgeError(f"{at}max_grad_norm must be a finite number > 0, got "
                                f"{self.max_grad_norm}", f"set e.g. {at}max_grad_norm=1.0")
        if self.accountant not in ACCOUNTANTS:
            raise GanforgeError(f"unknown {at}accountant {self.accountant!r}",
                                f"choose one of: {', '.join(ACCOUNTANTS)}")

    @property
    def enabled(self) -> bool:
        """Whether the section asks for privacy (epsilon or noise_multiplier set)."""
        return self.epsilon is not None or self.noise_multiplier is not None


INSTALL_FIX = 'install it with: pip install -e ".[privacy]"'
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


def import_opacus() -> Any:
    """The ``opacus`` module, or the one-line error that says how to install it."""
    try:
        import opacus
        import opacus.accountants.utils  # noqa: F401
        import opacus.optimizers  # noqa: F401
        import opacus.validators  # noqa: F401
    except ImportError:
        raise GanforgeError("algorithm dp-gan needs Opacus, which is not installed",
                            INSTALL_FIX) from None
    return opacus


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
class DPGAN(GAN):
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
        opacus = import_opacus()
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
        self.private = private
        self._records: ArrayDataset | None = records  # type: ignore[assignment]
        notice = self._make_compatible(opacus)
        for module in self.D.modules():  # in-place activations break Opacus' backward hooks
            if getattr(module, "inplace", False):
                module.inplace = False
        t = cfg.train
        self.expected_batch = 2 * t.batch_size  # E[real rows] + fake rows
        self.sampler = torch.Generator().manual_seed(cfg.seed + 5)
        self.dp_noise = torch.Generator(device=device).manual_seed(cfg.seed + 6)
        self._d_phase = Phase("D", ("D",), uses_data=False)
        if "D" in cfg.phases:
            self._d_phase = self._d_phase.configured(cfg.phases["D"])
        self.sample_rate: float | None = None
        self.noise_multiplier: float | None = privacy.noise_multiplier
        self.accountant = opacus.accountants.create_accountant(privacy.accountant) if private else None
        self._gsm: nn.Module | None = None
        self._dp_optimizer: Any = None
        self._allowed_steps: int | None = None
        self._eps_cache: dict[tuple, float] = {}
        self._rdp_per_step: dict[tuple[float, float], Any] = {}
        self._eps_stat: tuple[int, float] | None = None
        self._step_start_accounted = 0
        self._announced = False
        #: the D phase's batches: Poisson samples of the records (None without data)
        self.record_batches: PoissonBatches | None = None
        if records is not None:
            n = len(records)
            self.record_batches = PoissonBatches(records, t.batch_size, self.sampler)
            self.sample_rate = self.record_batches.rate
            if private:
                self._check_delta(n)
                if privacy.epsilon is not None:
                    self.noise_multiplier = self._noise_for_target(opacus)
                self._gsm = opacus.GradSampleModule(self.D, batch_first=True, loss_reduction="mean")
                # the records never require grad, so D's first layer reports this on every backward
                warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients",
                                        category=UserWarning)
        self.columns = (*self.columns, *(("epsilon",) if private else ()), "real_batch")
        if notice and not restoring:  # once every check has passed
            print(notice)

    # ------------------------------------------------------------------ set-up
    def _make_compatible(self, opacus: Any) -> str | None:
        """BatchNorm etc. -> GroupNorm (``ModuleValidator.fix``; returns the line that says so); a
        one-line error for a D whose per-sample gradients Opacus cannot compute."""
        validator, D = opacus.validators.ModuleValidator, self.D
        before = {type(m).__name__ for m in D.modules()}
        errors: list[Exception] = []
        if validator.validate(D, strict=False):
            try:
                D = validator.fix(D)
            except Exception as err:  # a fixer that does not apply to this layer
                errors.append(err)
        if not errors:
            errors = [*validator.validate(D, strict=False),
                      *opacus.GradSampleModule.validate(D, strict=False)]
        if errors:
            why = " ".join(str(errors[0]).split())[:160]
            raise GanforgeError(f"Opacus cannot train this discriminator privately ({why})",
                                "choose a D without that layer (no running statistics or buffers)")
        if D is self.D:
            return None
        after = {type(m).__name__ for m in D.modules()}
        self.D = D.to(self.device)
        self.networks["D"] = self.D
        return (f"dp-gan: replaced {', '.join(sorted(before - after))} in D by "
                f"{', '.join(sorted(after - before))} (batch statistics mix the records of a batch; "
                "Opacus needs per-sample gradients)")

    def _check_delta(self, n: int) -> None:
        delta = self.options.privacy.delta
        if delta >= 1.0 / n:
            suggestion = 10.0 ** (math.floor(math.log10(1.0 / n)) - 1)
            raise GanforgeError(f"algorithm.privacy.delta={delta:g} is not below 1/N = {1.0 / n:.3g} for "
                                f"the {n} training records",
                                f"set algorithm.privacy.delta={suggestion:g} or smaller")

    def _noise_for_target(self, opacus: Any) -> float:
        privacy = self.options.privacy
        steps = self._d_steps_between(0, self.cfg.train.steps)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return float(opacus.accountants.utils.get_noise_multiplier(
                    target_epsilon=privacy.epsilon, target_delta=privacy.delta,
                    sample_rate=self.sample_rate, steps=max(steps, 1), accountant=privacy.accountant))
        except ValueError:
            raise GanforgeError(f"algorithm.privacy.epsilon={privacy.epsilon:g} cannot be met over {steps} D "
                                f"updates at sampling rate {self.sample_rate:.3g}",
                                "raise algorithm.privacy.epsilon, or train fewer steps or a smaller "
                                "train.batch_size") from None

    def phases(self) -> list[Phase]:
        return [Phase("D", ("D",), loss=self.private_d_loss, batch_source=self.record_batches),
                Phase("G", ("G",), uses_data=False, loss=self.private_g_loss)]

    def check_distributable(self) -> None:
        raise GanforgeError("algorithm dp-gan trains in one process (Opacus' clipping and the "
                            "privacy accountant are per process)", "run it without torchrun")

    def wrap_optimizers(self, optimizers: dict[str, torch.optim.Optimizer]
                        ) -> dict[str, torch.optim.Optimizer]:
        if self._gsm is None:
            return optimizers
        from opacus.optimizers import DPOptimizer

        inner = optimizers["D"]
        inner = getattr(inner, "original_optimizer", inner)
        dp = DPOptimizer(inner, noise_multiplier=self.noise_multiplier,
                         max_grad_norm=self.options.privacy.max_grad_norm,
                         expected_batch_size=self.expected_batch, loss_reduction="mean",
                         generator=self.dp_noise)
        dp.attach_step_hook(self.accountant.get_optimizer_hook_fn(sample_rate=self.sample_rate))
        self._dp_optimizer = dp
        return {**optimizers, "D": dp}

    # ------------------------------------------------------------------ accounting
    def _d_steps_between(self, start: int, stop: int) -> int:
        """D updates in trainer steps start <= s < stop."""
        phase = self._d_phase
        return sum(phase.repeat for s in range(start, stop) if phase.active(s))

    @property
    def accounted_steps(self) -> int:
        """D updates the accountant has recorded."""
        return sum(int(k) for _, _, k in self.accountant.history) if self.accountant else 0

    def epsilon_after(self, total: int) -> float:
        """The epsilon spent after ``total`` D updates: the recorded ones, then (sigma, q) updates."""
        history = [tuple(h) for h in self.accountant.history]
        extra = total - self.accounted_steps
        if extra > 0:
            if history and history[-1][:2] == (self.noise_multiplier, self.sample_rate):
                history[-1] = (*history[-1][:2], history[-1][2] + extra)
            else:
                history.append((self.noise_multiplier, self.sample_rate, extra))
        history = [h for h in history if h[2] > 0]
        if not history:
            return 0.0
        if any(sigma == 0 for sigma, _, _ in history):
            return math.inf
        key = tuple(history)
        if key not in self._eps_cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "optimal order is the largest alpha"
                self._eps_cache[key] = self._accountant_epsilon(history)
        return self._eps_cache[key]

    def _accountant_epsilon(self, history: list[tuple[float, float, int]]) -> float:
        """What the configured Opacus accountant reports for ``history``. RDP is linear in the
        steps of each (sigma, q) entry, so its per-step RDP vector is computed once (the same
        arithmetic as ``RDPAccountant.get_epsilon``, which recomputes it on every call)."""
        from opacus.accountants import RDPAccountant, create_accountant
        from opacus.accountants.analysis import rdp as analysis

        delta = self.options.privacy.delta
        if self.options.privacy.accountant != "rdp":
            accountant = create_accountant(self.options.privacy.accountant)
            accountant.history = list(history)
            return float(accountant.get_epsilon(delta=delta))
        orders = RDPAccountant.DEFAULT_ALPHAS
        for sigma, q, _ in history:
            if (sigma, q) not in self._rdp_per_step:
                self._rdp_per_step[(sigma, q)] = analysis.compute_rdp(
                    q=q, noise_multiplier=sigma, steps=1, orders=orders)
        rdp = sum([self._rdp_per_step[(sigma, q)] * k for sigma, q, k in history])
        return float(analysis.get_privacy_spent(orders=orders, rdp=rdp, delta=delta)[0])

    @property
    def epsilon(self) -> float:
        """The epsilon spent so far (at ``privacy.delta``)."""
        return self.epsilon_after(self.accounted_steps)

    def allowed_steps(self) -> int | None:
        """The most D updates in all that stay within ``privacy.epsilon`` (None: no target)."""
        target = self.options.privacy.epsilon
        if target is None or self.accountant is None:
            return None
        if self._allowed_steps is None:
            base = self.accounted_steps
            planned = self._d_steps_between(0, self.cfg.train.steps)
            if self.epsilon_after(base) > target:
                self._allowed_steps = base
                return base
            lo = planned if planned > base and self.epsilon_after(planned) <= target else base
            stride, hi = 1, lo + 1
            while self.epsilon_after(hi) <= target and hi < 10**12:  # gallop, then bisect
                lo, stride = hi, stride * 2
                hi = lo + stride
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if self.epsilon_after(mid) <= target else (lo, mid)
            self._allowed_steps = lo
        return self._allowed_steps

    def _row_step(self, step: int) -> int:
        """The trainer step at which the log row holding trainer step ``step`` is written."""
        t, allowed = self.cfg.train, self.allowed_steps()
        end = step + 1
        while not (end % t.log_every == 0 or end >= t.steps):
            if allowed is not None and (self._step_start_accounted + self._d_steps_between(step, end + 1)
                                        > allowed):
                break  # stop_reason ends the run at `end`
            end += 1
        return end

    def _epsilon_stats(self, step: int) -> dict[str, float]:
        """``epsilon`` for metrics.csv: the value at the end of this step's logging window."""
        if self.accountant is None or self.noise_multiplier == 0:
            return {}
        if self._eps_stat is None or self._eps_stat[0] != step:
            total = self._step_start_accounted + self._d_steps_between(step, self._row_step(step))
            self._eps_stat = (step, self.epsilon_after(total))
        return {"epsilon": self._eps_stat[1]}

    def begin_step(self, step: int) -> None:
        super().begin_step(step)
        self._step_start_accounted = self.accounted_steps

    def stop_reason(self, step: int) -> str | None:
        if self.accountant is None or self._records is None:
            return None
        privacy = self.options.privacy
        allowed = self.allowed_steps()
        if allowed is not None and step < self.cfg.train.steps:
            if self.accounted_steps + self._d_steps_between(step, step + 1) > allowed:
                return (f"privacy budget spent: epsilon {self.epsilon:.3f} of {privacy.epsilon:g} "
                        f"(delta {privacy.delta:g}) after {self.accounted_steps} D updates; one more "
                        "would exceed it")
        if step >= self.cfg.train.steps:
            print(f"dp-gan: {self.privacy_summary()}")
        return None

    def privacy_summary(self) -> str:
        """One line: the guarantee spent so far and how it was obtained."""
        p = self.options.privacy
        return (f"({self.epsilon:.4g}, {p.delta:g})-differentially private after "
                f"{self.accounted_steps} D updates (noise multiplier {self.noise_multiplier:.4g}, "
                f"sample rate {self.sample_rate:.4g}, clip norm {p.max_grad_norm:g}, "
                f"{p.accountant} accountant)")

    def _check_budget(self) -> None:
        allowed = self.allowed_steps()
        if allowed is not None and self.accounted_steps + 1 > allowed:
            raise GanforgeError(f"the privacy budget is spent: epsilon {self.epsilon:.3f} of "
                                f"algorithm.privacy.epsilon={self.options.privacy.epsilon:g} after "
                                f"{self.accounted_steps} D updates",
                                "sample from the run as it is: more training would break the guarantee")

    def _announce(self) -> None:
        """One line at the first D update: the noise, and the epsilon it buys."""
        if self._announced or self.accountant is None:
            return
        self._announced = True
        p, n = self.options.privacy, len(self._records)
        planned = self._d_steps_between(0, self.cfg.train.steps)
        budget = ("" if p.epsilon is None
                  else f"; the budget epsilon {p.epsilon:g} allows {self.allowed_steps()}")
        print(f"dp-gan: noise multiplier {self.noise_multiplier:.4g}, sample rate {self.sample_rate:.4g} "
              f"(N = {n} records), clip norm {p.max_grad_norm:g}: epsilon "
              f"{self.epsilon_after(planned):.4g} at delta {p.delta:g} after the {planned} planned D "
              f"updates ({p.accountant} accountant){budget}")

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
        self._check_budget()
        self._announce()
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
        # private: Opacus rescales the mean to per-row gradients and divides their clipped, noised
        # sum by 2 batch_size; the twin divides the plain sum by the same constant
        loss = rows.mean() if self._gsm is not None else rows.sum() / self.expected_batch
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

    def after_update(self, phase: str, step: int) -> None:
        super().after_update(phase, step)
        if phase != "D" and self._gsm is not None:
            for p in self.D.parameters():
                p.grad_sample = None

    def progress_text(self, row: Mapping[str, float]) -> str:
        text = super().progress_text(row)
        if "epsilon" in row and math.isfinite(row["epsilon"]):
            text += f"  eps {row['epsilon']:.2f}"
        return text

    # ------------------------------------------------------------------ artefacts
    def snapshot_reals(self, n: int) -> torch.Tensor:
        """None: a 2-D snapshot shows the samples over D's field without the real records (which
        a private run must not draw)."""
        return torch.zeros(0, *self.sample_shape)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        out["dp"] = {
            "private": self.private,
            "sampler": self.sampler.get_state(),
            "draws": 0 if self.record_batches is None else self.record_batches.draws,
            "noise": self.dp_noise.get_state(),
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "mechanism": self.options.privacy.accountant,
            "history": [[float(s), float(q), int(k)] for s, q, k in
                        (self.accountant.history if self.accountant else [])],
        }
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._eps_stat, self._allowed_steps = None, None
        dp = state.get("dp")
        if dp is None or dp["private"] != self.private:
            raise GanforgeError("the checkpoint and the config disagree on differential privacy",
                                "resume with the run's own config.yaml")
        super().load_state_dict(state)
        history = [(float(s), float(q), int(k)) for s, q, k in dp["history"]]
        if self.accountant is not None and self.accounted_steps > sum(k for _, _, k in history):
            return  # a rollback: the discarded updates saw the data; keep their cost and fresh noise
        self.sampler.set_state(dp["sampler"])
        if self.record_batches is not None:  # checkpoints before batch sources: one draw per D update
            self.record_batches.draws = int(dp.get("draws", sum(k for _, _, k in history)))
        self.dp_noise.set_state(dp["noise"])
        if self.accountant is not None:
            self.accountant.history = history
            if dp["noise_multiplier"] is not None:  # the run keeps the noise it started with
                self.noise_multiplier = float(dp["noise_multiplier"])
            if self._dp_optimizer is not None:
                self._dp_optimizer.noise_multiplier = self.noise_multiplier
