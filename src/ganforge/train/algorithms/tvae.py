"""TVAE (Xu et al. 2019, sec. 4.3): a variational autoencoder on the rows of a table, on CTGAN's
transform (:mod:`ganforge.data.table`), as the paper's reference code trains it.

For a batch of transformed rows r (N, D), with q(z | r) = N(mu, diag sigma_q^2) and the decoder's
raw outputs o = dec(z), z = mu + sigma_q eps::

    recon = sum over tanh spans   (alpha - tanh(o))^2 / (2 sigma^2) + log sigma
          + sum over softmax spans CE(one-hot, o)                        (summed over rows, / N)
    KL    = -1/2 sum(1 + log sigma_q^2 - mu^2 - sigma_q^2)                 (summed, / N)
    L     = loss_factor * recon + KL                                       (loss_factor 2)

sigma (one per output, :class:`~ganforge.models.tvae.TVAEDecoder`) is learnt and clamped to
[0.01, 1] after every step. Adam, lr 1e-3, weight decay 1e-5, batch 500. Sampling decodes
z ~ N(0, I): tanh(o) + sigma eps for values, argmax for one-hots.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ganforge.config import ExperimentConfig
from ganforge.data.base import AnyDataset
from ganforge.errors import GanforgeError
from ganforge.models.base import MODELS
from ganforge.models.tvae import TVAEDecoder, TVAEEncoder
from ganforge.train.algorithms.base import (
    LatentSimulation,
    OptimizerSpec,
    Phase,
    option_weight,
    register_algorithm,
)
from ganforge.train.algorithms.tabular import TableAlgorithm, TableOptions
from ganforge.train.batches import Batch

ADAM_TVAE = {"name": "adam", "lr": 1e-3, "betas": (0.9, 0.999), "weight_decay": 1e-5}
SIGMA_RANGE = (0.01, 1.0)


@register_algorithm("tvae")
class TVAE(TableAlgorithm, LatentSimulation):
    """The tabular VAE; see the module docstring."""

    name = "tvae"
    generator_name = "decoder"
    ema_networks = ("decoder",)
    columns = ("loss", "recon", "kl", "grad_norm_vae")

    @dataclass
    class Options(TableOptions):
        """``loss_factor``: the weight of the reconstruction term (2 in the reference)."""

        loss_factor: float = 2.0

        def __post_init__(self) -> None:
            option_weight(self.loss_factor, "loss_factor", "set e.g. algorithm.loss_factor=2")

    options: TVAE.Options

    def __init__(self, cfg: ExperimentConfig, dataset: AnyDataset | None, *,
                 sample_shape: tuple[int, ...], num_classes: int | None, device: torch.device,
                 restoring: bool = False) -> None:
        super().__init__(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes,
                         device=device, restoring=restoring)
        model = {**cfg.model, "layout": self.layout}
        self.encoder, self.decoder = MODELS.build(model, self.sample_shape, None)
        if not isinstance(self.encoder, TVAEEncoder) or not isinstance(self.decoder, TVAEDecoder):
            raise GanforgeError(f"model {cfg.model.get('name')!r} is not TVAE's pair",
                                "use model.name=tvae with algorithm tvae")
        self.encoder.to(device)
        self.decoder.to(device)
        self.networks = {"encoder": self.encoder, "decoder": self.decoder}

    def optimizers(self) -> dict[str, OptimizerSpec]:
        both = nn.ModuleDict({"encoder": self.encoder, "decoder": self.decoder})
        return {"vae": OptimizerSpec(both, dict(ADAM_TVAE))}

    def phases(self) -> list[Phase]:
        return [Phase("vae", ("vae",), loss=self.elbo_loss)]

    def reconstruction(self, r: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """The summed negative log-likelihood of rows ``r`` under outputs ``raw`` (module
        docstring), divided by the number of rows."""
        layout = self.decoder.layout
        values = layout.tanh
        sigma = self.decoder.sigma.index_select(0, values)
        residual = r.index_select(1, values) - torch.tanh(raw.index_select(1, values))
        gaussian = (residual ** 2 / 2 / sigma ** 2).sum()
        gaussian = gaussian + torch.log(sigma).sum() * len(r)
        return (gaussian + layout.cross_entropy(raw, r).sum()) / len(r)

    def elbo_loss(self, batch: Batch | None, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        r = batch["x"].to(self.device)
        mu, logvar = self.encoder(r)
        eps = torch.randn(mu.shape, generator=self.noise).to(mu.device, mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps
        recon = self.reconstruction(r, self.decoder.raw(z))
        kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum() / len(r)
        loss = self.options.loss_factor * recon + kl
        return loss, {"loss": loss.item(), "recon": recon.item(), "kl": kl.item()}

    def after_update(self, phase: str, step: int) -> None:
        with torch.no_grad():
            self.decoder.sigma.clamp_(*SIGMA_RANGE)
