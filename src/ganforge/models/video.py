"""Networks for video: a ConvLSTM frame predictor with Mathieu et al.'s multi-scale clip
discriminator, and MoCoGAN's content/motion generator with its image and video discriminators.

* ``convlstm`` (:func:`build_convlstm`): :class:`FramePredictor` (Shi et al. 2015, "Convolutional
  LSTM Network") and :class:`MultiScaleClipDiscriminator` (Mathieu, Couprie and LeCun 2016, "Deep
  multi-scale video prediction beyond mean square error": one D per scale, each scoring context
  frames and future frames stacked along the channels). The ConvLSTM cell, without the peephole
  terms as most reimplementations do::

      i, f, g, o = split(W * [x_t, h_{t-1}] + b)
      c_t = sigmoid(f) . c_{t-1} + sigmoid(i) . tanh(g)
      h_t = sigmoid(o) . tanh(c_t)

  Frames are folded into ``patch`` x ``patch`` space-to-depth blocks first (PredRNN's trick: a
  64x64 frame becomes 16 channels of 16x16), which divides the recurrent cost by patch^2.
* ``mocogan`` (:func:`build_mocogan`): :class:`MoCoGenerator` (Tulyakov et al. 2018, "MoCoGAN:
  Decomposing Motion and Content for Video Generation"): a content code z_C fixed over the clip and
  motion codes z_M^(t) = h_t of a GRU driven by noise e_t; every frame is a DCGAN image generator
  of [z_C, z_M^(t)]. Its latent code is the flat vector [z_C, e_1, ..., e_T] ~ N(0, I), so every
  latent tool works on it. :class:`FrameDiscriminator` (D_I, single frames) and
  :class:`ClipDiscriminator` (D_V, 3D convolutions over the clip).

Clips are (N, T, C, H, W) tensors in [-1, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.models._checks import positive_int, positive_ints, shaped
from ganforge.models.base import Generator, register_model


def _clip_shape(sample_shape: tuple[int, ...], model: str) -> tuple[int, ...]:
    return shaped(sample_shape, model, "clips (T, C, H, W)",
                  "use a sequence dataset (data.name=moving-mnist or clips)")


# --------------------------------------------------------------------------- the predictor
class ConvLSTMCell(nn.Module):
    """One ConvLSTM layer (see the module docstring); state (h, c) of ``hidden`` channels."""

    def __init__(self, in_channels: int, hidden: int, kernel: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.conv = nn.Conv2d(in_channels + hidden, 4 * hidden, kernel, padding=kernel // 2)
        with torch.no_grad():  # forget gate biased open, so early gradients flow through c
            self.conv.bias[hidden : 2 * hidden].fill_(1.0)

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state
        i, f, g, o = self.conv(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class FramePredictor(nn.Module):
    """A stack of ConvLSTM layers that reads frames one at a time and predicts the next.

    :meth:`rollout` feeds the true frames while t < ``observed`` and its own predictions after
    (closed loop), returning the predictions of frames 2..T; :meth:`forward` continues observed
    frames by ``horizon`` predicted ones. Output frames are tanh, in [-1, 1]."""

    def __init__(
        self,
        frame_shape: tuple[int, int, int],
        hidden: tuple[int, ...] = (64, 64),
        kernel: int = 3,
        patch: int = 4,
    ) -> None:
        super().__init__()
        c, h, w = frame_shape
        self.frame_shape, self.patch = (c, h, w), patch
        folded = c * patch * patch
        self.cells = nn.ModuleList(
            ConvLSTMCell(folded if i == 0 else hidden[i - 1], width, kernel) for i, width in enumerate(hidden)
        )
        self.readout = nn.Conv2d(sum(hidden), folded, 1)
        self.state_side = (h // patch, w // patch)

    def _step(self, frame: torch.Tensor, states: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        x = F.pixel_unshuffle(frame, self.patch)
        for i, cell in enumerate(self.cells):
            states[i] = cell(x, states[i])
            x = states[i][0]
        out = self.readout(torch.cat([s[0] for s in states], dim=1))  # skip from every layer
        return torch.tanh(F.pixel_shuffle(out, self.patch))

    def _zero_states(self, n: int, like: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(like.new_zeros(n, cell.hidden, *self.state_side),) * 2 for cell in self.cells]

    def rollout(self, frames: torch.Tensor, observed: int, total: int | None = None) -> torch.Tensor:
        """Predictions of frames 2..``total`` (N, total - 1, C, H, W): the input at step t is the
        true frame ``frames[:, t]`` for t < ``observed``, else the previous prediction. ``total``
        defaults to the clip's length; ``frames`` needs only its first ``observed`` frames."""
        total = frames.shape[1] if total is None else total
        states = self._zero_states(len(frames), frames)
        preds, frame = [], frames[:, 0]
        for t in range(total - 1):
            pred = self._step(frame, states)
            preds.append(pred)
            frame = frames[:, t + 1] if t + 1 < observed else pred
        return torch.stack(preds, dim=1)

    def forward(self, observed_frames: torch.Tensor, horizon: int) -> torch.Tensor:
        """The ``horizon`` frames (N, horizon, C, H, W) that follow ``observed_frames``."""
        observed = observed_frames.shape[1]
        return self.rollout(observed_frames, observed, observed + horizon)[:, observed - 1 :]


class MultiScaleClipDiscriminator(nn.Module):
    """Mathieu et al.'s multi-scale D: at each scale s (the clip average-pooled by 2^s), a small
    conv net scores [context frames, future frames] stacked along the channels; one logit per
    scale (N, len(scales))."""

    def __init__(
        self, frame_shape: tuple[int, int, int], frames: int, width: int = 32, scales: int = 2
    ) -> None:
        super().__init__()
        c, h, _ = frame_shape
        self.frames, self.scales = frames, scales
        nets = []
        for s in range(scales):
            side, layers, ch_in = h >> s, [], c * frames
            ch = width
            while side > 4:
                layers += [nn.Conv2d(ch_in, ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
                ch_in, ch, side = ch, min(ch * 2, 8 * width), side // 2
            layers += [nn.Flatten(), nn.Linear(ch_in * side * side, 1)]
            nets.append(nn.Sequential(*layers))
        self.nets = nn.ModuleList(nets)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        x = clips.flatten(1, 2)  # (N, T * C, H, W)
        return torch.cat([net(F.avg_pool2d(x, 2**s) if s else x) for s, net in enumerate(self.nets)], dim=1)


@register_model("convlstm")
def build_convlstm(
    sample_shape: tuple[int, ...],
    num_classes: int | None = None,
    *,
    hidden: list[int] | tuple[int, ...] = (64, 64),
    kernel: int = 3,
    patch: int = 4,
    d_frames: int = 14,
    d_width: int = 32,
    d_scales: int = 2,
) -> tuple[FramePredictor, MultiScaleClipDiscriminator]:
    """The ConvLSTM predictor of clips ``sample_shape`` (T, C, H, W) and its multi-scale D over
    ``d_frames`` frames (the algorithm's context plus horizon). ``num_classes`` is ignored."""
    _, c, h, w = _clip_shape(sample_shape, "convlstm")
    hidden = positive_ints(hidden, "hidden", "convlstm")
    if not hidden:
        raise GanforgeError("model 'convlstm': hidden=[] has no layer", "set e.g. model.hidden=[64, 64]")
    kernel, patch = positive_int(kernel, "kernel", "convlstm"), positive_int(patch, "patch", "convlstm")
    if kernel % 2 == 0:
        raise GanforgeError(f"model 'convlstm': kernel={kernel} is even", "use an odd kernel (3 or 5)")
    if h % patch or w % patch:
        raise GanforgeError(
            f"model 'convlstm': patch={patch} does not divide the {h}x{w} frames",
            "set model.patch to a divisor of both sides (e.g. 4 for 64x64)",
        )
    d_scales = positive_int(d_scales, "d_scales", "convlstm")
    if min(h, w) >> (d_scales - 1) < 8:
        raise GanforgeError(
            f"model 'convlstm': d_scales={d_scales} shrinks {h}x{w} frames below 8x8", "use fewer scales"
        )
    G = FramePredictor((c, h, w), hidden, kernel, patch)
    D = MultiScaleClipDiscriminator(
        (c, h, w),
        positive_int(d_frames, "d_frames", "convlstm"),
        positive_int(d_width, "d_width", "convlstm"),
        d_scales,
    )
    return G, D


# --------------------------------------------------------------------------- MoCoGAN
class MoCoGenerator(Generator):
    """MoCoGAN's G (see the module docstring): z = [z_C (content_dim), e_1..e_T (noise_dim
    each)] -> clips (N, T, C, H, W)."""

    def __init__(
        self,
        clip_shape: tuple[int, int, int, int],
        content_dim: int = 50,
        motion_dim: int = 10,
        noise_dim: int = 10,
        width: int = 32,
    ) -> None:
        super().__init__()
        t, c, h, w = clip_shape
        self.out_shape = tuple(clip_shape)
        self.frames, self.content_dim, self.noise_dim = t, content_dim, noise_dim
        self.z_dim = content_dim + t * noise_dim
        self.motion = nn.GRUCell(noise_dim, motion_dim)
        ups = int(math.log2(h // 4))
        self.start = width * 2 ** (ups - 1)
        self.fc = nn.Sequential(
            nn.Linear(content_dim + motion_dim, self.start * 16), nn.BatchNorm1d(self.start * 16), nn.ReLU()
        )
        layers: list[nn.Module] = []
        ch = self.start
        for i in range(ups):
            last = i == ups - 1
            out = c if last else ch // 2
            layers.append(nn.ConvTranspose2d(ch, out, 4, stride=2, padding=1))
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(out), nn.ReLU()]
            ch = out
        self.frame = nn.Sequential(*layers)

    def motion_codes(self, noise: torch.Tensor) -> torch.Tensor:
        """z_M^(1..T) (N, T, motion_dim): h_t = GRU(e_t, h_{t-1}), h_0 = 0."""
        h = noise.new_zeros(len(noise), self.motion.hidden_size)
        codes = []
        for t in range(noise.shape[1]):
            h = self.motion(noise[:, t], h)
            codes.append(h)
        return torch.stack(codes, dim=1)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        n = len(z)
        content = z[:, : self.content_dim]
        motion = self.motion_codes(z[:, self.content_dim :].reshape(n, self.frames, self.noise_dim))
        codes = torch.cat([content[:, None].expand(-1, self.frames, -1), motion], dim=2).flatten(0, 1)
        frames = self.frame(self.fc(codes).view(-1, self.start, 4, 4))
        return frames.view(n, *self.out_shape)


def _down(ch_in: int, ch: int, side: int, width: int) -> tuple[list[nn.Module], int, int]:
    layers: list[nn.Module] = []
    while side > 4:
        layers += [nn.Conv2d(ch_in, ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        ch_in, ch, side = ch, min(ch * 2, 8 * width), side // 2
    return layers, ch_in, side


class FrameDiscriminator(nn.Module):
    """D_I: a DCGAN critic of single frames (N, C, H, W) -> logits (N,)."""

    def __init__(self, frame_shape: tuple[int, int, int], width: int = 32) -> None:
        super().__init__()
        c, h, _ = frame_shape
        layers, ch, side = _down(c, width, h, width)
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(ch * side * side, 1))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.net(frames).squeeze(1)


class ClipDiscriminator(nn.Module):
    """D_V: 3D convolutions over clips (N, T, C, H, W) -> logits (N,); time is kept (kernel 3,
    stride 1 in t), space halved per layer."""

    def __init__(self, clip_shape: tuple[int, int, int, int], width: int = 32) -> None:
        super().__init__()
        t, c, h, _ = clip_shape
        layers: list[nn.Module] = []
        ch_in, ch, side = c, width, h
        while side > 4:
            layers += [
                nn.Conv3d(ch_in, ch, (3, 4, 4), stride=(1, 2, 2), padding=(1, 1, 1)),
                nn.LeakyReLU(0.2),
            ]
            ch_in, ch, side = ch, min(ch * 2, 8 * width), side // 2
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(ch_in * t * side * side, 1))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.net(clips.transpose(1, 2)).squeeze(1)


@register_model("mocogan")
def build_mocogan(
    sample_shape: tuple[int, ...],
    num_classes: int | None = None,
    *,
    content_dim: int = 50,
    motion_dim: int = 10,
    noise_dim: int = 10,
    width: int = 32,
    d_width: int = 32,
) -> tuple[MoCoGenerator, FrameDiscriminator, ClipDiscriminator]:
    """MoCoGAN's G, D_I and D_V for clips ``sample_shape`` (T, C, H, W), H = W a power of 2 >= 8.
    ``num_classes`` is ignored."""
    t, c, h, w = _clip_shape(sample_shape, "mocogan")
    if h != w or h < 8 or h & (h - 1):
        raise GanforgeError(
            f"model 'mocogan' draws square frames with a power-of-2 side, not {h}x{w}",
            "use e.g. 64x64 frames (data.size=64)",
        )
    args = {
        k: positive_int(v, k, "mocogan")
        for k, v in {
            "content_dim": content_dim,
            "motion_dim": motion_dim,
            "noise_dim": noise_dim,
            "width": width,
            "d_width": d_width,
        }.items()
    }
    G = MoCoGenerator((t, c, h, w), args["content_dim"], args["motion_dim"], args["noise_dim"], args["width"])
    return G, FrameDiscriminator((c, h, w), args["d_width"]), ClipDiscriminator((t, c, h, w), args["d_width"])
