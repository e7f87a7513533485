"""A small CNN real-vs-generated classifier trained with blur + JPEG (+ resize) augmentation.

After Wang et al. (CVPR 2020, "CNN-generated images are surprisingly easy to spot... for now"),
who fine-tune a ResNet-50 on ProGAN images vs real ones with blur and JPEG augmentation
(:mod:`ganforge.forensics.augment`) and binary cross-entropy. The random resize of that module is
off by default (``p_resize=0``, so detectors and benchmarks trained before it reproduce); the
``combined`` detector and benchmarks/forensics.py's leave-one-family-out protocol switch it on
(:data:`~ganforge.forensics.augment.P_RESIZE`).

For ganforge's small images a three-layer CNN suffices: conv 3x3 (stride 1, so the first layer
sees every pixel-level artefact), two stride-2 convs, global average pooling (the decision pools
evidence from everywhere in the image) and a linear logit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.forensics.augment import (
    BLUR_SIGMA,
    JPEG_QUALITY,
    RESIZE_FACTOR,
    blur_jpeg_augment,
    check_augment_settings,
)


class ForensicCNN(nn.Module):
    """conv3x3(C -> w) - conv3x3/2(w -> 2w) - conv3x3/2(2w -> 4w), LeakyReLU(0.2) after each,
    global average pooling, linear -> one logit per image (N,). Any image size works."""

    def __init__(self, channels: int, width: int = 16) -> None:
        super().__init__()
        self.channels, self.width = int(channels), int(width)
        w = self.width
        self.features = nn.Sequential(
            nn.Conv2d(self.channels, w, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4 * w, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) in [-1, 1] -> logits (N,) of P(generated)."""
        return self.head(self.features(x)).squeeze(1)


class CNNDetector:
    """:class:`ForensicCNN` trained by Adam on binary cross-entropy, each batch augmented by
    :func:`~ganforge.forensics.augment.blur_jpeg_augment` (training only; never at test time):
    blur with probability ``p_blur``, JPEG with ``p_jpeg``, resize with ``p_resize`` (default 0).
    Bad augmentation settings are a one-line GanforgeError here, before any training."""

    name = "cnn"

    def __init__(self, image_shape: tuple[int, int, int], width: int = 16, epochs: int = 10,
                 batch_size: int = 64, lr: float = 1e-3, p_blur: float = 0.5, p_jpeg: float = 0.5,
                 sigma: tuple[float, float] = BLUR_SIGMA, quality: tuple[int, int] = JPEG_QUALITY,
                 p_resize: float = 0.0, factor: tuple[float, float] = RESIZE_FACTOR) -> None:
        check_augment_settings(p_blur, p_jpeg, p_resize, sigma, quality, factor)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.width, self.epochs, self.batch_size = int(width), int(epochs), int(batch_size)
        self.lr = float(lr)
        self.p_blur, self.p_jpeg = float(p_blur), float(p_jpeg)
        self.sigma = (float(sigma[0]), float(sigma[1]))
        self.quality = (int(quality[0]), int(quality[1]))
        self.p_resize = float(p_resize)
        self.factor = (float(factor[0]), float(factor[1]))
        self.net = ForensicCNN(self.image_shape[0], self.width)
        self.losses: list[float] = []

    def fit(self, x: torch.Tensor, y: np.ndarray, seed: int = 0) -> CNNDetector:
        """Train on images ``x`` (N, C, H, W) with labels ``y`` (N,), 1 = generated, 0 = real:
        ``epochs`` passes in random order, mini-batches of ``batch_size``. Seeded by ``seed``
        (initial weights, order, augmentation) without touching torch's global generator.
        ``losses`` keeps each epoch's mean training loss."""
        x = torch.as_tensor(x, dtype=torch.float32)
        target = torch.as_tensor(np.asarray(y), dtype=torch.float32)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = ForensicCNN(self.image_shape[0], self.width)
        order_gen = torch.Generator().manual_seed(seed + 1)
        rng = np.random.default_rng(seed + 2)
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        self.net.train()
        self.losses = []
        for _ in range(self.epochs):
            total = 0.0
            for idx in torch.randperm(len(x), generator=order_gen).split(self.batch_size):
                batch = blur_jpeg_augment(x[idx], rng, self.p_blur, self.p_jpeg, self.sigma, self.quality,
                                          self.p_resize, self.factor)
                loss = F.binary_cross_entropy_with_logits(self.net(batch), target[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            self.losses.append(total / max(len(x), 1))
        self.net.eval()
        return self

    @torch.no_grad()
    def decision_function(self, x: Any, batch_size: int = 500) -> np.ndarray:
        """The logit of each image (N,), float64."""
        x = torch.as_tensor(x, dtype=torch.float32)
        self.net.eval()
        out = [self.net(chunk) for chunk in x.split(batch_size)] if len(x) else [torch.zeros(0)]
        return torch.cat(out).double().numpy()

    def predict_proba(self, x: Any) -> np.ndarray:
        """P(generated) of each image of ``x`` (N, C, H, W), float64 (N,)."""
        return 0.5 * (1.0 + np.tanh(0.5 * self.decision_function(x)))

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(the network's state_dict, JSON-able settings) that :meth:`from_state` restores."""
        tensors = {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()}
        return tensors, {"width": self.width, "epochs": self.epochs, "batch_size": self.batch_size,
                         "lr": self.lr, "p_blur": self.p_blur, "p_jpeg": self.p_jpeg,
                         "blur_sigma": list(self.sigma), "jpeg_quality": list(self.quality),
                         "p_resize": self.p_resize, "resize_factor": list(self.factor),
                         "final_train_loss": self.losses[-1] if self.losses else None}

    @classmethod
    def from_state(cls, image_shape: tuple[int, int, int], tensors: dict[str, torch.Tensor],
                   settings: dict[str, Any]) -> CNNDetector:
        det = cls(image_shape, width=settings.get("width", 16), epochs=settings.get("epochs", 10),
                  batch_size=settings.get("batch_size", 64), lr=settings.get("lr", 1e-3),
                  p_blur=settings.get("p_blur", 0.5), p_jpeg=settings.get("p_jpeg", 0.5),
                  sigma=tuple(settings.get("blur_sigma", BLUR_SIGMA)),
                  quality=tuple(settings.get("jpeg_quality", JPEG_QUALITY)),
                  p_resize=settings.get("p_resize", 0.0),
                  factor=tuple(settings.get("resize_factor", RESIZE_FACTOR)))
        det.net.load_state_dict(tensors)  # strict: a missing or misshapen tensor is an error
        det.net.eval()
        return det
