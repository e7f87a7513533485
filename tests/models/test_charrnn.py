"""CharRNN: teacher-forced likelihood ignoring PAD, sampling (BOS first, PAD after EOS,
reproducible with a generator), option checks, and learning a two-word language."""

from __future__ import annotations

import pytest
import torch

from ganforge.data.molecules import BOS, EOS, PAD
from ganforge.errors import GanforgeError
from ganforge.models.base import MODELS
from ganforge.models.charrnn import SmilesLanguageModel

ALPHABET = "CNO"  # tokens 3, 4, 5
LENGTH = 7
SMALL = {"embed": 8, "hidden": 32, "layers": 1, "dropout": 0.0}


def _rows(words: list[str], length: int = LENGTH) -> torch.Tensor:
    rows = torch.full((len(words), length), PAD, dtype=torch.long)
    for r, word in enumerate(words):
        tokens = [BOS, *(3 + ALPHABET.index(c) for c in word), EOS]
        rows[r, : len(tokens)] = torch.tensor(tokens)
    return rows


def _words(rows: torch.Tensor) -> list[str]:
    words = []
    for row in rows.tolist():
        end = row.index(EOS) if EOS in row else len(row)
        words.append("".join(ALPHABET[t - 3] for t in row[1:end]))
    return words


def _charrnn(vocab_size: int = 3 + len(ALPHABET), max_length: int = LENGTH, **options) -> SmilesLanguageModel:
    (model,) = MODELS.build(
        {"name": "charrnn", **{**SMALL, **options}},
        (LENGTH,),
        None,
        vocab_size=vocab_size,
        max_length=max_length,
    )
    return model


def test_nll_ignores_padding_and_counts_predicted_tokens(one_thread):
    model = _charrnn().eval()
    rows = _rows(["CCO", "N"])
    loss, accuracy = model.nll(rows)
    longer, _ = model.nll(_rows(["CCO", "N"], LENGTH + 4))
    assert torch.allclose(loss, longer) and 0 <= accuracy <= 1
    logits, _ = model.logits(rows[:, :-1])
    log_p = torch.log_softmax(logits, -1).gather(2, rows[:, 1:, None])[..., 0]
    counted = rows[:, 1:] != PAD  # 4 + 2 predicted tokens
    assert counted.sum() == 6 and torch.allclose(loss, -log_p[counted].mean())


def test_samples_start_with_bos_pad_after_eos_and_repeat_with_a_generator(one_thread):
    model = _charrnn().eval()
    a = model.sample(50, torch.Generator().manual_seed(4), batch_size=16)
    b = model.sample(50, torch.Generator().manual_seed(4), batch_size=16)
    assert a.dtype == torch.long and a.shape == (50, LENGTH) and torch.equal(a, b)
    assert (a[:, 0] == BOS).all() and not (a[:, 1:] == BOS).any()
    for row in a.tolist():
        if EOS in row:
            end = row.index(EOS)
            assert all(t == PAD for t in row[end + 1 :]) and PAD not in row[:end]
        else:
            assert PAD not in row
    assert model.sample(0).shape == (0, LENGTH)
    with pytest.raises(GanforgeError, match="temperature"):
        model.sample(2, temperature=0)


def test_charrnn_learns_a_two_word_language(one_thread):
    model = _charrnn(hidden=24)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    rows = _rows(["CCO", "CCN"] * 16)
    first, _ = model.nll(rows)
    for _ in range(80):
        loss, accuracy = model.nll(rows)
        opt.zero_grad()
        loss.backward()
        opt.step()
    # the language's entropy: log 2 over 4 predicted tokens
    assert loss < first and loss < 0.25 and accuracy >= 0.74
    words = _words(model.eval().sample(200, torch.Generator().manual_seed(0)))
    share = sum(w in ("CCO", "CCN") for w in words) / len(words)
    assert share >= 0.9 and {"CCO", "CCN"} <= set(words)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"vocab_size": None}, "vocab_size"),
        ({"vocab_size": 3}, "vocab_size"),
        ({"max_length": 1}, "max_length"),
        ({"hidden": 0}, "hidden"),
        ({"layers": 1.5}, "layers"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_charrnn_refuses_bad_options(options, message):
    section = {"name": "charrnn", "vocab_size": 6, "max_length": LENGTH, **options}
    with pytest.raises(GanforgeError, match=message) as err:
        MODELS.build({k: v for k, v in section.items() if v is not None}, (LENGTH,), None)
    assert "\n" not in str(err.value)
    with pytest.raises(GanforgeError, match="not class-conditional"):
        MODELS.build({"name": "charrnn", "vocab_size": 6, "max_length": LENGTH}, (LENGTH,), 3)


def test_charrnn_defaults_are_moses_sized():
    (model,) = MODELS.build({"name": "charrnn", "vocab_size": 30, "max_length": 60}, (20, 88), None)
    assert (model.lstm.num_layers, model.lstm.hidden_size, model.lstm.dropout) == (3, 768, 0.2)
    assert (model.vocab_size, model.max_length) == (30, 60)
