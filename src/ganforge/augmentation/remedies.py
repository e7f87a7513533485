"""Remedies for class imbalance, all with one signature, so a benchmark compares them fairly.

Each remedy maps an imbalanced training set ``(x, y)`` (float32 images in [-1, 1], int64 labels)
to a :class:`TrainingSet`: the images and labels the classifier trains on, plus per-class loss
weights for the class-weighted remedy. The real images are always kept; the resampling remedies
add images to every class below the largest until the classes are balanced.

* ``none``: the data as they are.
* ``oversample``: random oversampling, imblearn's ``RandomOverSampler`` (duplicates).
* ``weighted``: the data as they are, cross-entropy weighted n / (K n_k) (scikit-learn's
  ``compute_class_weight("balanced")``).
* ``smote``: imblearn's ``SMOTE`` on the flattened pixels (new images interpolated between a
  minority image and one of its ``k_neighbors`` nearest minority neighbours).
* ``classical``: duplicates of randomly chosen minority images, each randomly flipped left-right,
  shifted by up to ``shift`` pixels and cropped-and-rescaled (a random square of at least
  ``min_crop`` of the side, resized back).
* ``gan``: samples of a class-conditional generator for the missing images of each class.
* ``gan-filtered``: the same, keeping only samples a *judge* assigns to their conditioning class
  with probability >= ``threshold`` (the most confident first).
* ``gan-every-class``: the ``gan`` top-up plus ``extra`` generated images in *every* class (by
  default as many as the largest class has): when only the rare class holds generated images, a
  classifier can learn "looks generated" as the rare class's cue and then miss its real images;
  with generated images in every class that cue predicts nothing.

A judge maps images to class probabilities (N, K): :func:`ac_head_judge` (an AC-GAN
discriminator's class head) or :func:`classifier_judge` (any classifier, e.g. one trained on the
imbalanced real data). A sampler maps (class, n, seed) to n images of that class:
:func:`generator_sampler` wraps a conditional generator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.data.imbalanced import class_counts
from ganforge.errors import GanforgeError

#: (class k, n, seed) -> n images (n, C, H, W) generated for class k
Sampler = Callable[[int, int, int], torch.Tensor]
#: images (N, C, H, W) -> class probabilities (N, K)
Judge = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class TrainingSet:
    """What a classifier trains on: ``x`` (N, C, H, W), ``y`` (N,), optional ``class_weight`` (K,)
    for the loss, and ``info`` (counts, acceptance rates...) for the record."""

    x: torch.Tensor
    y: torch.Tensor
    class_weight: torch.Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)


def missing_per_class(y: torch.Tensor, num_classes: int) -> list[int]:
    """How many images each class lacks to match the largest class."""
    counts = class_counts(y, num_classes)
    return [max(counts) - c for c in counts]


def _with_added(x: torch.Tensor, y: torch.Tensor, added: list[tuple[int, torch.Tensor]],
                num_classes: int, **info: Any) -> TrainingSet:
    xs = [x, *(a for _, a in added)]
    ys = [y, *(torch.full((len(a),), k, dtype=torch.long) for k, a in added)]
    out_y = torch.cat(ys)
    return TrainingSet(torch.cat(xs), out_y,
                       info={"counts": class_counts(out_y, num_classes),
                             "added": int(sum(len(a) for _, a in added)), **info})


def _imblearn_over_sampling():
    """imblearn's over_sampling module, or a one-line error naming the extra that installs it."""
    try:
        from imblearn import over_sampling
    except ImportError as err:
        raise GanforgeError("random oversampling and SMOTE need imbalanced-learn",
                            'pip install "ganforge[augment]"') from err
    return over_sampling


def no_remedy(x: torch.Tensor, y: torch.Tensor, num_classes: int, *, seed: int = 0) -> TrainingSet:
    """The imbalanced data unchanged."""
    return TrainingSet(x, y, info={"counts": class_counts(y, num_classes), "added": 0})


def random_oversampling(x: torch.Tensor, y: torch.Tensor, num_classes: int, *,
                        seed: int = 0) -> TrainingSet:
    """imblearn's ``RandomOverSampler(random_state=seed)``: duplicates until balanced."""
    idx = np.arange(len(y)).reshape(-1, 1)
    res, _ = _imblearn_over_sampling().RandomOverSampler(random_state=seed).fit_resample(idx, y.numpy())
    res = torch.from_numpy(res.ravel())
    return TrainingSet(x[res], y[res], info={"counts": class_counts(y[res], num_classes),
                                             "added": len(res) - len(y)})


def class_weighted(x: torch.Tensor, y: torch.Tensor, num_classes: int, *,
                   seed: int = 0) -> TrainingSet:
    """The data unchanged, cross-entropy weights n / (K n_k) for the classes present
    (scikit-learn's ``compute_class_weight("balanced")``; an absent class gets weight 0)."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(y.numpy())
    w = compute_class_weight("balanced", classes=present, y=y.numpy())
    weight = torch.zeros(num_classes)
    weight[torch.from_numpy(present)] = torch.from_numpy(w).float()
    return TrainingSet(x, y, class_weight=weight,
                       info={"counts": class_counts(y, num_classes), "added": 0,
                             "class_weight": [round(float(v), 4) for v in weight]})


def smote(x: torch.Tensor, y: torch.Tensor, num_classes: int, *, seed: int = 0,
          k_neighbors: int = 5) -> TrainingSet:
    """imblearn's ``SMOTE`` on flattened pixels; ``k_neighbors`` is lowered to (smallest class
    size - 1) when that is smaller. A class with a single image cannot be interpolated: error."""
    smallest = min(c for c in class_counts(y, num_classes) if c > 0)
    if smallest < 2:
        raise GanforgeError("SMOTE needs at least 2 images in every class present",
                            "keep more images of the rare classes (raise fraction or min_count)")
    k = min(k_neighbors, smallest - 1)
    flat, labels = _imblearn_over_sampling().SMOTE(k_neighbors=k, random_state=seed).fit_resample(
        x.flatten(1).numpy(), y.numpy())
    xs = torch.from_numpy(flat).float().view(-1, *x.shape[1:]).clamp(-1, 1)
    ys = torch.from_numpy(labels).long()
    return TrainingSet(xs, ys, info={"counts": class_counts(ys, num_classes),
                                     "added": len(ys) - len(y), "k_neighbors": k})


def augment_images(x: torch.Tensor, generator: torch.Generator, *, flip: bool = True,
                   shift: int = 2, min_crop: float = 0.85) -> torch.Tensor:
    """Each image randomly flipped left-right (``flip``), cropped to a random square of side in
    [``min_crop``, 1] x side and resized back (bilinear), then shifted by up to ``shift`` pixels
    (background -1 fills). Deterministic given ``generator``."""
    n, c, h, w = x.shape
    out = x.clone()
    if flip:
        mirror = torch.rand(n, generator=generator) < 0.5
        out[mirror] = out[mirror].flip(-1)
    if min_crop < 1:
        scale = min_crop + (1 - min_crop) * torch.rand(n, generator=generator)
        for i in range(n):
            side = max(2, round(float(scale[i]) * h))
            top = int(torch.randint(0, h - side + 1, (1,), generator=generator))
            left = int(torch.randint(0, w - side + 1, (1,), generator=generator))
            crop = out[i:i + 1, :, top:top + side, left:left + side]
            out[i] = F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)[0]
    if shift > 0:
        padded = F.pad(out, (shift,) * 4, value=-1.0)
        dx = torch.randint(0, 2 * shift + 1, (n,), generator=generator)
        dy = torch.randint(0, 2 * shift + 1, (n,), generator=generator)
        out = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    return out.clamp(-1, 1)


def classical_augmentation(x: torch.Tensor, y: torch.Tensor, num_classes: int, *, seed: int = 0,
                           flip: bool = True, shift: int = 2, min_crop: float = 0.85) -> TrainingSet:
    """Each class topped up with augmented copies (:func:`augment_images`) of its own images,
    chosen uniformly with replacement."""
    g = torch.Generator().manual_seed(seed)
    added = []
    for k, need in enumerate(missing_per_class(y, num_classes)):
        pool = torch.nonzero(y == k).flatten()
        if need and len(pool):
            pick = pool[torch.randint(len(pool), (need,), generator=g)]
            added.append((k, augment_images(x[pick], g, flip=flip, shift=shift, min_crop=min_crop)))
    return _with_added(x, y, added, num_classes)


# --------------------------------------------------------------------------- generators


def generator_sampler(G: nn.Module, batch_size: int = 500) -> Sampler:
    """A :data:`Sampler` of a class-conditional ganforge generator (put in eval mode)."""

    @torch.no_grad()
    def sample(k: int, n: int, seed: int) -> torch.Tensor:
        G.eval()
        labels = torch.full((n,), k, dtype=torch.long)
        return G.sample(n, torch.Generator().manual_seed(seed), labels, batch_size).clamp(-1, 1).cpu()

    return sample


def ac_head_judge(D: nn.Module) -> Judge:
    """The class probabilities of an AC-GAN discriminator's auxiliary head (softmax of its class
    logits). Raises GanforgeError for a discriminator without one."""
    if getattr(D, "conditional", None) != "acgan":
        raise GanforgeError("this discriminator has no AC-GAN class head",
                            "judge with a classifier instead (train with model.conditional=acgan "
                            "to have one)")

    @torch.no_grad()
    def judge(x: torch.Tensor) -> torch.Tensor:
        D.eval()
        y = torch.zeros(len(x), dtype=torch.long)  # the class head does not read y
        return torch.cat([F.softmax(D.evaluate(x[i:i + 500], y[i:i + 500]).class_logits, 1)
                          for i in range(0, len(x), 500)])

    return judge


def classifier_judge(model: nn.Module) -> Judge:
    """The softmax probabilities of any image classifier (put in eval mode)."""

    @torch.no_grad()
    def judge(x: torch.Tensor) -> torch.Tensor:
        model.eval()
        return torch.cat([F.softmax(model(x[i:i + 500]), 1) for i in range(0, len(x), 500)])

    return judge


def sample_class(sampler: Sampler, k: int, n: int, *, seed: int = 0, judge: Judge | None = None,
                 threshold: float = 0.0, oversample: int = 4, max_rounds: int = 5
                 ) -> tuple[torch.Tensor, dict[str, Any]]:
    """``n`` generated images of class ``k``, or with a ``judge`` up to ``n`` of those it assigns
    to ``k`` with probability >= ``threshold``, the most confident first.

    With a judge, rounds of ``oversample * n`` draws (seeds ``seed``, ``seed + 1``...) are made
    until ``n`` pass or ``max_rounds`` rounds are spent; fewer than ``n`` may come back (the
    returned stats say how many were drawn and accepted)."""
    if n < 0:
        raise GanforgeError(f"cannot draw {n} samples", "ask for 0 or more")
    if judge is None or n == 0:
        x = sampler(k, n, seed) if n else torch.empty(0)
        return x, {"drawn": n, "accepted": n, "acceptance": 1.0}
    kept, scores, drawn = [], [], 0
    for r in range(max_rounds):
        x = sampler(k, oversample * n, seed + r)
        p = judge(x)[:, k]
        drawn += len(x)
        ok = p >= threshold
        kept.append(x[ok])
        scores.append(p[ok])
        if sum(len(s) for s in scores) >= n:
            break
    xs, ps = torch.cat(kept), torch.cat(scores)
    order = torch.argsort(ps, descending=True, stable=True)[:n]
    accepted = int(sum(len(s) for s in scores))
    return xs[order], {"drawn": drawn, "accepted": accepted, "acceptance": accepted / max(drawn, 1)}


def gan_balanced(x: torch.Tensor, y: torch.Tensor, num_classes: int, *, seed: int = 0,
                 sampler: Sampler, judge: Judge | None = None, threshold: float = 0.0,
                 oversample: int = 4, max_rounds: int = 5, extra: int = 0) -> TrainingSet:
    """Each class topped up to the largest with samples of the conditional generator (filtered by
    ``judge`` / ``threshold`` when a judge is given; see :func:`sample_class`), plus ``extra``
    more samples in every class."""
    if isinstance(extra, bool) or not isinstance(extra, int) or extra < 0:
        raise GanforgeError(f"extra must be a number of images >= 0, got {extra!r}", "pass e.g. extra=1000")
    added, stats = [], {}
    for k, missing in enumerate(missing_per_class(y, num_classes)):
        need = missing + extra
        if need:
            xk, s = sample_class(sampler, k, need, seed=seed + 1000 * k, judge=judge,
                                 threshold=threshold, oversample=oversample, max_rounds=max_rounds)
            added.append((k, xk))
            stats[k] = s
    accepted = sum(s["accepted"] for s in stats.values())
    drawn = sum(s["drawn"] for s in stats.values())
    return _with_added(x, y, added, num_classes, acceptance=accepted / max(drawn, 1),
                       filtered=judge is not None)


def gan_every_class(x: torch.Tensor, y: torch.Tensor, num_classes: int, *, seed: int = 0,
                    sampler: Sampler, extra: int | None = None, **options: Any) -> TrainingSet:
    """:func:`gan_balanced` with ``extra`` generated images in every class (None: the largest
    class's size), so generated images are no cue for any one class."""
    if extra is None:
        extra = max(class_counts(y, num_classes), default=0)
    return gan_balanced(x, y, num_classes, seed=seed, sampler=sampler, extra=extra, **options)


def synthetic_only(sampler: Sampler, num_classes: int, n_per_class: int, *, seed: int = 0
                   ) -> TrainingSet:
    """``n_per_class`` generated images of every class and nothing real: the training set of the
    classification accuracy score (CAS, Ravuri & Vinyals 2019)."""
    xs = [sampler(k, n_per_class, seed + 1000 * k) for k in range(num_classes)]
    y = torch.arange(num_classes).repeat_interleave(n_per_class)
    return TrainingSet(torch.cat(xs), y, info={"counts": [n_per_class] * num_classes,
                                               "added": n_per_class * num_classes})


#: name -> remedy; the ``gan`` ones need ``sampler=`` (and ``gan-filtered`` ``judge=``)
REMEDIES: dict[str, Callable[..., TrainingSet]] = {
    "none": no_remedy,
    "oversample": random_oversampling,
    "weighted": class_weighted,
    "smote": smote,
    "classical": classical_augmentation,
    "gan": gan_balanced,
    "gan-filtered": gan_balanced,
    "gan-every-class": gan_every_class,
}


def apply_remedy(name: str, x: torch.Tensor, y: torch.Tensor, num_classes: int, *, seed: int = 0,
                 **options: Any) -> TrainingSet:
    """Apply remedy ``name`` of :data:`REMEDIES`; ``gan-filtered`` needs a ``judge``."""
    if name not in REMEDIES:
        raise GanforgeError(f"unknown remedy {name!r}", f"choose one of: {', '.join(REMEDIES)}")
    if name == "gan-filtered" and options.get("judge") is None:
        raise GanforgeError("remedy gan-filtered needs a judge", "pass judge=ac_head_judge(D) or "
                            "classifier_judge(model)")
    if name in ("gan", "gan-every-class") and options.get("judge") is not None:
        raise GanforgeError(f"remedy {name} takes no judge", "use gan-filtered to filter samples")
    return REMEDIES[name](x, y, num_classes, seed=seed, **options)
