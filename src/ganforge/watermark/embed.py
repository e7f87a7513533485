"""Embed a k-bit key into a trained GAN's generator by fine-tuning it jointly with a decoder.

After Yu et al. 2021 ("Artificial fingerprinting for generative models") and Fei et al. 2022
("Supervised GAN watermarking"): G' starts as a copy of the trained G (kept frozen as the
reference G0), a decoder W starts from scratch, and both minimise, per step on a batch z::

    w_bits * [ BCE(W(aug(G'(z))), key)                      # the key is readable in G's images
             + w_neg * ( BCE(W(aug(n)), t(n))               # ...and only there: n = G0(z), real x
                       + w_agree * (a_W(n) - a_t(n))^2 ) ]
    + w_adv * softplus(-D(G'(z)))                           # non-saturating: stay realistic
    + w_rec * mean (G'(z) - G0(z))^2                        # stay close to G0 (limits the FID cost)

``aug`` draws random Gaussian noise, blur and down-and-up resizing (:class:`Augment`), so the key
survives them. The negatives make W a reader of the *difference* between G' and G0 rather than a
constant; their target ``t(n)`` (:class:`~ganforge.watermark.decoder.NullCode`) is a fixed
pseudo-random bit pattern of the image itself, so that on images without the key W's bits are
nearly independent coin flips with respect to any key, which is what the binomial test of
:func:`ganforge.watermark.key.p_value` assumes (a target of 1/2 instead leaves W reading one
scalar, and its k bits then flip together). ``a(n)`` is the soft agreement of a bit vector with
the key, mean_i (2 key_i - 1)(2 p_i - 1): matching W's to t's on the negatives removes a shared
"looks watermarked" factor that would move all their bits towards the key at once (and so
inflate the false-positive rate beyond the binomial test's). D keeps training against real data
(unless ``train_d=False``: D frozen, no data needed). G' is trained in eval mode (BatchNorm on
its running statistics), exactly as it is sampled.

Finally the decoder's per-bit thresholds are set to the median logit on ``calibration`` fresh
images of G0 (:meth:`Decoder.calibrate`), so an image without the key matches each key bit with
probability 1/2 instead of leaning towards the key through a small bias of W.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.watermark.augment import Augment
from ganforge.watermark.decoder import Decoder, NullCode, bit_accuracy


@dataclass
class EmbedSettings:
    """The fine-tuning's knobs (see the module docstring); ``batch_size`` None: the run's."""

    steps: int = 1000
    seed: int = 0
    batch_size: int | None = None
    lr_g: float = 1e-4
    lr_w: float = 1e-3
    lr_d: float = 1e-4
    w_bits: float = 1.0
    w_neg: float = 4.0
    w_agree: float = 10.0
    w_adv: float = 0.05
    w_rec: float = 20.0
    train_d: bool = True
    real_negatives: bool = True
    ema: bool = False
    decoder_width: int = 32
    calibration: int = 2000
    augment: Augment = field(default_factory=Augment)

    def check(self) -> None:
        for name, example in (("steps", "--steps 1000"), ("calibration", "calibration=2000"),
                              ("decoder_width", "decoder_width=32")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise GanforgeError(f"{name} must be a positive integer, got {value!r}",
                                    f"pass e.g. {example}")
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 2):
            raise GanforgeError(f"batch size must be an integer >= 2, got {self.batch_size!r}",
                                "pass e.g. --batch-size 64")
        for name in ("lr_g", "lr_w", "lr_d"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise GanforgeError(f"{name} must be a positive number, got {value!r}", "pass e.g. 1e-4")
        for name in ("w_bits", "w_neg", "w_agree", "w_adv", "w_rec"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise GanforgeError(f"{name} must be a non-negative number, got {value!r}", "pass e.g. 1.0")
        if self.w_bits == 0:
            raise GanforgeError("w_bits is 0, so nothing embeds the key", "pass a positive --bits-weight")


@dataclass
class Watermarked:
    """What :func:`embed_watermark` returns: the fine-tuned generator (eval mode), the trained
    decoder, the discriminator (fine-tuned when ``train_d``), the frozen reference G0, the key,
    and one row of training statistics every ``log_every`` steps."""

    generator: nn.Module
    decoder: Decoder
    discriminator: nn.Module
    reference: nn.Module
    key: torch.Tensor
    settings: EmbedSettings
    history: list[dict[str, float]]


def check_watermarkable(run) -> None:
    """A one-line error unless ``run`` is a GAN whose generator makes images."""
    from ganforge.train.algorithms.gan import GAN

    if not isinstance(run.algorithm, GAN) or "D" not in run.experiment.networks:
        raise GanforgeError(f"run {run.path} is a {run.algorithm.name!r} run, not a GAN",
                            "watermark a run trained with algorithm.name=gan (it needs G and D)")
    shape = tuple(run.generator.out_shape)
    if len(shape) != 3:
        raise GanforgeError(f"run {run.path} generates samples of shape {shape}, not images",
                            "watermark a run that generates images (C, H, W)")


def _real_batches(run, settings: EmbedSettings, dataset) -> tuple[Any, bool]:
    """(dataset or None, whether D trains): D trains on the run's data unless told not to or
    the run is self-conditioned (its labels are D's clusters, not the data's)."""
    train_d = settings.train_d and not run.algorithm.self_conditioned
    if not (train_d or settings.real_negatives):
        return None, False
    if dataset is None:
        from ganforge.data.base import StreamDataset, build_dataset

        try:
            dataset = build_dataset(run.config.data)
        except GanforgeError as err:
            if not train_d:
                return None, False
            raise GanforgeError(f"{err} (the run's data: D keeps training on it)",
                                "or pass --frozen-d to fine-tune against the run's D frozen") from None
        if isinstance(dataset, StreamDataset):
            return None, False
    if tuple(dataset.sample_shape) != tuple(run.generator.out_shape):
        raise GanforgeError(f"the run's data has shape {tuple(dataset.sample_shape)} but its generator "
                            f"makes {tuple(run.generator.out_shape)}",
                            "point the run's data section at its own data")
    return dataset, train_d


def embed_watermark(run, key: torch.Tensor, settings: EmbedSettings | None = None, *, dataset=None,
                    log_every: int = 50,
                    on_log: Callable[[dict[str, float]], None] | None = None) -> Watermarked:
    """Fine-tune ``run``'s generator (its EMA copy with ``settings.ema``) so that a new decoder
    reads ``key`` (k bits, 0/1) from every image it makes; see the module docstring. The run's
    networks are not modified (copies are trained). ``dataset``: the real data for D and the
    negatives (default: the run's data section)."""
    settings = settings or EmbedSettings()
    settings.check()
    check_watermarkable(run)
    key = torch.as_tensor(key).float().flatten()
    exp = run.experiment
    device = exp.device
    source = run.pick_generator(settings.ema, "drop --ema, or watermark a run trained with train.ema_decay")
    data, train_d = _real_batches(run, settings, dataset)
    algorithm = run.algorithm
    conditional = algorithm.conditional is not None
    batch = settings.batch_size or run.config.train.batch_size

    torch.manual_seed(settings.seed)  # the decoder's initialisation
    G0 = copy.deepcopy(source).eval().requires_grad_(False)
    G = copy.deepcopy(source).eval().requires_grad_(True)
    D = copy.deepcopy(exp.networks["D"]).train().requires_grad_(train_d)
    W = Decoder(tuple(G.out_shape), len(key), settings.decoder_width).to(device)
    noise = torch.Generator().manual_seed(settings.seed + 1)  # codes, labels, real batches
    aug_gen = torch.Generator().manual_seed(settings.seed + 2)
    opt_g = torch.optim.Adam(G.parameters(), lr=settings.lr_g, betas=(0.5, 0.999))
    opt_w = torch.optim.Adam(W.parameters(), lr=settings.lr_w)
    opt_d = torch.optim.Adam(D.parameters(), lr=settings.lr_d, betas=(0.5, 0.999)) if train_d else None
    target = key.to(device).view(1, -1)
    labels_for = algorithm.labels_for if conditional else None
    null = NullCode(generated(G0, settings.calibration, settings.seed + 4, labels_for), len(key),
                    settings.seed + 5).to(device)
    history: list[dict[str, float]] = []
    sums: dict[str, float] = {}

    for step in range(1, settings.steps + 1):
        z = G.sample_z(batch, noise, device)
        y = algorithm.labels_for(batch, noise) if conditional else None
        y = None if y is None else y.to(device)
        real = y_real = None
        if data is not None:
            idx = torch.randint(len(data), (batch,), generator=noise)
            real = data.x[idx].to(device)
            y_real = data.y[idx].to(device) if conditional and data.y is not None else None
        with torch.no_grad():
            ref = G0(z, y)
        fake = G(z, y)
        stats: dict[str, float] = {}
        if train_d:  # D: the run's non-saturating cross-entropy on real vs the current G'
            d_loss = (F.softplus(-D(real, y_real)).mean() + F.softplus(D(fake.detach(), y)).mean())
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            stats["loss_D"] = d_loss.item()
        logits = W(settings.augment(fake, aug_gen))
        loss_bits = F.binary_cross_entropy_with_logits(logits, target.expand_as(logits))
        negatives = ref if real is None or not settings.real_negatives else torch.cat([ref, real])
        neg_logits = W(settings.augment(negatives, aug_gen))
        neg_target = null(negatives)
        loss_neg = F.binary_cross_entropy_with_logits(neg_logits, neg_target)
        # the test's statistic on the negatives: (soft) key agreement of W = that of t, so that
        # no shared "looks watermarked" factor moves all their bits towards the key at once
        sign = 2 * target - 1
        agree = ((2 * torch.sigmoid(neg_logits) - 1) * sign).mean(1)
        loss_agree = (agree - ((2 * neg_target - 1) * sign).mean(1)).pow(2).mean()
        D.requires_grad_(False)  # G's adversarial term: gradients into G only
        loss_adv = F.softplus(-D(fake, y)).mean()
        D.requires_grad_(train_d)
        loss_rec = (fake - ref).pow(2).mean()
        loss = (settings.w_bits * (loss_bits + settings.w_neg * (loss_neg + settings.w_agree * loss_agree))
                + settings.w_adv * loss_adv + settings.w_rec * loss_rec)
        if not torch.isfinite(loss):
            raise GanforgeError(f"the watermark loss is not finite at step {step}",
                                "lower the learning rates (--lr) or the weights")
        opt_g.zero_grad(set_to_none=True)
        opt_w.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        opt_w.step()
        with torch.no_grad():
            stats.update(loss_bits=loss_bits.item(), loss_neg=loss_neg.item(), loss_agree=loss_agree.item(),
                         loss_adv=loss_adv.item(), loss_rec=loss_rec.item(),
                         bit_acc=float(((logits > 0).float() == target).float().mean()),
                         neg_acc=float(((neg_logits > 0).float() == target).float().mean()))
        for k, v in stats.items():
            sums[k] = sums.get(k, 0.0) + v
        if step % log_every == 0 or step == settings.steps:
            count = log_every if step % log_every == 0 else step % log_every
            row = {"step": step, **{k: v / count for k, v in sums.items()}}
            history.append(row)
            sums = {}
            if on_log is not None:
                on_log(row)
    G.eval().requires_grad_(False)
    W.eval().requires_grad_(False)
    D.requires_grad_(False)
    W.calibrate(generated(G0, settings.calibration, settings.seed + 3, labels_for))
    return Watermarked(G, W, D, G0, key.cpu(), settings, history)


@torch.no_grad()
def generated(G: nn.Module, n: int, seed: int, labels_for: Callable | None = None,
              batch_size: int = 500) -> torch.Tensor:
    """``n`` images (CPU) from ``G`` in eval mode, codes from ``seed`` (labels from
    ``labels_for(n)`` for a conditional G)."""
    was = G.training
    G.eval()
    y = labels_for(n) if labels_for is not None else None
    x = G.sample(n, torch.Generator().manual_seed(seed), y, batch_size)
    G.train(was)
    return x


@torch.no_grad()
def quick_check(result: Watermarked, run, n: int = 1000, seed: int = 12345) -> dict[str, float]:
    """Bit accuracy of the decoder on ``n`` fresh images of G' and of the reference G0 (the
    false-positive side), same codes."""
    labels_for = run.algorithm.labels_for if run.algorithm.conditional is not None else None
    marked = generated(result.generator, n, seed, labels_for)
    plain = generated(result.reference, n, seed, labels_for)
    acc = bit_accuracy(result.decoder.decode(marked), result.key)
    acc0 = bit_accuracy(result.decoder.decode(plain), result.key)
    return {"bit_accuracy": float(acc.mean()), "bit_accuracy_min": float(acc.min()),
            "bit_accuracy_unwatermarked": float(acc0.mean()),
            "rms_change": float((marked - plain).pow(2).mean().sqrt()), "images": n}
