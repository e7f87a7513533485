"""Metrics of video prediction and video generation; clips are float tensors (N, T, C, H, W) in
[-1, 1] (values outside are clamped), mapped to [0, 1] pixels, x01 = (x + 1) / 2, before scoring.

**Prediction, per horizon** (each frame t of a predicted clip against the true frame; each function
returns a float64 array (T,) averaged over the N clips):

* ``mse`` (:func:`frame_mse`): the Moving-MNIST convention of the papers (Shi et al. 2015's
  ConvLSTM, PredRNN): the **sum** of squared errors over the frame's C x H x W pixels in [0, 1],
  SE_t = sum_p (x_t[p] - y_t[p])^2, averaged over clips (not over pixels: a 64x64 frame's number is
  comparable with the papers', ~100 for ConvLSTM).
* ``psnr`` (:func:`frame_psnr`): PSNR_t = 10 log10(1 / max(MSE_t, 1e-10)) dB, peak 1, with MSE_t
  the per-pixel mean squared error of the frame; per frame, then averaged over clips. The floor
  1e-10 caps a perfect frame at 100 dB (ganforge's PSNR cap, :data:`ganforge.metrics.paired.PSNR_CAP`)
  instead of inf.
* ``ssim`` (:func:`frame_ssim`): scikit-image's ``structural_similarity`` of each frame (7x7
  uniform windows, data_range 1, channels averaged: :func:`ganforge.metrics.paired.image_ssim`),
  averaged over clips.
* ``gradient_energy_ratio`` (:func:`gradient_energy_ratio`): how sharp the predictions are
  relative to the truth, with E(x) = sum_{i,j} (dy x)^2 + (dx x)^2 a frame's gradient energy
  (backward differences, :func:`ganforge.maths.video.image_gradients`):
  R_t = sum_n E(x_{n,t}) / sum_n E(y_{n,t}), the ratio of the mean gradient energies over the
  clips (1: as sharp as the truth; < 1: blurry; > 1: sharper or noisier). NaN if the true frames
  at a horizon have no gradient at all. The gradients are squared because the mean *absolute*
  gradient (total variation) cannot see blur: a blurred isolated edge still rises by the same
  height, only over more pixels, so its sum of |differences| is unchanged, while its sum of
  squared differences falls (a step of height h spread over k pixels: k (h/k)^2 = h^2 / k).
* ``sharpness_difference`` (:func:`sharpness_difference`): Mathieu, Couprie and LeCun (2016)'s

      SD_t = 10 log10( max_I^2 / ((1/N_pix) sum_{i,j} |(g_i y + g_j y) - (g_i x + g_j x)|) ),

  g_i y = |y_{i,j} - y_{i-1,j}|, g_j y = |y_{i,j} - y_{i,j-1}|, max_I = 1, over the (H-1) x (W-1)
  pixels (and channels) where both differences exist; per frame (the mean floored at 1e-10, so
  at most 100 dB), then averaged over clips. Higher: gradients closer to the truth's.

:func:`prediction_report` streams a predictor over a set of sequences and gives all five per
horizon, their means over the horizons, and the same for two baselines.

**Generation** (unconditional clips): :func:`frame_features_fd` (``fd_lenet_frames``: the
Frechet distance between the per-frame LeNet features of two sets of clips; a per-frame image
metric, not a video one such as FVD) and :func:`temporal_consistency` / :func:`temporal_gap`
(how much the frames change, and whether the object keeps its identity, against real clips).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.errors import GanforgeError
from ganforge.maths.video import image_gradients
from ganforge.metrics.extractors import Extractor, build_extractor
from ganforge.metrics.fid import FrechetDistance
from ganforge.metrics.paired import image_ssim

#: the per-horizon metrics of :func:`prediction_report`, in order
PREDICTION_METRICS = ("mse", "psnr", "ssim", "gradient_energy_ratio", "sharpness_difference")
#: the floor of a per-pixel error under a logarithm: a perfect frame scores 100 dB, not inf
ERROR_FLOOR = 1e-10
#: the floor of :func:`temporal_gap`'s values under a ratio or a logarithm
GAP_FLOOR = 1e-12


# ------------------------------------------------------------------------------------- helpers


def _is_count(value: object, least: int) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= least


def _check_clips(x: object, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 5:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise GanforgeError(f"{what} must be clips (N, T, C, H, W), got {shape}",
                            "pass a float tensor of clips, frames on dim 1")
    n, t, c, h, w = x.shape
    if min(n, t, c) < 1 or min(h, w) < 2:
        raise GanforgeError(f"{what} of shape {tuple(x.shape)} has no clips, frames or channels, or "
                            "frames smaller than 2x2",
                            "pass at least one clip of frames of 2x2 pixels or more")
    return x


def _check_batch_size(batch_size: object, example: int) -> None:
    if not _is_count(batch_size, 1):
        raise GanforgeError(f"batch_size={batch_size!r} is not a whole number >= 1",
                            f"use e.g. batch_size={example}")


def _unit(x: torch.Tensor) -> torch.Tensor:
    """Clips in [-1, 1] -> float64 [0, 1] pixels on the CPU (clamped first)."""
    return (x.detach().to("cpu", torch.float64).clamp(-1, 1) + 1) / 2


def _pair(pred: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    _check_clips(pred, "predicted clips")
    _check_clips(truth, "true clips")
    if pred.shape != truth.shape:
        raise GanforgeError(f"predicted clips {tuple(pred.shape)} and true clips {tuple(truth.shape)} "
                            "differ in shape", "predict as many frames of the same size as the truth has")
    return _unit(pred), _unit(truth)


def _se(p: torch.Tensor, t: torch.Tensor) -> np.ndarray:
    """(N, T): sum of squared errors over each frame's pixels."""
    return ((p - t) ** 2).flatten(2).sum(2).numpy()


def _psnr(p: torch.Tensor, t: torch.Tensor) -> np.ndarray:
    """(N, T): 10 log10(1 / max(per-pixel MSE, 1e-10))."""
    mse = ((p - t) ** 2).flatten(2).mean(2)
    return (10 * torch.log10(1 / mse.clamp_min(ERROR_FLOOR))).numpy()


def _ssim(p: torch.Tensor, t: torch.Tensor) -> np.ndarray:
    """(N, T): scikit-image's SSIM of each frame (C, H, W), data range 1, channels averaged."""
    pn, tn = p.numpy(), t.numpy()
    out = np.empty(pn.shape[:2])
    for i in range(pn.shape[0]):
        for k in range(pn.shape[1]):
            out[i, k] = image_ssim(tn[i, k], pn[i, k], data_range=1.0, channel_axis=0)
    return out


def _gradient_energy(x: torch.Tensor) -> np.ndarray:
    """(N, T): E(x) = sum (dy x)^2 + sum (dx x)^2 over each frame."""
    dy, dx = image_gradients(x)
    return ((dy ** 2).flatten(2).sum(2) + (dx ** 2).flatten(2).sum(2)).numpy()


def _sharpness(p: torch.Tensor, t: torch.Tensor) -> np.ndarray:
    """(N, T): Mathieu et al.'s sharpness difference of each frame (module docstring)."""
    def magnitude(x: torch.Tensor) -> torch.Tensor:
        dy, dx = image_gradients(x)  # on the grid i, j >= 1 where both exist
        return dy[..., :, 1:].abs() + dx[..., 1:, :].abs()

    err = (magnitude(t) - magnitude(p)).abs().flatten(2).mean(2)
    return (10 * torch.log10(1 / err.clamp_min(ERROR_FLOOR))).numpy()


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


class _HorizonSums:
    """Per-horizon sums over the clips seen so far of every metric of :data:`PREDICTION_METRICS`."""

    def __init__(self) -> None:
        self.n = 0
        self.sums: dict[str, np.ndarray] = {}

    def update(self, pred: torch.Tensor, truth: torch.Tensor) -> None:
        p, t = _pair(pred, truth)
        terms = {"mse": _se(p, t), "psnr": _psnr(p, t), "ssim": _ssim(p, t), "g_pred": _gradient_energy(p),
                 "g_truth": _gradient_energy(t), "sharpness_difference": _sharpness(p, t)}
        for key, value in terms.items():
            self.sums[key] = self.sums.get(key, 0.0) + value.sum(axis=0)
        self.n += len(p)

    def per_horizon(self) -> dict[str, np.ndarray]:
        s = self.sums
        return {"mse": s["mse"] / self.n, "psnr": s["psnr"] / self.n, "ssim": s["ssim"] / self.n,
                "gradient_energy_ratio": _ratio(s["g_pred"], s["g_truth"]),
                "sharpness_difference": s["sharpness_difference"] / self.n}

    def report(self) -> dict[str, Any]:
        per = self.per_horizon()
        return {"metrics": {k: [float(v) for v in per[k]] for k in PREDICTION_METRICS},
                "mean": {k: float(np.mean(per[k])) for k in PREDICTION_METRICS}}


# ----------------------------------------------------------------------- per-horizon prediction


def frame_mse(pred: torch.Tensor, truth: torch.Tensor) -> np.ndarray:
    """Per-horizon squared error (T,): mean over clips n of SE_{n,t} = sum_p (x01_{n,t}[p] -
    y01_{n,t}[p])^2, summed over the C x H x W pixels of the frame in [0, 1] (the Moving-MNIST
    convention; module docstring)."""
    p, t = _pair(pred, truth)
    return _se(p, t).mean(axis=0)


def frame_psnr(pred: torch.Tensor, truth: torch.Tensor) -> np.ndarray:
    """Per-horizon PSNR in dB (T,): mean over clips of 10 log10(1 / max(MSE_{n,t}, 1e-10)), MSE
    the per-pixel mean squared error of the frame in [0, 1] (a perfect frame: 100 dB)."""
    p, t = _pair(pred, truth)
    return _psnr(p, t).mean(axis=0)


def frame_ssim(pred: torch.Tensor, truth: torch.Tensor) -> np.ndarray:
    """Per-horizon SSIM (T,): mean over clips of scikit-image's ``structural_similarity`` of the
    frames in [0, 1] (data_range 1, 7x7 uniform windows or the largest odd window that fits,
    channels averaged)."""
    p, t = _pair(pred, truth)
    return _ssim(p, t).mean(axis=0)


def gradient_energy_ratio(pred: torch.Tensor, truth: torch.Tensor) -> np.ndarray:
    """Per-horizon sharpness relative to the truth (T,): R_t = sum_n E(x_{n,t}) / sum_n E(y_{n,t})
    with E = sum_{i,j} dy^2 + dx^2 a frame's gradient energy (1: as sharp as the truth,
    < 1: blurrier; NaN where the true frames are flat)."""
    p, t = _pair(pred, truth)
    return _ratio(_gradient_energy(p).sum(axis=0), _gradient_energy(t).sum(axis=0))


def sharpness_difference(pred: torch.Tensor, truth: torch.Tensor) -> np.ndarray:
    """Per-horizon sharpness difference in dB (T,) (Mathieu et al. 2016): mean over clips of
    10 log10(1 / ((1/N_pix) sum_{i,j} |(g_i y + g_j y) - (g_i x + g_j x)|)), g the absolute
    backward differences, on [0, 1] pixels (module docstring). Higher is sharper."""
    p, t = _pair(pred, truth)
    return _sharpness(p, t).mean(axis=0)


# -------------------------------------------------------------------------------- the report


def prediction_report(predict: Callable[[torch.Tensor], torch.Tensor],
                      sequences: torch.Tensor | Callable[[int, int], torch.Tensor], observed: int,
                      batch_size: int = 100, baselines: bool = True, n: int | None = None
                      ) -> dict[str, Any]:
    """Score a frame predictor per horizon on ``n`` sequences, streamed ``batch_size`` at a time.

    ``predict(frames)`` maps the first ``observed`` frames (B, To, C, H, W) of each sequence to
    its next T - To frames (B, T - To, C, H, W) (wrap the model, its device and no_grad in it).
    ``sequences`` is a tensor (N, T, C, H, W) in [-1, 1] (``n``: its first n, default all) or a
    callable ``batch(start, stop)`` returning sequences start..stop-1 (``n`` required): only one
    batch and per-horizon sums are held at a time. Returns plain floats and lists::

        {"horizons": [1, ..., T - To], "observed": To, "sequences": n,
         "metrics": {"mse" | "psnr" | "ssim" | "gradient_energy_ratio" | "sharpness_difference":
                     [value at each horizon]},
         "mean": {same keys: the mean over the horizons},
         "baselines": {"copy_last": {"metrics": ..., "mean": ...}, "mean_frame": {...}}}

    (metrics: module docstring; ``baselines`` is {} when ``baselines`` is False). The baselines
    predict every future frame as ``copy_last``: the last observed frame, x^_t = x_{To}; and
    ``mean_frame``: the per-pixel mean of the clip's own observed frames,
    x^_t = (1/To) sum_{s=1}^{To} x_s.
    """
    if not _is_count(observed, 1):
        raise GanforgeError(f"observed={observed!r} is not a whole number of frames >= 1",
                            "observe at least one frame, e.g. observed=10")
    _check_batch_size(batch_size, 100)
    if n is not None and not _is_count(n, 1):
        raise GanforgeError(f"n={n!r} is not a whole number of sequences >= 1", "score at least one sequence")
    if isinstance(sequences, torch.Tensor):
        _check_clips(sequences, "sequences")
        if n is not None and n > len(sequences):
            raise GanforgeError(f"n={n} is more than the {len(sequences)} sequences given",
                                f"use n <= {len(sequences)}")
        total, data = (len(sequences) if n is None else n), sequences
        batch: Callable[[int, int], torch.Tensor] = lambda start, stop: data[start:stop]  # noqa: E731
    elif callable(sequences):
        if n is None:
            raise GanforgeError("sequences given as a batch(start, stop) callable need their number n",
                                "pass n=the number of sequences")
        total, batch = n, sequences
    else:
        raise GanforgeError(f"sequences must be a tensor (N, T, C, H, W) or a batch(start, stop) callable, "
                            f"got {type(sequences).__name__}", "pass the clips or a function returning them")

    model, copy_last, mean_frame = _HorizonSums(), _HorizonSums(), _HorizonSums()
    shape: tuple[int, ...] | None = None
    for start in range(0, total, batch_size):
        stop = min(total, start + batch_size)
        clips = _check_clips(batch(start, stop), f"sequences {start}..{stop - 1}")
        if len(clips) != stop - start or (shape is not None and tuple(clips.shape[1:]) != shape):
            raise GanforgeError(f"batch({start}, {stop}) returned clips of shape {tuple(clips.shape)}, "
                                f"expected ({stop - start}, {', '.join(map(str, shape or clips.shape[1:]))})",
                                "return sequences start..stop-1, all of one shape")
        shape = tuple(clips.shape[1:])
        if clips.shape[1] <= observed:
            raise GanforgeError(f"observed={observed} leaves nothing to predict in sequences of "
                                f"{clips.shape[1]} frames", f"observe fewer than {clips.shape[1]} frames")
        past, future = clips[:, :observed], clips[:, observed:]
        with torch.no_grad():
            predicted = predict(past)
        if not isinstance(predicted, torch.Tensor) or predicted.shape != future.shape:
            got = tuple(predicted.shape) if isinstance(predicted, torch.Tensor) else type(predicted).__name__
            raise GanforgeError(f"the predictor returned {got} for observed frames {tuple(past.shape)}, "
                                f"expected the next frames {tuple(future.shape)}",
                                "return (B, T - observed, C, H, W) frames")
        model.update(predicted, future)
        if baselines:
            horizon = future.shape[1]
            copy_last.update(past[:, -1:].expand(-1, horizon, -1, -1, -1), future)
            mean_frame.update(past.double().mean(dim=1, keepdim=True).expand(-1, horizon, -1, -1, -1), future)
    assert shape is not None
    return {"horizons": list(range(1, shape[0] - observed + 1)), "observed": int(observed),
            "sequences": int(total), **model.report(),
            "baselines": ({"copy_last": copy_last.report(), "mean_frame": mean_frame.report()}
                          if baselines else {})}


# ------------------------------------------------------------------------------------ generation


def _frame_features(extractor: Extractor, clips: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(N, T, D) features of every frame, ``batch_size`` frames at a time."""
    n, t = clips.shape[:2]
    frames = clips.reshape(n * t, *clips.shape[2:])
    feats = [extractor(frames[i:i + batch_size].float(), batch_size)[0]
             for i in range(0, len(frames), batch_size)]
    return torch.cat(feats).reshape(n, t, -1)


def frame_features_fd(clips_a: torch.Tensor, clips_b: torch.Tensor, extractor_name: str = "lenet_mnist",
                      batch_size: int = 500) -> float:
    """``fd_lenet_frames``: the Frechet distance between Gaussians fitted to the per-frame features
    of two sets of clips (N, T, C, H, W) in [-1, 1] (every frame of every clip is one sample),

        d^2 = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})

    (:class:`ganforge.metrics.fid.FrechetDistance`, streamed), with the 64-d penultimate features
    of the shipped MNIST LeNet (``extractor_name``, see :func:`build_extractor`), which resizes
    the frames bilinearly with antialiasing to its 28x28 input. It compares the frames' appearance
    only, not their motion: named for its extractor, it is no FVD.
    """
    _check_clips(clips_a, "the first clips")
    _check_clips(clips_b, "the second clips")
    _check_batch_size(batch_size, 500)
    extractor = build_extractor(extractor_name)
    metric = FrechetDistance()
    for real, clips in ((True, clips_a), (False, clips_b)):
        per = max(1, batch_size // clips.shape[1])
        for i in range(0, len(clips), per):
            metric.update(_frame_features(extractor, clips[i:i + per], batch_size).flatten(0, 1), real=real)
    return metric.compute()


def temporal_consistency(clips: torch.Tensor, extractor_name: str = "lenet_mnist",
                         batch_size: int = 500) -> dict[str, float]:
    """How generated clips (N, T, C, H, W) in [-1, 1], T >= 2, behave over time:

    * ``frame_change`` = (1 / (N (T-1))) sum_n sum_{t=1}^{T-1} ||x01_{n,t} - x01_{n,t-1}||^2 / D:
      the mean squared change per pixel between consecutive frames in [0, 1] (D = C H W). A
      digit that moves smoothly changes few pixels a frame; a flickering generator (frames that
      do not follow from each other) changes many, a frozen one none. It means something only
      next to the real clips' value (:func:`temporal_gap`).
    * ``identity_drift`` = (1 / (N (T-1))) sum_n sum_{t=1}^{T-1} (1 - cos(f(x_{n,t}), f(x_{n,0}))):
      the mean cosine distance between the LeNet features f (``extractor_name``'s penultimate
      layer, frames resized to its input) of each frame and of the clip's first frame. A real
      digit that only moves keeps most of its features; an object that turns into another
      digit over the clip drifts further. (A frame whose features are all 0 has cosine 0.)
    """
    _check_clips(clips, "clips")
    if clips.shape[1] < 2:
        raise GanforgeError(f"temporal consistency needs clips of at least 2 frames, got {clips.shape[1]}",
                            "generate clips of 2 frames or more")
    _check_batch_size(batch_size, 500)
    extractor = build_extractor(extractor_name)
    change = drift = 0.0
    per = max(1, batch_size // clips.shape[1])
    for i in range(0, len(clips), per):
        chunk = clips[i:i + per]
        u = _unit(chunk)
        change += float(((u[:, 1:] - u[:, :-1]) ** 2).flatten(2).mean(2).sum())
        f = _frame_features(extractor, chunk, batch_size).double()
        cos = F.cosine_similarity(f[:, 1:], f[:, :1].expand_as(f[:, 1:]), dim=2, eps=1e-8)
        drift += float((1 - cos).clamp_min(0).sum())
    pairs = len(clips) * (clips.shape[1] - 1)
    return {"frame_change": change / pairs, "identity_drift": drift / pairs}


def temporal_gap(generated: Mapping[str, float] | torch.Tensor, real: Mapping[str, float] | torch.Tensor,
                 extractor_name: str = "lenet_mnist") -> dict[str, float]:
    """Generated clips' :func:`temporal_consistency` against the real clips' (either given as
    clips or as that function's result): for k in frame_change, identity_drift,

        k_ratio = g_k / r_k,     k_log_gap = |ln(g_k / r_k)|

    with both values floored at 1e-12 (a frozen generator's 0 gives a large, finite gap). A ratio
    near 1 (gap near 0) moves like the real data; < 1 too still, > 1 flickering or drifting."""
    g = temporal_consistency(generated, extractor_name) if isinstance(generated, torch.Tensor) else generated
    r = temporal_consistency(real, extractor_name) if isinstance(real, torch.Tensor) else real
    out: dict[str, float] = {}
    for key in ("frame_change", "identity_drift"):
        if key not in g or key not in r:
            raise GanforgeError(f"temporal gap needs {key!r} on both sides",
                                "pass clips or the results of temporal_consistency")
        ratio = max(float(g[key]), GAP_FLOOR) / max(float(r[key]), GAP_FLOOR)
        out[f"{key}_ratio"], out[f"{key}_log_gap"] = ratio, abs(math.log(ratio))
    return out


__all__ = ["ERROR_FLOOR", "PREDICTION_METRICS", "frame_features_fd", "frame_mse", "frame_psnr", "frame_ssim",
           "gradient_energy_ratio", "prediction_report", "sharpness_difference", "temporal_consistency",
           "temporal_gap"]
