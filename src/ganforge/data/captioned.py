"""Image datasets with captions and caption embeddings, for text-to-image models.

* ``fashion-captions``: Fashion-MNIST with captions generated from attributes measured on each
  image (:mod:`ganforge.text.captions`), padded from 28x28 to 32x32 by default.
* ``captioned-folder``: an image folder plus a ``captions.csv`` (columns ``file,caption``).

Both return a :class:`CaptionedDataset`: ``fields`` ``("x", "y", "text")`` (``("x", "text")``
without labels) and ``text`` = (N, K, E) float32 embeddings of K captions per image by a
frozen :class:`~ganforge.text.encoder.TextEncoder` trained on the training captions (cached,
see :func:`~ganforge.text.encoder.load_or_train_text_encoder`).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ganforge.data.base import ArrayDataset, register_dataset
from ganforge.data.folder import find_images, folder
from ganforge.data.mnist import default_root, load_idx_dataset
from ganforge.data.transforms import centre_crop, pad_images, resize_images
from ganforge.errors import GanforgeError
from ganforge.text.captions import CLASSES, Caption, captions_for, describe, fit_thresholds, measure_images
from ganforge.text.encoder import EncoderSettings, TextEncoder, encode_texts, load_or_train_text_encoder
from ganforge.text.vocab import Vocabulary, tokenize

EVAL_IMAGES = 1000  # held-out test images (one held-out caption each) in the encoder's report


class CaptionedDataset(ArrayDataset):
    """Images, labels (or None) and caption embeddings ``text`` (N, K, E).

    Attributes: ``captions`` (per image, K :class:`~ganforge.text.captions.Caption` or str),
    ``attributes`` (measure -> (N,) float tensor; empty for a folder), ``words`` (per image, the
    attribute words it has), ``encoder`` (eval mode, frozen), ``vocab``, ``text_dim`` (E),
    ``thresholds`` (the cut points of the words; empty for a folder) and ``encoder_report``.
    """

    data_kind = "captioned"

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None, text: torch.Tensor, *,
                 captions: Sequence[Sequence[Caption | str]], encoder: TextEncoder,
                 vocab: Vocabulary, name: str, classes: tuple[str, ...] | None = None,
                 extractor: str | None = None, attributes: Mapping[str, torch.Tensor] | None = None,
                 words: Sequence[Mapping[str, str]] | None = None,
                 thresholds: Mapping[str, torch.Tensor] | None = None,
                 encoder_report: Mapping[str, Any] | None = None, native_size: int | None = None
                 ) -> None:
        super().__init__(x, y, name=name, num_classes=None if classes is None else len(classes),
                         extractor=extractor, classes=classes)
        if text.shape[0] != len(x):
            raise ValueError(f"{len(x)} images but {text.shape[0]} rows of caption embeddings")
        self.text = text.float().contiguous()
        self.captions = [list(c) for c in captions]
        self.encoder, self.vocab = encoder, vocab
        self.text_dim = int(text.shape[-1])
        self.attributes = dict(attributes or {})
        self.words = [dict(w) for w in (words or [])]
        self.thresholds = dict(thresholds or {})
        self.encoder_report = dict(encoder_report or {})
        self.native_size = native_size

    @property
    def fields(self) -> tuple[str, ...]:
        return ("x", "text") if self.y is None else ("x", "y", "text")

    def tensors(self) -> dict[str, torch.Tensor]:
        return {**super().tensors(), "text": self.text}

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """Embeddings (n, E) of any texts (unknown words -> ``<unk>``)."""
        return encode_texts(self.encoder, self.vocab, texts)

    def describe(self, images: torch.Tensor, labels: torch.Tensor
                 ) -> tuple[dict[str, torch.Tensor], list[dict[str, str]]]:
        """Measures and attribute words of (e.g. generated) images of this dataset's size, with
        the training cut points; padded images are cropped back to the native size first."""
        if not self.thresholds:
            raise GanforgeError(f"dataset {self.name} has no measured attributes",
                                "use fashion-captions")
        if self.native_size and images.shape[-1] != self.native_size:
            images = centre_crop(images, self.native_size)
        measures = measure_images(images)
        return measures, describe(measures, labels, self.thresholds)


def _positive_int(value: object, key: str, example: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GanforgeError(f"data.{key} must be a positive int, got {value!r}",
                            f"set data.{key} to e.g. {example}")
    return value


def _embed_captions(encoder: TextEncoder, vocab: Vocabulary,
                    captions: Sequence[Sequence[Caption | str]]) -> torch.Tensor:
    k = len(captions[0])
    flat = [str(c) for caps in captions for c in caps]
    return encode_texts(encoder, vocab, flat).reshape(len(captions), k, -1)


@register_dataset("fashion-captions")
def fashion_captions(root: str | None = None, split: str = "train", size: int = 32,
                     captions_per_image: int = 5, limit: int | None = None, seed: int = 0,
                     download: bool = False, encoder_images: int = 20000,
                     encoder_epochs: int = 6, cache_dir: str | None = None) -> CaptionedDataset:
    """Fashion-MNIST images with generated captions (see docs/text-to-image.md).

    ``size`` 32 pads the 28x28 images with 2 background pixels on each side (other sizes
    resize). ``split`` train uses the TRAIN phrasings, test the HELD-OUT ones. ``limit`` keeps a
    seeded random subset of the split. The vocabulary, the attribute cut points and the text
    encoder come from the first ``encoder_images`` of a seeded permutation of the train split
    (the same for both splits; the train dataset with ``limit`` <= ``encoder_images`` is a
    prefix of it, with the same captions), and the encoder is cached under ``cache_dir``.
    """
    if split not in ("train", "test"):
        raise GanforgeError(f"unknown split {split!r}", "set data.split to train or test")
    size = _positive_int(size, "size", 32)
    per_image = _positive_int(captions_per_image, "captions_per_image", 5)
    encoder_images = _positive_int(encoder_images, "encoder_images", 20000)
    encoder_epochs = _positive_int(encoder_epochs, "encoder_epochs", 6)
    if limit is not None:
        limit = _positive_int(limit, "limit", 2000)
    base = default_root("fashion-mnist") if root is None else root
    train = load_idx_dataset("fashion-mnist", str(base), "train", 28, download)
    test = load_idx_dataset("fashion-mnist", str(base), "test", 28, download)
    gen = torch.Generator().manual_seed(seed)
    train_order = torch.randperm(len(train), generator=gen)
    test_order = torch.randperm(len(test), generator=gen)

    fit = train_order[:encoder_images]
    fit_x, fit_y = train.x[fit], train.y[fit]
    thresholds = fit_thresholds(measure_images(fit_x), fit_y)
    fit_captions = captions_for(fit_x, fit_y, "train", per_image, seed, thresholds=thresholds)
    vocab = Vocabulary.build(str(c) for caps in fit_captions for c in caps)
    held = test_order[:EVAL_IMAGES]
    eval_captions = captions_for(test.x[held], test.y[held], "test", 1, seed, thresholds=thresholds)
    settings = EncoderSettings(epochs=encoder_epochs)
    encoder, report = load_or_train_text_encoder(
        fit_x, fit_y, fit_captions, vocab, settings, seed, cache_dir=cache_dir,
        eval_data=(test.x[held], eval_captions), eval_labels=test.y[held])

    source, order = (train, train_order) if split == "train" else (test, test_order)
    chosen = order[:limit] if limit is not None else order
    x, y = source.x[chosen], source.y[chosen]
    measures = measure_images(x)
    words = describe(measures, y, thresholds)
    captions = captions_for(x, y, split, per_image, seed, thresholds=thresholds)
    text = _embed_captions(encoder, vocab, captions)
    x = pad_images(x, size) if size == 32 else resize_images(x, size)
    return CaptionedDataset(x, y, text, captions=captions, encoder=encoder, vocab=vocab,
                            name="fashion-captions", classes=CLASSES, extractor="lenet_fashion",
                            attributes=measures, words=words, thresholds=thresholds,
                            encoder_report=report, native_size=28 if size == 32 else None)


def read_captions_csv(path: Path, names: Sequence[str]) -> dict[str, list[str]]:
    """``file`` -> its captions from a CSV with columns ``file,caption``, checked against the
    image ``names`` (paths relative to the folder): every row names an image, every image has a
    caption, no caption is empty."""
    if not path.is_file():
        raise GanforgeError(f"captions file {path} does not exist",
                            "add a captions.csv with columns file,caption beside the images "
                            "or set data.captions")
    known = set(names)
    out: dict[str, list[str]] = {n: [] for n in names}
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or not {"file", "caption"} <= set(reader.fieldnames):
                raise GanforgeError(f"{path} needs the columns file,caption, found "
                                    f"{','.join(reader.fieldnames or []) or 'none'}",
                                    "put the header line file,caption first")
            for line, row in enumerate(reader, start=2):
                name = (row.get("file") or "").strip().replace("\\", "/")
                caption = row.get("caption") or ""
                if name not in known:
                    raise GanforgeError(f"{path} line {line} names {name!r}, which is not an image "
                                        f"in the folder", "fix the file name or remove the row")
                if not tokenize(caption):
                    raise GanforgeError(f"{path} line {line} has an empty caption for {name!r}",
                                        "write a caption or remove the row")
                out[name].append(" ".join(caption.split()))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise GanforgeError(f"cannot read {path}: {err}", "save it as UTF-8 CSV") from None
    missing = [n for n, caps in out.items() if not caps]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise GanforgeError(f"image {missing[0]!r}{more} has no caption in {path}",
                            "add a row file,caption for every image")
    return out


@register_dataset("captioned-folder")
def captioned_folder(root: str, size: int = 32, channels: int = 3, captions: str | None = None,
                     captions_per_image: int = 5, labels: bool | None = None, seed: int = 0,
                     encoder_epochs: int = 30, cache_dir: str | None = None) -> CaptionedDataset:
    """The images of ``root`` (as the ``folder`` dataset loads them) and their captions from
    ``captions`` (default ``root/captions.csv``; columns ``file,caption`` with ``file`` relative
    to ``root``, several rows per file allowed). Each image gets ``captions_per_image`` of its
    captions, drawn without replacement while they last (seeded), all of them kept in
    ``captions``. The text encoder is trained on these captions against pixel-PCA image
    features (``features='pca'``)."""
    per_image = _positive_int(captions_per_image, "captions_per_image", 5)
    epochs = _positive_int(encoder_epochs, "encoder_epochs", 30)
    images = folder(root, size=size, channels=channels, labels=labels)
    base = Path(root).expanduser()
    names = [p.relative_to(base).as_posix() for p in find_images(base)]
    csv_path = Path(captions).expanduser() if captions is not None else base / "captions.csv"
    table = read_captions_csv(csv_path, names)
    rng = random.Random(seed)
    chosen: list[list[str]] = []
    for name in names:
        pool = table[name]
        picks = rng.sample(pool, len(pool))
        while len(picks) < per_image:
            picks.append(rng.choice(pool))
        chosen.append(picks[:per_image])
    vocab = Vocabulary.build(c for caps in table.values() for c in caps)
    settings = EncoderSettings(features="pca", epochs=epochs, batch_size=min(100, max(2, len(names))))
    encoder, report = load_or_train_text_encoder(images.x, images.y, [table[n] for n in names],
                                                 vocab, settings, seed, cache_dir=cache_dir)
    text = _embed_captions(encoder, vocab, chosen)
    classes = images.classes if images.y is not None else None
    dataset = CaptionedDataset(images.x, images.y, text, captions=chosen, encoder=encoder,
                               vocab=vocab, name="captioned-folder", classes=classes or None,
                               encoder_report=report)
    dataset.all_captions = [table[n] for n in names]
    dataset.files = names
    return dataset
