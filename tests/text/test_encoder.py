"""The caption encoder: padding invariance, gradients, InfoNCE, a learning check, the cache."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.text.captions import captions_for, fit_thresholds, measure_images
from ganforge.text.encoder import (
    EncoderSettings,
    TextEncoder,
    encode_texts,
    encoder_from_state,
    info_nce,
    load_or_train_text_encoder,
    train_text_encoder,
)
from ganforge.text.vocab import Vocabulary


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def _encoder(vocab_size: int = 12) -> TextEncoder:
    torch.manual_seed(0)
    return TextEncoder(vocab_size, embed_dim=8, hidden_dim=16, out_dim=6, feature_dim=5)


def test_padding_and_batch_neighbours_do_not_change_the_embedding():
    enc = _encoder().eval()
    tokens = torch.tensor([[2, 3, 4, 0], [5, 6, 0, 0], [7, 8, 9, 10]])
    lengths = torch.tensor([3, 2, 4])
    out = enc(tokens, lengths)
    wider = torch.cat([tokens, torch.zeros(3, 5, dtype=torch.int64)], dim=1)
    assert torch.allclose(enc(wider, lengths), out, atol=1e-6)
    assert torch.allclose(enc(tokens[1:2, :2], lengths[1:2]), out[1:2], atol=1e-6)
    assert out.shape == (3, 6)
    assert torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)
    # garbage in the padded positions is never read
    noisy = tokens.clone()
    noisy[0, 3], noisy[1, 2:] = 11, 11
    assert torch.allclose(enc(noisy, lengths), out, atol=1e-6)


def test_gradients_reach_every_trained_part():
    enc = _encoder()
    tokens, lengths = torch.tensor([[2, 3, 4], [5, 6, 0]]), torch.tensor([3, 2])
    loss = info_nce(enc(tokens, lengths), enc.embed_features(torch.randn(2, 5)))
    loss.backward()
    for name in ("embed.weight", "gru.weight_ih_l0", "gru.weight_hh_l0_reverse", "out.weight",
                 "image_proj.weight"):
        grad = dict(enc.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert enc.embed.weight.grad[0].abs().sum() == 0  # <pad> never contributes


def test_info_nce_matches_a_hand_computation_on_3x3():
    text = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    image = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, -1.0]])
    tau = 0.5
    r = 1 / math.sqrt(2)
    cos = [[1, r, 0], [0, r, -1], [r, 1, -r]]       # cos(text_i, image_j) by hand
    s = [[c / tau for c in row] for row in cos]

    def ce(row: list[float], k: int) -> float:
        return -row[k] + math.log(sum(math.exp(v) for v in row))

    rows = sum(ce(s[i], i) for i in range(3)) / 3
    cols = sum(ce([s[j][i] for j in range(3)], i) for i in range(3)) / 3
    assert info_nce(text, image, tau).item() == pytest.approx(0.5 * (rows + cols), rel=1e-6)
    # perfectly matched, well-separated pairs cost almost nothing
    eye = torch.eye(3)
    assert info_nce(eye, eye, 0.01).item() < 1e-6


def _synthetic(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Squares whose position encodes the class and whose side and ink vary at random."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=gen)
    sides = torch.randint(3, 8, (n,), generator=gen)
    ink = torch.rand(n, generator=gen) * 0.8 + 0.2
    images = torch.full((n, 1, 28, 28), -1.0)
    for i in range(n):
        c, s = int(labels[i]), int(sides[i])
        top, left = 1 + (c // 5) * 14, 1 + (c % 5) * 5
        images[i, 0, top:top + s, left:left + s] = 2 * float(ink[i]) - 1
    return images, labels


def test_the_encoder_learns_to_match_held_out_captions_to_their_images():
    images, labels = _synthetic(800, 0)
    th = fit_thresholds(measure_images(images), labels)
    caps = captions_for(images, labels, "train", 3, seed=0, thresholds=th)
    vocab = Vocabulary.build(c.text for cc in caps for c in cc)
    test_images, test_labels = _synthetic(300, 1)
    test_caps = captions_for(test_images, test_labels, "test", 1, seed=0, thresholds=th)
    settings = EncoderSettings(features="pca", epochs=30, embed_dim=16, hidden_dim=32, out_dim=32)
    enc, report = train_text_encoder(images, labels, caps, vocab, settings, seed=0,
                                     eval_data=(test_images, test_caps), eval_labels=test_labels)
    held = report["heldout"]
    assert held["retrieval_chance"] == pytest.approx(0.01)
    assert held["retrieval_top1"] > 0.1, report          # chance is 0.01
    assert held["class_accuracy"] > 0.5, report          # chance is 0.1
    assert report["train"]["class_accuracy"] > 0.9, report
    assert not any(p.requires_grad for p in enc.parameters()) and not enc.training


def test_cache_returns_the_same_encoder_and_loads_weights_only(tmp_path):
    images, labels = _synthetic(60, 2)
    caps = captions_for(images, labels, "train", 2, seed=0)
    vocab = Vocabulary.build(c.text for cc in caps for c in cc)
    settings = EncoderSettings(features="pca", epochs=2, batch_size=20, embed_dim=8,
                               hidden_dim=8, out_dim=8)
    enc1, rep1 = load_or_train_text_encoder(images, labels, caps, vocab, settings, 0, cache_dir=tmp_path)
    enc2, rep2 = load_or_train_text_encoder(images, labels, caps, vocab, settings, 0, cache_dir=tmp_path)
    assert rep1["cached"] is False and rep2["cached"] is True
    texts = ["a small top", "an unseen purple word", "bag"]
    assert torch.equal(encode_texts(enc1, vocab, texts), encode_texts(enc2, vocab, texts))
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".pt"
    enc3, vocab3, report3 = encoder_from_state(torch.load(files[0], weights_only=True))
    assert vocab3.words == vocab.words and report3["images"] == 60
    assert torch.allclose(enc3.image_features(images[:3]), enc1.image_features(images[:3]))
    # another seed is another key
    _, rep4 = load_or_train_text_encoder(images, labels, caps, vocab, settings, 1, cache_dir=tmp_path)
    assert rep4["cached"] is False and len(list(tmp_path.iterdir())) == 2
    with pytest.raises(GanforgeError, match="no words"):
        encode_texts(enc1, vocab, ["a bag", " "])


def test_settings_are_validated():
    with pytest.raises(GanforgeError, match="image features"):
        EncoderSettings(features="inception")
    with pytest.raises(GanforgeError, match="batch_size"):
        EncoderSettings(batch_size=1)
