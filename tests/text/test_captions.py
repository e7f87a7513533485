"""Attribute measures, words, the caption grammar and its parser."""

from __future__ import annotations

import itertools

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.text import captions as C
from ganforge.text.vocab import tokenize


def _square(value: float, side: int, hw: int = 28, top: int = 4, left: int = 4) -> torch.Tensor:
    """One image (1, hw, hw) in [-1, 1]: background -1, a side x side square of ink ``value``."""
    img = torch.full((1, hw, hw), -1.0)
    img[:, top:top + side, left:left + side] = 2 * value - 1
    return img


def test_measures_of_a_bright_big_square_and_a_dim_small_one():
    images = torch.stack([_square(1.0, 20), _square(0.4, 6), torch.full((1, 28, 28), -1.0)])
    m = C.measure_images(images)
    assert m["brightness"].tolist() == pytest.approx([1.0, 0.4, 0.0], abs=1e-6)
    assert m["area"].tolist() == pytest.approx([400 / 784, 36 / 784, 0.0])
    assert m["width"].tolist() == pytest.approx([20 / 28, 6 / 28, 0.0])
    assert m["height"].tolist() == pytest.approx([20 / 28, 6 / 28, 0.0])
    assert m["lower_width"].tolist() == pytest.approx([1.0, 1.0, 0.0])


def test_lower_width_tells_short_sleeves_from_long_ones():
    tee = torch.full((1, 28, 28), -1.0)
    tee[:, 2:8, 2:26] = 1.0        # shoulders and short sleeves: the full width
    tee[:, 8:26, 8:20] = 1.0       # the body below: 12 of 24 columns
    long_sleeves = tee.clone()
    long_sleeves[:, 8:26, 2:5] = 1.0   # sleeves hanging beside the body down to the hem
    long_sleeves[:, 8:26, 23:26] = 1.0
    m = C.measure_images(torch.stack([tee, long_sleeves]))
    assert m["lower_width"][0] == pytest.approx(12 / 24)
    assert m["lower_width"][1] == pytest.approx(18 / 24)


def test_measures_refuse_colour_images():
    with pytest.raises(GanforgeError, match="grayscale"):
        C.measure_images(torch.zeros(2, 3, 28, 28))


def test_words_follow_the_fitted_tertiles_with_a_silent_middle_band():
    # nine shirts (class 6) of increasing size, brightness and width
    images = torch.stack([_square(0.2 + 0.09 * i, 8 + i, top=2, left=2) for i in range(9)])
    labels = torch.full((9,), 6)
    m = C.measure_images(images)
    th = C.fit_thresholds(m, labels)
    words = C.describe(m, labels, th)
    assert words[0]["size"] == "small" and words[0]["brightness"] == "dark"
    assert words[0]["width"] == "narrow"
    assert words[-1]["size"] == "large" and words[-1]["brightness"] == "light"
    assert words[-1]["width"] == "wide"
    assert "size" not in words[4] and "brightness" not in words[4]
    # cut points are class-relative: a bag (class 8) has none fitted, so NaN -> no size word
    assert torch.isnan(th["size"][8]).all()
    assert "size" not in C.describe(m, torch.full((9,), 8), th)[0]
    # trousers and bags never get a shape word; shoes get low/high from their height
    assert C._rule("shape", 1) is None and C._rule("shape", 8) is None
    assert C._rule("shape", 9) == ("height", "low", "high")


def test_captions_are_a_deterministic_function_of_the_seed():
    images = torch.stack([_square(0.2 + 0.08 * (i % 10), 6 + i % 15) for i in range(30)])
    labels = torch.arange(30) % 10
    a = C.captions_for(images, labels, "train", per_image=4, seed=7)
    b = C.captions_for(images, labels, "train", per_image=4, seed=7)
    c = C.captions_for(images, labels, "train", per_image=4, seed=8)
    assert [[x.text for x in caps] for caps in a] == [[x.text for x in caps] for caps in b]
    assert [[x.text for x in caps] for caps in a] != [[x.text for x in caps] for caps in c]
    assert all(len(caps) == 4 for caps in a)
    # image i's captions do not depend on the images after it
    head = C.captions_for(images[:5], labels[:5], "train", 4, 7, thresholds=C.fit_thresholds(
        C.measure_images(images), labels))
    assert [x.text for x in head[3]] == [x.text for x in a[3]]


def _many_captions(split: str) -> list[C.Caption]:
    gen = torch.Generator().manual_seed(0)
    images = torch.stack([_square(float(v), int(s), top=1, left=1) for v, s in
                          zip(torch.rand(200, generator=gen) * 0.9 + 0.1,
                              torch.randint(3, 26, (200,), generator=gen), strict=True)])
    labels = torch.arange(200) % 10
    return [c for caps in C.captions_for(images, labels, split, 6, seed=1) for c in caps]


def test_held_out_phrasings_never_appear_in_training_captions():
    train, test = _many_captions("train"), _many_captions("test")
    train_tokens = {tok for c in train for tok in tokenize(c.text)}
    held = C.phrasings("test")
    assert held and not held & C.phrasings("train")
    for phrase in held:
        assert not set(tokenize(phrase)) <= train_tokens, phrase
    for word in ("photo", "showing", "looks", "here"):  # the held-out templates' own words
        assert word not in train_tokens
    test_tokens = {tok for c in test for tok in tokenize(c.text)}
    assert {"bootie", "frock", "photo"} <= test_tokens
    for _, held_classes in C.CLASS_SYNONYMS.values():   # every held-out class name is used
        assert all(set(tokenize(p)) <= test_tokens for p in held_classes), held_classes


def test_every_caption_records_what_it_mentions():
    for c in _many_captions("train") + _many_captions("test"):
        assert C.parse_caption(c.text) == (c.class_index, c.attributes), c.text


def test_parse_caption_round_trips_every_template_and_synonym():
    adjective_sets = [{}, {"brightness": "dark"}, {"size": "large", "width": "narrow"},
                      {"brightness": "light", "size": "small", "width": "wide"}]
    for template, (label, (train, held)) in itertools.product(
            C.TRAIN_TEMPLATES + C.TEST_TEMPLATES, C.CLASS_SYNONYMS.items()):
        shape = C._rule("shape", label)
        sets = adjective_sets + ([{"shape": shape[1]}, {"shape": shape[2], "size": "large"}]
                                 if shape else [])
        for cls, attrs in itertools.product(train + held, sets):
            for pick in (0, 1):  # train and held-out synonyms of the attribute words
                adjs = [C.WORD_SYNONYMS[w][pick][0] for w in attrs.values()]
                text = C.render(template, cls, adjs)
                assert C.parse_caption(text) == (label, attrs), text


def test_articles_and_unknown_text():
    assert C.render("{a} {adjs} {cls}", "ankle boot", []) == "an ankle boot"
    assert C.render("{a} {adjs} {cls}", "coat", ["large"]) == "a large coat"
    assert C.render("this {cls} is {and}+", "coat", []) == "a coat"
    assert C.render("{cls}, {comma}+", "bag", ["dark", "small", "wide"]) == "bag, dark, small, wide"
    assert C.parse_caption("a blue hat") == (None, {})
    assert C.parse_caption("A TALL Bootie!") == (9, {"shape": "high"})
    with pytest.raises(GanforgeError, match="split"):
        C.captions_for(torch.zeros(1, 1, 28, 28), torch.zeros(1, dtype=torch.long), "val")
