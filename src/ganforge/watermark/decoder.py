"""The watermark decoder W: a small CNN from an image (C, S, S) in [-1, 1] to k bit logits, and
its file (``watermark/decoder.pt``, a plain dict loadable with ``weights_only=True``)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganforge._io import atomic_write
from ganforge.errors import GanforgeError
from ganforge.watermark.key import check_bits

FORMAT = "ganforge-watermark-decoder-v1"


class Decoder(nn.Module):
    """Images (N, C, S, S) -> bit logits (N, k); bit i is read as ``logit_i > threshold_i``.

    Three 3x3 conv stages (w, 2w, 2w channels; the last two stride 2), LeakyReLU 0.2, an average
    pool to 4x4 (the map itself for 16 px images, so the head sees where things are) and a
    two-layer head. No BatchNorm, so training and evaluation behave alike.

    ``threshold`` (a buffer, 0 until :meth:`calibrate`) is the per-bit median logit on images
    that do not carry the key, so that on such images every bit is 1 half of the time and
    matches any key bit with probability 1/2: the null hypothesis of the binomial test."""

    def __init__(self, in_shape: tuple[int, int, int], bits: int, width: int = 32) -> None:
        super().__init__()
        if len(in_shape) != 3:
            raise GanforgeError(f"the watermark decoder reads images (C, H, W), not shape {tuple(in_shape)}",
                                "watermark a run that generates images")
        self.in_shape = tuple(int(s) for s in in_shape)
        self.bits = check_bits(bits)
        self.width = int(width)
        c, w = self.in_shape[0], self.width
        act = nn.LeakyReLU(0.2)
        self.trunk = nn.Sequential(
            nn.Conv2d(c, w, 3, padding=1), act,
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), act,
            nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1), act,
            nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(32 * w, 4 * w), act, nn.Linear(4 * w, self.bits))
        self.register_buffer("threshold", torch.zeros(self.bits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))

    def check_images(self, x: torch.Tensor, what: str = "the images") -> None:
        """A one-line error unless ``x`` is (N, *in_shape)."""
        if x.dim() != 4 or tuple(x.shape[1:]) != self.in_shape:
            c, h, w = self.in_shape
            got = "x".join(map(str, x.shape[1:]))
            raise GanforgeError(f"{what} have shape {got} but this decoder reads {c}x{h}x{w} "
                                f"({'grayscale' if c == 1 else 'RGB'} {h}x{w} px)",
                                "pass images made by the watermarked generator, at its size")

    @torch.no_grad()
    def logits(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Raw bit logits (N, k) on CPU (eval mode, in batches)."""
        self.check_images(x)
        was = self.training
        self.eval()
        device = next(self.parameters()).device
        out = [self(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
        self.train(was)
        return torch.cat(out) if out else torch.empty(0, self.bits)

    def decode(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Decoded bits (N, k) as float 0/1: ``logit > threshold``."""
        return (self.logits(x, batch_size) > self.threshold.cpu()).float()

    @torch.no_grad()
    def calibrate(self, negatives: torch.Tensor) -> torch.Tensor:
        """Set :attr:`threshold` to the per-bit median logit on ``negatives`` (images without
        the key); returns it."""
        median = self.logits(negatives).median(0).values
        self.threshold.copy_(median.to(self.threshold))
        return self.threshold.detach().cpu().clone()


def bit_accuracy(decoded: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """Per-image fraction of bits equal to ``key``: (N,) from decoded bits (N, k)."""
    return (decoded == key.to(decoded).view(1, -1)).float().mean(1)


def save_decoder(decoder: Decoder, key: torch.Tensor, path: str | Path, meta: dict[str, Any] | None = None
                 ) -> Path:
    weights = {k: v.detach().cpu() for k, v in decoder.state_dict().items()}
    state = {"format": FORMAT, "in_shape": list(decoder.in_shape), "bits": decoder.bits,
             "width": decoder.width, "weights": weights,
             "key": key.detach().cpu().float(), "meta": dict(meta or {})}
    return atomic_write(path, lambda fh: torch.save(state, fh))


def load_decoder(path: str | Path) -> tuple[Decoder, torch.Tensor, dict[str, Any]]:
    """(decoder in eval mode, its key (k,), its meta) from a ``decoder.pt``; a one-line error for a
    missing, corrupt or foreign file."""
    path = Path(path)
    fix = "point at a run directory written by `ganforge watermark embed`"
    if not path.is_file():
        raise GanforgeError(f"no watermark decoder at {path}", fix)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated file, foreign pickle...
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise GanforgeError(f"cannot read watermark decoder {path} ({first[:120]})", fix) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise GanforgeError(f"{path} is not a ganforge watermark decoder", fix)
    try:
        decoder = Decoder(tuple(state["in_shape"]), int(state["bits"]), int(state["width"]))
        decoder.load_state_dict(state["weights"])
        key = torch.as_tensor(state["key"]).float().flatten()
    except (KeyError, RuntimeError, TypeError, ValueError) as err:
        detail = " ".join(str(err).split())[:120]
        raise GanforgeError(f"watermark decoder {path} is damaged ({detail})", fix) from None
    if len(key) != decoder.bits:
        raise GanforgeError(f"watermark decoder {path} is damaged (key of {len(key)} bits)", fix)
    return decoder.eval(), key, dict(state.get("meta") or {})


class NullCode(nn.Module):
    """Pseudo-random bits of an image, the decoder's target on images *without* the key.

    ``t_i(x) = [r_i . u(x) > 0]`` where ``u(x)`` is the image average-pooled to at most 8 x 8 per
    channel, centred and whitened on its top ``min(dims, k)`` principal components (fitted on
    ``sample``), and ``r_i`` are fixed random Gaussian directions (``seed``). On the images it was
    fitted to, each bit is 1 about half of the time and the bits are nearly independent (the sign
    of nearly orthogonal projections of a whitened vector), so a decoder that reproduces t on
    such images gives key matches close to Binomial(k, 1/2): the null of the binomial test. A
    decoder trained only towards logit 0 on them instead reads one scalar, and its k bits flip
    together (all match or none match), which no binomial test allows for."""

    def __init__(self, sample: torch.Tensor, bits: int, seed: int = 0, components: int = 12) -> None:
        super().__init__()
        self.side = min(8, int(sample.shape[-1]))
        v = self._pool(sample.detach().cpu().double())
        mean = v.mean(0)
        centred = v - mean
        cov = centred.T @ centred / max(1, len(v) - 1)
        values, vectors = torch.linalg.eigh(cov)
        order = values.argsort(descending=True)
        values, vectors = values[order], vectors[:, order]
        keep = int(min(components, (values > values[0] * 1e-6).sum().item())) if values[0] > 0 else 1
        whiten = vectors[:, :keep] / values[:keep].clamp_min(1e-12).sqrt()
        directions = torch.randn(keep, bits, generator=torch.Generator().manual_seed(seed),
                                 dtype=torch.float64)
        self.register_buffer("mean", mean.float())
        self.register_buffer("projection", (whiten @ directions).float())

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x, self.side).flatten(1)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Bits (N, k) as float 0/1."""
        return ((self._pool(x) - self.mean.to(x)) @ self.projection.to(x) > 0).to(x.dtype)
