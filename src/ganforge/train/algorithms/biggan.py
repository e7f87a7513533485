"""BigGAN's training (Brock et al. 2019): the ``gan`` algorithm with G's orthogonal regulariser.

    D:  minimise  objective.d_loss (+ the stabilisers' terms), as in ``gan``
    G:  minimise  objective.g_loss + R_beta(G),   R_beta = beta sum_W ||W W^T ⊙ (1 - I)||_F^2

over G's weight matrices and conv kernels (raw, before spectral normalisation, as in the
authors' code), except the shared class embedding, which the authors exempt
(:func:`ganforge.maths.regularisers.orthogonal_regularisation`). Defaults follow the paper's
setup: Adam with betas (0, 0.999), G lr 1e-4, D lr 4e-4 (the 4x rate of its 128x128 runs, TTUR);
the hinge loss, n_D and EMA are the preset's (``algorithm.loss``, ``phases.D.repeat``,
``train.ema_decay``). Options: the gan algorithm's, and ``ortho_beta``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ganforge.config import ExperimentConfig
from ganforge.data.base import AnyDataset
from ganforge.maths.regularisers import orthogonal_regularisation
from ganforge.train.algorithms.base import OptimizerSpec, option_weight, register_algorithm
from ganforge.train.algorithms.gan import GAN

ADAM_BIGGAN = {"name": "adam", "betas": (0.0, 0.999)}
#: parameters of G the regulariser leaves alone (name prefixes): the shared class embedding
ORTHO_EXEMPT = ("shared.",)


@register_algorithm("biggan")
class BigGAN(GAN):
    """:class:`GAN` plus ``ortho_beta`` * R(G) in G's loss, logged as ``ortho`` (unweighted R/beta
    would hide the scale, so the logged value is the added term)."""

    name = "biggan"

    @dataclass
    class Options(GAN.Options):
        ortho_beta: float = 1e-4

        def __post_init__(self) -> None:
            super().__post_init__()
            option_weight(self.ortho_beta, "ortho_beta",
                          "set algorithm.ortho_beta to e.g. 1e-4, or 0 to switch it off")

    def __init__(self, cfg: ExperimentConfig, dataset: AnyDataset | None, *,
                 sample_shape: tuple[int, ...], num_classes: int | None, device: torch.device,
                 restoring: bool = False) -> None:
        super().__init__(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes,
                         device=device, restoring=restoring)
        self.ortho_beta = self.options.ortho_beta
        self.columns = (*self.columns, "ortho")

    def ortho_weights(self) -> list[torch.Tensor]:
        """G's regularised tensors: every parameter with >= 2 dims outside :data:`ORTHO_EXEMPT`."""
        return [p for name, p in self.G.named_parameters()
                if p.dim() >= 2 and not name.startswith(ORTHO_EXEMPT)]

    def optimizers(self) -> dict[str, OptimizerSpec]:
        return {"G": OptimizerSpec(self.G, {**ADAM_BIGGAN, "lr": 1e-4}),
                "D": OptimizerSpec(self.D, {**ADAM_BIGGAN, "lr": 4e-4})}

    def g_loss(self, batch: dict[str, torch.Tensor] | None,
               step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The gan algorithm's G loss plus the orthogonal regulariser."""
        loss, stats = super().g_loss(batch, step)
        if self.ortho_beta == 0.0:
            stats["ortho"] = 0.0
            return loss, stats
        ortho = orthogonal_regularisation(self.ortho_weights(), self.ortho_beta)
        stats["ortho"] = ortho.item()
        return loss + ortho, stats
