"""MNIST, Fashion-MNIST and KMNIST from their IDX files, downloaded on request.

Each dataset lives in one directory (``data.root``, default ``~/.cache/ganforge/<name>``) holding
``{train,t10k}-{images-idx3,labels-idx1}-ubyte`` files, gzip-compressed (``.gz``) or raw. Files
that are present are used as they are (and validated structurally when read); with
``download=True`` only the missing ones are fetched, from the mirrors in :data:`SOURCES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganforge.data.base import ArrayDataset, register_dataset
from ganforge.data.download import download_from_mirrors
from ganforge.data.idx import read_idx_images, read_idx_labels
from ganforge.data.transforms import pad_images, resize_images, uint8_to_unit_range
from ganforge.errors import GanforgeError


@dataclass(frozen=True)
class IdxSource:
    """Where an IDX dataset is published: base URLs tried in order, and md5 sums of the .gz files
    as served (the values torchvision uses)."""

    title: str
    mirrors: tuple[str, ...]
    md5: Mapping[str, str]
    classes: tuple[str, ...]
    #: the in-project classifier whose features score generated samples of this dataset
    extractor: str = "lenet_mnist"


# Module-level so tests (and users behind a local mirror) can replace entries.
SOURCES: dict[str, IdxSource] = {
    "mnist": IdxSource(
        title="MNIST",
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "http://yann.lecun.com/exdb/mnist/"),
        md5={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        classes=tuple(str(d) for d in range(10)),
    ),
    "fashion-mnist": IdxSource(
        title="Fashion-MNIST",
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        md5={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot"),
        extractor="lenet_fashion",
    ),
    "kmnist": IdxSource(
        title="KMNIST",
        mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
        md5={
            "train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
            "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
            "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
            "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134",
        },
        classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    ),
}

SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "test": ("t10k",),
    "all": ("train", "t10k"),
}
NATIVE_SIZE = 28
DOWNLOAD_TIMEOUT = 60.0


def default_root(name: str) -> Path:
    """``~/.cache/ganforge/<name>``."""
    return Path.home() / ".cache" / "ganforge" / name


def split_stems(prefix: str) -> tuple[str, str]:
    """File names without ``.gz`` of the images and labels of one split (``train`` or ``t10k``)."""
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def find_file(root: Path, stem: str) -> Path | None:
    """``root/stem.gz`` or else ``root/stem`` if either is a file, else None."""
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.is_file():
            return candidate
    return None


def _ensure_files(name: str, root: Path, split: str, download: bool) -> None:
    """Raise GanforgeError for missing files, or download them when ``download``."""
    source = SOURCES[name]
    stems = [stem for prefix in SPLITS[split] for stem in split_stems(prefix)]
    missing = [stem for stem in stems if find_file(root, stem) is None]
    if not missing:
        return
    fix = ("pass data.download=true to download the missing files, "
           "or point data.root at a folder holding the IDX files")
    if not download:
        if not root.exists():
            raise GanforgeError(f"{source.title} directory {root} does not exist", fix)
        names = ", ".join(f"{stem}[.gz]" for stem in missing)
        raise GanforgeError(
            f"{source.title} {split} split is incomplete in {root}: missing {names}", fix)
    created = [p for p in (root, *root.parents) if not p.exists()]
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise GanforgeError(f"cannot create {root}: {err.strerror or err}",
                            "point data.root at a writable folder") from err
    try:
        for stem in missing:
            filename = f"{stem}.gz"
            download_from_mirrors(filename, source.mirrors, root, source.md5.get(filename),
                                  timeout=DOWNLOAD_TIMEOUT)
    except BaseException:
        for folder in created:  # a failed download leaves no folder it made behind
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise


def _read_split(root: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    images_stem, labels_stem = split_stems(prefix)
    images_path = find_file(root, images_stem) or root / f"{images_stem}.gz"
    labels_path = find_file(root, labels_stem) or root / f"{labels_stem}.gz"
    images, labels = read_idx_images(images_path), read_idx_labels(labels_path)
    if len(images) != len(labels):
        raise GanforgeError(
            f"{images_path} holds {len(images)} images "
            f"but {labels_path} holds {len(labels)} labels",
            "delete both files and download them again",
        )
    if len(labels) and labels.max() > 9:
        raise GanforgeError(f"{labels_path} has label {int(labels.max())}, expected 0..9",
                            f"delete {labels_path} and download it again")
    return images, labels


def load_idx_dataset(name: str, root: str | None = None, split: str = "train",
                     size: int = NATIVE_SIZE, download: bool = False,
                     pad_to: int | None = None) -> ArrayDataset:
    """Load one of :data:`SOURCES` as float32 (N, 1, size, size) in [-1, 1] with int64 labels.

    ``split``: ``train`` (60,000), ``test`` (10,000, files ``t10k-*``) or ``all`` (train then
    test; both must be present). ``size`` other than 28 resizes bilinearly. ``pad_to`` (>= size)
    then centres the images on a ``pad_to`` x ``pad_to`` background of -1 (28 -> 32 adds 2 px a
    side, the usual way to give 28 px data a power-of-two side without resampling).
    """
    if split not in SPLITS:
        raise GanforgeError(f"unknown split {split!r}",
                            f"set data.split to one of: {', '.join(SPLITS)}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise GanforgeError(f"data.size must be a positive int, got {size!r}",
                            f"set data.size to e.g. {NATIVE_SIZE} or 32")
    if not isinstance(download, bool):
        raise GanforgeError(f"data.download must be true or false, got {download!r}",
                            "set data.download=true or data.download=false")
    if pad_to is not None and (isinstance(pad_to, bool) or not isinstance(pad_to, int)
                               or pad_to < size):
        raise GanforgeError(f"data.pad_to must be an int >= data.size ({size}), got {pad_to!r}",
                            "set e.g. data.pad_to=32 with data.size=28, or drop it")
    path = default_root(name) if root is None else Path(root).expanduser()
    if path.exists() and not path.is_dir():
        raise GanforgeError(f"data.root {path} is a file, not a directory",
                            "point data.root at the folder holding the IDX files")
    _ensure_files(name, path, split, download)

    parts = [_read_split(path, prefix) for prefix in SPLITS[split]]
    shapes = {images.shape[1:] for images, _ in parts}
    if len(shapes) > 1:
        raise GanforgeError(
            f"the train and test images in {path} differ in size ({sorted(shapes)})",
            "delete the IDX files and download them again")
    images = np.concatenate([images for images, _ in parts])
    labels = np.concatenate([labels for _, labels in parts])
    x = resize_images(uint8_to_unit_range(images).unsqueeze(1), size)
    if pad_to is not None:
        x = pad_images(x, pad_to)
    y = torch.from_numpy(labels.astype(np.int64))
    return ArrayDataset(x, y, name=name, num_classes=10, classes=SOURCES[name].classes,
                        extractor=SOURCES[name].extractor)


@register_dataset("mnist")
def mnist(root: str | None = None, split: str = "train", size: int = NATIVE_SIZE,
          download: bool = False, pad_to: int | None = None) -> ArrayDataset:
    """Handwritten digits 0..9 (LeCun et al.); see :func:`load_idx_dataset`."""
    return load_idx_dataset("mnist", root, split, size, download, pad_to)


@register_dataset("fashion-mnist")
def fashion_mnist(root: str | None = None, split: str = "train", size: int = NATIVE_SIZE,
                  download: bool = False, pad_to: int | None = None) -> ArrayDataset:
    """Zalando's clothing images, 10 classes; see :func:`load_idx_dataset`."""
    return load_idx_dataset("fashion-mnist", root, split, size, download, pad_to)


@register_dataset("kmnist")
def kmnist(root: str | None = None, split: str = "train", size: int = NATIVE_SIZE,
           download: bool = False, pad_to: int | None = None) -> ArrayDataset:
    """Kuzushiji (cursive Japanese) characters, 10 classes; see :func:`load_idx_dataset`."""
    return load_idx_dataset("kmnist", root, split, size, download, pad_to)
