"""Captions for Fashion-MNIST images, generated from attributes measured on each image.

Measures (pure functions of one image; ``ink = (x + 1) / 2`` in [0, 1], the garment mask is
``ink > INK_THRESHOLD``; an empty mask gives 0 for every measure):

* ``brightness``: mean ink over the garment pixels, ``sum(ink * mask) / sum(mask)``;
* ``area``: fraction of all pixels in the mask, ``sum(mask) / (H * W)``;
* ``width``: bounding-box width of the mask over the image width, ``(c_max - c_min + 1) / W``;
* ``height``: bounding-box height over the image height, ``(r_max - r_min + 1) / H``;
* ``lower_width``: mean masked width of the rows in the bottom third of the bounding box over the
  box width. Long sleeves hang beside the body, so the lower rows of a long-sleeved top span the
  box; a T-shirt's lower rows are only its body; a flared dress widens at the hem.

Words (``describe``) compare a measure with two cut points ``low <= high`` fitted on training
images (``fit_thresholds``): below ``low`` the low word, above ``high`` the high word, in between
no word (the middle band keeps the words reliable). The cut points are the 1/3 and 2/3 quantiles:

=============  ===================  =====================================  ==================
attribute      measure              quantiles over                         words (low / high)
=============  ===================  =====================================  ==================
brightness     brightness           all images                             dark / light
size           area                 the image's class                      small / large
width          width                the image's class                      narrow / wide
shape          lower_width          tops (T-shirt, Pullover, Coat, Shirt)  short-sleeved / long-sleeved
shape          lower_width          Dress                                  fitted / flared
shape          height               shoes (Sandal, Sneaker, Ankle boot)    low / high
=============  ===================  =====================================  ==================

Trousers and bags have no ``shape`` word. Brightness is the displayed pixel intensity ("light"
= bright pixels). The class-specific measure is pooled over its family, so most T-shirts are
short-sleeved and most pullovers long-sleeved, as they are.

Captions (``captions_for``) combine a template with synonyms of the class and attribute words.
``split="train"`` draws from the TRAIN templates and synonyms only; ``split="test"`` uses the
HELD-OUT templates, and each class or attribute word is a HELD-OUT synonym with probability
:data:`HELDOUT_RATE` (else a TRAIN synonym). HELD-OUT phrasings never appear in training
captions; :func:`parse_caption` reads both.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from ganforge.errors import GanforgeError
from ganforge.text.vocab import tokenize

CLASSES: tuple[str, ...] = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                            "Shirt", "Sneaker", "Bag", "Ankle boot")
INK_THRESHOLD = 0.1
#: probability that a word of a test caption is a held-out synonym
HELDOUT_RATE = 0.3
MEASURES: tuple[str, ...] = ("brightness", "area", "width", "height", "lower_width")
ATTRIBUTES: tuple[str, ...] = ("brightness", "size", "width", "shape")
TOPS, DRESS, SHOES = (0, 2, 4, 6), (3,), (5, 7, 9)

#: attribute -> (measure, the class groups whose quantiles are pooled, low word, high word);
#: a group list of one entry per class means class-relative cut points.
RULES: dict[str, list[tuple[str, tuple[int, ...], str, str]]] = {
    "brightness": [("brightness", tuple(range(10)), "dark", "light")],
    "size": [("area", (c,), "small", "large") for c in range(10)],
    "width": [("width", (c,), "narrow", "wide") for c in range(10)],
    "shape": [("lower_width", TOPS, "short-sleeved", "long-sleeved"),
              ("lower_width", DRESS, "fitted", "flared"),
              ("height", SHOES, "low", "high")],
}

#: canonical class phrases: (train synonyms, held-out synonyms); the first is the canonical one
CLASS_SYNONYMS: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {
    0: (("t-shirt", "top"), ("tee",)),
    1: (("trousers", "pants"), ("slacks",)),
    2: (("pullover", "sweater"), ("jumper",)),
    3: (("dress", "gown"), ("frock",)),
    4: (("coat", "jacket"), ("overcoat",)),
    5: (("sandal",), ("flip-flop",)),
    6: (("shirt", "blouse"), ("button-down",)),
    7: (("sneaker", "trainer"), ("running shoe",)),
    8: (("bag", "handbag"), ("purse",)),
    9: (("ankle boot", "boot"), ("bootie",)),
}
#: canonical attribute word -> (train synonyms, held-out synonyms)
WORD_SYNONYMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "dark": (("dark", "black"), ("deep-coloured",)),
    "light": (("light", "pale"), ("white",)),
    "small": (("small", "little"), ("tiny",)),
    "large": (("large", "big"), ("huge",)),
    "narrow": (("narrow", "slim"), ("skinny",)),
    "wide": (("wide", "broad"), ("roomy",)),
    "short-sleeved": (("short-sleeved",), ("half-sleeved",)),
    "long-sleeved": (("long-sleeved",), ("full-sleeved",)),
    "fitted": (("fitted", "straight"), ("tailored",)),
    "flared": (("flared",), ("a-line",)),
    "low": (("low", "low-cut"), ("low-rise",)),
    "high": (("high", "high-top"), ("tall",)),
}
WORD_ATTRIBUTE: dict[str, str] = {w: attr for attr, rules in RULES.items()
                                  for _, _, lo, hi in rules for w in (lo, hi)}

# Templates: {adjs} = adjectives before the noun ("dark large"), {and} = "dark and large",
# {comma} = "dark, large", {cls} = the class phrase, {a} = "a"/"an" for what follows it.
# Templates marked "+" need at least one adjective; without one the bare form is used.
TRAIN_TEMPLATES: tuple[str, ...] = (
    "{a} {adjs} {cls}",
    "{a} picture of {a} {cls} that is {and}+",
    "{cls}, {comma}+",
    "this {cls} is {and}+",
    "an image of {a} {adjs} {cls}",
)
TEST_TEMPLATES: tuple[str, ...] = (
    "a photo showing {a} {adjs} {cls}",
    "the {cls} here looks {and}+",
    "{and} {cls}+",
)


@dataclass(frozen=True)
class Caption:
    """One caption: its text, the class it names and the attribute words it mentions
    (attribute -> canonical word, e.g. ``{"brightness": "dark"}``)."""

    text: str
    class_index: int
    attributes: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.text


# --------------------------------------------------------------------------- measures


def measure_images(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """The :data:`MEASURES` of every image of ``images`` (N, 1, H, W) in [-1, 1]: float32 (N,)
    each, as defined in the module docstring."""
    if images.ndim != 4 or images.shape[1] != 1:
        raise GanforgeError(f"captions need grayscale images (N, 1, H, W), got {tuple(images.shape)}",
                            "pass single-channel images")
    ink = (images.float() + 1) / 2
    mask = ink[:, 0] > INK_THRESHOLD
    n, h, w = mask.shape
    count = mask.sum((1, 2)).float()
    brightness = (ink[:, 0] * mask).sum((1, 2)) / count.clamp(min=1)
    area = count / (h * w)
    cols, rows = mask.any(1), mask.any(2)

    def extent(occupied: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.arange(occupied.shape[1]).expand_as(occupied)
        first = torch.where(occupied, idx, occupied.shape[1]).min(1).values
        last = torch.where(occupied, idx, -1).max(1).values
        return first, last

    c0, c1 = extent(cols)
    r0, r1 = extent(rows)
    has = count > 0
    width = torch.where(has, (c1 - c0 + 1).float() / w, 0.0)
    height = torch.where(has, (r1 - r0 + 1).float() / h, 0.0)
    # bottom third of the bounding box: rows r with r >= r1 - (box height)/3
    box_h = (r1 - r0 + 1).float()
    r = torch.arange(h).expand(n, h)
    lower = (r.float() > (r1[:, None] - box_h[:, None] / 3)) & (r <= r1[:, None])
    row_width = mask.sum(2).float()
    lower_mean = (row_width * lower).sum(1) / lower.sum(1).clamp(min=1)
    lower_width = torch.where(has, lower_mean / (c1 - c0 + 1).clamp(min=1).float(), 0.0)
    return {"brightness": brightness, "area": area, "width": width, "height": height,
            "lower_width": lower_width}


def fit_thresholds(measures: Mapping[str, torch.Tensor], labels: torch.Tensor
                   ) -> dict[str, torch.Tensor]:
    """Cut points per attribute: float32 (10, 2) of (low, high) = the 1/3 and 2/3 quantiles of
    the attribute's measure over the class group of each row (see :data:`RULES`); NaN rows for
    classes without the attribute or without images."""
    labels = labels.long()
    out: dict[str, torch.Tensor] = {}
    q = torch.tensor([1 / 3, 2 / 3])
    for attr, rules in RULES.items():
        table = torch.full((10, 2), float("nan"))
        for measure, group, _, _ in rules:
            chosen = torch.isin(labels, torch.tensor(group))
            if chosen.any():
                table[list(group)] = torch.quantile(measures[measure][chosen].double(), q.double()).float()
        out[attr] = table
    return out


def _rule(attr: str, label: int) -> tuple[str, str, str] | None:
    for measure, group, lo, hi in RULES[attr]:
        if label in group:
            return measure, lo, hi
    return None


def describe(measures: Mapping[str, torch.Tensor], labels: torch.Tensor,
             thresholds: Mapping[str, torch.Tensor]) -> list[dict[str, str]]:
    """The attribute words of each image: attribute -> canonical word, omitting attributes in
    the middle band or not defined for the class."""
    words: list[dict[str, str]] = []
    for i, label in enumerate(labels.tolist()):
        found: dict[str, str] = {}
        for attr in ATTRIBUTES:
            rule = _rule(attr, int(label))
            if rule is None:
                continue
            measure, lo_word, hi_word = rule
            lo, hi = thresholds[attr][int(label)].tolist()
            value = float(measures[measure][i])
            if value < lo:
                found[attr] = lo_word
            elif value > hi:
                found[attr] = hi_word
        words.append(found)
    return words


def attribute_words(images: torch.Tensor, labels: torch.Tensor,
                    thresholds: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor],
                                                                     list[dict[str, str]]]:
    """Measures (dict of float tensors) and words (one dict per image) of ``images``."""
    measures = measure_images(images)
    return measures, describe(measures, labels, thresholds)


# --------------------------------------------------------------------------- grammar


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def render(template: str, cls: str, adjectives: Sequence[str]) -> str:
    """Fill ``template`` with the class phrase and adjectives (see the template notes)."""
    needs = template.endswith("+")
    template = template.rstrip("+")
    adjs = list(adjectives)
    if needs and not adjs:
        return f"{_article(cls)} {cls}"
    joined_and = " and ".join(adjs) if len(adjs) < 3 else ", ".join(adjs[:-1]) + " and " + adjs[-1]
    parts = {"adjs": " ".join(adjs), "and": joined_and, "comma": ", ".join(adjs), "cls": cls}
    text = " ".join(template.format(a="{a}", **parts).split())
    tokens = text.split(" ")
    for j, tok in enumerate(tokens):  # resolve the articles against the word that follows
        if tok == "{a}":
            tokens[j] = _article(tokens[j + 1]) if j + 1 < len(tokens) else "a"
    return " ".join(tokens)


def _synonym(pair: tuple[tuple[str, ...], tuple[str, ...]], rng: random.Random, held: bool,
             heldout_rate: float) -> str:
    if held and rng.random() < heldout_rate:
        return rng.choice(pair[1])
    return rng.choice(pair[0])


def make_caption(label: int, words: Mapping[str, str], rng: random.Random, split: str,
                 mention: float = 0.75, heldout_rate: float = HELDOUT_RATE) -> Caption:
    """One caption of an image of class ``label`` with attribute ``words``: each word is
    mentioned with probability ``mention`` (in random order) through a random synonym, in a
    random template of the split. Train captions use only TRAIN templates and synonyms; test
    captions use only HELD-OUT templates, and each word there is a HELD-OUT synonym with
    probability ``heldout_rate`` (else a TRAIN one)."""
    held = split == "test"
    templates = TEST_TEMPLATES if held else TRAIN_TEMPLATES
    mentioned = {a: w for a, w in words.items() if rng.random() < mention}
    order = list(mentioned)
    rng.shuffle(order)
    cls = _synonym(CLASS_SYNONYMS[label], rng, held, heldout_rate)
    adjs = [_synonym(WORD_SYNONYMS[mentioned[a]], rng, held, heldout_rate) for a in order]
    template = rng.choice(templates)
    return Caption(render(template, cls, adjs), int(label), dict(mentioned))


def captions_for(images: torch.Tensor, labels: torch.Tensor, split: str = "train",
                 per_image: int = 5, seed: int = 0, *,
                 thresholds: Mapping[str, torch.Tensor] | None = None,
                 mention: float = 0.75, heldout_rate: float = HELDOUT_RATE
                 ) -> list[list[Caption]]:
    """``per_image`` captions of each image, a deterministic function of (the images, labels,
    thresholds, split, per_image, seed, mention). Image i's captions come from its own
    ``random.Random(f"{seed}:{split}:{i}")``, so they do not depend on the batch size.
    ``mention``: probability that each attribute word of the image is mentioned;
    ``heldout_rate``: see :func:`make_caption`.

    ``thresholds`` default to :func:`fit_thresholds` on these images; pass the training
    images' ones so that test captions use the same cut points.
    """
    if split not in ("train", "test"):
        raise GanforgeError(f"unknown caption split {split!r}", "use split='train' or 'test'")
    if isinstance(per_image, bool) or not isinstance(per_image, int) or per_image < 1:
        raise GanforgeError(f"captions per image must be a positive int, got {per_image!r}",
                            "set e.g. 5")
    measures = measure_images(images)
    if thresholds is None:
        thresholds = fit_thresholds(measures, labels)
    words = describe(measures, labels, thresholds)
    out = []
    for i, (label, found) in enumerate(zip(labels.tolist(), words, strict=True)):
        rng = random.Random(f"{seed}:{split}:{i}")
        out.append([make_caption(int(label), found, rng, split, mention, heldout_rate)
                    for _ in range(per_image)])
    return out


# --------------------------------------------------------------------------- parsing


def _phrases() -> list[tuple[tuple[str, ...], str, object]]:
    """Every synonym of either split as a token tuple -> ("class", index) or ("word", canonical),
    longest first so "ankle boot" wins over "boot"."""
    table: list[tuple[tuple[str, ...], str, object]] = []
    for index, (train, held) in CLASS_SYNONYMS.items():
        table += [(tuple(tokenize(p)), "class", index) for p in (*train, *held)]
    for canonical, (train, held) in WORD_SYNONYMS.items():
        table += [(tuple(tokenize(p)), "word", canonical) for p in (*train, *held)]
    return sorted(table, key=lambda entry: -len(entry[0]))


def parse_caption(text: str) -> tuple[int | None, dict[str, str]]:
    """The class index (None if no class phrase) and attribute words (attribute -> canonical
    word) named in ``text``; reads TRAIN and HELD-OUT synonyms alike, longest phrase first.
    The first class phrase wins; an attribute named twice keeps its first word."""
    tokens = tokenize(text)
    table = _phrases()
    cls: int | None = None
    attrs: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        for phrase, kind, value in table:
            if tuple(tokens[i:i + len(phrase)]) == phrase:
                if kind == "class" and cls is None:
                    cls = int(value)  # type: ignore[call-overload]
                elif kind == "word":
                    attrs.setdefault(WORD_ATTRIBUTE[str(value)], str(value))
                i += len(phrase)
                break
        else:
            i += 1
    return cls, attrs


def phrasings(split: str) -> set[str]:
    """Every synonym (class and attribute) used by captions of ``split``."""
    k = 1 if split == "test" else 0
    return {p for pair in (*CLASS_SYNONYMS.values(), *WORD_SYNONYMS.values()) for p in pair[k]}
