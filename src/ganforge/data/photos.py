"""Natural colour photographs that ship with scikit-image and scikit-learn (no download), cut into
patches for restoration tasks (SRGAN's super-resolution, colorization).

The photographs (:data:`PHOTOS`; all RGB uint8, offline):

* scikit-image ``skimage.data``: ``astronaut`` (512x512), ``coffee`` (400x600), ``chelsea``
  (300x451, a cat; ``skimage.data.cat`` is the same picture and is not listed), ``rocket``
  (427x640), ``motorcycle`` (500x741, the left image of ``stereo_motorcycle``; its right image is
  a near-duplicate and is not listed);
* scikit-learn ``load_sample_images``: ``china`` (427x640), ``flower`` (427x640).

(``immunohistochemistry``, ``hubble_deep_field`` and ``retina`` are micrographs / telescope images,
not natural photographs; ``lily``, ``kidney``, ``skin``, ``eagle`` need pooch downloads.)

Splits are by *photograph*: ``train_photos`` give the training patches (``n_patches`` random crops,
positions from ``seed``), ``test_photos`` (default ``chelsea`` and ``flower``) the held-out ones,
never a crop of a training photograph. ``augment`` turns each training crop by one of the eight
symmetries of the square (a random multiple of 90 degrees, then a random left-right flip), as SR
training usually does: with five training photographs, variety matters more than the count.
Split ``test`` tiles each held-out photograph into
non-overlapping ``size`` x ``size`` patches (the whole photograph, up to the ragged border).
Each photograph is first shrunk by ``downscale`` (bicubic, antialiased) so that a patch holds more
structure than a 512-pixel photograph's smooth 32-pixel corner would.

Tasks (``task``):

* ``super-resolution``: ``x`` the HR patch (3, s, s) in [-1, 1], ``cond`` its LR version
  (3, s/r, s/r) = bicubic downsampling by ``scale`` r (``F.interpolate(mode="bicubic",
  antialias=True)``, clamped to [-1, 1]);
* ``colorization``: CIE Lab of the patch (``skimage.color.rgb2lab``, L in [0, 100], a, b in about
  [-110, 110]): ``cond`` = L / 50 - 1 (1 channel), ``x`` = (a, b) / :data:`AB_SCALE` (2 channels);
  :func:`lab_to_rgb` turns (cond, x) back into RGB in [-1, 1].
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.data.base import register_dataset
from ganforge.data.paired import PairedDataset
from ganforge.errors import GanforgeError

TASKS = ("super-resolution", "colorization")
SPLITS = ("train", "test")
#: a, b are divided by this to lie in [-1, 1] (Lab's a, b of sRGB colours stay within +-110)
AB_SCALE = 110.0
DEFAULT_TEST = ("chelsea", "flower")


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        image = getattr(skimage.data, name)()
        return image[0] if isinstance(image, tuple) else image
    return load


def _sklearn(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    return load


#: photograph name -> loader of an (H, W, 3) uint8 array
PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage("astronaut"), "coffee": _skimage("coffee"), "chelsea": _skimage("chelsea"),
    "rocket": _skimage("rocket"), "motorcycle": _skimage("stereo_motorcycle"),
    "china": _sklearn("china"), "flower": _sklearn("flower"),
}


@lru_cache(maxsize=32)
def load_photo(name: str, downscale: int = 1) -> torch.Tensor:
    """Photograph ``name`` as a (3, H, W) float tensor in [-1, 1], shrunk ``downscale`` times
    (bicubic, antialiased)."""
    if name not in PHOTOS:
        raise GanforgeError(f"unknown photograph {name!r}", f"choose from: {', '.join(PHOTOS)}")
    try:
        image = PHOTOS[name]()
    except ImportError:
        raise GanforgeError(f"photograph {name!r} needs scikit-image and scikit-learn",
                            "pip install scikit-image scikit-learn") from None
    x = torch.from_numpy(np.array(image[..., :3], dtype=np.uint8)).permute(2, 0, 1).float() / 127.5 - 1
    if downscale > 1:
        h, w = x.shape[1] // downscale, x.shape[2] // downscale
        x = F.interpolate(x[None], size=(h, w), mode="bicubic", antialias=True,
                          align_corners=False)[0].clamp(-1, 1)
    return x


def downsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic downsampling of images (N, C, H, W) by ``scale`` (antialiased), clamped to [-1, 1]."""
    return F.interpolate(x, scale_factor=1 / scale, mode="bicubic", antialias=True,
                         align_corners=False).clamp(-1, 1)


def upsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic upsampling of images (N, C, h, w) by ``scale``, clamped to [-1, 1] (the baseline)."""
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False).clamp(-1, 1)


def random_crops(photo: torch.Tensor, n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` crops (n, 3, size, size) of ``photo`` at uniformly random places."""
    _, h, w = photo.shape
    top = torch.randint(h - size + 1, (n,), generator=gen)
    left = torch.randint(w - size + 1, (n,), generator=gen)
    return torch.stack([photo[:, t:t + size, s:s + size] for t, s in zip(top.tolist(), left.tolist(),
                                                                            strict=True)])


def dihedral(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each image of ``x`` (N, C, H, W), H = W, turned by k x 90 degrees (k uniform in 0..3) and
    then mirrored left-right with probability 1/2, the draws from ``gen``."""
    turns = torch.randint(4, (len(x),), generator=gen).tolist()
    flips = (torch.rand(len(x), generator=gen) < 0.5).tolist()
    out = [torch.rot90(image, k, (1, 2)) for image, k in zip(x, turns, strict=True)]
    return torch.stack([image.flip(2) if f else image for image, f in zip(out, flips, strict=True)])


def tiles(photo: torch.Tensor, size: int) -> torch.Tensor:
    """The non-overlapping ``size`` x ``size`` tiles of ``photo``, row-major (ragged border dropped)."""
    t = photo.unfold(1, size, size).unfold(2, size, size)            # (3, nh, nw, size, size)
    return t.permute(1, 2, 0, 3, 4).reshape(-1, photo.shape[0], size, size).contiguous()


def rgb_to_lab_pair(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cond, target) for colorization from RGB images (N, 3, H, W) in [-1, 1]: L / 50 - 1 and
    (a, b) / AB_SCALE (skimage.color.rgb2lab)."""
    from skimage.color import rgb2lab

    lab = rgb2lab(((x + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).double().numpy(), channel_axis=-1)
    lab = torch.from_numpy(lab).permute(0, 3, 1, 2).float()
    return lab[:, :1] / 50 - 1, lab[:, 1:] / AB_SCALE


def lab_to_rgb(cond: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """RGB images (N, 3, H, W) in [-1, 1] from colorization's L input and (a, b) output
    (skimage.color.lab2rgb; out-of-gamut colours clipped)."""
    from skimage.color import lab2rgb

    lab = torch.cat([(cond + 1) * 50, ab.clamp(-1, 1) * AB_SCALE], dim=1)
    with warnings.catch_warnings():  # out-of-gamut colours are clipped, as documented
        warnings.simplefilter("ignore", UserWarning)
        rgb = lab2rgb(lab.permute(0, 2, 3, 1).double().numpy(), channel_axis=-1)
    return torch.from_numpy(rgb).permute(0, 3, 1, 2).float() * 2 - 1


def _names(value: Sequence[str] | None, default: Sequence[str], key: str) -> tuple[str, ...]:
    names = tuple(default if value is None else value)
    if isinstance(value, str) or not names:
        raise GanforgeError(f"data.{key}={value!r} is not a list of photographs",
                            f"set data.{key} to a list from: {', '.join(PHOTOS)}")
    for name in names:
        if name not in PHOTOS:
            raise GanforgeError(f"data.{key}: unknown photograph {name!r}",
                                f"choose from: {', '.join(PHOTOS)}")
    return names


@register_dataset("photo-patches")
def photo_patches(split: str = "train", task: str = "super-resolution", size: int = 32,
                  scale: int = 4, n_patches: int = 8192, downscale: int = 2,
                  train_photos: Sequence[str] | None = None, test_photos: Sequence[str] | None = None,
                  seed: int = 0, augment: bool = False) -> PairedDataset:
    """Patches of the photographs of :data:`PHOTOS`; see the module docstring. ``split`` train:
    ``n_patches`` random crops of ``train_photos`` (default: every photograph not in
    ``test_photos``), evenly shared; test: the tiles of ``test_photos``."""
    if split not in SPLITS:
        raise GanforgeError(f"unknown data.split {split!r}", f"choose one of: {', '.join(SPLITS)}")
    if task not in TASKS:
        raise GanforgeError(f"unknown data.task {task!r}", f"choose one of: {', '.join(TASKS)}")
    for key, value, low in (("size", size, 4), ("scale", scale, 1), ("n_patches", n_patches, 1),
                            ("downscale", downscale, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise GanforgeError(f"data.{key}={value!r} is not an integer >= {low}", f"set data.{key}")
    if task == "super-resolution" and size % scale:
        raise GanforgeError(f"data.size={size} is not a multiple of data.scale={scale}",
                            f"set data.size to a multiple of {scale}")
    test = _names(test_photos, DEFAULT_TEST, "test_photos")
    train = _names(train_photos, [p for p in PHOTOS if p not in test], "train_photos")
    overlap = sorted(set(train) & set(test))
    if overlap:
        raise GanforgeError(f"photograph {overlap[0]!r} is both a training and a held-out photograph",
                            "keep data.train_photos and data.test_photos apart")
    if not isinstance(augment, bool):
        raise GanforgeError(f"data.augment={augment!r} is not true or false", "set data.augment=true")
    if split == "train":
        gen = torch.Generator().manual_seed(seed)
        counts = [n_patches // len(train) + (i < n_patches % len(train)) for i in range(len(train))]
        x = torch.cat([random_crops(load_photo(p, downscale), k, size, gen)
                       for p, k in zip(train, counts, strict=True) if k])
        if augment:
            x = dihedral(x, gen)
    else:
        x = torch.cat([tiles(load_photo(p, downscale), size) for p in test])
    name = "photo-patches"
    if task == "super-resolution":
        return PairedDataset(x, downsample(x, scale), name=name)
    cond, ab = rgb_to_lab_pair(x)
    return PairedDataset(ab, cond, name=name)
