"""BAGAN-GP (Huang & Jafari 2021): a class-conditional GAN for imbalanced data, its generator and
discriminator initialised by a class-conditional autoencoder trained on every class.

Phases::

    AE  (steps < autoencoder_steps):  (x, y) ~ p_data (all classes, as they come);  minimise
            || G(E(x), y) - x ||_1 (mean over pixels)
        E(x) = BatchNorm(Linear(h(x))): D's feature trunk h and a linear head to the code, the
        BatchNorm without affine parameters, so the codes have the prior's per-dimension mean 0
        and variance 1 and G(z, y), z ~ N(0, I), starts from the autoencoder's decodings
    D   (from autoencoder_steps; repeat k):  the gan algorithm's D phase (WGAN-GP by default),
        its real batches class-balanced (``balanced``: each row's class uniform over the
        classes, :class:`~ganforge.train.batches.BalancedBatches`), so the fakes, which take the
        reals' labels, are balanced too
    G   (from autoencoder_steps):  the gan algorithm's G phase, labels uniform

The autoencoder trains D's trunk (shared with E), E's head and all of G (the ``bagan`` model's
decoder and class embedding), so when the adversarial phases start, D already extracts features
from every class and G already decodes the rare class from the code the majority taught it:
the transfer from the majority classes. Every stabiliser of the gan algorithm applies in the
adversarial phases (DiffAugment is how ``fashion-imbalanced-bagan`` regularises D on the rare
class's few images).

Options (``algorithm: {name: bagan-gp, ...}``): the gan algorithm's (``loss``, ``stabilisers``,
``penalty_until``), ``autoencoder_steps`` (>= 0; 0: no autoencoder, a plain conditional GAN)
and ``balanced`` (true/false). Any conditional model whose discriminator has features works;
``model.name: bagan`` is the paper's generator. Optimisers: ``optim.AE`` (Adam 2e-4, betas
(0.5, 0.999) by default) for the autoencoder, ``optim.G`` / ``optim.D`` after it.

Randomness: the balanced sampler's generator (seed + 7), besides the gan algorithm's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ganforge.config import ExperimentConfig
from ganforge.data.base import AnyDataset, ArrayDataset
from ganforge.errors import GanforgeError
from ganforge.train.algorithms.base import OptimizerSpec, Phase, register_algorithm
from ganforge.train.algorithms.gan import ADAM_GAN, GAN
from ganforge.train.batches import BalancedBatches


class CodeHead(nn.Module):
    """D's features (N, F) -> codes (N, z_dim): Linear, then BatchNorm without affine
    parameters (codes of mean 0, variance 1 per dimension, like the prior's)."""

    def __init__(self, feature_dim: int, z_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(feature_dim, z_dim)
        self.norm = nn.BatchNorm1d(z_dim, affine=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.norm(self.linear(h))


@register_algorithm("bagan-gp")
class BAGANGP(GAN):
    """The gan algorithm after a class-conditional autoencoder phase; see the module docstring."""

    name = "bagan-gp"

    @dataclass
    class Options(GAN.Options):
        autoencoder_steps: int = 1000
        balanced: bool = True

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.autoencoder_steps < 0:  # the types are checked by parse_options
                raise GanforgeError(
                    f"algorithm.autoencoder_steps must be a number of steps >= 0, got "
                    f"{self.autoencoder_steps!r}",
                    "set e.g. algorithm.autoencoder_steps=1000 (0: no autoencoder)",
                )

    options: BAGANGP.Options

    def __init__(self, cfg: ExperimentConfig, dataset: AnyDataset | None, **kwargs: Any) -> None:
        super().__init__(cfg, dataset, **kwargs)
        if not self.conditions_on_classes:
            raise GanforgeError(
                "algorithm bagan-gp balances classes, and this model is not conditioned "
                "on the dataset's classes",
                "set model.conditional=projection (or concat, acgan) and train on labelled data",
            )
        device = self.device
        with torch.no_grad():
            probe = torch.zeros(2, *self.sample_shape, device=device)
            labels = torch.zeros(2, dtype=torch.long, device=device)
            feature_dim = self.D.evaluate(probe, labels).features.flatten(1).shape[1]
        self.E = CodeHead(feature_dim, self.G.z_dim).to(device)
        self.networks["E"] = self.E
        self.balanced_batches: BalancedBatches | None = None
        if self.options.balanced and dataset is not None:
            if not isinstance(dataset, ArrayDataset):
                raise GanforgeError(
                    "algorithm.balanced samples records by class, and this dataset is drawn on the fly",
                    "use an in-memory dataset or algorithm.balanced=false",
                )
            self.balanced_batches = BalancedBatches(dataset, cfg.train.batch_size, cfg.seed + 7)
        self.columns = ("loss_AE", *self.columns)

    # ------------------------------------------------------------------ the Trainer's contract
    def optimizers(self) -> dict[str, OptimizerSpec]:
        autoencoder = nn.ModuleDict({"E": self.E, "D": self.D, "G": self.G})
        return {**super().optimizers(), "AE": OptimizerSpec(autoencoder, dict(ADAM_GAN))}

    def phases(self) -> list[Phase]:
        start = self.options.autoencoder_steps
        d, g = super().phases()
        adversarial = [
            Phase("D", ("D",), start=start, loss=d.loss, batch_source=self.balanced_batches),
            Phase("G", ("G",), start=start, uses_data=False, loss=g.loss),
        ]
        return ([Phase("AE", ("AE",), stop=start, loss=self.ae_loss)] if start else []) + adversarial

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """E(x): D's features of x (labelled y for a D that reads labels), then the code head."""
        return self.E(self.D.evaluate(x, y).features.flatten(1))

    def ae_loss(self, batch: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The autoencoder phase: mean |G(E(x), y) - x| over the batch's pixels."""
        x, y = batch["x"].to(self.device), batch["y"].to(self.device)
        loss = (self.G(self.encode(x, y), y) - x).abs().mean()
        return loss, {"loss_AE": loss.item()}

    def progress_text(self, row: dict[str, float]) -> str:
        if row.get("loss_D") is None and row.get("loss_AE") is not None:
            return f"loss_AE {row['loss_AE']:.4f} (autoencoder)"
        return super().progress_text(row)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        out["balanced"] = None if self.balanced_batches is None else self.balanced_batches.state_dict()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if self.balanced_batches is not None and state.get("balanced") is not None:
            self.balanced_batches.load_state_dict(state["balanced"])
