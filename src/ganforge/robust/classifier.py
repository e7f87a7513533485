"""The classifier to defend, trained plainly or by PGD adversarial training, and the files that
hold it and the other trained parts of a defence.

The network is the shipped Fashion-MNIST LeNet's layout (:class:`ganforge.weights.LeNetFashion`:
two 5x5 convolutions with batch normalisation, 64 features, 10 classes), trained here from a
seed. :class:`UnitClassifier` takes images in [0, 1], the attacks' pixel range, and feeds the
network x * 2 - 1.

PGD adversarial training (Madry et al. 2018) minimises
    E_(x, y) [ max_{||d||_inf <= eps} CE(f(x + d), y) ]
with the inner maximum approximated by ``adv_steps`` PGD steps of size 2.5 eps / steps from a
random start (torchattacks' PGD, on the network in eval mode); eps grows linearly from 0 over the
first ``adv_warmup`` share of the updates (a full-eps start can stall at chance on
Fashion-MNIST), and every batch is trained on its adversarial images only.

Files: one ``torch.save`` dict of plain types and tensors, ``{"format": FORMAT, "role": ...,
"meta": {...}, "state_dict": {...}}``, written atomically and read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganforge._io import atomic_write
from ganforge.errors import GanforgeError
from ganforge.weights import LeNetFashion

FORMAT = "ganforge-robust-1"


class UnitClassifier(nn.Module):
    """Images (N, 1, 28, 28) in [0, 1] -> 10 logits; ``meta`` says what it was trained on."""

    def __init__(self, meta: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.net = LeNetFashion()
        self.meta: dict[str, Any] = dict(meta or {})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)


def check_positive_ints(config: Any, keys: tuple[str, ...], what: str) -> None:
    """A one-line error for the first of ``config``'s ``keys`` that is not a positive int."""
    for key in keys:
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise GanforgeError(
                f"{what} {key} must be a positive integer, got {value!r}",
                f"pass e.g. {getattr(type(config), key)}",
            )


@dataclass(frozen=True)
class ClassifierConfig:
    """How a classifier is trained. ``adv_eps`` None: plainly; a radius: PGD adversarial training."""

    epochs: int = 3
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    adv_eps: float | None = None
    adv_steps: int = 7
    adv_warmup: float = 0.3

    def check(self) -> None:
        check_positive_ints(self, ("epochs", "batch_size", "adv_steps"), "classifier")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise GanforgeError(f"classifier lr must be a positive number, got {self.lr!r}", "pass e.g. 3e-3")
        if self.adv_eps is not None and not (math.isfinite(self.adv_eps) and 0 < self.adv_eps <= 1):
            raise GanforgeError(
                f"adversarial-training eps {self.adv_eps!r} is outside (0, 1]",
                "pixels are in [0, 1]: pass e.g. 0.1 or 0.3",
            )
        if not 0 <= self.adv_warmup < 1:
            raise GanforgeError(f"adv_warmup must be in [0, 1), got {self.adv_warmup!r}", "pass e.g. 0.3")


def check_images(images: torch.Tensor, labels: torch.Tensor | None = None, *, what: str = "images") -> None:
    """One-line errors for images that are not (N, 1, 28, 28) in [0, 1] with matching labels."""
    if images.ndim != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise GanforgeError(
            f"{what} have shape {tuple(images.shape)}, not (N, 1, 28, 28)",
            "use 28x28 grayscale images such as MNIST or Fashion-MNIST",
        )
    if len(images) == 0:
        raise GanforgeError(f"no {what}", "pass at least one image")
    if not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        raise GanforgeError(f"{what} must be finite and in [0, 1]", "map [-1, 1] images with (x + 1) / 2")
    if labels is not None and (labels.shape != (len(images),) or labels.min() < 0 or labels.max() > 9):
        raise GanforgeError(
            f"labels of shape {tuple(labels.shape)} do not fit {len(images)} {what} and 10 classes",
            "pass one class index 0..9 per image",
        )


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    config: ClassifierConfig = ClassifierConfig(),
    *,
    meta: dict[str, Any] | None = None,
    device: str | torch.device = "cpu",
    log: Callable[[str], None] | None = None,
) -> UnitClassifier:
    """Train a :class:`UnitClassifier` on ``images`` (N, 1, 28, 28) in [0, 1] and ``labels``.

    Adam with weight decay under a one-cycle rate schedule, random shifts of up to 1 px, batches
    drawn from ``config.seed``; with ``config.adv_eps`` every batch is replaced by its PGD
    adversarial images (see the module docstring)."""
    config.check()
    check_images(images, labels)
    device = torch.device(device)
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    model = UnitClassifier().to(device)
    n = len(images)
    per_epoch = max(1, n // config.batch_size)
    total = per_epoch * config.epochs
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total)
    attack = None
    if config.adv_eps is not None:
        from ganforge.robust.attacks import require_torchattacks

        attack = require_torchattacks().PGD(
            model,
            eps=config.adv_eps,
            steps=config.adv_steps,
            alpha=2.5 * config.adv_eps / config.adv_steps,
            random_start=True,
        )
    started, step = time.perf_counter(), 0
    for epoch in range(config.epochs):
        order = torch.randperm(n, generator=generator)
        correct = 0
        for b in range(per_epoch):
            idx = order[b * config.batch_size : (b + 1) * config.batch_size]
            x = _shift(images[idx], generator).to(device)
            y = labels[idx].to(device)
            if attack is not None:
                eps = config.adv_eps * min(1.0, (step + 1) / max(1.0, config.adv_warmup * total))
                attack.eps, attack.alpha = eps, 2.5 * eps / config.adv_steps
                x = attack(x, y).detach()
            model.train()
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            correct += int((logits.argmax(1) == y).sum())
            step += 1
        if log is not None:
            log(
                f"epoch {epoch + 1}/{config.epochs}: "
                f"train accuracy {correct / (per_epoch * config.batch_size):.3f}"
                f"{' (adversarial)' if attack is not None else ''}, {time.perf_counter() - started:.0f} s"
            )
    model.eval()
    model.meta = {
        **(meta or {}),
        **asdict(config),
        "seconds": round(time.perf_counter() - started, 1),
        "n_train": n,
        "shape": [1, 28, 28],
    }
    return model


def _shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image shifted by up to 1 px in each direction (zero, i.e. black, fill)."""
    dx, dy = (int(v) for v in torch.randint(-1, 2, (2,), generator=generator))
    if dx == 0 and dy == 0:
        return x
    padded = F.pad(x, (1, 1, 1, 1))
    return padded[:, :, 1 + dy : 29 + dy, 1 + dx : 29 + dx]


def in_batches(
    fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch_size: int, module: nn.Module
) -> torch.Tensor:
    """``fn`` of ``images`` in batches of ``batch_size``, each moved to ``module``'s device, the
    results concatenated on the CPU."""
    device = next(module.parameters()).device
    return torch.cat(
        [fn(images[i : i + batch_size].to(device)).cpu() for i in range(0, len(images), batch_size)]
    )


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Class predictions (N,) of ``model`` in eval mode, on its device, back on the CPU."""
    model.eval()
    return in_batches(lambda batch: model(batch).argmax(1), images, batch_size, model)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    return float((predict(model, images) == labels).float().mean())


# ----------------------------------------------------------------------------------------- files


def save_part(module: nn.Module, path: str | Path, role: str, meta: dict[str, Any]) -> Path:
    """Write ``module``'s weights and ``meta`` (JSON-able) to ``path`` at once or not at all."""
    state = {
        "format": FORMAT,
        "role": role,
        "meta": meta,
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
    }
    return atomic_write(path, lambda f: torch.save(state, f))


def load_part(path: str | Path, role: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict and meta of a file :func:`save_part` wrote for ``role``; a one-line error
    for a missing file, one that is not ganforge's, or one holding another part."""
    path = Path(path)
    if not path.is_file():
        raise GanforgeError(f"{role} file {path} does not exist", f"train one with `ganforge robust {role}`")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  pickle, zip and torch errors alike: not our file
        raise GanforgeError(
            f"{path} is not a ganforge {role} file ({type(err).__name__})",
            f"pass a file written by `ganforge robust {role}`",
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise GanforgeError(
            f"{path} is not a ganforge {role} file", f"pass a file written by `ganforge robust {role}`"
        )
    if state.get("role") != role:
        raise GanforgeError(
            f"{path} holds a {state.get('role')}, not a {role}",
            f"pass a file written by `ganforge robust {role}`",
        )
    return state["state_dict"], dict(state["meta"])


def module_from_state(module: nn.Module, weights: dict[str, torch.Tensor], meta: dict[str, Any]) -> nn.Module:
    """``module`` with ``weights`` loaded and ``meta`` attached, in eval mode."""
    module.load_state_dict(weights)
    module.meta = meta
    return module.eval()


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> UnitClassifier:
    weights, meta = load_part(path, "classifier")
    if list(meta.get("shape", [])) != [1, 28, 28]:
        raise GanforgeError(
            f"classifier {path} was trained on images of shape {meta.get('shape')}, not (1, 28, 28)",
            "train a classifier on 28x28 grayscale images",
        )
    model = UnitClassifier(meta)
    try:
        model.load_state_dict(weights)
    except RuntimeError:
        raise GanforgeError(
            f"classifier {path} does not hold this network's weights",
            "train it again with `ganforge robust classifier`",
        ) from None
    return model.to(device).eval()
