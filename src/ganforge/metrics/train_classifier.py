"""Train the image classifiers behind ganforge's feature extractors.

    python -m ganforge.metrics.train_classifier --dataset mnist    [--root MNIST_IDX_FOLDER]
    python -m ganforge.metrics.train_classifier --dataset fashion  [--root FASHION_MNIST_IDX_FOLDER]
    python -m ganforge.metrics.train_classifier --dataset digits

``mnist``: trained on 8,000 of the 10,000 MNIST test-split images (a seeded random permutation
with seed 0; the other 2,000 are held out), random +-2 pixel shifts as augmentation.
``fashion``: trained on the 60,000-image Fashion-MNIST train split only; the held-out accuracy is
the accuracy on the 10,000-image test split, which training never sees.
``digits``: scikit-learn's 1,797 8x8 digits, seeded stratified 80/20 split (seed 0).
``--root`` (the folder of the IDX files) defaults to the dataset's cache folder,
``~/.cache/ganforge/<mnist|fashion-mnist>``; it is never recorded, the md5 sums of the
decompressed IDX files that were read are. Adam with a one-cycle learning-rate schedule;
everything random flows from ``--seed``. Writes ``lenet_<dataset>.pt`` (state_dict) and
``lenet_<dataset>.json`` (provenance: data, split, file md5s, seed, epochs, held-out accuracy,
sha256 of the weights) into ``--out`` (default: the package's ``weights`` folder).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.data.idx import read_bytes
from ganforge.data.mnist import SPLITS, default_root, find_file, split_stems
from ganforge.weights import ARCHITECTURES, sha256_file, weights_dir

SETTINGS = {"mnist": {"epochs": 30, "batch_size": 64, "lr": 3e-3, "shift": 2},
            "fashion": {"epochs": 15, "batch_size": 128, "lr": 3e-3, "shift": 1},
            "digits": {"epochs": 60, "batch_size": 32, "lr": 3e-3, "shift": 1}}
# --dataset -> the ganforge.data dataset name of its IDX files (digits has none).
IDX_DATASETS = {"mnist": "mnist", "fashion": "fashion-mnist"}
ROOT_NOT_RECORDED = "data.root given on the command line (not recorded)"

Split = tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor], dict[str, Any]]


def idx_md5(name: str, root: Path, split: str) -> dict[str, str]:
    """md5 of the decompressed bytes of each IDX file of ``split`` that ``build_dataset`` reads
    from ``root``, keyed by file name without ``.gz``.

    Decompressed, because the same data is served gzip-compressed with different settings (so the
    .gz md5s in :data:`ganforge.data.mnist.SOURCES` only identify the upstream downloads).
    """
    sums = {}
    for prefix in SPLITS[split]:
        for stem in split_stems(prefix):
            path = find_file(root, stem)
            if path is None:
                raise FileNotFoundError(f"{root / stem}[.gz]")
            sums[stem] = hashlib.md5(read_bytes(path)).hexdigest()
    return sums


def split_mnist(root: Path, seed: int) -> Split:
    """8,000 training and 2,000 held-out images of the MNIST test split (seeded permutation)."""
    from ganforge.data import build_dataset

    ds = build_dataset({"name": "mnist", "root": str(root), "split": "test"})
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))
    train, held = perm[:8000], perm[8000:]
    info = {"data": "MNIST test split (t10k, 10,000 images)", "root": ROOT_NOT_RECORDED,
            "idx_md5_decompressed": idx_md5("mnist", root, "test"),
            "split": f"seeded random permutation (torch.randperm, seed {seed}): first 8,000 train, "
                     f"last 2,000 held out", "n_train": 8000, "n_held_out": 2000}
    return (ds.x[train], ds.y[train]), (ds.x[held], ds.y[held]), info


def split_fashion(root: Path) -> Split:
    """The whole Fashion-MNIST train split for training, the whole test split held out."""
    from ganforge.data import build_dataset

    train = build_dataset({"name": "fashion-mnist", "root": str(root), "split": "train"})
    test = build_dataset({"name": "fashion-mnist", "root": str(root), "split": "test"})
    info = {"data": f"Fashion-MNIST train split ({len(train):,} images); held out: its test split "
                    f"(t10k, {len(test):,} images)",
            "root": ROOT_NOT_RECORDED,
            "idx_md5_decompressed": {**idx_md5("fashion-mnist", root, "train"),
                                     **idx_md5("fashion-mnist", root, "test")},
            "split": "trained on the train split only; held-out accuracy is the test-split accuracy "
                     "(no test image is used in training or model selection)",
            "train_split": "train", "held_out_split": "test",
            "n_train": len(train), "n_held_out": len(test)}
    return (train.x, train.y), (test.x, test.y), info


def split_digits(seed: int) -> Split:
    """scikit-learn's 8x8 digits, stratified 80/20 (``random_state=seed``)."""
    from sklearn.model_selection import train_test_split

    from ganforge.data import build_dataset

    ds = build_dataset({"name": "digits", "size": 8})
    idx = np.arange(len(ds))
    tr, te = train_test_split(idx, test_size=0.2, random_state=seed, stratify=ds.y.numpy())
    tr, te = torch.from_numpy(np.sort(tr)), torch.from_numpy(np.sort(te))
    info = {"data": "scikit-learn load_digits (1,797 8x8 images)",
            "split": f"sklearn train_test_split(test_size=0.2, stratify=labels, random_state={seed})",
            "n_train": len(tr), "n_held_out": len(te)}
    return (ds.x[tr], ds.y[tr]), (ds.x[te], ds.y[te]), info


#: each classifier's data split: ``(seed)`` for in-package data, ``(root, seed)`` for IDX files
SPLITTERS: dict[str, Callable[..., Split]] = {
    "digits": split_digits, "mnist": split_mnist, "fashion": lambda root, seed: split_fashion(root)}


def load_split(dataset: str, root: Path | None, seed: int) -> Split:
    """Training and held-out data of ``dataset`` and their provenance (no absolute paths).

    ``root`` (ignored for data without IDX files) defaults to ``default_root`` of the dataset's
    IDX files.
    """
    if dataset not in IDX_DATASETS:
        return SPLITTERS[dataset](seed)
    root = default_root(IDX_DATASETS[dataset]) if root is None else Path(root).expanduser()
    return SPLITTERS[dataset](root, seed)


def random_shift(x: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by an integer offset in [-shift, shift]^2 (background -1 fills)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (shift,) * 4, value=-1.0)
    dx = torch.randint(0, 2 * shift + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * shift + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :]
    return padded[torch.arange(n)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None],
                  rows, cols]


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    pred = torch.cat([model(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    return float((pred == y).float().mean())


def train(dataset: str, seed: int = 0, root: Path | None = None, out: Path | None = None,
          epochs: int | None = None) -> dict[str, Any]:
    """Train classifier ``dataset`` (a key of ``ARCHITECTURES``) with ``SETTINGS[dataset]``
    (``epochs`` overrides its epochs) on the current torch thread count; write
    ``lenet_<dataset>.pt`` and ``.json`` into ``out`` (default: the package's weights folder) and
    return the provenance written.
    """
    torch.manual_seed(seed)
    settings = dict(SETTINGS[dataset])
    if epochs is not None:
        settings["epochs"] = epochs
    (xtr, ytr), (xte, yte), info = load_split(dataset, root, seed)
    model = ARCHITECTURES[dataset]()
    opt = torch.optim.Adam(model.parameters(), lr=settings["lr"], weight_decay=1e-4)
    steps_per_epoch = -(-len(xtr) // settings["batch_size"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, settings["lr"], epochs=settings["epochs"],
                                                steps_per_epoch=steps_per_epoch)
    g = torch.Generator().manual_seed(seed + 1)
    start = time.perf_counter()
    for epoch in range(settings["epochs"]):
        model.train()
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), settings["batch_size"]):
            idx = perm[i:i + settings["batch_size"]]
            xb = random_shift(xtr[idx], settings["shift"], g)
            loss = F.cross_entropy(model(xb), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if epoch % 5 == 4 or epoch == settings["epochs"] - 1:
            print(f"epoch {epoch + 1}: loss {loss.item():.4f}  held-out acc {accuracy(model, xte, yte):.4f}")
    acc_train, acc_held = accuracy(model, xtr, ytr), accuracy(model, xte, yte)
    out = Path(out) if out is not None else weights_dir()
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"lenet_{dataset}.pt"
    torch.save({k: v.contiguous() for k, v in model.state_dict().items()}, weights)
    provenance = {
        "name": f"lenet_{dataset}", "architecture": ARCHITECTURES[dataset].__name__,
        **info, "seed": seed, "epochs": settings["epochs"], "batch_size": settings["batch_size"],
        "optimizer": f"Adam(lr={settings['lr']}, weight_decay=1e-4), OneCycleLR",
        "augmentation": f"random integer shifts of up to {settings['shift']} px",
        "train_accuracy": round(acc_train, 5), "held_out_accuracy": round(acc_held, 5),
        "train_seconds": round(time.perf_counter() - start, 1), "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "script": "python -m ganforge.metrics.train_classifier --dataset " + dataset,
        "sha256": sha256_file(weights),
    }
    (out / f"lenet_{dataset}.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(json.dumps(provenance, indent=2))
    return provenance


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m ganforge.metrics.train_classifier``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(ARCHITECTURES), required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", type=Path, default=None,
                        help="folder of the IDX files (mnist, fashion); default "
                             "~/.cache/ganforge/<mnist|fashion-mnist>; not recorded")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: the package's weights folder)")
    parser.add_argument("--epochs", type=int, default=None, help="override SETTINGS[dataset]")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    train(args.dataset, args.seed, args.root, args.out, args.epochs)


if __name__ == "__main__":
    main()
