"""Independent judges of generated digits: scikit-learn classifiers trained on the real 8x8 digits.

A generator trained on ``digits`` (8, 16 or 32 px) is scored by how confidently classifiers that
never saw it recognise its samples, relative to how confidently they recognise held-out real
digits. Three model classes, so that no single classifier's quirks decide:

* ``logistic``: ``LogisticRegression`` (linear),
* ``svc``: ``SVC(kernel="rbf", probability=True)`` (libsvm's pairwise Platt scaling; scikit-learn
  1.9 deprecates the flag, whose suggested replacement calibrates one-vs-rest scores and is far
  more lenient on generated digits, so the flag is kept and its warning silenced),
* ``mlp``: ``MLPClassifier((128,))`` (the README's scorer of the first run).

Split: the first :data:`TRAIN_SIZE` = 1,200 of ``sklearn.datasets.load_digits`` (in its fixed
order) train the scorers; the other 597 are the held-out real reference. Inputs are the 64
pixels on the dataset's 0..16 scale divided by 16.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ganforge.data.transforms import resize_images
from ganforge.errors import GanforgeError

TRAIN_SIZE = 1200
SCORERS = ("logistic", "svc", "mlp")


@dataclass(frozen=True)
class DigitScore:
    """``confidence``: mean over samples of max_k p(k | x); ``shares[k]``: fraction of samples
    whose top class is k."""

    confidence: float
    shares: np.ndarray


@lru_cache(maxsize=4)
def _upsampling_inverse(size: int) -> torch.Tensor:
    """The left inverse P (64, size*size) of the digits dataset's 8 -> ``size`` resize U.

    ``resize_images`` is linear on [-1, 1] images (bilinear weights are convex, so its clamp never
    acts), so U is built column by column from the 64 one-hot 8x8 images, and
    P = (U^T U)^-1 U^T satisfies P U = I: real upsampled digits map back exactly, and a generated
    image maps to the 8x8 image whose upsampling is nearest to it in L2.
    """
    basis = torch.eye(64, dtype=torch.float64).view(64, 1, 8, 8)
    up = resize_images(basis, size).reshape(64, size * size).T  # U: (size^2, 64)
    return torch.linalg.pinv(up)


def to_digit_grid(images: torch.Tensor) -> np.ndarray:
    """Images (N, 1, S, S) in [-1, 1], S in {8, 16, 32} -> (N, 64) pixels on the 0..16 scale."""
    if images.ndim != 4 or images.shape[1] != 1 or images.shape[-1] != images.shape[-2]:
        raise GanforgeError(f"digit scorers read (N, 1, S, S) images, got shape {tuple(images.shape)}",
                            "score samples of a run trained on the digits dataset")
    size = images.shape[-1]
    if size not in (8, 16, 32):
        raise GanforgeError(f"digit scorers read 8, 16 or 32 px images, got {size} px",
                            "score samples of a run trained on the digits dataset")
    flat = images.detach().to("cpu", torch.float64).reshape(len(images), size * size)
    grid = flat if size == 8 else flat @ _upsampling_inverse(size).T
    return ((grid + 1.0) * 8.0).clamp(0.0, 16.0).numpy()


@lru_cache(maxsize=1)
def real_digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train pixels, train labels, held-out pixels, held-out labels), pixels on 0..16."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x, y = bunch.data.astype(np.float64), bunch.target
    return x[:TRAIN_SIZE], y[:TRAIN_SIZE], x[TRAIN_SIZE:], y[TRAIN_SIZE:]


@lru_cache(maxsize=1)
def fit_scorers() -> dict:
    """The three scorers, fitted (deterministically) on the first 1,200 real digits."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    x, y, _, _ = real_digits()
    models = {"logistic": LogisticRegression(max_iter=5000),
              "svc": SVC(kernel="rbf", probability=True, random_state=0),
              "mlp": MLPClassifier((128,), max_iter=2000, random_state=0)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # SVC's probability flag (see above)
        return {name: model.fit(x / 16.0, y) for name, model in models.items()}


def score_pixels(pixels: np.ndarray) -> dict[str, DigitScore]:
    """Each scorer's :class:`DigitScore` of (N, 64) pixels on the 0..16 scale."""
    out = {}
    for name, model in fit_scorers().items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            proba = model.predict_proba(pixels / 16.0)
        shares = np.bincount(model.classes_[proba.argmax(1)], minlength=10) / len(pixels)
        out[name] = DigitScore(float(proba.max(1).mean()), shares)
    return out


def score_digits(images: torch.Tensor) -> dict[str, DigitScore]:
    """Each scorer's :class:`DigitScore` of generated images (N, 1, S, S) in [-1, 1]."""
    return score_pixels(to_digit_grid(images))


def real_reference() -> dict[str, DigitScore]:
    """The ceiling: each scorer's :class:`DigitScore` of the 597 held-out real digits."""
    return score_pixels(real_digits()[2])


def relative_scores(images: torch.Tensor) -> dict[str, dict]:
    """Per scorer: the samples' confidence, held-out real confidence, their ratio, the class
    shares and the rarest share (a JSON-ready summary)."""
    real, fake = real_reference(), score_digits(images)
    return {name: {"confidence": round(fake[name].confidence, 4),
                   "real_confidence": round(real[name].confidence, 4),
                   "ratio": round(fake[name].confidence / real[name].confidence, 4),
                   "shares": [round(float(s), 4) for s in fake[name].shares],
                   "min_share": round(float(fake[name].shares.min()), 4)}
            for name in SCORERS}


def convincing(summary: dict[str, dict], *, ratio: float = 0.95, scorers: int = 2,
               min_share: float = 0.06) -> bool:
    """The first run's target on a :func:`relative_scores` summary: at least ``scorers`` scorers
    give the samples >= ``ratio`` of real digits' confidence, and under every scorer each digit
    is the top class of >= ``min_share`` of the samples."""
    agreeing = sum(s["ratio"] >= ratio for s in summary.values())
    return agreeing >= scorers and all(s["min_share"] >= min_share for s in summary.values())
