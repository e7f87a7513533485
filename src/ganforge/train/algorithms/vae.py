"""The variational autoencoder (Kingma & Welling 2014), trained on the ELBO: ganforge's first
non-adversarial algorithm, and the baseline every GAN is compared with.

One phase, ``vae``, one optimiser over encoder and decoder::

    x' = Bernoulli((x + 1) / 2)             dynamic binarisation (Bernoulli decoder), or x itself
    (mu, logvar) = q(x')                    the encoder
    z = mu + exp(logvar / 2) * eps          the reparameterisation, eps ~ N(0, I)
    L = -log p(x' | z) + beta_t * KL(N(mu, diag exp(logvar)) || N(0, I))     (analytic KL)

minimised on the batch mean, with beta_t = beta * min(1, step / kl_warmup) (KL warm-up; beta != 1
is the beta-VAE). The log has ``neg_elbo`` = -log p(x'|z) + KL (at weight 1, in nats), its two
terms ``recon_nll`` and ``kl``, and ``kl_weight``.

Held-out bounds (:meth:`VAE.log_likelihood_bounds`, the ``elbo`` and ``iwae`` metrics): the test
images are binarised once with a seeded generator, then per image::

    neg_elbo = -log p(x|z_1) + KL(q || p),   z_1 ~ q(z|x)
    nll_iwae = -(logsumexp_i log w_i - log k),  log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x)

(Burda et al. 2015); E[nll_iwae] <= E[neg_elbo], and it tightens towards -log p(x) as k grows.

Randomness: eps and the binarisation draw from the algorithm's generator (seed + 1); fixed
sample codes from seed + 2.
"""

from __future__ import annotations

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
from ganforge.models.vae import Decoder, Encoder
from ganforge.train.algorithms.base import (
    Algorithm,
    HasLikelihood,
    LatentSimulation,
    LatentSpace,
    OptimizerSpec,
    Phase,
    option_weight,
    register_algorithm,
)

BINARIZATIONS = ("dynamic", "none")
ADAM_VAE = {"name": "adam", "lr": 1e-3, "betas": (0.9, 0.999)}
#: importance samples decoded at once in the held-out bounds (memory: chunk * batch * pixels floats)
K_CHUNK = 250


@register_algorithm("vae")
class VAE(Algorithm, LatentSpace, LatentSimulation, HasLikelihood):
    """An encoder q(z|x) and a decoder p(x|z) trained on the ELBO; see the module docstring.

    Options (``algorithm: {name: vae, ...}``): ``beta`` (the KL weight, 1 for the VAE),
    ``kl_warmup`` (steps of the linear KL warm-up, 0 for none), ``binarize`` (``dynamic``: a new
    Bernoulli draw of every training image in every batch, for the Bernoulli decoder; ``none``:
    the grey levels themselves).
    """

    name = "vae"
    generator_name = "decoder"
    ema_networks = ("decoder",)
    columns = ("loss_vae", "neg_elbo", "recon_nll", "kl", "kl_weight", "grad_norm_vae")

    @dataclass
    class Options:
        beta: float = 1.0
        kl_warmup: int = 0
        binarize: str = "dynamic"

        def __post_init__(self) -> None:
            option_weight(self.beta, "beta", "set algorithm.beta=1 (the VAE) or another KL weight")
            if self.kl_warmup < 0:
                raise GanforgeError(f"algorithm.kl_warmup={self.kl_warmup!r} is not a number of steps >= 0",
                                    "set e.g. algorithm.kl_warmup=5000, or 0 for none")
            if self.binarize not in BINARIZATIONS:
                raise GanforgeError(f"unknown algorithm.binarize {self.binarize!r}",
                                    f"choose one of: {', '.join(BINARIZATIONS)}")

    def __init__(self, cfg: ExperimentConfig, dataset: AnyDataset | None, *,
                 sample_shape: tuple[int, ...], num_classes: int | None, device: torch.device,
                 restoring: bool = False) -> None:
        super().__init__(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes,
                         device=device)
        options = self.options
        self.beta, self.kl_warmup, self.binarize = options.beta, options.kl_warmup, options.binarize
        self.encoder, self.decoder = MODELS.build(cfg.model, self.sample_shape, num_classes)
        if not isinstance(self.encoder, Encoder) or not isinstance(self.decoder, Decoder):
            raise GanforgeError(f"model {cfg.model['name']!r} is not a VAE family",
                                "use model.name=vae-mlp or vae-conv with algorithm vae")
        if self.decoder.likelihood == "bernoulli" and len(self.sample_shape) != 3:
            raise GanforgeError("a Bernoulli decoder models binary pixels, and this dataset holds points",
                                "set model.likelihood=gaussian")
        self.encoder.to(device)
        self.decoder.to(device)
        self.networks = {"encoder": self.encoder, "decoder": self.decoder}
        self.noise = torch.Generator().manual_seed(cfg.seed + 1)
        self.fixed_z = self.decoder.sample_z(cfg.train.num_fixed_samples,
                                             torch.Generator().manual_seed(cfg.seed + 2))

    # ------------------------------------------------------------------ the Trainer's contract
    def optimizers(self) -> dict[str, OptimizerSpec]:
        both = nn.ModuleDict({"encoder": self.encoder, "decoder": self.decoder})
        return {"vae": OptimizerSpec(both, dict(ADAM_VAE))}

    def phases(self) -> list[Phase]:
        return [Phase("vae", ("vae",), loss=self.elbo_loss)]

    def target(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """What the decoder models: a Bernoulli draw of (x + 1) / 2 (binarised images), or x."""
        if self.decoder.likelihood == "gaussian":
            return x
        probs = ((x + 1) / 2).clamp(0, 1)
        if self.binarize == "none":
            return probs
        return torch.bernoulli(probs.cpu(), generator=generator).to(x.device)

    def _encoder_input(self, target: torch.Tensor) -> torch.Tensor:
        return target if self.decoder.likelihood == "gaussian" else 2 * target - 1

    def elbo_loss(self, batch: dict[str, torch.Tensor],
                  step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The ``vae`` phase: the negative ELBO, its KL term weighted by beta and the warm-up."""
        x = self.target(batch["x"].to(self.device), self.noise)
        mu, logvar = self.encoder(self._encoder_input(x))
        z = maths.reparameterise(mu, logvar, self.noise)
        recon = -self.decoder.log_likelihood(x, z)
        kl = maths.kl_standard_normal(mu, logvar)
        weight = self.beta * maths.kl_warmup_weight(step, self.kl_warmup)
        loss = (recon + weight * kl).mean()
        stats = {"neg_elbo": (recon + kl).mean().item(), "recon_nll": recon.mean().item(),
                 "kl": kl.mean().item(), "kl_weight": weight}
        return loss, stats

    def progress_text(self, row: dict[str, float]) -> str:
        return f"-ELBO {row['neg_elbo']:.2f}  recon {row['recon_nll']:.2f}  KL {row['kl']:.2f} nats"

    # ------------------------------------------------------------------ held-out bounds
    @torch.no_grad()
    def log_likelihood_bounds(self, x: torch.Tensor, k: int,
                              generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Per-image ``neg_elbo``, ``recon_nll``, ``kl`` and (k importance samples) ``nll_iwae``
        of held-out images ``x`` in [-1, 1], in nats; see the module docstring."""
        was_training = {n: net.training for n, net in self.networks.items()}
        self.train(False)
        x = x.to(self.device)
        target = self.target(x, generator)  # binarised once, with the seeded generator
        mu, logvar = self.encoder(self._encoder_input(target))
        recon = -self.decoder.log_likelihood(target, maths.reparameterise(mu, logvar, generator))
        kl = maths.kl_standard_normal(mu, logvar)
        log_w = []
        for start in range(0, k, K_CHUNK):
            z = maths.reparameterise(mu, logvar, generator, samples=min(K_CHUNK, k - start))
            log_w.append(self.decoder.log_likelihood(target, z) + maths.log_normal_standard(z)
                         - maths.log_normal_diag(z, mu, logvar))
        nll_iwae = -maths.iwae_bound(torch.cat(log_w).double())
        for name, net in self.networks.items():
            net.train(was_training[name])
        return {"neg_elbo": (recon + kl).cpu(), "recon_nll": recon.cpu(), "kl": kl.cpu(),
                "nll_iwae": nll_iwae.cpu()}

    # ------------------------------------------------------------------ artefacts
    @torch.no_grad()
    def snapshot(self, path: Path, generator: nn.Module, step: int) -> Path:
        """The decoder's mean images for the fixed codes (a 2-d latent: also its manifold)."""
        from ganforge import viz

        was_training = generator.training
        generator.eval()
        x = generator(self.fixed_z.to(self.device)).cpu()
        generator.train(was_training)
        path.parent.mkdir(parents=True, exist_ok=True)
        if x.dim() == 4:
            return viz.save_grid(x, path)
        return viz.plot_2d_field(x[:0], x, path, title=f"step {step}")

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"noise": self.noise.get_state(), "fixed_z": self.fixed_z.cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.noise.set_state(state["noise"])
        self.fixed_z = state["fixed_z"]
