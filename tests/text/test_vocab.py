"""Tokenizer and vocabulary."""

from __future__ import annotations

import io

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.text.vocab import PAD_INDEX, UNK_INDEX, Vocabulary, tokenize


def test_tokenize_lowercases_and_keeps_hyphenated_words():
    assert tokenize("A Dark T-shirt!") == ["a", "dark", "t-shirt"]
    assert tokenize("coat,  long-sleeved--and pale") == ["coat", "long-sleeved", "and", "pale"]
    assert tokenize("  ") == [] and tokenize("-") == []


def test_build_orders_by_count_and_reserves_pad_and_unk():
    vocab = Vocabulary.build(["a dark coat", "a pale coat", "a coat"])
    assert vocab.words[:2] == ["<pad>", "<unk>"]
    assert vocab.words[2:4] == ["a", "coat"]           # 3 times each, then alphabetical
    assert vocab.words[4:] == ["dark", "pale"]
    assert Vocabulary.build(["b a", "a b"]).words == Vocabulary.build(["a b", "b a"]).words


def test_encode_pads_with_zero_and_maps_unknown_words_to_unk():
    vocab = Vocabulary.build(["a dark coat"])
    tokens, lengths = vocab.encode(["a coat", "a purple dark coat"])
    assert tokens.dtype == torch.int64 and tokens.shape == (2, 4)
    assert lengths.tolist() == [2, 4]
    assert tokens[0, 2:].tolist() == [PAD_INDEX, PAD_INDEX]
    assert tokens[1, 1] == UNK_INDEX
    assert vocab.decode(tokens[1]) == "a <unk> dark coat"


@pytest.mark.parametrize("text", ["", "   ", "?!"])
def test_empty_text_is_a_one_line_error(text):
    vocab = Vocabulary.build(["a coat"])
    with pytest.raises(GanforgeError) as err:
        vocab.encode(["a coat", text])
    assert "\n" not in str(err.value) and "no words" in str(err.value)


def test_words_survive_a_weights_only_checkpoint():
    vocab = Vocabulary.build(["a dark t-shirt", "a pale coat"])
    buf = io.BytesIO()
    torch.save({"words": vocab.words}, buf)
    buf.seek(0)
    again = Vocabulary.from_words(torch.load(buf, weights_only=True)["words"])
    assert again.words == vocab.words
    assert torch.equal(again.encode(["a pale t-shirt"])[0], vocab.encode(["a pale t-shirt"])[0])
    with pytest.raises(GanforgeError):
        Vocabulary.from_words(["coat"])
