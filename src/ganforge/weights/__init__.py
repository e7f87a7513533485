"""The shipped network weights (this folder) and their loader: small image classifiers whose
penultimate layer is ganforge's feature space for MNIST-family, Fashion-MNIST and 8x8 ``digits``
images, and the photo feature network (:mod:`ganforge.models.perceptual`).

It sits low in the layers (it imports only :mod:`ganforge.errors`), so datasets, text encoders,
models and metrics all load the same files. The classifiers are trained by
:mod:`ganforge.metrics.train_classifier` on real data with a fixed seed and shipped as
``<name>.pt`` (a plain ``state_dict`` loaded with ``torch.load(weights_only=True)``) next to
``<name>.json``: its provenance (data, split, seed, epochs, held-out accuracy) and the file's
sha256, checked on every load.

``features(x)`` is the penultimate activation (after ReLU), ``logits(x)`` the 10 class scores.
Inputs are images in [-1, 1] of shape (N, 1, H, W) at the network's native size.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganforge.errors import GanforgeError

FEATURE_DIM = 64


class _LeNet(nn.Module):
    """``body`` maps images to the FEATURE_DIM penultimate features, ``head`` those to 10 logits."""

    body: nn.Sequential
    head: nn.Sequential

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class LeNetMNIST(_LeNet):
    """28x28 -> conv5(16) -> pool -> conv5(32) -> pool -> fc(64) -> fc(10); ~115k parameters."""

    native_size = 28

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.25), nn.Linear(32 * 7 * 7, FEATURE_DIM), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(FEATURE_DIM, 10))


class LeNetFashion(_LeNet):
    """28x28 Fashion-MNIST -> conv5(16)+BN -> pool -> conv5(32)+BN -> pool -> fc(64) -> fc(10).

    LeNetMNIST's layout with batch normalisation after each convolution (the convolutions then
    carry no bias); ~114k parameters. In eval mode the BN layers use their running statistics,
    so features are a deterministic function of each image alone.
    """

    native_size = 28

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5, padding=2, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.25), nn.Linear(32 * 7 * 7, FEATURE_DIM), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(FEATURE_DIM, 10))


class LeNetDigits(_LeNet):
    """8x8 -> conv3(16) -> conv3(32) -> pool -> fc(64) -> fc(10); ~39k parameters."""

    native_size = 8

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.25), nn.Linear(32 * 4 * 4, FEATURE_DIM), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(FEATURE_DIM, 10))


ARCHITECTURES: dict[str, type[nn.Module]] = {"mnist": LeNetMNIST, "digits": LeNetDigits,
                                              "fashion": LeNetFashion}


def weights_dir() -> Path:
    """The folder of the shipped weights (this package's)."""
    return Path(str(resources.files(__name__)))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_provenance(name: str, directory: Path | None = None) -> dict[str, Any]:
    """The provenance JSON of classifier ``name`` (a key of :data:`ARCHITECTURES`)."""
    path = (directory or weights_dir()) / f"lenet_{name}.json"
    if not path.is_file():
        raise GanforgeError(f"classifier provenance {path} is missing",
                            f"retrain it with `python -m ganforge.metrics.train_classifier "
                            f"--dataset {name}`")
    return json.loads(path.read_text())


def load_classifier(name: str, directory: Path | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """The shipped classifier ``name`` in eval mode and its provenance.

    The weights file's sha256 must equal the one recorded in the provenance; a mismatch (a
    corrupt or swapped file) is a :class:`GanforgeError`.
    """
    if name not in ARCHITECTURES:
        raise GanforgeError(f"unknown classifier {name!r}", f"choose one of: {', '.join(ARCHITECTURES)}")
    directory = directory or weights_dir()
    path = directory / f"lenet_{name}.pt"
    provenance = read_provenance(name, directory)
    if not path.is_file():
        raise GanforgeError(f"classifier weights {path} are missing",
                            f"retrain with `python -m ganforge.metrics.train_classifier --dataset {name}`")
    digest = sha256_file(path)
    if digest != provenance["sha256"]:
        raise GanforgeError(f"classifier weights {path} have sha256 {digest[:12]}…, expected "
                            f"{provenance['sha256'][:12]}…",
                            "reinstall ganforge or retrain the classifier with its script")
    model = ARCHITECTURES[name]()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.eval()
    return model, provenance
