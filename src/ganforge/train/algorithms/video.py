"""Video: predicting future frames (Mathieu, Couprie and LeCun 2016) and generating clips
(MoCoGAN, Tulyakov et al. 2018), on clips (N, T, C, H, W) of the ``sequence`` data kind.

``frame-predictor`` (``model: {name: convlstm}``): G reads the first ``observed`` frames and
predicts the next ``horizon`` = T - observed (:class:`~ganforge.models.video.FramePredictor`:
true frames in while t < observed, its own predictions after). With x-hat_t G's prediction of
frame t (t = 2..T) and Y-hat = the predicted future::

    L_G = l2_weight * mean_t (x-hat_t - x_t)^2  +  gdl_weight * L_gdl(Y-hat, Y)
          + adversarial_weight * mean_s BCE(D_s([context, Y-hat]), 1)
    L_D = mean_s [BCE(D_s([context, Y]), 1) + BCE(D_s([context, Y-hat]), 0)]

where L_gdl is the gradient difference loss (:func:`ganforge.maths.video.gradient_difference_loss`,
exponent ``gdl_alpha``), D_s the multi-scale discriminator's scale s and ``context`` the last
``context`` observed frames. The L2 term covers every next-frame prediction (as PredRNN trains);
the GDL and adversarial terms cover the predicted future. ``adversarial_weight: 0`` drops D (no D
phase): with ``gdl_weight: 0`` that is the MSE baseline. Mathieu et al.'s weights: l2 1, gdl 1,
adversarial 0.05.

``mocogan`` (``model: {name: mocogan}``): G draws clips from z = [z_C, e_1..e_T]; D_I scores one
frame per clip (picked at random), D_V whole clips; the non-saturating GAN loss on both::

    L_D = BCE(D_I(x_t), 1) + BCE(D_I(G(z)_t'), 0) + BCE(D_V(x), 1) + BCE(D_V(G(z)), 0)
    L_G = BCE(D_I(G(z)_t'), 1) + BCE(D_V(G(z)), 1)

Randomness: the algorithm's generator (seed + 1, checkpointed) draws codes and frame picks; the
fixed clips or codes of figures come from seed + 2.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganforge.config import ExperimentConfig
from ganforge.data.base import AnyDataset, StreamDataset
from ganforge.data.kinds import Samples
from ganforge.errors import GanforgeError
from ganforge.maths.losses import discriminator_loss, generator_loss_non_saturating
from ganforge.maths.video import gradient_difference_loss
from ganforge.models.base import MODELS
from ganforge.models.video import FramePredictor
from ganforge.train.algorithms.base import (
    Algorithm,
    LatentSimulation,
    LatentSpace,
    OptimizerSpec,
    Phase,
    PredictsFrames,
    option_count,
    option_weight,
    register_algorithm,
)

ADAM_VIDEO = {"name": "adam", "lr": 2e-4, "betas": (0.5, 0.999)}
ADAM_PREDICTOR = {"name": "adam", "lr": 1e-3, "betas": (0.9, 0.999)}
#: clips a snapshot shows
FIGURE_CLIPS = 4


def _clip_length(cls_name: str, sample_shape: tuple[int, ...]) -> int:
    if len(sample_shape) != 4:
        raise GanforgeError(
            f"algorithm {cls_name!r} trains on clips (T, C, H, W), and the data hold "
            f"shape {tuple(sample_shape)}",
            "use a sequence dataset (data.name=moving-mnist)",
        )
    return int(sample_shape[0])


def _draw_clips(dataset: AnyDataset, n: int, seed: int) -> torch.Tensor:
    """``n`` clips of the data, drawn once from ``seed`` (a stream samples them, an array picks)."""
    generator = torch.Generator().manual_seed(seed)
    if isinstance(dataset, StreamDataset):
        return dataset.sample(n, generator)[0]
    x = dataset.tensors()["x"]
    return x[torch.randperm(len(x), generator=generator)[:n]].clone()


@register_algorithm("frame-predictor")
class FramePrediction(Algorithm, PredictsFrames):
    """Next-frame prediction on MSE, the gradient difference loss and a multi-scale adversary; see
    the module docstring."""

    name = "frame-predictor"
    data_kind = "sequence"
    generator_name = "G"
    ema_networks = ("G",)

    @dataclass
    class Options:
        observed: int = 10
        l2_weight: float = 1.0
        gdl_weight: float = 0.0
        gdl_alpha: float = 1.0
        adversarial_weight: float = 0.0
        context: int = 4

        def __post_init__(self) -> None:
            option_count(self.observed, "observed", 1, "set algorithm.observed=10 (frames read first)")
            option_count(self.context, "context", 1, "set algorithm.context=4 (observed frames D sees)")
            for key in ("l2_weight", "gdl_weight", "adversarial_weight"):
                option_weight(getattr(self, key), key, f"set algorithm.{key} to a number >= 0")
            if not (
                isinstance(self.gdl_alpha, (int, float))
                and not isinstance(self.gdl_alpha, bool)
                and 0 < self.gdl_alpha < float("inf")
            ):
                raise GanforgeError(
                    f"algorithm.gdl_alpha={self.gdl_alpha!r} is not a number > 0",
                    "set algorithm.gdl_alpha=1 (Mathieu et al.'s) or 2",
                )
            if self.l2_weight == self.gdl_weight == self.adversarial_weight == 0:
                raise GanforgeError(
                    "algorithm.l2_weight, gdl_weight and adversarial_weight are all 0",
                    "set algorithm.l2_weight=1",
                )

    def __init__(self, cfg: ExperimentConfig, dataset: AnyDataset | None, *, sample_shape: tuple[int, ...],
                 num_classes: int | None, device: torch.device, restoring: bool = False) -> None:
        super().__init__(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes, device=device)
        frames = _clip_length(self.name, self.sample_shape)
        o = self.options
        if o.observed >= frames:
            raise GanforgeError(
                f"algorithm.observed={o.observed} leaves nothing to predict in clips of {frames} frames",
                f"set algorithm.observed below {frames} (e.g. {frames // 2})",
            )
        if o.context > o.observed:
            raise GanforgeError(
                f"algorithm.context={o.context} exceeds the {o.observed} observed frames",
                f"set algorithm.context <= {o.observed}",
            )
        self.observed, self.horizon = o.observed, frames - o.observed
        if "d_frames" in cfg.model:
            raise GanforgeError(
                "model.d_frames is set by the algorithm (context + horizon)",
                "drop model.d_frames; set algorithm.context instead",
            )
        if "d_frames" not in inspect.signature(MODELS.get(cfg.model["name"])).parameters:  # no clip D
            raise GanforgeError(
                f"model {cfg.model['name']!r} is not a frame predictor",
                "use model.name=convlstm with algorithm frame-predictor",
            )
        self.G, self.D = MODELS.build(
            cfg.model, self.sample_shape, num_classes, d_frames=o.context + self.horizon
        )
        if not isinstance(self.G, FramePredictor):
            raise GanforgeError(
                f"model {cfg.model['name']!r} is not a frame predictor",
                "use model.name=convlstm with algorithm frame-predictor",
            )
        self.adversarial = o.adversarial_weight > 0
        self.G.to(device)
        self.networks = {"G": self.G}
        if self.adversarial:
            self.D.to(device)
            self.networks["D"] = self.D
        self.columns = ("loss_G", "mse", "mse_future", "gdl") + (
            ("loss_G_adv", "loss_D", "real_score", "fake_score") if self.adversarial else ()
        )
        n = min(cfg.train.num_fixed_samples, FIGURE_CLIPS)
        self.fixed = (
            _draw_clips(dataset, n, cfg.seed + 2)
            if dataset is not None
            else torch.zeros(0, *self.sample_shape)
        )

    # ------------------------------------------------------------------ the Trainer's contract
    def optimizers(self) -> dict[str, OptimizerSpec]:
        specs = {"G": OptimizerSpec(self.G, dict(ADAM_PREDICTOR))}
        if self.adversarial:
            specs["D"] = OptimizerSpec(self.D, dict(ADAM_VIDEO))
        return specs

    def phases(self) -> list[Phase]:
        g = Phase("G", ("G",), loss=self.g_loss)
        return [Phase("D", ("D",), loss=self.d_loss), g] if self.adversarial else [g]

    def _clip_pair(
        self, x: torch.Tensor, predicted_future: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(real, fake) clips for D: the last ``context`` observed frames, then the future."""
        context = x[:, self.observed - self.options.context : self.observed]
        return (
            torch.cat([context, x[:, self.observed :]], dim=1),
            torch.cat([context, predicted_future], dim=1),
        )

    def d_loss(self, batch: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        x = batch["x"].to(self.device)
        with torch.no_grad():
            future = self.G(x[:, : self.observed], self.horizon)
        real, fake = self._clip_pair(x, future)
        real_logits, fake_logits = self.D(real), self.D(fake)
        loss = discriminator_loss(real_logits, fake_logits)  # mean over scales and clips
        return loss, {
            "real_score": torch.sigmoid(real_logits).mean().item(),
            "fake_score": torch.sigmoid(fake_logits).mean().item(),
        }

    def g_loss(self, batch: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        x = batch["x"].to(self.device)
        o = self.options
        predicted = self.G.rollout(x, self.observed)  # frames 2..T
        future, truth = predicted[:, self.observed - 1 :], x[:, self.observed :]
        mse = ((predicted - x[:, 1:]) ** 2).mean()
        gdl = gradient_difference_loss(future, truth, o.gdl_alpha) if o.gdl_weight else future.new_zeros(())
        loss = o.l2_weight * mse + o.gdl_weight * gdl
        stats = {
            "mse": mse.item(),
            "mse_future": ((future.detach() - truth) ** 2).mean().item(),
            "gdl": gdl.item(),
        }
        if self.adversarial:
            adv = generator_loss_non_saturating(self.D(self._clip_pair(x, future)[1]))
            loss = loss + o.adversarial_weight * adv
            stats["loss_G_adv"] = adv.item()
        return loss, stats

    # ------------------------------------------------------------------ predicting
    @torch.no_grad()
    def predict(
        self,
        observed_frames: torch.Tensor,
        horizon: int | None = None,
        network: nn.Module | None = None,
        batch_size: int = 64,
    ) -> torch.Tensor:
        net = self.generator if network is None else network
        horizon = self.horizon if horizon is None else horizon
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise GanforgeError(f"horizon={horizon!r} is not an integer >= 1", "predict at least one frame")
        shape = tuple(self.sample_shape[1:])
        if observed_frames.dim() != 5 or tuple(observed_frames.shape[2:]) != shape:
            raise GanforgeError(
                f"this run predicts clips of {shape[2]}x{shape[1]} frames with "
                f"{shape[0]} channel(s), not clips of shape {tuple(observed_frames.shape[1:])}",
                f"pass frames of {shape[2]}x{shape[1]} pixels",
            )
        was_training = net.training
        net.eval()
        device = next(net.parameters()).device
        try:
            out = [
                net(observed_frames[i : i + batch_size].to(device), horizon).cpu()
                for i in range(0, len(observed_frames), batch_size)
            ]
        finally:
            net.train(was_training)
        return torch.cat(out) if out else torch.empty(0, horizon, *shape)

    def fixed_sequences(self, n: int | None = None) -> torch.Tensor:
        if len(self.fixed) == 0:
            raise GanforgeError("this run has no fixed clips to continue", "pass clips to `ganforge predict`")
        n = len(self.fixed) if n is None else n
        return self.fixed[torch.arange(n) % len(self.fixed)]

    def snapshot(self, path: Path, generator: nn.Module, step: int) -> Path:
        return self.kind.preview(self.figure(self.fixed_sequences(), generator, f"step {step}"), path)

    def progress_text(self, row: Any) -> str:
        text = f"mse {row['mse']:.4f}  future {row['mse_future']:.4f}"
        if self.adversarial:
            text += (f"  adv {row['loss_G_adv']:.3f}  D(real) {row['real_score']:.2f}  "
                     f"D(fake) {row['fake_score']:.2f}")
        return text

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"fixed": self.fixed.cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if tuple(state["fixed"].shape[1:]) != tuple(self.sample_shape):
            raise GanforgeError(
                f"the checkpoint's clips are {list(state['fixed'].shape[1:])} but the config's "
                f"{list(self.sample_shape)}",
                "resume with the run's own config.yaml and data",
            )
        self.fixed = state["fixed"]


@register_algorithm("mocogan")
class MoCoGAN(Algorithm, LatentSpace, LatentSimulation):
    """MoCoGAN: clips from content and motion codes, an image and a video discriminator; see the
    module docstring."""

    name = "mocogan"
    data_kind = "sequence"
    generator_name = "G"
    ema_networks = ("G",)
    columns = ("loss_D", "loss_G", "loss_G_image", "loss_G_video", "real_score", "fake_score")

    def __init__(self, cfg: ExperimentConfig, dataset: AnyDataset | None, *, sample_shape: tuple[int, ...],
                 num_classes: int | None, device: torch.device, restoring: bool = False) -> None:
        super().__init__(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes, device=device)
        _clip_length(self.name, self.sample_shape)
        built = MODELS.build(cfg.model, self.sample_shape, num_classes)
        if len(built) != 3:
            raise GanforgeError(
                f"model {cfg.model['name']!r} is not a MoCoGAN family",
                "use model.name=mocogan with algorithm mocogan",
            )
        self.G, self.D_image, self.D_video = (net.to(device) for net in built)
        self.networks = {"G": self.G, "D_image": self.D_image, "D_video": self.D_video}
        self.noise = torch.Generator().manual_seed(cfg.seed + 1)
        self.fixed_z = self.G.sample_z(
            min(cfg.train.num_fixed_samples, 8), torch.Generator().manual_seed(cfg.seed + 2), "cpu"
        )

    def optimizers(self) -> dict[str, OptimizerSpec]:
        return {
            "G": OptimizerSpec(self.G, dict(ADAM_VIDEO)),
            "D": OptimizerSpec(
                nn.ModuleDict({"image": self.D_image, "video": self.D_video}), dict(ADAM_VIDEO)
            ),
        }

    def phases(self) -> list[Phase]:
        return [Phase("D", ("D",), loss=self.d_loss), Phase("G", ("G",), loss=self.g_loss)]

    def _fake(self, n: int) -> torch.Tensor:
        return self.G(self.G.sample_z(n, self.noise, self.device))

    def _frames(self, clips: torch.Tensor) -> torch.Tensor:
        """One frame per clip, at a random time (the algorithm's generator)."""
        t = torch.randint(clips.shape[1], (len(clips),), generator=self.noise).to(clips.device)
        return clips[torch.arange(len(clips), device=clips.device), t]

    def d_loss(self, batch: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        x = batch["x"].to(self.device)
        with torch.no_grad():
            fake = self._fake(len(x))
        real_v, fake_v = self.D_video(x), self.D_video(fake)
        real_i, fake_i = self.D_image(self._frames(x)), self.D_image(self._frames(fake))
        loss = discriminator_loss(real_i, fake_i) + discriminator_loss(real_v, fake_v)
        return loss, {
            "real_score": torch.sigmoid(real_v).mean().item(),
            "fake_score": torch.sigmoid(fake_v).mean().item(),
        }

    def g_loss(self, batch: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        fake = self._fake(len(batch["x"]))
        image = generator_loss_non_saturating(self.D_image(self._frames(fake)))
        video = generator_loss_non_saturating(self.D_video(fake))
        return image + video, {"loss_G_image": image.item(), "loss_G_video": video.item()}

    @torch.no_grad()
    def sample_clips(
        self,
        n: int,
        generator: torch.Generator | None = None,
        network: nn.Module | None = None,
        batch_size: int = 100,
    ) -> torch.Tensor:
        """``n`` clips (CPU) from ``network`` (default G), codes drawn from ``generator``, in eval mode."""
        net = self.generator if network is None else network
        was_training = net.training
        net.eval()
        try:
            return net.sample(n, generator, None, batch_size)
        finally:
            net.train(was_training)

    def snapshot(self, path: Path, generator: nn.Module, step: int) -> Path:
        was_training = generator.training
        generator.eval()
        with torch.no_grad():
            clips = generator(self.fixed_z.to(self.device)).cpu()
        generator.train(was_training)
        return self.kind.preview(Samples(clips, title=f"step {step}"), path)

    def state_dict(self) -> dict[str, Any]:
        return {"noise": self.noise.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.noise.set_state(state["noise"])
