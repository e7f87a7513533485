"""Train the ``photo`` feature network of the perceptual losses (:mod:`ganforge.models.perceptual`).

    python -m ganforge.metrics.train_photo_features [--steps 1500] [--seed 0] [--out DIR]

Task (self-supervised, no labels needed): a random ``size`` x ``size`` crop of one of the
*training* photographs of ``photo-patches`` (the held-out ``chelsea`` and ``flower`` are never
seen), randomly flipped left-right and rotated by k * 90 degrees; the network predicts
(photograph, k), P * 4 classes, with cross-entropy. Telling the photographs apart needs colour and
texture statistics, telling the rotations apart needs oriented structure (edges, sky-up): the
relu1_2 / relu2_2 features then respond to the local structure a perceptual loss should keep.
Adam (lr 2e-3, cosine decay), batch 64, everything random from ``--seed``. Writes
``photo_features.pt`` (state_dict) and ``photo_features.json`` (provenance: photographs, task,
steps, seed, held-out accuracy on crops of the training photographs drawn from another seed,
seconds, torch version, sha256) into ``--out`` (default: the package's ``weights`` folder).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ganforge.data.photos import DEFAULT_TEST, PHOTOS, load_photo, random_crops
from ganforge.models.perceptual import PHOTO_WEIGHTS, PhotoFeatures
from ganforge.weights import sha256_file, weights_dir


def batch(photos: list[torch.Tensor], n: int, size: int, gen: torch.Generator
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` (crop, label) pairs: label = 4 * photograph + rotation."""
    which = torch.randint(len(photos), (n,), generator=gen)
    rot = torch.randint(4, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    xs = []
    for p, r, f in zip(which.tolist(), rot.tolist(), flip.tolist(), strict=True):
        x = random_crops(photos[p], 1, size, gen)[0]
        x = x.flip(-1) if f else x
        xs.append(torch.rot90(x, r, dims=(1, 2)))
    return torch.stack(xs), which * 4 + rot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--downscale", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    names = [p for p in PHOTOS if p not in DEFAULT_TEST]
    photos = [load_photo(p, args.downscale) for p in names]
    net = PhotoFeatures(num_classes=4 * len(names))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    gen = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    for step in range(args.steps):
        x, y = batch(photos, 64, args.size, gen)
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0:
            print(f"step {step} loss {loss.item():.3f}", flush=True)
    seconds = time.perf_counter() - start
    net.eval()
    with torch.no_grad():
        x, y = batch(photos, 2000, args.size, torch.Generator().manual_seed(args.seed + 1000))
        accuracy = float((net(x).argmax(1) == y).float().mean())
    out = args.out or weights_dir()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{PHOTO_WEIGHTS}.pt"
    torch.save(net.state_dict(), path)
    meta = {"name": PHOTO_WEIGHTS, "architecture": "PhotoFeatures",
            "data": f"photo-patches training photographs {names} (downscale {args.downscale}); "
                    f"held-out photographs {list(DEFAULT_TEST)} never seen",
            "task": "predict (photograph, rotation k*90) of a random flipped crop: "
                    f"{4 * len(names)} classes",
            "crop": args.size, "steps": args.steps, "batch_size": 64, "seed": args.seed,
            "optimizer": "Adam(lr=0.002), cosine decay",
            "accuracy_fresh_crops": round(accuracy, 5), "train_seconds": round(seconds, 1),
            "torch": torch.__version__, "script": "python -m ganforge.metrics.train_photo_features",
            "sha256": sha256_file(path)}
    (out / f"{PHOTO_WEIGHTS}.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
