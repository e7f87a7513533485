"""Paired images for image-to-image translation (pix2pix, and the later CycleGAN, SRGAN,
colorization and inpainting algorithms).

The contract: a :class:`PairedDataset` holds the *target* images ``x`` (N, C, H, W) and the
*input* images ``cond`` (N, C', H', W'), both float32 in [-1, 1], pair i being (cond[i], x[i]);
``fields`` is ``("x", "cond")``, or ``("x", "y", "cond")`` when class labels come along.
Evaluation and FID treat ``x`` as the data, exactly like an unpaired dataset; translation
algorithms read ``cond`` and learn G(cond) ~ x.

Registered pairings:

* ``edges2fashion``: Fashion-MNIST padded to 32x32, cond = its edge map (Sobel, or scikit-image's
  Canny), black edges (-1) on white (+1) as in pix2pix's edges2shoes;
* ``masked-fashion``: Fashion-MNIST, cond = the image with a square hole (centre or a random
  place per image, fixed by ``seed``) filled with 0 (mid-grey), plus the mask as a channel;
* ``paired-folder``: a folder of ``A/`` and ``B/`` images with the same file names, or of
  side-by-side ``AB`` images as in the pix2pix datasets; ``direction`` AtoB or BtoA.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ganforge.data.base import ArrayDataset, register_dataset
from ganforge.data.folder import find_images, load_image
from ganforge.data.mnist import NATIVE_SIZE, load_idx_dataset
from ganforge.data.transforms import pad_images, resize_images, uint8_to_unit_range
from ganforge.errors import GanforgeError

EDGE_METHODS = ("sobel", "canny")
MASKS = ("centre", "random")
DIRECTIONS = ("AtoB", "BtoA")
_RESAMPLE = getattr(Image, "Resampling", Image).BICUBIC


class PairedDataset(ArrayDataset):
    """Targets ``x`` (N, C, H, W), inputs ``cond`` (N, C', H', W') and labels ``y`` (or None);
    see the module docstring."""

    data_kind = "paired"

    def __init__(self, x: torch.Tensor, cond: torch.Tensor, y: torch.Tensor | None = None, *,
                 name: str = "", num_classes: int | None = None, extractor: str | None = None,
                 classes: tuple[str, ...] | None = None) -> None:
        super().__init__(x, y, name=name, num_classes=num_classes, extractor=extractor,
                         classes=classes)
        if cond.dim() != 4 or len(cond) != len(x):
            raise ValueError(f"cond must be (N, C, H, W) with N = {len(x)}, got {tuple(cond.shape)}")
        self.cond = cond.float().contiguous()

    @property
    def fields(self) -> tuple[str, ...]:
        return ("x", "cond") if self.y is None else ("x", "y", "cond")

    @property
    def cond_shape(self) -> tuple[int, ...]:
        """The shape of one input image (C', H', W')."""
        return tuple(self.cond.shape[1:])

    def tensors(self) -> dict[str, torch.Tensor]:
        return {**super().tensors(), "cond": self.cond}

    def subset(self, index: torch.Tensor | slice) -> PairedDataset:
        """The pairs at ``index`` (a slice or an index tensor) as a new dataset."""
        return PairedDataset(self.x[index], self.cond[index],
                             None if self.y is None else self.y[index], name=self.name,
                             num_classes=self.num_classes, extractor=self.extractor,
                             classes=self.classes)


# ---------------------------------------------------------------------- edges
def sobel_edges(x: torch.Tensor, threshold: float = 0.25) -> torch.Tensor:
    """Edge maps of images ``x`` (N, 1, H, W) in [-1, 1]: the Sobel gradient magnitude of the
    intensities in [0, 1], scaled by 1/4 so that a sharp 0 -> 1 step scores 1,

        m = sqrt(Sx^2 + Sy^2) / 4,   Sx = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] * u,  Sy = Sx^T,

    (replicate padding) and an edge where m > ``threshold``; edges -1 (black) on +1 (white)."""
    u = (x + 1) / 2
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=u.dtype)
    kernels = torch.stack([kx, kx.T])[:, None]                       # (2, 1, 3, 3)
    g = F.conv2d(F.pad(u, (1, 1, 1, 1), mode="replicate"), kernels)  # (N, 2, H, W)
    magnitude = g.pow(2).sum(dim=1, keepdim=True).sqrt() / 4
    return torch.where(magnitude > threshold, -1.0, 1.0)


def canny_edges(x: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """scikit-image's Canny edge detector (``skimage.feature.canny``, Gaussian ``sigma``) on each
    image of ``x`` (N, 1, H, W) in [-1, 1]; edges -1 on +1."""
    try:
        from skimage.feature import canny
    except ImportError:
        raise GanforgeError("data.edges=canny needs scikit-image",
                            "pip install scikit-image, or set data.edges=sobel") from None
    u = ((x[:, 0] + 1) / 2).double().numpy()
    edges = np.stack([canny(img, sigma=sigma) for img in u])
    return torch.from_numpy(np.where(edges, -1.0, 1.0)).float()[:, None]


def _fashion(root: str | None, split: str, limit: int | None, size: int,
             download: bool) -> ArrayDataset:
    """Fashion-MNIST at ``size`` (>= 28: padded with background, centred; < 28: resized),
    optionally its first ``limit`` images."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise GanforgeError(f"data.limit={limit!r} is not a positive number of images",
                            "set data.limit to e.g. 5000, or null for all")
    if isinstance(size, bool) or not isinstance(size, int) or size < 4:
        raise GanforgeError(f"data.size={size!r} is not an image side >= 4", "set data.size=32")
    base = load_idx_dataset("fashion-mnist", root, split, NATIVE_SIZE, download)
    x, y = base.x, base.y
    if limit is not None:
        x, y = x[:limit], y[:limit]
    x = pad_images(x, size) if size >= NATIVE_SIZE else resize_images(x, size)
    return ArrayDataset(x, y, name="fashion-mnist", num_classes=10, classes=base.classes,
                        extractor=base.extractor)


@register_dataset("edges2fashion")
def edges2fashion(root: str | None = None, split: str = "train", limit: int | None = None,
                  edges: str = "sobel", threshold: float = 0.25, sigma: float = 1.0,
                  size: int = 32, download: bool = False) -> PairedDataset:
    """Fashion-MNIST (x, labels y) with its edge maps as inputs (cond, 1 channel): ``edges``
    ``sobel`` (:func:`sobel_edges` with ``threshold``) or ``canny`` (:func:`canny_edges` with
    ``sigma``). See :func:`ganforge.data.mnist.load_idx_dataset` for root/split/download."""
    if edges not in EDGE_METHODS:
        raise GanforgeError(f"unknown data.edges {edges!r}", f"choose one of: {', '.join(EDGE_METHODS)}")
    base = _fashion(root, split, limit, size, download)
    cond = sobel_edges(base.x, threshold) if edges == "sobel" else canny_edges(base.x, sigma)
    return PairedDataset(base.x, cond, base.y, name="edges2fashion", num_classes=10,
                         classes=base.classes, extractor=base.extractor)


def square_masks(n: int, size: int, hole: int, where: str, seed: int) -> torch.Tensor:
    """(n, 1, size, size) masks, 1 inside a ``hole`` x ``hole`` square and 0 elsewhere: centred,
    or at a uniformly random place per image (drawn from ``seed``)."""
    if where == "centre":
        top = left = torch.full((n,), (size - hole) // 2)
    else:
        gen = torch.Generator().manual_seed(seed)
        top = torch.randint(size - hole + 1, (n,), generator=gen)
        left = torch.randint(size - hole + 1, (n,), generator=gen)
    rows = torch.arange(size)
    inside_r = (rows[None] >= top[:, None]) & (rows[None] < top[:, None] + hole)    # (n, size)
    inside_c = (rows[None] >= left[:, None]) & (rows[None] < left[:, None] + hole)
    return (inside_r[:, :, None] & inside_c[:, None, :]).float()[:, None]


@register_dataset("masked-fashion")
def masked_fashion(root: str | None = None, split: str = "train", limit: int | None = None,
                   mask: str = "centre", hole: int = 14, mask_channel: bool = True, seed: int = 0,
                   size: int = 32, download: bool = False) -> PairedDataset:
    """Fashion-MNIST (x, y) with a square hole: cond = x * (1 - m) (the hole at 0, mid-grey),
    plus the mask 2m - 1 as a second channel when ``mask_channel``; m from :func:`square_masks`
    (``mask`` centre or random, ``hole`` pixels wide, random places from ``seed``)."""
    if mask not in MASKS:
        raise GanforgeError(f"unknown data.mask {mask!r}", f"choose one of: {', '.join(MASKS)}")
    base = _fashion(root, split, limit, size, download)
    if isinstance(hole, bool) or not isinstance(hole, int) or not 1 <= hole <= size:
        raise GanforgeError(f"data.hole={hole!r} is not a side between 1 and {size}", "set e.g. data.hole=14")
    m = square_masks(len(base.x), size, hole, mask, seed)
    cond = base.x * (1 - m)
    if mask_channel:
        cond = torch.cat([cond, 2 * m - 1], dim=1)
    return PairedDataset(base.x, cond, base.y, name="masked-fashion", num_classes=10,
                         classes=base.classes, extractor=base.extractor)


# ---------------------------------------------------------------------- a folder of pairs
def _pixels(im: Image.Image) -> np.ndarray:
    a = np.asarray(im, dtype=np.uint8)
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def _fit(im: Image.Image, size: int | None) -> Image.Image:
    return im if size is None or im.size == (size, size) else im.resize((size, size), _RESAMPLE)


def _pairs_from_subfolders(base: Path, channels: int, size: int | None
                           ) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    a_dir, b_dir = base / "A", base / "B"
    a_files = {p.relative_to(a_dir).as_posix(): p for p in find_images(a_dir)}
    b_files = {p.relative_to(b_dir).as_posix(): p for p in find_images(b_dir)}
    if not a_files:
        raise GanforgeError(f"no .png/.jpg/.jpeg images found in {a_dir}", "put the input images in A/")
    for name in sorted(a_files):
        if name not in b_files:
            raise GanforgeError(f"A/{name} has no partner B/{name} in {base}",
                                "give every image in A/ a file of the same name in B/, or remove it")
    for name in sorted(b_files):
        if name not in a_files:
            raise GanforgeError(f"B/{name} has no partner A/{name} in {base}",
                                "give every image in B/ a file of the same name in A/, or remove it")
    a_list, b_list = [], []
    for name in sorted(a_files):
        a, b = load_image(a_files[name], channels), load_image(b_files[name], channels)
        if size is None and a.size != b.size:
            raise GanforgeError(f"A/{name} is {a.size[0]}x{a.size[1]} but B/{name} is "
                                f"{b.size[0]}x{b.size[1]}", "make each pair one size, or set data.size")
        a_list.append(_pixels(_fit(a, size)))
        b_list.append(_pixels(_fit(b, size)))
    return a_list, b_list, sorted(a_files)


def _pairs_side_by_side(base: Path, channels: int, size: int | None
                        ) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    paths = find_images(base)
    if not paths:
        raise GanforgeError(f"no .png/.jpg/.jpeg images found under {base}",
                            "point data.root at a folder of side-by-side AB images, or of A/ and B/")
    a_list, b_list, names = [], [], []
    for path in paths:
        im = load_image(path, channels)
        w, h = im.size
        if w % 2:
            raise GanforgeError(f"{path.relative_to(base)} is {w}x{h}, an odd width that does not "
                                "split into A | B halves", "use side-by-side pairs of two equal halves")
        a_list.append(_pixels(_fit(im.crop((0, 0, w // 2, h)), size)))
        b_list.append(_pixels(_fit(im.crop((w // 2, 0, w, h)), size)))
        names.append(path.relative_to(base).as_posix())
    return a_list, b_list, names


@register_dataset("paired-folder")
def paired_folder(root: str, direction: str = "AtoB", channels: int = 3,
                  size: int | None = None) -> PairedDataset:
    """Image pairs from ``root``: ``root/A/`` and ``root/B/`` holding files of the same names, or
    else every image under ``root`` as a side-by-side pair A | B (the pix2pix datasets' format).
    ``direction`` AtoB: cond = A, x = B (BtoA: the reverse). ``channels`` 1 (grayscale) or 3 (RGB).
    ``size`` resizes every image to size x size (bicubic); None keeps the pixels, and then every
    image must have the same size."""
    if direction not in DIRECTIONS:
        raise GanforgeError(f"unknown data.direction {direction!r}",
                            f"choose one of: {', '.join(DIRECTIONS)}")
    if channels not in (1, 3) or isinstance(channels, bool):
        raise GanforgeError(f"data.channels must be 1 or 3, got {channels!r}",
                            "set data.channels=3 for RGB or 1 for grayscale")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise GanforgeError(f"data.size={size!r} is not a positive side", "set e.g. data.size=32, or null")
    base = Path(root).expanduser()
    if not base.is_dir():
        raise GanforgeError(f"paired folder {base} does not exist or is not a directory",
                            "point data.root at a folder with A/ and B/, or of side-by-side AB images")
    if (base / "A").is_dir() or (base / "B").is_dir():
        if not ((base / "A").is_dir() and (base / "B").is_dir()):
            missing = "B" if (base / "A").is_dir() else "A"
            raise GanforgeError(f"{base} has no {missing}/ folder beside its other one",
                                f"add {missing}/ with the partner images")
        a_list, b_list, names = _pairs_from_subfolders(base, channels, size)
    else:
        a_list, b_list, names = _pairs_side_by_side(base, channels, size)
    shapes = {a.shape for a in a_list} | {b.shape for b in b_list}
    if len(shapes) > 1:
        first = names[0]
        odd = next(n for n, a, b in zip(names, a_list, b_list, strict=True)
                   if a.shape != a_list[0].shape or b.shape != a_list[0].shape)
        (_, h0, w0), (_, h, w) = a_list[0].shape, next(
            s for s in (a_list[names.index(odd)].shape, b_list[names.index(odd)].shape)
            if s != a_list[0].shape)
        raise GanforgeError(f"images of mismatched sizes ({first} gives {w0}x{h0}, {odd} gives {w}x{h})",
                            "set data.size to resize them all, or make them one size")
    a = uint8_to_unit_range(np.stack(a_list))
    b = uint8_to_unit_range(np.stack(b_list))
    cond, x = (a, b) if direction == "AtoB" else (b, a)
    dataset = PairedDataset(x, cond, name="paired-folder")
    dataset.files = names
    return dataset
