"""DP-SGD on a discriminator with Opacus, for any algorithm whose D reads the training records:
the privacy settings (:class:`PrivacyConfig`, an algorithm's ``privacy`` option), Poisson
sampling of the records, the per-sample clipping and noise (Opacus' ``GradSampleModule`` and
``DPOptimizer``), the privacy accountant, the budget that ends training, and their checkpointed
state. ``dp-gan`` (:mod:`.dpgan`) and ``ctgan`` with ``privacy`` (:mod:`.ctgan`) mix in
:class:`PrivateCritic`; see :mod:`.dpgan` for the mechanism and the guarantee.

An algorithm that mixes it in calls :meth:`PrivateCritic.setup_privacy` once its networks exist
(``self.D``), draws its D phase's real rows from :attr:`PrivateCritic.record_batches`, computes
one loss term per row in ONE forward of D (``self._gsm.enable_hooks()`` first) and calls
:meth:`PrivateCritic.check_budget_and_announce` at the start of every D update; its G phase calls
``self._gsm.disable_hooks()``. Without ``setup_privacy`` every method here is inert.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ganforge.data.base import ArrayDataset
from ganforge.errors import GanforgeError
from ganforge.train.algorithms.base import Phase
from ganforge.train.batches import PoissonBatches

ACCOUNTANTS = ("rdp", "prv")
INSTALL_FIX = 'install it with: pip install -e ".[privacy]"'


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



def import_opacus(algorithm: str = "dp-gan") -> Any:
    """The ``opacus`` module, or the one-line error that says how to install it."""
    try:
        import opacus
        import opacus.accountants.utils  # noqa: F401
        import opacus.optimizers  # noqa: F401
        import opacus.validators  # noqa: F401
    except ImportError:
        raise GanforgeError(f"algorithm {algorithm} needs Opacus, which is not installed",
                            INSTALL_FIX) from None
    return opacus


class PrivateCritic:
    """DP-SGD on ``self.D`` (see the module docstring); inert until :meth:`setup_privacy`."""

    _gsm: nn.Module | None = None
    _dp_optimizer: Any = None
    accountant: Any = None
    _records: ArrayDataset | None = None
    record_batches: PoissonBatches | None = None
    private: bool = False

    #: ghost clipping (Goodfellow 2015; Li et al. 2022): per-sample gradient *norms* from each
    #: layer's activations and output gradients, then one backward of the clipped loss; the same
    #: clipping and noise as materialised per-sample gradients, without their memory
    ghost: bool = False

    def setup_privacy(self, records: ArrayDataset | None, privacy: PrivacyConfig, *, private: bool,
                      batch_size: int, fake_rows: int, restoring: bool, ghost: bool = False) -> None:
        """Make D trainable with DP-SGD on ``records`` (None: a loaded run without data): Poisson
        batches of expected size ``batch_size``, beside ``fake_rows`` generated rows in every D
        update; with ``private`` the noise multiplier (for ``privacy.epsilon``), Opacus' per-sample
        gradients and the accountant; without, the same batches and scaling with plain steps.
        ``ghost``: ghost clipping (:attr:`ghost`; D's losses then go through :meth:`dp_loss`)."""
        opacus = import_opacus(self.name)
        cfg, device = self.cfg, self.device
        self.private = private
        self._records = records
        notice = self._make_compatible(opacus)
        for module in self.D.modules():  # in-place activations break Opacus' backward hooks
            if getattr(module, "inplace", False):
                module.inplace = False
        self.expected_batch = batch_size + fake_rows  # E[real rows] + fake rows
        self.poisson_generator = torch.Generator().manual_seed(cfg.seed + 5)
        self.dp_noise = torch.Generator(device=device).manual_seed(cfg.seed + 6)
        self._d_phase = Phase("D", ("D",), uses_data=False)
        if "D" in cfg.phases:
            self._d_phase = self._d_phase.configured(cfg.phases["D"])
        self.sample_rate: float | None = None
        self.noise_multiplier: float | None = privacy.noise_multiplier
        self.accountant = opacus.accountants.create_accountant(privacy.accountant) if private else None
        self._allowed_steps: int | None = None
        self._eps_cache: dict[tuple, float] = {}
        self._rdp_per_step: dict[tuple[float, float], Any] = {}
        self._eps_stat: tuple[int, float] | None = None
        self._step_start_accounted = 0
        self._announced = False
        if records is not None:
            n = len(records)
            self.record_batches = PoissonBatches(records, batch_size, self.poisson_generator)
            self.sample_rate = self.record_batches.rate
            if private:
                self._check_delta(n)
                if privacy.epsilon is not None:
                    self.noise_multiplier = self._noise_for_target(opacus)
                self.ghost = ghost
                if ghost:
                    from opacus.grad_sample import GradSampleModuleFastGradientClipping

                    self._gsm = GradSampleModuleFastGradientClipping(
                        self.D, batch_first=True, loss_reduction="mean",
                        max_grad_norm=privacy.max_grad_norm, use_ghost_clipping=True)
                else:
                    self._gsm = opacus.GradSampleModule(self.D, batch_first=True, loss_reduction="mean")
                # the records never require grad, so D's first layer reports this on every backward
                warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients",
                                        category=UserWarning)
        if notice and not restoring:  # once every check has passed
            print(notice)

    def dp_loss(self, rows: torch.Tensor) -> Any:
        """The D phase's loss from one term per row (records and generated rows, one forward of
        D): the mean for Opacus (which rescales it to per-row gradients and divides their
        clipped, noised sum by the expected batch), wrapped for ghost clipping's two backward
        passes when :attr:`ghost`; without privacy, the plain sum over the same constant."""
        if self._gsm is None:
            return rows.sum() / self.expected_batch
        if self.ghost:
            from opacus.utils.fast_gradient_clipping_utils import DPTensorFastGradientClipping

            return DPTensorFastGradientClipping(self._gsm, self._dp_optimizer, rows, "mean")
        return rows.mean()

    def check_budget_and_announce(self) -> None:
        """At the start of every private D update: refuse once the budget is spent; say the noise
        and the epsilon it buys at the first."""
        self._check_budget()
        self._announce()

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
        return (f"{self.name}: replaced {', '.join(sorted(before - after))} in D by "
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

    def wrap_optimizers(self, optimizers: dict[str, torch.optim.Optimizer]
                        ) -> dict[str, torch.optim.Optimizer]:
        if self._gsm is None:
            return optimizers
        from opacus.optimizers import DPOptimizer, DPOptimizerFastGradientClipping

        inner = optimizers["D"]
        inner = getattr(inner, "original_optimizer", inner)
        wrapper = DPOptimizerFastGradientClipping if self.ghost else DPOptimizer
        dp = wrapper(inner, noise_multiplier=self.noise_multiplier,
                     max_grad_norm=self.options.privacy.max_grad_norm,
                     expected_batch_size=self.expected_batch, loss_reduction="mean",
                     generator=self.dp_noise)
        dp.attach_step_hook(self.accountant.get_optimizer_hook_fn(sample_rate=self.sample_rate))
        self._dp_optimizer = dp
        return {**optimizers, "D": dp}

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
            print(f"{self.name}: {self.privacy_summary()}")
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
        print(f"{self.name}: noise multiplier {self.noise_multiplier:.4g}, sample rate "
              f"{self.sample_rate:.4g} (N = {n} records), clip norm {p.max_grad_norm:g}: epsilon "
              f"{self.epsilon_after(planned):.4g} at delta {p.delta:g} after the {planned} planned D "
              f"updates ({p.accountant} accountant){budget}")

    def begin_step(self, step: int) -> None:
        super().begin_step(step)  # type: ignore[misc]
        self._step_start_accounted = self.accounted_steps

    def after_update(self, phase: str, step: int) -> None:
        super().after_update(phase, step)  # type: ignore[misc]
        if phase != "D" and self._gsm is not None:
            for p in self.D.parameters():
                p.grad_sample = None

    def progress_text(self, row: dict[str, float]) -> str:
        text = super().progress_text(row)  # type: ignore[misc]
        if "epsilon" in row and math.isfinite(row["epsilon"]):
            text += f"  eps {row['epsilon']:.2f}"
        return text

    # ------------------------------------------------------------------ state
    def privacy_state(self) -> dict[str, Any]:
        return {
            "private": self.private,
            "sampler": self.poisson_generator.get_state(),
            "draws": 0 if self.record_batches is None else self.record_batches.draws,
            "noise": self.dp_noise.get_state(),
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "mechanism": self.options.privacy.accountant,
            "history": [[float(s), float(q), int(k)] for s, q, k in
                        (self.accountant.history if self.accountant else [])],
        }

    def check_privacy_state(self, dp: dict[str, Any] | None) -> None:
        """A one-line error when a checkpoint's privacy disagrees with the config's."""
        self._eps_stat, self._allowed_steps = None, None
        if dp is None or dp["private"] != self.private:
            raise GanforgeError("the checkpoint and the config disagree on differential privacy",
                                "resume with the run's own config.yaml")

    def load_privacy_state(self, dp: dict[str, Any]) -> None:
        history = [(float(s), float(q), int(k)) for s, q, k in dp["history"]]
        if self.accountant is not None and self.accounted_steps > sum(k for _, _, k in history):
            return  # a rollback: the discarded updates saw the data; keep their cost and fresh noise
        self.poisson_generator.set_state(dp["sampler"])
        if self.record_batches is not None:  # checkpoints before batch sources: one draw per D update
            self.record_batches.draws = int(dp.get("draws", sum(k for _, _, k in history)))
        self.dp_noise.set_state(dp["noise"])
        if self.accountant is not None:
            self.accountant.history = history
            if dp["noise_multiplier"] is not None:  # the run keeps the noise it started with
                self.noise_multiplier = float(dp["noise_multiplier"])
            if self._dp_optimizer is not None:
                self._dp_optimizer.noise_multiplier = self.noise_multiplier
