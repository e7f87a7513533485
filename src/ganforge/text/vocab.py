"""Tokens and the word vocabulary of the text encoder.

``tokenize`` lowercases and keeps runs of letters, digits and apostrophes, with inner hyphens
("t-shirt", "long-sleeved" stay one word); everything else separates words.

A :class:`Vocabulary` is built from training captions: index 0 is ``<pad>``, 1 is ``<unk>``,
then the words in order of decreasing count (ties alphabetically), so it is a deterministic
function of the captions. Words never seen in training (held-out synonyms, typos) encode as
``<unk>``; that is realistic, and the encoder learns what an unknown word in a caption means
from context only. ``words`` is a plain ``list[str]``, safe in a ``weights_only`` checkpoint;
:meth:`Vocabulary.from_words` rebuilds the vocabulary from it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import torch

from ganforge.errors import GanforgeError

PAD, UNK = "<pad>", "<unk>"
PAD_INDEX, UNK_INDEX = 0, 1
_WORD = re.compile(r"[a-z0-9']+(?:-[a-z0-9']+)*")


def tokenize(text: str) -> list[str]:
    """Lowercase words of ``text``: ``"A Dark T-shirt!"`` -> ``["a", "dark", "t-shirt"]``."""
    return _WORD.findall(text.lower())


class Vocabulary:
    """Word <-> index map with ``<pad>`` = 0 and ``<unk>`` = 1."""

    def __init__(self, words: Sequence[str]) -> None:
        words = list(words)
        if words[:2] != [PAD, UNK]:
            raise GanforgeError("a vocabulary must start with '<pad>', '<unk>'",
                                "build it with Vocabulary.build or Vocabulary.from_words")
        if len(set(words)) != len(words):
            raise GanforgeError("the vocabulary lists a word twice", "store each word once")
        self.words: list[str] = words
        self.index: dict[str, int] = {w: i for i, w in enumerate(words)}

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> Vocabulary:
        """The vocabulary of every word occurring at least ``min_count`` times in ``texts``."""
        counts = Counter(tok for text in texts for tok in tokenize(text))
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls([PAD, UNK, *kept])

    @classmethod
    def from_words(cls, words: Sequence[str]) -> Vocabulary:
        """The vocabulary stored as ``self.words``."""
        return cls([str(w) for w in words])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def ids(self, text: str) -> list[int]:
        """Token indices of ``text`` (unknown words -> 1); empty text is a GanforgeError."""
        tokens = tokenize(text) if isinstance(text, str) else []
        if not tokens:
            shown = repr(text)[:40]
            raise GanforgeError(f"caption {shown} has no words",
                                "give every caption at least one word, e.g. 'a dark coat'")
        return [self.index.get(tok, UNK_INDEX) for tok in tokens]

    def encode(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``tokens`` int64 (n, L) padded with 0 to the longest text, and ``lengths`` int64 (n,)."""
        if isinstance(texts, str):
            texts = [texts]
        seqs = [self.ids(t) for t in texts]
        longest = max((len(s) for s in seqs), default=0)
        tokens = torch.zeros((len(seqs), longest), dtype=torch.int64)
        for i, seq in enumerate(seqs):
            tokens[i, :len(seq)] = torch.tensor(seq, dtype=torch.int64)
        return tokens, torch.tensor([len(s) for s in seqs], dtype=torch.int64)

    def decode(self, tokens: torch.Tensor, length: int | None = None) -> str:
        """The words of one row of token indices (padding dropped)."""
        row = tokens.tolist()[:length] if length is not None else tokens.tolist()
        return " ".join(self.words[i] for i in row if i != PAD_INDEX)
