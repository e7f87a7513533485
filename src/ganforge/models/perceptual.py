"""Feature networks phi for perceptual (content) losses, e.g. SRGAN's

    l_X = mean over (N, C_phi, H_phi, W_phi) of (phi(x) - phi(G(c)))^2.

Two networks, both taking RGB images in [-1, 1]:

* ``photo`` (the default, shipped): :class:`PhotoFeatures`, a small VGG-style CNN trained in this
  project on the training photographs of ``photo-patches`` (``python -m
  ganforge.metrics.train_photo_features``; weights and provenance JSON in
  ``ganforge/weights/photo_features.{pt,json}``); layers ``relu1_2`` and ``relu2_2``
  (default);
* ``vgg19``: VGG19's ``features`` (Simonyan and Zisserman 2015) built here by hand (no
  torchvision), weights from a state dict the user provides (torchvision key names
  ``features.N.weight`` / ``features.N.bias``, loaded with ``weights_only=True`` and strict key
  and shape matching), cut after ``layer`` (``relu5_4`` in the paper's VGG54); inputs mapped to
  [0, 1] and normalised with ImageNet's mean and std, as torchvision's weights expect.

Every feature network is frozen (``requires_grad`` False, eval mode); gradients flow through it to
G's output only.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ganforge.errors import GanforgeError

#: VGG19's feature stack: conv widths, "M" a 2x2 max-pool
VGG19_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                512, 512, 512, 512, "M")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NETWORKS = ("photo", "vgg19")
PHOTO_WEIGHTS = "photo_features"


def vgg_layer_names(config: tuple = VGG19_CONFIG) -> list[str]:
    """The name of every module of a VGG ``features`` stack: conv{b}_{k}, relu{b}_{k}, pool{b}."""
    names, block, k = [], 1, 1
    for v in config:
        if v == "M":
            names.append(f"pool{block}")
            block, k = block + 1, 1
        else:
            names += [f"conv{block}_{k}", f"relu{block}_{k}"]
            k += 1
    return names


def vgg19_features() -> nn.Sequential:
    """VGG19's ``features`` Sequential (indices as torchvision's: 0 conv1_1, 1 relu1_1, ...)."""
    layers: list[nn.Module] = []
    c = 3
    for v in VGG19_CONFIG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            c = int(v)
    return nn.Sequential(*layers)


class PhotoFeatures(nn.Module):
    """A small VGG-style CNN: [conv3x3 32, ReLU] x 2 (relu1_2), max-pool, [conv3x3 64, ReLU] x 2
    (relu2_2), max-pool, global average pool, linear to ``num_classes`` (the training task's head).
    ``features(x, layer)`` returns the activations at ``layer``."""

    LAYERS = ("relu1_2", "relu2_2")

    def __init__(self, num_classes: int = 20, width: int = 32) -> None:
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
                                    nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.block2 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
                                    nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(2 * width, num_classes))

    def features(self, x: torch.Tensor, layer: str = "relu2_2") -> torch.Tensor:
        h = self.block1(x)
        return h if layer == "relu1_2" else self.block2(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block2(self.block1(x)))


class FeatureExtractor(nn.Module):
    """phi: RGB images in [-1, 1] -> the frozen features of one layer of a network."""

    def __init__(self, body: nn.Module, normalise: bool) -> None:
        super().__init__()
        self.body, self.normalise = body, normalise
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FeatureExtractor:
        return super().train(False)  # always frozen, whatever the owner's mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalise:
            x = ((x + 1) / 2 - self.mean) / self.std
        return self.body(x)


class _PhotoLayer(nn.Module):
    def __init__(self, net: PhotoFeatures, layer: str) -> None:
        super().__init__()
        self.net, self.layer = net, layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x, self.layer)


def load_vgg19(weights: str | Path, layer: str = "relu5_4") -> FeatureExtractor:
    """VGG19 features up to ``layer`` from the state dict at ``weights`` (torchvision key names
    ``features.N.weight``; classifier keys are ignored, every ``features`` key must match)."""
    names = vgg_layer_names()
    if layer not in names:
        raise GanforgeError(f"perceptual.layer={layer!r} is not a VGG19 layer",
                            "choose e.g. relu5_4 (the paper's VGG54) or relu2_2 (VGG22)")
    path = Path(weights).expanduser()
    if not path.is_file():
        raise GanforgeError(f"VGG19 weights {path} do not exist",
                            "point perceptual.weights at a torchvision-style VGG19 state dict (.pth)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 (any unreadable file is the same user mistake)
        raise GanforgeError(f"cannot read VGG19 weights {path}: {type(exc).__name__}",
                            "save a plain state dict (torch.save(model.state_dict(), ...))") from None
    if not isinstance(state, dict):
        raise GanforgeError(f"{path} holds a {type(state).__name__}, not a state dict",
                            "save model.state_dict() rather than the model")
    features = vgg19_features()
    own = features.state_dict()
    given = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    missing = sorted(set(own) - set(given), key=lambda k: int(k.split(".")[0]))
    extra = sorted(set(given) - set(own))
    if missing or extra:
        what = f"lacks features.{missing[0]}" if missing else f"has unexpected features.{extra[0]}"
        raise GanforgeError(f"{path} is not a VGG19 state dict: it {what}",
                            "use torchvision's vgg19 key names (features.0.weight, ..., features.34.bias)")
    for key, tensor in own.items():
        if tuple(given[key].shape) != tuple(tensor.shape):
            raise GanforgeError(f"{path}: features.{key} has shape {tuple(given[key].shape)}, VGG19's is "
                                f"{tuple(tensor.shape)}", "use the weights of a VGG19 (not VGG16 or another)")
    features.load_state_dict(given, strict=True)
    return FeatureExtractor(features[:names.index(layer) + 1], normalise=True)


def load_photo_features(layer: str = "relu2_2", weights: str | Path | None = None) -> FeatureExtractor:
    """The shipped :class:`PhotoFeatures` (or the state dict at ``weights``) cut at ``layer``."""
    from ganforge.weights import weights_dir

    if layer not in PhotoFeatures.LAYERS:
        raise GanforgeError(f"perceptual.layer={layer!r} is not a layer of the photo network",
                            f"choose one of: {', '.join(PhotoFeatures.LAYERS)}")
    path = Path(weights).expanduser() if weights else weights_dir() / f"{PHOTO_WEIGHTS}.pt"
    if not path.is_file():
        raise GanforgeError(f"photo feature weights {path} do not exist",
                            "run python -m ganforge.metrics.train_photo_features")
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = PhotoFeatures(num_classes=state["head.3.weight"].shape[0], width=state["block1.0.weight"].shape[0])
    net.load_state_dict(state, strict=True)
    return FeatureExtractor(_PhotoLayer(net, layer), normalise=False)


def build_feature_network(network: str = "photo", layer: str | None = None,
                          weights: str | None = None) -> FeatureExtractor:
    """The feature network a ``perceptual: {network, layer, weights}`` section names."""
    if network == "vgg19":
        if weights is None:
            raise GanforgeError("perceptual.network=vgg19 needs perceptual.weights (none are downloaded)",
                                "set perceptual.weights to a torchvision VGG19 state dict, or network=photo")
        return load_vgg19(weights, layer or "relu5_4")
    if network == "photo":
        return load_photo_features(layer or "relu2_2", weights)
    raise GanforgeError(f"unknown perceptual.network {network!r}", f"choose one of: {', '.join(NETWORKS)}")


__all__ = ["FeatureExtractor", "PhotoFeatures", "build_feature_network", "load_photo_features",
           "load_vgg19", "vgg19_features", "vgg_layer_names"]
