"""A caption encoder trained to match image features (CLIP-style, on CPU in under a minute).

:class:`TextEncoder`: word embedding -> bidirectional GRU over the packed (unpadded) sequence ->
the two final hidden states concatenated -> linear -> L2-normalised ``out_dim`` vector. Padding
never enters the GRU, so it cannot change the embedding.

Training (:func:`train_text_encoder`) matches each caption with features of its own image:
``f(image)`` (frozen) -> linear ``image_proj`` -> L2-normalised, and minimises the symmetric
InfoNCE loss over a batch of B (caption, image) pairs (:func:`info_nce`)::

    S_ij = <t_i, v_j> / tau
    L = 1/2 [ mean_i CE(S_i., i) + mean_j CE(S_.j, j) ]

with one randomly drawn caption per image per epoch, and each word replaced by ``<unk>`` with
probability ``word_dropout`` (so unknown words at test time, e.g. held-out synonyms, are
something the encoder has seen). Image features ``f``:

* ``lenet_fashion``: the shipped Fashion-MNIST LeNet's 64-d penultimate features
  (:func:`ganforge.weights.load_classifier`); 32x32 inputs are centre-cropped to 28
  (the padding of ``fashion-captions``), other sizes resized;
* ``pca``: for arbitrary images (``captioned-folder``), the images resized to 16x16, flattened
  and projected on their top principal components (at most 64), whitened. The PCA is fitted on
  the training images and stored in the encoder (buffers), so it is fixed and deterministic; a
  linear map of pixels is weaker than a trained CNN, but needs no extra network or training.

:func:`load_or_train_text_encoder` caches the trained encoder under ``cache_dir`` (default
``~/.cache/ganforge/text``) keyed by a sha256 of the images, labels, caption texts, vocabulary,
settings, seed and :data:`CODE_VERSION`; the file is written atomically and read back with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from ganforge.errors import GanforgeError
from ganforge.text.vocab import UNK_INDEX, Vocabulary

#: bump when training or the architecture changes, so cached encoders are retrained
CODE_VERSION = 1
FEATURE_KINDS = ("lenet_fashion", "pca")
PCA_SIZE = 16


@dataclass(frozen=True)
class EncoderSettings:
    """Architecture and training of the text encoder (all part of the cache key)."""

    embed_dim: int = 32
    hidden_dim: int = 64
    out_dim: int = 64
    epochs: int = 6
    batch_size: int = 100
    lr: float = 3e-3
    temperature: float = 0.1
    learn_temperature: bool = False
    word_dropout: float = 0.15
    features: str = "lenet_fashion"

    def __post_init__(self) -> None:
        if self.features not in FEATURE_KINDS:
            raise GanforgeError(f"unknown image features {self.features!r}",
                                f"choose one of: {', '.join(FEATURE_KINDS)}")
        for key in ("embed_dim", "hidden_dim", "out_dim", "epochs", "batch_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise GanforgeError(f"text encoder {key} must be a positive int, got {value!r}",
                                    "fix the setting")
        if self.batch_size < 2 or not self.temperature > 0 or not self.lr > 0 \
                or not 0 <= self.word_dropout < 1:
            raise GanforgeError("text encoder needs batch_size >= 2, temperature > 0, lr > 0 and "
                                "0 <= word_dropout < 1", "fix the setting")


class TextEncoder(nn.Module):
    """Captions (token indices) -> unit-norm embeddings; ``image_proj`` maps image features
    into the same space (used for training and text-image retrieval)."""

    def __init__(self, vocab_size: int, embed_dim: int = 32, hidden_dim: int = 64,
                 out_dim: int = 64, feature_dim: int = 64, features: str = "lenet_fashion",
                 pixel_dim: int = 0, temperature: float = 0.1) -> None:
        super().__init__()
        self.config = {"vocab_size": vocab_size, "embed_dim": embed_dim, "hidden_dim": hidden_dim,
                       "out_dim": out_dim, "feature_dim": feature_dim, "features": features,
                       "pixel_dim": pixel_dim, "temperature": temperature}
        self.out_dim = out_dim
        self.features = features
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.gru = nn.GRU(embed_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden_dim, out_dim)
        self.image_proj = nn.Linear(feature_dim, out_dim)
        #: log(1 / temperature); a parameter, trained only with learn_temperature
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / temperature)))
        self.register_buffer("pca_mean", torch.zeros(pixel_dim))
        self.register_buffer("pca_basis", torch.zeros(pixel_dim, feature_dim if pixel_dim else 0))

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``tokens`` int64 (n, L) padded with 0, ``lengths`` (n,) >= 1 -> (n, out_dim), unit norm."""
        lengths = torch.as_tensor(lengths, dtype=torch.int64).cpu()
        if len(lengths) and int(lengths.min()) < 1:
            raise GanforgeError("a caption has no tokens", "give every caption at least one word")
        packed = pack_padded_sequence(self.embed(tokens), lengths, batch_first=True,
                                      enforce_sorted=False)
        _, h = self.gru(packed)                       # (2, n, hidden): forward, backward
        return F.normalize(self.out(torch.cat([h[0], h[1]], dim=1)), dim=1)

    def embed_features(self, feats: torch.Tensor) -> torch.Tensor:
        """Image features (n, feature_dim) -> (n, out_dim), unit norm."""
        return F.normalize(self.image_proj(feats), dim=1)

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """The frozen features ``f`` of images (N, C, H, W) in [-1, 1] this encoder was trained
        with (see the module docstring)."""
        if self.features == "pca":
            return pca_features(images, self.pca_mean, self.pca_basis)
        return lenet_features(images)


def info_nce(text: torch.Tensor, image: torch.Tensor, temperature: float | torch.Tensor = 0.1
             ) -> torch.Tensor:
    """Symmetric InfoNCE of B matched pairs (row i of ``text`` belongs to row i of ``image``):
    ``S = cos(text_i, image_j) / temperature``, ``L = (CE(S, I) + CE(S^T, I)) / 2``."""
    s = F.normalize(text, dim=1) @ F.normalize(image, dim=1).T / temperature
    target = torch.arange(len(s))
    return 0.5 * (F.cross_entropy(s, target) + F.cross_entropy(s.T, target))


# --------------------------------------------------------------------------- image features

_LENET: list[nn.Module] = []


@torch.no_grad()
def lenet_features(images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """64-d penultimate features of the shipped Fashion-MNIST LeNet (eval mode) of grayscale
    images (N, 1, H, W) in [-1, 1]; 32x32 is centre-cropped to 28x28, other sizes resized."""
    from ganforge._images import centre_crop
    from ganforge.weights import load_classifier

    if images.ndim != 4 or images.shape[1] != 1:
        raise GanforgeError(f"lenet_fashion features need grayscale images (N, 1, H, W), got "
                            f"{tuple(images.shape)}", "use features='pca' for other images")
    if not _LENET:
        _LENET.append(load_classifier("fashion")[0])
    model = _LENET[0]
    h, w = images.shape[-2:]
    if (h, w) == (32, 32):
        images = centre_crop(images, 28)
    elif (h, w) != (28, 28):
        images = F.interpolate(images.float(), size=(28, 28), mode="bilinear",
                               align_corners=False, antialias=h > 28).clamp(-1, 1)
    return torch.cat([model.features(images[i:i + batch_size].float())
                      for i in range(0, len(images), batch_size)]) if len(images) else torch.zeros(0, 64)


def _pixels(images: torch.Tensor) -> torch.Tensor:
    x = images.float()
    if tuple(x.shape[-2:]) != (PCA_SIZE, PCA_SIZE):
        x = F.interpolate(x, size=(PCA_SIZE, PCA_SIZE), mode="bilinear", align_corners=False,
                          antialias=x.shape[-1] > PCA_SIZE)
    return x.flatten(1).double()


def fit_pca(images: torch.Tensor, dim: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and whitening basis (D, k), k = min(dim, D, N - 1): ``(x - mean) @ basis`` has
    unit variance along the top-k principal directions of the 16x16 pixels ``x``."""
    x = _pixels(images)
    mean = x.mean(0)
    cov = (x - mean).T @ (x - mean) / max(len(x) - 1, 1)
    values, vectors = torch.linalg.eigh(cov)               # ascending
    k = max(1, min(dim, x.shape[1], len(x) - 1))
    values, vectors = values.flip(0)[:k], vectors.flip(1)[:, :k]
    vectors = vectors * torch.where(vectors.sum(0) < 0, -1.0, 1.0)  # a deterministic sign
    basis = vectors / values.clamp(min=1e-8).sqrt()
    return mean.float(), basis.float()


def pca_features(images: torch.Tensor, mean: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``(pixels(images) - mean) @ basis`` (see :func:`fit_pca`)."""
    return ((_pixels(images) - mean.double()) @ basis.double()).float()


# --------------------------------------------------------------------------- training


def _flatten(captions: Sequence[Sequence[object]], vocab: Vocabulary
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tokens/lengths of every caption, and each image's first caption index and count."""
    texts = [str(c) for caps in captions for c in caps]
    counts = torch.tensor([len(caps) for caps in captions], dtype=torch.int64)
    if len(counts) and int(counts.min()) < 1:
        raise GanforgeError("an image has no caption", "give every image at least one caption")
    tokens, lengths = vocab.encode(texts)
    starts = torch.cumsum(counts, 0) - counts
    return tokens, lengths, starts, counts


@torch.no_grad()
def encode_texts(encoder: TextEncoder, vocab: Vocabulary, texts: Sequence[str],
                 batch_size: int = 2048) -> torch.Tensor:
    """Embeddings (n, out_dim) float32 of ``texts`` (eval mode, no gradient; unknown words are
    ``<unk>``, an empty text is a GanforgeError)."""
    was = encoder.training
    encoder.eval()
    texts = [str(t) for t in texts]
    unique = list(dict.fromkeys(texts))  # generated captions repeat: encode each text once
    out = [encoder(*vocab.encode(unique[i:i + batch_size])) for i in range(0, len(unique), batch_size)]
    encoder.train(was)
    if not out:
        return torch.zeros(0, encoder.out_dim)
    where = {t: i for i, t in enumerate(unique)}
    return torch.cat(out)[torch.tensor([where[t] for t in texts], dtype=torch.int64)]


@torch.no_grad()
def matching_scores(encoder: TextEncoder, vocab: Vocabulary, feats: torch.Tensor,
                    captions: Sequence[Sequence[object]], labels: torch.Tensor | None = None,
                    centroids: torch.Tensor | None = None, group: int = 100) -> dict[str, float]:
    """How well captions identify their images.

    ``retrieval_top1``: for every caption, is its own image the most similar among the ``group``
    consecutive images of its block (chance 1/group)? ``class_accuracy``: is the nearest class
    centroid (``centroids`` (C, out_dim), cosine) the image's label?
    """
    texts = [str(c) for caps in captions for c in caps]
    owner = torch.repeat_interleave(torch.arange(len(captions)),
                                    torch.tensor([len(c) for c in captions]))
    t = encode_texts(encoder, vocab, texts)
    v = encoder.embed_features(feats)
    block = owner // group
    hits = 0
    for b in block.unique().tolist():
        rows = (block == b).nonzero().flatten()
        first = b * group
        sims = t[rows] @ v[first:first + group].T
        hits += int((sims.argmax(1) + first == owner[rows]).sum())
    images_per_block = torch.bincount(torch.arange(len(captions)) // group).float()
    out = {"retrieval_top1": hits / max(len(texts), 1),
           "retrieval_chance": float((1 / images_per_block[block]).mean()) if len(texts) else 0.0,
           "captions": float(len(texts))}
    if labels is not None and centroids is not None:
        pred = (t @ F.normalize(centroids, dim=1).T).argmax(1)
        out["class_accuracy"] = float((pred == labels[owner]).float().mean())
    return out


def class_centroids(embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Mean embedding per class (C, D); zeros for a class without embeddings."""
    sums = torch.zeros(num_classes, embeddings.shape[1]).index_add_(0, labels, embeddings)
    return sums / torch.bincount(labels, minlength=num_classes).clamp(min=1)[:, None]


def build_encoder(vocab: Vocabulary, settings: EncoderSettings, images: torch.Tensor,
                  seed: int) -> tuple[TextEncoder, torch.Tensor]:
    """A freshly initialised encoder (weights from ``seed``) and the frozen image features."""
    if settings.features == "pca":
        mean, basis = fit_pca(images)
        feature_dim, pixel_dim = basis.shape[1], basis.shape[0]
    else:
        feature_dim, pixel_dim = 64, 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = TextEncoder(len(vocab), settings.embed_dim, settings.hidden_dim, settings.out_dim,
                              feature_dim, settings.features, pixel_dim, settings.temperature)
    if settings.features == "pca":
        encoder.pca_mean.copy_(mean)
        encoder.pca_basis.copy_(basis)
    return encoder, encoder.image_features(images)


def train_text_encoder(images: torch.Tensor, labels: torch.Tensor | None,
                       captions: Sequence[Sequence[object]], vocab: Vocabulary,
                       settings: EncoderSettings | None = None, seed: int = 0, *,
                       eval_data: tuple[torch.Tensor, Sequence[Sequence[object]]] | None = None,
                       eval_labels: torch.Tensor | None = None,
                       ) -> tuple[TextEncoder, dict[str, Any]]:
    """Train a :class:`TextEncoder` on (image, caption) pairs with symmetric InfoNCE.

    ``images`` (N, C, H, W) in [-1, 1]; ``captions[i]``: one or more captions (str or Caption)
    of image i; ``labels`` (N,) or None. Each epoch visits every image once, in a seeded random
    order, with one of its captions drawn at random; Adam with a cosine-decayed rate. Returns
    the encoder in eval mode with frozen parameters and a report: seconds, final loss, and
    :func:`matching_scores` on up to 1,000 training images (``train``) and on ``eval_data``
    (images, captions; ``heldout``), with centroids of the training captions' embeddings.
    """
    settings = settings or EncoderSettings()
    if len(captions) != len(images):
        raise GanforgeError(f"{len(images)} images but captions for {len(captions)}",
                            "give one list of captions per image")
    if len(images) < 2:
        raise GanforgeError("the text encoder needs at least 2 captioned images", "add images")
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    encoder, feats = build_encoder(vocab, settings, images, seed)
    tokens, lengths, starts, counts = _flatten(captions, vocab)
    params = [p for n, p in encoder.named_parameters() if n != "log_scale" or settings.learn_temperature]
    encoder.log_scale.requires_grad_(settings.learn_temperature)
    optim = torch.optim.Adam(params, lr=settings.lr)
    n = len(images)
    batch = min(settings.batch_size, n)
    steps_per_epoch = max(1, n // batch)
    total = settings.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    encoder.train()
    loss_value = float("nan")
    for _ in range(settings.epochs):
        order = torch.randperm(n, generator=gen)
        pick = starts + (torch.rand(n, generator=gen) * counts).long().clamp(max=counts - 1)
        for s in range(steps_per_epoch):
            idx = order[s * batch:(s + 1) * batch]
            rows = pick[idx]
            longest = int(lengths[rows].max())
            words = tokens[rows, :longest]
            if settings.word_dropout > 0:  # unknown words in training: robust to <unk> at test
                drop = (torch.rand(words.shape, generator=gen) < settings.word_dropout) & (words > 0)
                words = torch.where(drop, UNK_INDEX, words)
            t = encoder(words, lengths[rows])
            v = encoder.embed_features(feats[idx])
            loss = info_nce(t, v, 1 / encoder.log_scale.exp())
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            sched.step()
            loss_value = float(loss.detach())
    encoder.eval().requires_grad_(False)
    seconds = time.perf_counter() - start
    report: dict[str, Any] = {"seconds": seconds, "final_loss": loss_value, "images": n,
                              "captions": int(counts.sum()), "vocabulary": len(vocab),
                              "temperature": float(1 / encoder.log_scale.exp())}
    centroids = None
    if labels is not None:
        labels = labels.long()
        k = int(labels.max()) + 1
        centroid_texts = [str(caps[0]) for caps in captions]
        centroids = class_centroids(encode_texts(encoder, vocab, centroid_texts), labels, k)
    sub = torch.randperm(n, generator=gen)[:1000].sort().values
    report["train"] = matching_scores(encoder, vocab, feats[sub], [captions[i] for i in sub.tolist()],
                                      None if labels is None else labels[sub], centroids)
    if eval_data is not None:
        eval_images, eval_captions = eval_data
        report["heldout"] = matching_scores(encoder, vocab, encoder.image_features(eval_images),
                                            eval_captions, eval_labels, centroids)
    return encoder, report


# --------------------------------------------------------------------------- storage and cache


def encoder_state(encoder: TextEncoder, vocab: Vocabulary, report: Mapping[str, Any] | None = None
                  ) -> dict[str, Any]:
    """A ``weights_only``-safe dict: config, tensors, vocabulary words and the report."""
    return {"config": dict(encoder.config), "state": encoder.state_dict(), "words": list(vocab.words),
            "report": json.loads(json.dumps(report or {})), "version": CODE_VERSION}


def encoder_from_state(state: Mapping[str, Any]) -> tuple[TextEncoder, Vocabulary, dict[str, Any]]:
    """Rebuild (encoder in eval mode, frozen; vocabulary; report) from :func:`encoder_state`."""
    try:
        encoder = TextEncoder(**state["config"])
        encoder.load_state_dict(state["state"])
        vocab = Vocabulary.from_words(state["words"])
    except (KeyError, TypeError, RuntimeError) as err:
        raise GanforgeError(f"not a ganforge text encoder state ({str(err).splitlines()[0][:80]})",
                            "delete the file and let ganforge train the encoder again") from None
    return encoder.eval().requires_grad_(False), vocab, dict(state.get("report", {}))


def default_cache_dir() -> Path:
    """``~/.cache/ganforge/text``."""
    return Path.home() / ".cache" / "ganforge" / "text"


def cache_key(images: torch.Tensor, labels: torch.Tensor | None, captions: Sequence[Sequence[object]],
              vocab: Vocabulary, settings: EncoderSettings, seed: int,
              extra: Mapping[str, Any] | None = None) -> str:
    """sha256 (hex) of everything the trained encoder depends on."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"version": CODE_VERSION, "settings": asdict(settings), "seed": seed,
                              "shape": list(images.shape), "words": vocab.words,
                              "extra": dict(extra or {})}, sort_keys=True, default=str).encode())
    digest.update(images.detach().float().contiguous().numpy().tobytes())
    if labels is not None:
        digest.update(labels.long().contiguous().numpy().tobytes())
    for caps in captions:
        digest.update("\x1f".join(str(c) for c in caps).encode() + b"\x1e")
    return digest.hexdigest()


def load_or_train_text_encoder(images: torch.Tensor, labels: torch.Tensor | None,
                               captions: Sequence[Sequence[object]], vocab: Vocabulary,
                               settings: EncoderSettings | None = None, seed: int = 0, *,
                               cache_dir: str | Path | None = None,
                               eval_data: tuple[torch.Tensor, Sequence[Sequence[object]]] | None = None,
                               eval_labels: torch.Tensor | None = None,
                               ) -> tuple[TextEncoder, dict[str, Any]]:
    """:func:`train_text_encoder`, cached: the same inputs load the stored encoder (report
    ``cached: true``) instead of training again. ``eval_data`` is part of the key (the report
    depends on it)."""
    from ganforge._io import atomic_write

    settings = settings or EncoderSettings()
    extra: dict[str, Any] = {}
    if eval_data is not None:
        extra["eval"] = cache_key(eval_data[0], eval_labels, eval_data[1], vocab, settings, seed)
    key = cache_key(images, labels, captions, vocab, settings, seed, extra)
    path = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = path / f"encoder-{key[:24]}.pt"
    if path.is_file():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            encoder, _, report = encoder_from_state(state)
            return encoder, {**report, "cached": True, "path": str(path)}
        except (GanforgeError, OSError, RuntimeError, EOFError):
            pass  # a damaged cache file is retrained and replaced
    encoder, report = train_text_encoder(images, labels, captions, vocab, settings, seed,
                                         eval_data=eval_data, eval_labels=eval_labels)
    buf = io.BytesIO()
    torch.save(encoder_state(encoder, vocab, report), buf)
    try:
        atomic_write(path, lambda fh: fh.write(buf.getvalue()))
    except OSError:
        pass  # an unwritable cache only costs the next run the training time
    return encoder, {**report, "cached": False, "path": str(path)}
