"""The azimuthally averaged power spectrum of images, and a logistic-regression detector on it.

Durall, Keuper & Keuper (CVPR 2020, "Watch your up-convolution: CNN based generative deep neural
networks are failing to reproduce spectral distributions") observe that up-sampling layers
(transposed convolutions, nearest/bilinear up-sampling) leave a signature in the high
frequencies of generated images, visible in the *1-D* power spectrum: the 2-D power spectrum
averaged over rings of equal distance from the zero frequency. A linear classifier on that
vector separates real from generated images of one generator surprisingly well.

Conventions used throughout:

* images are float arrays (N, C, H, W) in [-1, 1]; colour images are first reduced to luminance
  (:func:`to_grey`, ITU-R BT.601 weights);
* the 2-D spectrum is ``|fftshift(fft2(x, norm="ortho"))|^2``: zero frequency at pixel
  (H // 2, W // 2), and Parseval holds (the power sums to the image's energy);
* radial bin k holds the frequencies whose distance from the zero frequency rounds to k, so bin 0
  is the zero frequency (DC) alone and a horizontal sinusoid of k cycles per image lands in bin k.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import torch

#: luminance weights of R, G, B (ITU-R BT.601, as PIL's convert("L"))
LUMA = (0.299, 0.587, 0.114)
#: added to the power before the logarithm, so a frequency with no power stays finite
LOG_EPS = 1e-8


def _array(images: Any) -> np.ndarray:
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    return np.asarray(images, dtype=np.float64)


def to_grey(images: Any) -> np.ndarray:
    """Images (N, C, H, W) with C = 1 or 3 -> grey (N, H, W) float64; (N, H, W) and (H, W)
    pass through. Colour is reduced to luminance Y = 0.299 R + 0.587 G + 0.114 B."""
    x = _array(images)
    if x.ndim == 4:
        if x.shape[1] == 1:
            return x[:, 0]
        if x.shape[1] == 3:
            return np.tensordot(np.asarray(LUMA), x, axes=([0], [1]))
        raise ValueError(f"images must have 1 or 3 channels, got shape {x.shape}")
    if x.ndim in (2, 3):
        return x
    raise ValueError(f"images must be (N, C, H, W), (N, H, W) or (H, W), got shape {x.shape}")


def power_spectrum(images: Any) -> np.ndarray:
    """The centred 2-D power spectrum ``|F|^2`` of each grey image, F the orthonormal 2-D DFT.

    ``images``: (N, C, H, W), (N, H, W) or (H, W) (see :func:`to_grey`). Returns float64 of the
    grey images' shape, zero frequency at (H // 2, W // 2). By Parseval, each spectrum sums to
    the sum of the squared pixels.
    """
    grey = to_grey(images)
    f = np.fft.fftshift(np.fft.fft2(grey, norm="ortho"), axes=(-2, -1))
    return f.real ** 2 + f.imag ** 2


@lru_cache(maxsize=32)
def _radial_bins(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(bin index of every pixel (H * W,), pixel count of every bin) for the centre (H//2, W//2)."""
    i = np.arange(height) - height // 2
    j = np.arange(width) - width // 2
    radius = np.hypot(i[:, None], j[None, :])
    # no ties: r^2 is an integer, so r is never k + 1/2
    bins = np.rint(radius).astype(np.int64).ravel()
    counts = np.bincount(bins)
    bins.setflags(write=False)
    counts.setflags(write=False)
    return bins, counts


def radial_bin_count(height: int, width: int) -> int:
    """Length of the 1-D spectrum of H x W images: 1 + the rounded distance from the zero
    frequency (H // 2, W // 2) to the farthest corner."""
    return len(_radial_bins(int(height), int(width))[1])


def azimuthal_average(power: Any) -> np.ndarray:
    """Average a centred 2-D spectrum over rings around the zero frequency.

    ``power``: (..., H, W) with the zero frequency at (H // 2, W // 2) (as ``np.fft.fftshift``
    puts it). Returns (..., B) float64, B = :func:`radial_bin_count`, where entry k is the mean of
    the pixels whose distance from the centre rounds to k. Every bin holds at least one pixel for
    images of at least 2 x 2 pixels; an empty bin (possible for a 1-pixel-wide strip) is 0.

    For a radially symmetric ``power(i, j) = g(round(r))`` the result is exactly ``g(k)``.
    """
    p = _array(power)
    if p.ndim < 2:
        raise ValueError(f"power must have at least 2 dimensions (H, W), got shape {p.shape}")
    height, width = p.shape[-2:]
    bins, counts = _radial_bins(height, width)
    # one matrix product: (N, H * W) @ (H * W, B), the matrix holding 1 / count(bin) in each
    # pixel's bin column
    averaging = np.zeros((height * width, len(counts)))
    averaging[np.arange(height * width), bins] = 1.0 / np.maximum(counts, 1)[bins]
    out = p.reshape(-1, height * width) @ averaging
    return out.reshape(*p.shape[:-2], len(counts))


def radial_spectrum(images: Any, eps: float = LOG_EPS) -> np.ndarray:
    """The 1-D spectrum of Durall et al. (2020) of each image: the azimuthal average
    (:func:`azimuthal_average`) of the log power ``log(|F|^2 + eps)`` (:func:`power_spectrum`).

    ``images``: (N, C, H, W) in [-1, 1], C = 1 or 3 (colour is reduced to luminance), or grey
    (N, H, W). Returns (N, B) float64, bin 0 the zero frequency, bin B - 1 the corners.
    """
    return azimuthal_average(np.log(power_spectrum(images) + eps))


class SpectrumDetector:
    """Logistic regression (scikit-learn) on the standardised 1-D spectrum
    (:func:`radial_spectrum`): P(generated | x) = sigmoid(w . (s(x) - mu) / sigma + b).

    After :meth:`fit` the detector is just the tensors ``mean``, ``scale``, ``coef`` and
    ``intercept`` (:meth:`state`), so it is saved without pickle and applied without
    scikit-learn (:meth:`predict_proba` evaluates the formula above in numpy).
    """

    name = "spectrum"

    def __init__(self, image_shape: tuple[int, int, int], C: float = 1.0, max_iter: int = 5000) -> None:
        self.image_shape = tuple(int(d) for d in image_shape)
        self.C = float(C)
        self.max_iter = int(max_iter)
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.coef: np.ndarray | None = None
        self.intercept = 0.0

    @property
    def n_bins(self) -> int:
        return radial_bin_count(*self.image_shape[1:])

    def features(self, x: Any) -> np.ndarray:
        """The standardised 1-D spectra (N, B) of images ``x`` (N, C, H, W)."""
        return (radial_spectrum(x) - self.mean) / self.scale

    def fit(self, x: torch.Tensor, y: np.ndarray, seed: int = 0) -> SpectrumDetector:
        """Fit on images ``x`` (N, C, H, W) with labels ``y`` (N,), 1 = generated, 0 = real."""
        from sklearn.linear_model import LogisticRegression

        spectra = radial_spectrum(x)
        self.mean = spectra.mean(0)
        std = spectra.std(0)
        self.scale = np.where(std > 1e-12, std, 1.0)  # a constant bin (e.g. always 0) stays 0
        model = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=seed)
        model.fit((spectra - self.mean) / self.scale, np.asarray(y))
        self.coef = model.coef_[0].astype(np.float64)
        self.intercept = float(model.intercept_[0])
        self.sklearn_model = model  # kept for inspection; never saved
        return self

    def decision_function(self, x: Any) -> np.ndarray:
        """The logit w . features + b of each image (N,)."""
        if self.coef is None:
            raise RuntimeError("the detector is not fitted")
        return self.features(x) @ self.coef + self.intercept

    def predict_proba(self, x: Any) -> np.ndarray:
        """P(generated) of each image of ``x`` (N, C, H, W), float64 (N,)."""
        logit = self.decision_function(x)
        return 0.5 * (1.0 + np.tanh(0.5 * logit))  # the logistic sigmoid, without overflow

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(plain tensors, JSON-able settings) that :meth:`from_state` restores."""
        tensors = {"mean": torch.from_numpy(self.mean), "scale": torch.from_numpy(self.scale),
                   "coef": torch.from_numpy(self.coef), "intercept": torch.tensor([self.intercept],
                                                                                 dtype=torch.float64)}
        return tensors, {"C": self.C, "max_iter": self.max_iter, "n_bins": self.n_bins,
                         "log_eps": LOG_EPS, "feature": "azimuthal average of log power spectrum"}

    @classmethod
    def from_state(cls, image_shape: tuple[int, int, int], tensors: dict[str, torch.Tensor],
                   settings: dict[str, Any]) -> SpectrumDetector:
        det = cls(image_shape, C=settings.get("C", 1.0), max_iter=settings.get("max_iter", 5000))
        n = det.n_bins
        for key in ("mean", "scale", "coef"):
            if tuple(tensors[key].shape) != (n,):
                raise ValueError(f"tensor {key!r} has shape {tuple(tensors[key].shape)}, expected ({n},)")
        det.mean = tensors["mean"].double().numpy()
        det.scale = tensors["scale"].double().numpy()
        det.coef = tensors["coef"].double().numpy()
        det.intercept = float(tensors["intercept"].reshape(-1)[0])
        return det
