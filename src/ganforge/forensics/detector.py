"""Training, evaluating, saving and loading real-vs-generated detectors.

A detector maps images (N, C, H, W) in [-1, 1] to P(generated) (N,). Three kinds
(:data:`DETECTORS`): ``spectrum`` (:class:`~ganforge.forensics.spectrum.SpectrumDetector`),
``cnn`` (:class:`~ganforge.forensics.cnn.CNNDetector`) and ``combined``
(:class:`CombinedDetector`: both, their probabilities averaged). A saved detector is a folder of
two files, never a pickle:

* ``detector.pt``: a ``torch.save`` of a flat dict of plain tensors (the logistic regression's
  standardisation and coefficients, the CNN's state_dict, or for ``combined`` both, their keys
  prefixed ``spectrum.`` and ``cnn.``), read back with ``torch.load(..., weights_only=True)``;
* ``detector.json``: the kind, the image shape, the settings and the provenance (real data,
  training runs, seeds, held-out AUC and accuracy).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge._io import atomic_write, atomic_write_text, folder_written_whole
from ganforge.errors import GanforgeError
from ganforge.forensics.augment import BLUR_SIGMA, JPEG_QUALITY, P_RESIZE, RESIZE_FACTOR
from ganforge.forensics.cnn import CNNDetector
from ganforge.forensics.spectrum import SpectrumDetector


class CombinedDetector:
    """The ``spectrum`` and ``cnn`` detectors fitted on the same images, their P(generated)
    averaged: ``p(x) = (p_spectrum(x) + p_cnn(x)) / 2``.

    The two read different evidence (the 1-D power spectrum's high-frequency tail against local
    pixel patterns) and fail on different generators, so the average is steadier on an unseen
    family than either part. A plain average rather than a logistic stack fitted on the training
    set: a stack would weight the part that fits the *training* families best (usually the CNN,
    which can memorise them), while what the combination is for is families never seen; and the
    average needs no held-out split and no extra weights. Both parts are trained by logistic loss,
    so their probabilities are on one scale.

    The CNN's augmentation includes the random resize by default (``p_resize`` =
    :data:`~ganforge.forensics.augment.P_RESIZE`); the other parameters are the parts' own
    (``C``, ``max_iter`` of the spectrum part; ``width``, ``epochs``, ``batch_size``, ``lr`` and
    the augmentation of the CNN). Fitting with ``seed`` fits each part with ``seed``, exactly as
    ``fit_detector("spectrum" | "cnn", ..., seed=seed)`` would, so :meth:`from_parts` of two such
    detectors is this detector fitted.
    """

    name = "combined"

    def __init__(self, image_shape: tuple[int, int, int], C: float = 1.0, max_iter: int = 5000,
                 width: int = 16, epochs: int = 10, batch_size: int = 64, lr: float = 1e-3,
                 p_blur: float = 0.5, p_jpeg: float = 0.5, sigma: tuple[float, float] = BLUR_SIGMA,
                 quality: tuple[int, int] = JPEG_QUALITY, p_resize: float = P_RESIZE,
                 factor: tuple[float, float] = RESIZE_FACTOR) -> None:
        self.image_shape = tuple(int(d) for d in image_shape)
        self.spectrum = SpectrumDetector(self.image_shape, C=C, max_iter=max_iter)
        self.cnn = CNNDetector(self.image_shape, width=width, epochs=epochs, batch_size=batch_size, lr=lr,
                               p_blur=p_blur, p_jpeg=p_jpeg, sigma=sigma, quality=quality,
                               p_resize=p_resize, factor=factor)

    @classmethod
    def from_parts(cls, spectrum: SpectrumDetector, cnn: CNNDetector) -> CombinedDetector:
        """The combination of a fitted spectrum and a fitted CNN detector of one image shape."""
        if tuple(spectrum.image_shape) != tuple(cnn.image_shape):
            raise GanforgeError(f"the spectrum detector is for {shape_text(spectrum.image_shape)} images but "
                                f"the cnn one for {shape_text(cnn.image_shape)}",
                                "combine detectors trained on images of one shape")
        det = cls.__new__(cls)
        det.image_shape, det.spectrum, det.cnn = tuple(spectrum.image_shape), spectrum, cnn
        return det

    def fit(self, x: torch.Tensor, y: np.ndarray, seed: int = 0) -> CombinedDetector:
        """Fit both parts on images ``x`` (N, C, H, W) with labels ``y`` (N,), 1 = generated."""
        self.spectrum.fit(x, y, seed=seed)
        self.cnn.fit(x, y, seed=seed)
        return self

    def predict_proba(self, x: Any) -> np.ndarray:
        """P(generated) of each image: the mean of the parts' (N,), float64."""
        return 0.5 * (self.spectrum.predict_proba(x) + self.cnn.predict_proba(x))

    def decision_function(self, x: Any) -> np.ndarray:
        """The logit of :meth:`predict_proba` (N,) (clipped away from 0 and 1)."""
        p = np.clip(self.predict_proba(x), 1e-12, 1 - 1e-12)
        return np.log(p) - np.log1p(-p)

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(both parts' tensors, keys prefixed ``spectrum.`` / ``cnn.``; JSON-able settings)."""
        spectrum_tensors, spectrum_settings = self.spectrum.state()
        cnn_tensors, cnn_settings = self.cnn.state()
        tensors = {**{f"spectrum.{k}": v for k, v in spectrum_tensors.items()},
                   **{f"cnn.{k}": v for k, v in cnn_tensors.items()}}
        return tensors, {"combine": "mean of the parts' P(generated)", "spectrum": spectrum_settings,
                         "cnn": cnn_settings}

    @classmethod
    def from_state(cls, image_shape: tuple[int, int, int], tensors: dict[str, torch.Tensor],
                   settings: dict[str, Any]) -> CombinedDetector:
        parts = {}
        for prefix in ("spectrum", "cnn"):
            parts[prefix] = {k.removeprefix(f"{prefix}."): v for k, v in tensors.items()
                             if k.startswith(f"{prefix}.")}
        unknown = [k for k in tensors if not k.startswith(("spectrum.", "cnn."))]
        if unknown:
            raise ValueError(f"unexpected tensor {unknown[0]!r} in a combined detector")
        spectrum = SpectrumDetector.from_state(image_shape, parts["spectrum"], settings.get("spectrum", {}))
        cnn = CNNDetector.from_state(image_shape, parts["cnn"], settings.get("cnn", {}))
        return cls.from_parts(spectrum, cnn)


DETECTORS: dict[str, type] = {"spectrum": SpectrumDetector, "cnn": CNNDetector, "combined": CombinedDetector}
FORMAT = "ganforge-detector"
FORMAT_VERSION = 1
WEIGHTS_FILE = "detector.pt"
INFO_FILE = "detector.json"
#: share of each class held out from training to measure the detector
HELD_OUT = 0.2


def shape_text(shape: tuple[int, ...]) -> str:
    """(1, 28, 28) -> ``1x28x28``."""
    return "x".join(str(int(d)) for d in shape)


def check_image_shape(expected: tuple[int, ...], got: tuple[int, ...], where: str = "") -> None:
    """Refuse (GanforgeError) images whose (C, H, W) differ from the detector's."""
    expected, got = tuple(int(d) for d in expected), tuple(int(d) for d in got)
    if expected != got:
        c, h, w = expected
        colour = "grey" if c == 1 else "RGB"
        at = f" ({where})" if where else ""
        raise GanforgeError(f"detector expects {shape_text(expected)} images, got {shape_text(got)}{at}",
                            f"give {colour} {h}x{w} images, or train a detector on images of this shape")


def build_detector(kind: str, image_shape: tuple[int, int, int], **params: Any):
    """A fresh detector of ``kind`` (``spectrum``, ``cnn`` or ``combined``) for images of
    ``image_shape``."""
    if kind not in DETECTORS:
        raise GanforgeError(f"unknown detector {kind!r}", f"choose one of: {', '.join(DETECTORS)}")
    return DETECTORS[kind](tuple(image_shape), **params)


def labelled(real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
    """Stack real (label 0) and generated (label 1) images: (x (N_r + N_f, C, H, W), y)."""
    x = torch.cat([real.float(), fake.float()])
    y = np.concatenate([np.zeros(len(real), dtype=np.int64), np.ones(len(fake), dtype=np.int64)])
    return x, y


def scores(p_generated: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """``auc`` (ROC AUC, scikit-learn) and ``accuracy`` (threshold 0.5) of P(generated) against
    labels y (1 = generated)."""
    from sklearn.metrics import roc_auc_score

    p, y = np.asarray(p_generated), np.asarray(y)
    auc = float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")
    return {"auc": auc, "accuracy": float(((p > 0.5) == (y == 1)).mean())}


def evaluate(detector, real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    """AUC and accuracy of ``detector`` on ``real`` vs ``fake`` images."""
    x, y = labelled(real, fake)
    return scores(detector.predict_proba(x), y)


def fit_detector(kind: str, real: torch.Tensor, fake: torch.Tensor, seed: int = 0, **params: Any):
    """Fit a ``kind`` detector on all of ``real`` vs ``fake`` (N, C, H, W) and return it."""
    if tuple(real.shape[1:]) != tuple(fake.shape[1:]):
        raise GanforgeError(f"the real images are {shape_text(real.shape[1:])} but the generated ones "
                            f"{shape_text(fake.shape[1:])}", "give real and generated images of one shape")
    x, y = labelled(real, fake)
    return build_detector(kind, tuple(real.shape[1:]), **params).fit(x, y, seed=seed)


def held_out_split(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random split of range(n): (train indices, held-out indices), the held-out part
    round(fraction * n) but at least 1 and leaving at least 1 to train on."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = min(max(1, round(fraction * n)), n - 1)
    return order[k:].sort().values, order[:k].sort().values


def train_detector(kind: str, real: torch.Tensor, fake: torch.Tensor, seed: int = 0,
                   held_out: float = HELD_OUT, **params: Any) -> tuple[Any, dict[str, Any]]:
    """Hold out ``held_out`` of each class (seeded), fit on the rest, and measure on the held-out
    images. Returns (detector, report) with the report's ``auc``, ``accuracy`` and image counts."""
    if len(real) < 2 or len(fake) < 2:
        raise GanforgeError(f"a detector needs at least 2 real and 2 generated images, got {len(real)} "
                            f"and {len(fake)}", "give more images")
    real_train, real_test = held_out_split(len(real), held_out, seed)
    fake_train, fake_test = held_out_split(len(fake), held_out, seed + 1)
    detector = fit_detector(kind, real[real_train], fake[fake_train], seed=seed, **params)
    report = evaluate(detector, real[real_test], fake[fake_test])
    report.update(train_real=len(real_train), train_generated=len(fake_train),
                  held_out_real=len(real_test), held_out_generated=len(fake_test))
    return detector, report


# --------------------------------------------------------------------------- files


def save_detector(folder: str | os.PathLike[str], detector, provenance: dict[str, Any]) -> Path:
    """Write ``detector.pt`` and ``detector.json`` into ``folder`` (which must not exist or be
    empty): both go to a hidden sibling folder first, renamed onto ``folder`` when complete, so
    a reader never sees a half-written detector. Returns ``folder``."""
    folder = Path(folder)
    tensors, settings = detector.state()
    info = {"format": FORMAT, "format_version": FORMAT_VERSION, "detector": detector.name,
            "image_shape": list(detector.image_shape), "settings": settings, **provenance}
    text = json.dumps(info, indent=2, allow_nan=True) + "\n"
    with folder_written_whole(folder) as tmp:
        atomic_write(tmp / WEIGHTS_FILE, lambda fh: torch.save(tensors, fh))
        atomic_write_text(tmp / INFO_FILE, text)
    return folder


def load_detector(folder: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    """Read a folder written by :func:`save_detector`: (detector, the JSON info). The tensors are
    loaded with ``weights_only=True``; anything malformed is a one-line GanforgeError."""
    folder = Path(folder)
    fix = "pass the -o folder of `ganforge detect train`"
    if not folder.is_dir():
        raise GanforgeError(f"detector folder {folder} does not exist", fix)
    if not (folder / INFO_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise GanforgeError(f"{folder} holds no detector ({INFO_FILE} and {WEIGHTS_FILE})", fix)
    try:
        info = json.loads((folder / INFO_FILE).read_text())
        if info.get("format") != FORMAT:
            raise ValueError(f"{INFO_FILE} is not a {FORMAT} file")
        kind = info["detector"]
        if kind not in DETECTORS:
            raise ValueError(f"unknown detector kind {kind!r}")
        shape = tuple(int(d) for d in info["image_shape"])
        if len(shape) != 3 or shape[0] not in (1, 3):
            raise ValueError(f"image_shape {list(shape)} is not (1 or 3, H, W)")
        tensors = torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        if not isinstance(tensors, dict) or not all(isinstance(v, torch.Tensor) for v in tensors.values()):
            raise ValueError(f"{WEIGHTS_FILE} is not a dict of tensors")
        detector = DETECTORS[kind].from_state(shape, tensors, info.get("settings", {}))
    except Exception as err:  # corrupt JSON, unpickling refusals, misshapen tensors...
        message = " ".join(str(err).split())[:200]
        raise GanforgeError(f"cannot read the detector in {folder}: {message}",
                            "retrain it with `ganforge detect train`") from None
    return detector, info
