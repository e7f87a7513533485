"""Feature extractors: what FID/KID/PRDC measure distances in, and whose logits score IS and
count modes. Every extractor has an ``id`` that names the metrics it produces
(``fid_lenet_mnist``, never plain "FID") and a ``checksum`` of its weights.

* ``lenet_mnist``: ganforge's digit classifier for 28x28 MNIST-family images (64-d penultimate
  features, 10 logits). Other sizes are resized bilinearly to 28x28. Three-channel images
  (Stacked MNIST) are classified channel by channel: features are the three 64-d vectors
  concatenated, logits the 1,000-way joint log-probabilities log p(d_R) + log p(d_G) + log p(d_B).
* ``lenet_digits``: the same for scikit-learn's 8x8 digits (any size is resized to 8x8).
* ``lenet_fashion``: the same for Fashion-MNIST (trained on its train split only).
* ``raw``: the flattened samples themselves (toy 2D coordinates); no logits.
* ``inception``: InceptionV3 pool3 features (2048-d), optional; needs weights on disk (see
  :func:`find_inception_weights`).

``auto`` takes the extractor the dataset declares (its ``extractor`` attribute), else InceptionV3.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ganforge.errors import GanforgeError
from ganforge.registry import Registry
from ganforge.weights import ARCHITECTURES, load_classifier, sha256_file

#: name -> builder(inception_path) of every extractor; ``auto`` is not one of them but the
#: dataset's own choice (:func:`auto_extractor_name`)
EXTRACTORS: Registry[Callable[[str | None], Extractor]] = Registry("extractor")
INCEPTION_FILES = ("inception-2015-12-05.pt", "pt_inception-2015-12-05-6726825d.pth")


class Extractor(ABC):
    """Maps samples (N, ...) in the dataset's range to features (N, D) float32 and, when it has a
    classifier head, logits (N, C)."""

    id: str = ""
    checksum: str = ""
    has_logits: bool = False
    provenance: dict[str, Any] = {}

    @abstractmethod
    def _batch(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features (and logits or None) of one batch."""

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, batch_size: int = 500
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        feats, logits = [], []
        for i in range(0, len(x), batch_size):
            f, lg = self._batch(torch.as_tensor(x[i:i + batch_size]).float())
            feats.append(f.float().cpu())
            if lg is not None:
                logits.append(lg.float().cpu())
        if not feats:
            raise GanforgeError("no samples to extract features from", "pass at least one sample")
        return torch.cat(feats), (torch.cat(logits) if logits else None)

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "sha256": self.checksum, **({"provenance": self.provenance}
                                                           if self.provenance else {})}


class RawExtractor(Extractor):
    """The samples' own coordinates, flattened."""

    id = "raw"
    checksum = "identity"

    def _batch(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return x.reshape(len(x), -1), None


class LeNetExtractor(Extractor):
    has_logits = True

    def __init__(self, name: str) -> None:
        self.model, self.provenance = load_classifier(name)
        self.id = f"lenet_{name}"
        self.checksum = self.provenance["sha256"]
        self.size = self.model.native_size

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise GanforgeError(f"{self.id} needs images (N, C, H, W), got shape {tuple(x.shape)}",
                                "use --extractor raw for vectors")
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > self.size)
        return x

    def digit_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel features (N, C, 64) and digit logits (N, C, 10)."""
        x = self._prepare(x)
        n, c = x.shape[:2]
        flat = x.reshape(n * c, 1, self.size, self.size)
        feats = self.model.features(flat)
        logits = self.model.head(feats)
        return feats.reshape(n, c, -1), logits.reshape(n, c, -1)

    def _batch(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats, logits = self.digit_logits(x)
        n, c = feats.shape[:2]
        if c == 1:
            return feats[:, 0], logits[:, 0]
        logp = torch.log_softmax(logits.double(), dim=2)
        joint = logp[:, 0]
        for ch in range(1, c):
            joint = (joint[:, :, None] + logp[:, ch][:, None, :]).reshape(n, -1)
        return feats.reshape(n, -1), joint

    @torch.no_grad()
    def classify_channels(self, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """The predicted digit of every channel: int64 (N, C)."""
        return torch.cat([self.digit_logits(torch.as_tensor(x[i:i + batch_size]).float())[1].argmax(2)
                          for i in range(0, len(x), batch_size)])


def find_inception_weights(path: str | os.PathLike[str] | None = None) -> Path:
    """The InceptionV3 weights file: ``path``, else ``$GANFORGE_INCEPTION``, else one of
    :data:`INCEPTION_FILES` in the torch hub cache (``torch.hub.get_dir()/checkpoints``)."""
    candidates: list[Path] = []
    if path is not None:
        candidates.append(Path(path).expanduser())
    elif os.environ.get("GANFORGE_INCEPTION"):
        candidates.append(Path(os.environ["GANFORGE_INCEPTION"]).expanduser())
    else:
        hub = Path(torch.hub.get_dir()) / "checkpoints"
        candidates += [hub / name for name in INCEPTION_FILES]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    where = ", ".join(str(c) for c in candidates)
    raise GanforgeError(
        f"InceptionV3 weights not found (looked at {where})",
        "obtain inception-2015-12-05.pt (the TorchScript InceptionV3 used by StyleGAN2-ADA and "
        "clean-fid) or pytorch-fid's pt_inception-2015-12-05-6726825d.pth, put it in the torch hub "
        "checkpoints folder or point GANFORGE_INCEPTION / --inception at it")


class InceptionExtractor(Extractor):
    """InceptionV3 pool3 features (2048-d) of images in [-1, 1] (grayscale repeated to RGB).

    ``*.pt``: the TorchScript network of StyleGAN2-ADA / clean-fid (plain ``torch.jit.load``; it
    resizes to 299 itself and also gives the 1008-way softmax for IS). ``*.pth``: pytorch-fid's
    state_dict, which needs the optional ``pytorch-fid`` package (``pip install
    'ganforge[inception]'``) for the network definition; features only.
    """

    id = "inception"

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = find_inception_weights(path)
        self.checksum = sha256_file(self.path)
        self.provenance = {"file": self.path.name}
        if self.path.suffix == ".pt":
            self.model = torch.jit.load(str(self.path), map_location="cpu").eval()
            self.kind, self.has_logits = "torchscript", True
        else:
            self.model = _pytorch_fid_inception(self.path)
            self.kind, self.has_logits = "pytorch-fid", False

    def _batch(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise GanforgeError(f"InceptionV3 needs 1- or 3-channel images, got {tuple(x.shape)}",
                                "use another extractor")
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        if self.kind == "torchscript":
            img = ((x + 1) * 127.5).clamp(0, 255)
            feats = self.model(img, return_features=True)
            probs = self.model(img)
            return feats, torch.log(probs.clamp_min(1e-30))
        return self.model(((x + 1) / 2).clamp(0, 1))[0].flatten(1), None


def _pytorch_fid_inception(path: Path) -> torch.nn.Module:
    try:
        from pytorch_fid import inception as pfid
    except ImportError:
        raise GanforgeError(f"{path.name} is pytorch-fid's state_dict and needs the pytorch-fid package",
                            "pip install 'ganforge[inception]', or use inception-2015-12-05.pt") from None
    net = pfid._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b, net.Mixed_5c = pfid.FIDInceptionA(192, 32), pfid.FIDInceptionA(256, 64)
    net.Mixed_5d, net.Mixed_6b = pfid.FIDInceptionA(288, 64), pfid.FIDInceptionC(768, 128)
    net.Mixed_6c, net.Mixed_6d = pfid.FIDInceptionC(768, 160), pfid.FIDInceptionC(768, 160)
    net.Mixed_6e, net.Mixed_7b = pfid.FIDInceptionC(768, 192), pfid.FIDInceptionE_1(1280)
    net.Mixed_7c = pfid.FIDInceptionE_2(2048)
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model = pfid.InceptionV3([pfid.InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True,
                             normalize_input=True, use_fid_inception=False)
    # Rebuild the blocks from the FID network instead of torchvision's ImageNet weights.
    blocks = [[net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, torch.nn.MaxPool2d(3, 2)],
              [net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, torch.nn.MaxPool2d(3, 2)],
              [net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a, net.Mixed_6b, net.Mixed_6c,
               net.Mixed_6d, net.Mixed_6e],
              [net.Mixed_7a, net.Mixed_7b, net.Mixed_7c, torch.nn.AdaptiveAvgPool2d((1, 1))]]
    model.blocks = torch.nn.ModuleList(torch.nn.Sequential(*b) for b in blocks)
    return model.eval()


def auto_extractor_name(dataset: Any = None) -> str:
    """The extractor ``auto`` picks: the one the dataset declares (``dataset.extractor``; raw
    coordinates for points), else InceptionV3."""
    declared = getattr(dataset, "extractor", None)
    if declared:
        return declared
    shape = getattr(dataset, "sample_shape", None)
    if shape is not None and len(shape) == 1:
        return "raw"
    return "inception"


def build_extractor(name: str, dataset: Any = None, inception_path: str | None = None) -> Extractor:
    """Extractor ``name`` (``auto``: the one ``dataset`` declares)."""
    if name != "auto" and name not in EXTRACTORS:
        raise GanforgeError(f"unknown extractor {name!r}",
                            f"choose one of: auto, {', '.join(EXTRACTORS.names())}")
    return EXTRACTORS.get(auto_extractor_name(dataset) if name == "auto" else name)(inception_path)


EXTRACTORS.register("raw")(lambda inception_path=None: RawExtractor())
EXTRACTORS.register("inception")(InceptionExtractor)
for _name in ARCHITECTURES:  # one per shipped classifier: lenet_mnist, lenet_digits, lenet_fashion
    EXTRACTORS.register(f"lenet_{_name}")(lambda inception_path=None, name=_name: LeNetExtractor(name))
