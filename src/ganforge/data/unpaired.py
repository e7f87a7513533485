"""Unpaired images for translation between two domains A and B (CycleGAN).

The contract: an :class:`UnpairedDataset` holds the images of domain A (``a``, N_A) and of domain
B (``b``, N_B), both (N, C, H, W) in [-1, 1], with no pairing between them. To flow through the
image-to-image tooling unchanged it *is* a :class:`~ganforge.data.paired.PairedDataset` with
``fields`` ``("x", "cond")``: ``cond`` = domain A (the translator's inputs), ``x`` = domain B,
in max(N_A, N_B) rows where row i holds a[i mod N_A] and b[pi(i mod N_B)] for a random
permutation pi drawn once from ``seed``. That pairing is arbitrary and means nothing: every
CycleGAN loss is a mean of per-image terms within one domain, so a batch of rows is a uniform
batch of A images and a uniform batch of B images, as independent shuffles would give. (Paired
metrics on these rows compare G(a) with an unrelated b; score with the cycle metrics or, where a
dataset knows them, the true partners.)

Registered:

* ``fashion-pair-classes``: A = one Fashion-MNIST class, B = another (default Sneaker (7) <->
  Ankle boot (9)), padded to 32x32; each split's own images; no true partners.
* ``mnist-thickness``: MNIST digits, A = thin (the digit as written), B = thick (grey-scale
  dilation with a disk of ``radius``), padded to 32x32. The images (of the IDX split ``source``;
  the test files are the ones usually at hand) are shuffled once by ``seed``: the last
  ``test_size`` are held out, the rest split into two disjoint halves, A from the first, B (thick)
  from the second, so no training image's partner is in the training set. ``split: train`` is
  that unpaired dataset (with ``partner``, the true thick version of each A image, for
  diagnostics); ``split: test`` is a :class:`PairedDataset` of the held-out images, cond = thin
  and x = its true thick partner, which ``ganforge evaluate`` scores (PSNR, identity baseline).
"""

from __future__ import annotations

import numpy as np
import torch

from ganforge.data.base import register_dataset
from ganforge.data.mnist import NATIVE_SIZE, load_idx_dataset
from ganforge.data.paired import PairedDataset, _fashion
from ganforge.data.transforms import pad_images
from ganforge.errors import GanforgeError

UNPAIRED_SPLITS = ("train", "test")


class UnpairedDataset(PairedDataset):
    """Domains ``a`` (the inputs, ``cond``) and ``b`` (``x``), unpaired; see the module docstring.
    ``partner`` (N_A, ...) optionally holds the true B image of each A image (never trained on)."""

    paired = False
    data_kind = "unpaired"

    def __init__(self, a: torch.Tensor, b: torch.Tensor, *, seed: int = 0, name: str = "",
                 domains: tuple[str, str] = ("A", "B"), extractor: str | None = None,
                 partner: torch.Tensor | None = None) -> None:
        if a.dim() != 4 or b.dim() != 4 or len(a) == 0 or len(b) == 0:
            raise ValueError("a and b must be non-empty (N, C, H, W), got "
                             f"{tuple(a.shape)} and {tuple(b.shape)}")
        if partner is not None and partner.shape[0] != len(a):
            raise ValueError(f"partner must hold one image per A image ({len(a)}), got {len(partner)}")
        n = max(len(a), len(b))
        order = torch.randperm(len(b), generator=torch.Generator().manual_seed(seed))
        rows = torch.arange(n)
        super().__init__(b[order[rows % len(b)]], a[rows % len(a)], name=name, extractor=extractor)
        self.a, self.b = a.float().contiguous(), b.float().contiguous()
        self.domains = domains
        self.partner = None if partner is None else partner.float().contiguous()


def _check_count(value: object, key: str, fix: str, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise GanforgeError(f"data.{key}={value!r} is not a whole number >= {minimum}", fix)


def _check_split(split: str) -> None:
    if split not in UNPAIRED_SPLITS:
        raise GanforgeError(f"unknown data.split {split!r}", f"choose one of: {', '.join(UNPAIRED_SPLITS)}")


# ---------------------------------------------------------------------- two Fashion-MNIST classes
@register_dataset("fashion-pair-classes")
def fashion_pair_classes(root: str | None = None, split: str = "train", limit: int | None = None,
                         class_a: int = 7, class_b: int = 9, size: int = 32, seed: int = 0,
                         download: bool = False) -> UnpairedDataset:
    """A = the Fashion-MNIST images of ``class_a`` (default 7, Sneaker), B = those of ``class_b``
    (default 9, Ankle boot), of ``split`` (train: 6,000 each; test: 1,000 each), at most ``limit``
    per domain, padded to ``size``; rows paired arbitrarily from ``seed``."""
    _check_split(split)
    for key, value in (("class_a", class_a), ("class_b", class_b)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 9:
            raise GanforgeError(f"data.{key}={value!r} is not a Fashion-MNIST class 0..9",
                                "e.g. data.class_a=7 (Sneaker), data.class_b=9 (Ankle boot)")
    if class_a == class_b:
        raise GanforgeError(f"data.class_a and data.class_b are both {class_a}",
                            "choose two different classes")
    if limit is not None:
        _check_count(limit, "limit", "set data.limit to e.g. 2000, or null for all")
    base = _fashion(root, split, None, size, download)
    a, b = base.x[base.y == class_a][:limit], base.x[base.y == class_b][:limit]
    names = base.classes or tuple(map(str, range(10)))
    dataset = UnpairedDataset(a, b, seed=seed, name="fashion-pair-classes",
                              domains=(names[class_a], names[class_b]), extractor=base.extractor)
    dataset.class_a, dataset.class_b = class_a, class_b
    return dataset


# ---------------------------------------------------------------------- MNIST, thin <-> thick
def disk(radius: int) -> np.ndarray:
    """The boolean disk footprint {(i, j): i^2 + j^2 <= radius^2}, (2r+1) x (2r+1)."""
    r = np.arange(-radius, radius + 1)
    return r[:, None] ** 2 + r[None, :] ** 2 <= radius ** 2


def thicken(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Grey-scale dilation of images ``x`` (N, 1, H, W) (bright strokes on -1) by a disk of
    ``radius``: out(p) = max over q in the disk of x(p + q) (``scipy.ndimage.grey_dilation``,
    the border extended by -1)."""
    from scipy.ndimage import grey_dilation

    if radius == 0:
        return x.clone()
    footprint = disk(radius)[None, None]
    out = grey_dilation(x.numpy(), footprint=footprint, mode="constant", cval=-1.0)
    return torch.from_numpy(np.ascontiguousarray(out)).float()


@register_dataset("mnist-thickness")
def mnist_thickness(root: str | None = None, split: str = "train", limit: int | None = None,
                    radius: int = 1, test_size: int = 2000, source: str = "test", size: int = 32,
                    seed: int = 0, download: bool = False) -> UnpairedDataset | PairedDataset:
    """MNIST thin (A) <-> thick (B, :func:`thicken` by ``radius``), see the module docstring:
    the IDX split ``source`` shuffled by ``seed``, ``test_size`` held out (``split: test``, true
    pairs), the rest in disjoint halves (``split: train``, unpaired; ``limit`` caps each half).
    Padded from 28x28 to ``size``."""
    _check_split(split)
    _check_count(radius, "radius", "set data.radius=1 (a 3x3 disk) or 2", minimum=0)
    _check_count(test_size, "test_size", "set data.test_size=2000")
    _check_count(size, "size", "set data.size=32", minimum=NATIVE_SIZE)
    if limit is not None:
        _check_count(limit, "limit", "set data.limit to e.g. 2000, or null for all")
    base = load_idx_dataset("mnist", root, source, NATIVE_SIZE, download)
    n = len(base.x)
    if test_size > n - 2:
        raise GanforgeError(f"data.test_size={test_size} leaves fewer than 2 of the {n} images to train on",
                            f"set data.test_size below {n - 1}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    train, test = order[:n - test_size], order[n - test_size:]
    x = pad_images(base.x, size)   # padded first: thick strokes may grow into the border
    if split == "test":
        thin = x[test]
        return PairedDataset(thicken(thin, radius), thin, name="mnist-thickness", extractor=base.extractor)
    half = len(train) // 2
    a_idx, b_idx = train[:half][:limit], train[half:][:limit]
    a, b = x[a_idx], thicken(x[b_idx], radius)
    dataset = UnpairedDataset(a, b, seed=seed, name="mnist-thickness", domains=("thin", "thick"),
                              extractor=base.extractor, partner=thicken(a, radius))
    dataset.a_index, dataset.b_index = a_idx, b_idx   # positions in the source split
    return dataset
