"""The metrics of clip runs in the registry (source ``clips``, inputs
:class:`~ganforge.metrics.registry.ClipInputs`):
a frame predictor's per-horizon errors against held-out clips, and the frame features and temporal
behaviour of generated clips. The computations are :mod:`ganforge.metrics.video`'s.

* ``frame_mse``, ``frame_psnr``, ``frame_ssim``, ``frame_sharpness`` (prediction runs): the means
  over the horizons of :func:`~ganforge.metrics.video.prediction_report`, computed once for all
  four; the per-horizon values and the copy-last-frame and mean-frame baselines go into the
  result's ``per_horizon``, ``baselines`` (their means) and ``baselines_per_horizon``.
* ``fd_lenet_frames`` (both): the Frechet distance of per-frame LeNet features, predicted future
  frames against the true ones (prediction), or generated clips against held-out clips, on the
  first ``subset`` clips.
* ``temporal`` (both): :func:`~ganforge.metrics.video.temporal_gap` of the run's clips against as
  many held-out clips: frame change and identity drift, as ratios and absolute log gaps.
"""

from __future__ import annotations

from typing import Any

import torch

from ganforge.metrics.registry import HIGHER, LOWER, ClipInputs, MetricSpec, register_metric
from ganforge.metrics.video import frame_features_fd, prediction_report, temporal_gap

#: the registry's column of each per-horizon metric of the report
COLUMNS = {"mse": "frame_mse", "psnr": "frame_psnr", "ssim": "frame_ssim",
           "gradient_energy_ratio": "gradient_energy_ratio", "sharpness_difference": "sharpness_difference"}


def _report(inputs: ClipInputs) -> dict[str, Any]:
    """The per-horizon report of a prediction run, computed once and described in the result:
    ``per_horizon`` (the run's), ``baselines`` (each trivial predictor's means, under the
    registry's column names, as the evaluation table shows them) and ``baselines_per_horizon``."""
    if "report" not in inputs.shared:
        report = prediction_report(inputs.predict, inputs.real, inputs.observed, n=inputs.n)
        inputs.shared["report"] = report
        baselines = report["baselines"]
        inputs.info.update(
            horizons=report["horizons"], per_horizon=report["metrics"],
            baselines={name: {COLUMNS[k]: v for k, v in b["mean"].items()} for name, b in baselines.items()},
            baselines_per_horizon={name: b["metrics"] for name, b in baselines.items()})
    return inputs.shared["report"]


def _subsets(inputs: ClipInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """(real, run's) clips of the feature metrics: the first ``subset``; a prediction run's future
    frames only."""
    m = min(inputs.n, inputs.subset)
    real, run = inputs.real(0, m), inputs.generated(0, m)
    if inputs.observed is not None:
        real, run = real[:, inputs.observed :], run[:, inputs.observed :]
    return real, run


def _mean_of(key: str, column: str):
    def compute(inputs: ClipInputs) -> dict[str, float]:
        return {column: _report(inputs)["mean"][key]}

    return compute


def _sharpness(inputs: ClipInputs) -> dict[str, float]:
    mean = _report(inputs)["mean"]
    return {
        "gradient_energy_ratio": mean["gradient_energy_ratio"],
        "sharpness_difference": mean["sharpness_difference"],
    }


def _fd(inputs: ClipInputs) -> dict[str, float]:
    real, run = _subsets(inputs)
    inputs.info["frame_extractor"] = inputs.extractor
    return {"fd_lenet_frames": frame_features_fd(real, run, inputs.extractor)}


def _temporal(inputs: ClipInputs) -> dict[str, float]:
    real, run = _subsets(inputs)
    return temporal_gap(run, real, inputs.extractor)


for _name, _key, _column, _direction, _text in (
    (
        "frame_mse",
        "mse",
        "frame_mse",
        LOWER,
        "sum of squared errors per predicted frame in [0, 1] pixels, "
        "mean over the horizons (the Moving MNIST papers' convention)",
    ),
    ("frame_psnr", "psnr", "frame_psnr", HIGHER, "PSNR (dB) of the predicted frames, mean over the horizons"),
    ("frame_ssim", "ssim", "frame_ssim", HIGHER, "SSIM of the predicted frames, mean over the horizons"),
):
    register_metric(
        MetricSpec(
            _name,
            columns=lambda ctx, c=_column, d=_direction: {c: d},
            source="clips",
            runs={"prediction"},
            compute=_mean_of(_key, _column),
            needs_features=False,
            description=_text,
        )
    )
register_metric(
    MetricSpec(
        "frame_sharpness",
        columns=lambda ctx: {"gradient_energy_ratio": None, "sharpness_difference": HIGHER},
        source="clips",
        runs={"prediction"},
        compute=_sharpness,
        needs_features=False,
        description="gradient energy of the predictions / the truth's (1: as sharp), and Mathieu et al.'s "
        "sharpness difference (dB)",
    )
)
register_metric(
    MetricSpec(
        "fd_lenet_frames",
        columns=lambda ctx: {"fd_lenet_frames": LOWER},
        source="clips",
        runs={"prediction", "clips"},
        compute=_fd,
        needs_features=False,
        description="Frechet distance of per-frame LeNet features (predicted future frames, or generated "
        "clips) to held-out clips' frames",
    )
)
register_metric(
    MetricSpec(
        "temporal",
        columns=lambda ctx: {
            "frame_change_ratio": None,
            "frame_change_log_gap": LOWER,
            "identity_drift_ratio": None,
            "identity_drift_log_gap": LOWER,
        },
        source="clips",
        runs={"prediction", "clips"},
        compute=_temporal,
        needs_features=False,
        description="frame change and identity drift of the run's clips against held-out clips",
    )
)
