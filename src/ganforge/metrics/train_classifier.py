"""Train the digit classifiers behind ganforge's feature extractors.

    python -m ganforge.metrics.train_classifier --dataset mnist  [--root ../shared/data/mnist]
    python -m ganforge.metrics.train_classifier --dataset digits

``mnist``: trained on 8,000 of the 10,000 MNIST test-split images (a seeded random permutation
with seed 0; the other 2,000 are held out), random +-2 pixel shifts as augmentation.
``digits``: scikit-learn's 1,797 8x8 digits, seeded stratified 80/20 split (seed 0).
Adam with a one-cycle learning-rate schedule; everything random flows from ``--seed``.
Writes ``lenet_<dataset>.pt`` (state_dict) and ``lenet_<dataset>.json`` (provenance: data, split,
seed, epochs, held-out accuracy, sha256 of the weights) into ``--out`` (default: the package's
``metrics/weights`` folder).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.metrics.classifier import ARCHITECTURES, sha256_file, weights_dir

DEFAULT_MNIST_ROOT = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "mnist"
SETTINGS = {"mnist": {"epochs": 30, "batch_size": 64, "lr": 3e-3, "shift": 2},
            "digits": {"epochs": 60, "batch_size": 32, "lr": 3e-3, "shift": 1}}


def split_mnist(root: Path, seed: int) -> tuple[tuple, tuple, dict]:
    from ganforge.data import build_dataset

    ds = build_dataset({"name": "mnist", "root": str(root), "split": "test"})
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))
    train, held = perm[:8000], perm[8000:]
    info = {"data": "MNIST test split (t10k, 10,000 images)", "root": str(root),
            "split": f"seeded random permutation (torch.randperm, seed {seed}): first 8,000 train, "
                     f"last 2,000 held out", "n_train": 8000, "n_held_out": 2000}
    return (ds.x[train], ds.y[train]), (ds.x[held], ds.y[held]), info


def split_digits(seed: int) -> tuple[tuple, tuple, dict]:
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


def train(dataset: str, seed: int = 0, root: Path = DEFAULT_MNIST_ROOT, out: Path | None = None,
          epochs: int | None = None) -> dict:
    torch.manual_seed(seed)
    settings = dict(SETTINGS[dataset])
    if epochs is not None:
        settings["epochs"] = epochs
    (xtr, ytr), (xte, yte), info = split_mnist(root, seed) if dataset == "mnist" else split_digits(seed)
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
        "train_seconds": round(time.perf_counter() - start, 1), "torch": torch.__version__,
        "script": "python -m ganforge.metrics.train_classifier --dataset " + dataset,
        "sha256": sha256_file(weights),
    }
    (out / f"lenet_{dataset}.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(json.dumps(provenance, indent=2))
    return provenance


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(ARCHITECTURES), required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", type=Path, default=DEFAULT_MNIST_ROOT, help="MNIST IDX folder")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    train(args.dataset, args.seed, args.root, args.out, args.epochs)


if __name__ == "__main__":
    main()
