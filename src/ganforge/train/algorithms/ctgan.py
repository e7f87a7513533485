"""CTGAN (Xu et al. 2019, "Modeling Tabular Data using Conditional GAN"): a conditional WGAN-GP
on the rows of a table, with training-by-sampling.

**The conditional vector.** Every batch picks, for each row, one discrete column j uniformly and
one of its categories k with the log-frequency law

    P(k | j) = log(1 + n_jk) / sum_k' log(1 + n_jk')        (n_jk: training rows with category k)

(``log_frequency: false``: n_jk / N). The conditional vector c is the one-hot of (j, k) over all
discrete columns' categories. *Training by sampling*: the real rows D sees are drawn uniformly
among the rows that have category k in column j, so rare categories are seen as often as the law
says, not as rarely as the data have them.

**One step** (the D phase, then the G phase; ``phases: {D: {repeat: n}}`` for n critic steps)::

    D   c ~ law, x_real ~ rows with c (paired with c shuffled), x_fake = G(z, c)
        L_D = E[D(x_fake (+) c)] - E[D(x_real (+) c')] + lambda GP      (GP per pack, lambda 10)
    G   c ~ law, x_fake = G(z, c)
        L_G = -E[D(x_fake (+) c)] + CE(c, G's logits of column j)       (G must honour c)

G's outputs are tanh for normalised values and Gumbel-softmax (tau 0.2) for one-hots
(:mod:`ganforge.models.ctgan`); D is PacGAN's critic (pac rows a pack). Adam, lr 2e-4, betas
(0.5, 0.9), weight decay 1e-6 for both, batch 500 and 300 epochs in the paper's runs (the
``table-ctgan`` preset).

**Differential privacy** (``algorithm.privacy: {epsilon: ...}``, the dp-gan algorithm's settings
and mechanism, :mod:`.private`): D trains with DP-SGD (Opacus) on Poisson batches of the
records, every row's gradient clipped and noised, the accountant stopping training at the
budget. Gradient penalties, packs and the conditional vector have no place there (per-sample
gradients of a penalty are not computed; a pack mixes records; the conditional vector's law and
the rows of each category are functions of the records), so a private run is an unconditional
non-saturating GAN on the same transform with a pac-1 critic (as the private CTGAN variants
do, e.g. DP-CTGAN, Fang et al. 2022). Not covered by the guarantee: the transform itself (each
numeric column's mixture, the categories and ranges), fitted on the records as in the reference
code; declare the columns and fit the transform on public data for a guarantee end to end.

Sampling ``n`` rows draws c from the same law (so the categories' shares follow the data), or,
under ``--condition col=value``, the one-hot of that category (then keeps the rows that honour
it: :mod:`.tabular`). Randomness: z and the Gumbel noise from ``self.noise`` (seed + 1), the
conditional vectors and real rows from the sampler's generator (seed + 5); both checkpointed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from ganforge.config import ExperimentConfig
from ganforge.data.base import AnyDataset
from ganforge.data.table import DISCRETE
from ganforge.errors import GanforgeError
from ganforge.maths.penalties import gradient_penalty
from ganforge.models.base import MODELS
from ganforge.models.ctgan import CTGANGenerator, PacDiscriminator, SpanLayout, activate
from ganforge.train.algorithms.base import (
    LatentSimulation,
    OptimizerSpec,
    Phase,
    option_weight,
    register_algorithm,
)
from ganforge.train.algorithms.private import PrivacyConfig, PrivateCritic, import_opacus
from ganforge.train.algorithms.tabular import TableAlgorithm, TableOptions
from ganforge.train.batches import Batch

ADAM_CTGAN = {"name": "adam", "lr": 2e-4, "betas": (0.5, 0.9), "weight_decay": 1e-6}


def discrete_spans(layout: list) -> list[tuple[int, int]]:
    """(offset in the row, width) of every discrete column's one-hot in ``layout``."""
    out, offset = [], 0
    for width, _, role in layout:
        if role == "category":
            out.append((offset, int(width)))
        offset += int(width)
    return out


@contextmanager
def _hard_one_hots(net: torch.nn.Module) -> Iterator[None]:
    """The generator draws hard one-hots (sampling) inside the block, soft ones (training) after."""
    net.hard = True
    try:
        yield
    finally:
        net.hard = False


class ConditionalSampler:
    """Training-by-sampling over the transformed rows ``x`` (N, D) (module docstring): draws
    conditional vectors from the log-frequency law and real rows that match them, all from its
    own ``generator``; a :class:`~ganforge.train.batches.BatchSource` of the D phase."""

    def __init__(self, x: torch.Tensor, spans: list[tuple[int, int]], batch_size: int, *,
                 log_frequency: bool = True, generator: torch.Generator) -> None:
        self.x, self.batch_size, self.generator = x, batch_size, generator
        self.spans = spans
        self.cond_dim = sum(w for _, w in spans)
        self.draws = 0
        n = len(x)
        widest = max((w for _, w in spans), default=1)
        self.probs = torch.zeros(len(spans), widest, dtype=torch.float64)
        self.cond_offset = torch.zeros(len(spans), dtype=torch.long)
        orders, starts, counts, offset = [], [], [], 0
        for j, (start, width) in enumerate(spans):
            category = x[:, start:start + width].argmax(1)
            count = torch.bincount(category, minlength=width)
            weight = torch.log1p(count.double()) if log_frequency else count.double()
            self.probs[j, :width] = weight / weight.sum()
            self.cond_offset[j] = offset
            offset += width
            orders.append(torch.argsort(category, stable=True) + j * n)
            counts.append(count)
            starts.append(torch.cumsum(count, 0) - count + j * n)
        self.cumulative = self.probs.cumsum(1)
        self.order = torch.cat(orders) % max(n, 1) if orders else torch.zeros(0, dtype=torch.long)
        self.group_start = torch.cat(starts) if starts else torch.zeros(0, dtype=torch.long)
        self.group_count = torch.cat(counts) if counts else torch.zeros(0, dtype=torch.long)

    @property
    def epoch(self) -> int:
        return self.draws * self.batch_size // max(len(self.x), 1)

    def condvec(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(c (n, cond_dim), column j (n,), category k (n,)) drawn from the law."""
        if not self.spans:
            empty = torch.zeros(n, dtype=torch.long)
            return torch.zeros(n, 0), empty, empty
        column = torch.randint(len(self.spans), (n,), generator=self.generator)
        u = torch.rand(n, 1, generator=self.generator, dtype=torch.float64)
        widths = torch.tensor([w for _, w in self.spans])[column]
        category = torch.minimum((self.cumulative[column] < u).sum(1), widths - 1)
        c = torch.zeros(n, self.cond_dim)
        c[torch.arange(n), self.cond_offset[column] + category] = 1.0
        return c, column, category

    def rows_for(self, column: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        """Indices of real rows, one uniformly among those with ``category`` in ``column``."""
        u = torch.rand(len(column), generator=self.generator, dtype=torch.float64)
        if not self.spans:
            return (u * len(self.x)).long().clamp_(max=len(self.x) - 1)
        group = self.cond_offset[column] + category
        pick = self.group_start[group] + (u * self.group_count[group]).long().clamp_(
            max=self.group_count[group] - 1)
        return self.order[pick]

    def next(self) -> Batch:
        """c for the fakes, and real rows matched to a shuffle of them (with that shuffle)."""
        self.draws += 1
        c, column, category = self.condvec(self.batch_size)
        perm = torch.randperm(self.batch_size, generator=self.generator)
        rows = self.rows_for(column[perm], category[perm])
        return {"x": self.x[rows], "c_real": c[perm], "c_fake": c}

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "draws": self.draws}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.draws = int(state["draws"])


@register_algorithm("ctgan")
class CTGAN(PrivateCritic, TableAlgorithm, LatentSimulation):
    """The conditional tabular GAN; see the module docstring."""

    name = "ctgan"
    #: a private run clips per-sample gradients by ghost clipping (:mod:`.private`); the same
    #: clipping and noise as Opacus' materialised per-sample gradients (tested), 10x faster here
    ghost_clipping: ClassVar[bool] = True
    columns = ("loss_D", "loss_G", "critic_gap", "gp", "cond_ce", "grad_norm_D", "grad_norm_G")

    @dataclass
    class Options(TableOptions):
        """``gp_weight``: lambda of the per-pack gradient penalty; ``log_frequency``: the law of
        the conditional vector (log(1 + n) weights, else frequencies); ``privacy``: DP-SGD on D
        (:class:`~ganforge.train.algorithms.private.PrivacyConfig`; see "Differential privacy"
        in the module docstring)."""

        gp_weight: float = 10.0
        log_frequency: bool = True
        privacy: PrivacyConfig = field(default_factory=PrivacyConfig)

        def __post_init__(self) -> None:
            option_weight(self.gp_weight, "gp_weight", "set e.g. algorithm.gp_weight=10")
            if not isinstance(self.log_frequency, bool):
                raise GanforgeError(f"algorithm.log_frequency={self.log_frequency!r} is not true or false",
                                    "set algorithm.log_frequency=true (the paper's law) or false")

    options: CTGAN.Options

    def __init__(self, cfg: ExperimentConfig, dataset: AnyDataset | None, *,
                 sample_shape: tuple[int, ...], num_classes: int | None, device: torch.device,
                 restoring: bool = False) -> None:
        super().__init__(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes,
                         device=device, restoring=restoring)
        private = self.options.privacy.enabled
        if private:
            import_opacus(self.name)  # before anything is built: the one-line install hint
        # a private run has no conditional vector: its law and the rows of each category are
        # functions of the records that DP-SGD on D does not cover
        self.spans = [] if private else discrete_spans(self.layout or [])
        cond_dim = sum(w for _, w in self.spans)
        #: the discrete columns' one-hots in G's output, in the conditional vector's order
        self.cond_columns = torch.tensor([i for start, w in self.spans for i in range(start, start + w)],
                                         dtype=torch.long, device=device)
        self.cond_layout = SpanLayout([(w, "softmax") for _, w in self.spans]).to(device)
        model = {**cfg.model, "cond_dim": cond_dim, "layout": self.layout}
        self.G, self.D = MODELS.build(model, self.sample_shape, None)
        if not isinstance(self.G, CTGANGenerator) or not isinstance(self.D, PacDiscriminator):
            raise GanforgeError(f"model {cfg.model.get('name')!r} is not CTGAN's pair",
                                "use model.name=ctgan with algorithm ctgan")
        batch = cfg.train.batch_size
        if private and self.D.pac != 1:
            raise GanforgeError(f"model.pac={self.D.pac} cannot train with algorithm.privacy (a pack is one "
                                "per-sample gradient over several records, and Poisson batches vary in size)",
                                "set model.pac=1 for a private run")
        if batch % self.D.pac:
            raise GanforgeError(f"train.batch_size={batch} is not a multiple of model.pac={self.D.pac}",
                                f"set train.batch_size to a multiple of {self.D.pac} (e.g. 500)")
        self.G.to(device)
        self.D.to(device)
        self.G.noise = self.noise
        self.networks = {"G": self.G, "D": self.D}
        x = dataset.x if dataset is not None else torch.zeros(1, self.sample_shape[0])
        self.sampler = ConditionalSampler(x, self.spans, batch, log_frequency=self.options.log_frequency,
                                          generator=torch.Generator().manual_seed(cfg.seed + 5))
        if private:
            self.setup_privacy(dataset, self.options.privacy, private=True, batch_size=batch,
                               fake_rows=batch, restoring=restoring, ghost=self.ghost_clipping)
            self.columns = ("loss_D", "loss_G", "real_score", "fake_score", "epsilon", "real_batch",
                            "grad_norm_D", "grad_norm_G")

    # ------------------------------------------------------------------ the Trainer's contract
    def optimizers(self) -> dict[str, OptimizerSpec]:
        return {"G": OptimizerSpec(self.G, dict(ADAM_CTGAN)), "D": OptimizerSpec(self.D, dict(ADAM_CTGAN))}

    def phases(self) -> list[Phase]:
        if self.private:
            return [Phase("D", ("D",), loss=self.private_d_loss, batch_source=self.record_batches),
                    Phase("G", ("G",), uses_data=False, loss=self.private_g_loss)]
        return [Phase("D", ("D",), loss=self.d_loss, batch_source=self.sampler),
                Phase("G", ("G",), uses_data=False, loss=self.g_loss)]

    def check_distributable(self) -> None:
        if self.private:
            raise GanforgeError("a private ctgan run trains in one process (Opacus' clipping and the "
                                "privacy accountant are per process)", "run it without torchrun")

    def _fake(self, c: torch.Tensor) -> torch.Tensor:
        z = self.G.sample_z(len(c), self.noise, self.device)
        return self.G(z, c.to(self.device))

    def d_loss(self, batch: Batch | None, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """WGAN-GP on rows (+) their conditional vectors, the penalty per pack."""
        dev = self.device
        with torch.no_grad():
            fake = self._fake(batch["c_fake"])
        fake = torch.cat([fake, batch["c_fake"].to(dev)], dim=1)
        real = torch.cat([batch["x"].to(dev), batch["c_real"].to(dev)], dim=1)
        critic = self.D(torch.cat([real, fake]))  # one pass: real packs, then fake packs
        critic_real, critic_fake = critic[: len(critic) // 2].mean(), critic[len(critic) // 2:].mean()
        alpha = torch.rand(len(real) // self.D.pac, generator=self.noise).to(dev)
        gp = gradient_penalty(self.D, real, fake, alpha, pack=self.D.pac)
        loss = critic_fake - critic_real + self.options.gp_weight * gp
        gap = (critic_real - critic_fake).item()
        return loss, {"loss_D": loss.item(), "critic_gap": gap, "gp": gp.item()}

    def cond_loss(self, raw: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """sum_j CE(c_j, raw_j) over the discrete column each row was conditioned on, / n."""
        if not self.spans:
            return raw.new_zeros(())
        layout = self.cond_layout
        ce = layout.cross_entropy(raw.index_select(1, self.cond_columns), c)  # (n, discrete columns)
        chosen = layout.span_sums(c)  # 1 for the column each row was conditioned on, else 0
        return (ce * chosen).sum(1).mean()

    def g_loss(self, batch: Batch | None, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.sampler.condvec(self.cfg.train.batch_size)[0].to(self.device)
        z = self.G.sample_z(len(c), self.noise, self.device)
        raw = self.G.raw(z, c)
        fake = activate(raw, self.G.layout, tau=self.G.tau, generator=self.noise)
        adversarial = -self.D(torch.cat([fake, c], dim=1)).mean()
        ce = self.cond_loss(raw, c)
        loss = adversarial + ce
        return loss, {"loss_G": adversarial.item(), "cond_ce": ce.item()}

    # ------------------------------------------------------------------ differential privacy
    def private_d_loss(self, batch: Batch | None, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The non-saturating D loss on a Poisson batch of the records and ``batch_size`` rows of
        G, one term per row in one forward of D: softplus(-D(x)) for a record, softplus(D(x~))
        for a generated row; Opacus clips each row's gradient and adds the noise."""
        self.check_budget_and_announce()
        real = batch["x"].to(self.device)
        with torch.no_grad():
            fake = self._fake(torch.zeros(self.cfg.train.batch_size, 0))
        if self._gsm is not None:
            self._gsm.enable_hooks()
        logits = self.D(torch.cat([real, fake]))
        rows = torch.cat([F.softplus(-logits[: len(real)]), F.softplus(logits[len(real):])])
        loss = self.dp_loss(rows)
        with torch.no_grad():
            scores = torch.sigmoid(logits)
            both = rows[: len(real)].mean() + rows[len(real):].mean()
            stats = {"loss_D": both.item() if len(real) else math.nan,
                     "real_score": scores[: len(real)].mean().item() if len(real) else math.nan,
                     "fake_score": scores[len(real):].mean().item(), "real_batch": float(len(real))}
        stats.update(self._epsilon_stats(step))
        return loss, stats

    def private_g_loss(self, batch: Batch | None, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """-log sigmoid(D(G(z))) with D's per-sample hooks off (G never reads a record)."""
        if self._gsm is not None:
            self._gsm.disable_hooks()
        loss = F.softplus(-self.D(self._fake(torch.zeros(self.cfg.train.batch_size, 0)))).mean()
        return loss, {"loss_G": loss.item(), **self._epsilon_stats(step)}

    def snapshot_reference(self) -> Any:
        return None if self.private else super().snapshot_reference()

    # ------------------------------------------------------------------ sampling
    def labels_for(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """Conditional vectors from the training law (the categories' shares as in the data)."""
        saved = self.sampler.generator
        self.sampler.generator = generator if generator is not None else torch.Generator()
        try:
            return self.sampler.condvec(n)[0]
        finally:
            self.sampler.generator = saved

    def condition_vector(self, conditions: dict[str, int], n: int) -> torch.Tensor | None:
        """The one-hot of the first condition's category (the rest are kept by rejection; all of
        them in a private run, which has no conditional vector)."""
        if not self.spans:
            return None
        name, index = next(iter(conditions.items()))
        column = [c.name for c in self.schema.columns if c.type in DISCRETE].index(name)
        c = torch.zeros(n, self.sampler.cond_dim)
        c[:, int(self.sampler.cond_offset[column]) + index] = 1.0
        return c

    def sample(self, n: int, generator: torch.Generator | None = None, labels: torch.Tensor | None = None,
               network: torch.nn.Module | None = None, batch_size: int = 1000,
               psi: float = 1.0) -> torch.Tensor:
        """Rows with hard one-hots (argmax of the Gumbel-perturbed logits: a draw from G's
        softmax); conditional vectors from the training law unless ``labels`` gives them. (G's
        batch norms use their running averages, so a batch of rows under one condition comes out
        as that condition's rows would in a mixed batch; the reference samples in training mode.)"""
        net = self.generator if network is None else network
        if labels is None:
            labels = self.labels_for(n, generator)
        with _hard_one_hots(net):
            return super().sample(n, generator, labels, net, batch_size)

    def simulate(self, z: torch.Tensor, generator: torch.Generator | None = None,
                 network: torch.nn.Module | None = None, labels: torch.Tensor | None = None) -> Any:
        """Rows of codes ``z`` with hard one-hots, as :meth:`sample` draws them."""
        net = self.generator if network is None else network
        with _hard_one_hots(net):
            return super().simulate(z, generator, net, labels)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        if self.private:
            out["dp"] = self.privacy_state()
        out["sampler"] = self.sampler.state_dict()
        if len(self.sampler.probs):
            out["law"] = self.sampler.probs.clone()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.private or "dp" in state:
            self.check_privacy_state(state.get("dp"))
        super().load_state_dict(state)
        self.sampler.load_state_dict(state["sampler"])
        if self.private:
            self.load_privacy_state(state["dp"])

    def load_sampling_state(self, state: dict[str, Any]) -> None:
        super().load_sampling_state(state)
        if "law" in state:  # a loaded run draws conditional vectors with the training law
            self.sampler.probs = state["law"].clone()
            self.sampler.cumulative = self.sampler.probs.cumsum(1)
