"""CharRNN, the maximum-likelihood SMILES baseline of MOSES (Polykovskiy et al. 2020, "Molecular
Sets (MOSES): A Benchmarking Platform for Molecular Generation Models"; after Segler et al. 2018):
an LSTM language model over the characters of SMILES strings.

Token rows (B, L) hold ``[BOS c1 .. ck EOS PAD ..]`` (PAD = 0, BOS = 1, EOS = 2, characters from
3; :func:`ganforge.data.molecules.tokens_of`). The model factorises

    p(c1 .. ck EOS) = prod_t p(token_t | token_<t)

with an embedding, a stacked LSTM and a linear read-out to the vocabulary. MOSES's CharRNN has 3
layers of 768 units and dropout 0.2 between them (the defaults here); its learned embedding is as
wide as the vocabulary (about 30), here ``embed`` wide (64).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.data.molecules import BOS, EOS, PAD
from ganforge.errors import GanforgeError
from ganforge.models._checks import positive_int, probability
from ganforge.models.base import register_model


class SmilesLanguageModel(nn.Module):
    """An LSTM language model over token rows (B, ``max_length``) of a ``vocab_size`` vocabulary
    (PAD, BOS, EOS and the characters); see the module docstring."""

    def __init__(
        self,
        vocab_size: int,
        max_length: int,
        embed: int = 64,
        hidden: int = 768,
        layers: int = 3,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.vocab_size, self.max_length = vocab_size, max_length
        self.out_shape = (max_length,)
        self.embed = nn.Embedding(vocab_size, embed, padding_idx=PAD)
        self.lstm = nn.LSTM(embed, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.readout = nn.Linear(hidden, vocab_size)

    def logits(
        self, tokens: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """(logits (B, T, V) of the token after each of ``tokens`` (B, T), the LSTM state after them)."""
        h, state = self.lstm(self.embed(tokens), state)
        return self.readout(h), state

    def nll(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean negative log-likelihood in nats, accuracy of the argmax) per predicted token:
        teacher forcing, ``tokens[:, 1:]`` predicted from ``tokens[:, :-1]``, PAD targets ignored."""
        logits, _ = self.logits(tokens[:, :-1])
        target = tokens[:, 1:]
        loss = F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=PAD)
        real = target != PAD
        accuracy = ((logits.argmax(-1) == target) & real).sum() / real.sum().clamp(min=1)
        return loss, accuracy

    @torch.no_grad()
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | None = None,
        batch_size: int = 500,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """``n`` token rows int64 (n, max_length) on CPU, ``batch_size`` at a time: BOS, then tokens
        drawn one by one from softmax(logits / ``temperature``) with ``generator`` (on CPU, so the
        draws do not depend on the device), PAD and BOS never drawn; PAD after EOS. A row without
        EOS ran out of length. ``labels`` is ignored (the model is unconditional); the train/eval
        mode is left to the caller."""
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, (int, float))
            or not 0 < temperature < math.inf
        ):
            raise GanforgeError(
                f"the sampling temperature must be a number > 0, got {temperature!r}",
                "pass e.g. temperature=1.0",
            )
        chunks = [
            self._sample(min(batch_size, n - i), generator, float(temperature))
            for i in range(0, n, batch_size)
        ]
        return torch.cat(chunks) if chunks else torch.empty(0, self.max_length, dtype=torch.long)

    def _sample(self, n: int, generator: torch.Generator | None, temperature: float) -> torch.Tensor:
        device = self.embed.weight.device
        rows = torch.full((n, self.max_length), PAD, dtype=torch.long)
        rows[:, 0] = BOS
        ended = torch.zeros(n, dtype=torch.bool)
        previous, state = rows[:, :1].to(device), None
        for t in range(1, self.max_length):
            logits, state = self.logits(previous, state)
            logits = logits[:, -1].float().cpu() / temperature
            logits[:, [PAD, BOS]] = -math.inf
            drawn = torch.multinomial(torch.softmax(logits, dim=1), 1, generator=generator)[:, 0]
            rows[:, t] = torch.where(ended, PAD, drawn)
            ended |= drawn == EOS
            if ended.all():
                break
            previous = rows[:, t : t + 1].to(device)
        return rows


def _at_least(value: object, key: str, low: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise GanforgeError(
            f"model 'charrnn': {key}={value!r} is not an integer >= {low} ({what})",
            "train it with algorithm.name=smiles-lm, which sets it from the data",
        )
    return value


@register_model("charrnn")
def build_charrnn(
    sample_shape: tuple[int, ...],
    num_classes: int | None = None,
    *,
    vocab_size: int | None = None,
    max_length: int | None = None,
    embed: int = 64,
    hidden: int = 768,
    layers: int = 3,
    dropout: float = 0.2,
) -> tuple[SmilesLanguageModel]:
    """The CharRNN language model; ``vocab_size`` (PAD, BOS, EOS and the alphabet) and
    ``max_length`` (the token row length) come from the data (the algorithm fills them in).
    ``sample_shape`` is not used: the graphs' shape says nothing about the SMILES."""
    if num_classes is not None:
        raise GanforgeError("model 'charrnn' is not class-conditional", "drop model.conditional")
    vocab_size = _at_least(vocab_size, "vocab_size", 4, "PAD, BOS, EOS and at least one character")
    max_length = _at_least(max_length, "max_length", 2, "BOS, EOS and the characters between")
    embed, hidden = positive_int(embed, "embed", "charrnn"), positive_int(hidden, "hidden", "charrnn")
    layers, dropout = positive_int(layers, "layers", "charrnn"), probability(dropout, "dropout", "charrnn")
    return (SmilesLanguageModel(vocab_size, max_length, embed, hidden, layers, dropout),)
