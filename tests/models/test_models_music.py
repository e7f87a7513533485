"""The music networks: shapes, gradients, which codes reach which voices, causality, and the
roll-lstm's voice states against the piano-roll encoding."""

from __future__ import annotations

import pytest
import torch

from ganforge.data.pianoroll import Note, notes_to_roll, roll_to_notes
from ganforge.errors import GanforgeError
from ganforge.models.base import MODELS
from ganforge.models.music import RollLanguageModel, roll_to_states, states_to_roll

SHAPE = (4, 32, 36)  # 4 voices, 2 bars of 16 steps, 3 octaves
LOW, P = 40, 36


def _build(name: str, **options):
    return MODELS.build({"name": name, **options}, SHAPE, None)


@pytest.mark.parametrize("name, options", [("musegan", {"bars": 2, "g_width": 32, "d_width": 16}),
                                           ("crnngan", {"g_hidden": 16, "d_hidden": 8})])
def test_gan_shapes_and_gradients(one_thread, name, options):
    G, D = _build(name, **options)
    z = G.sample_z(3, torch.Generator().manual_seed(0), "cpu")
    x = G(z)
    assert x.shape == (3, *SHAPE) and x.abs().max() <= 1
    D(x).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in G.parameters() if p.requires_grad)
    x_real = torch.rand(3, *SHAPE, requires_grad=True)
    (grad,) = torch.autograd.grad(D(x_real).sum(), x_real, create_graph=True)  # a gradient penalty's path
    grad.norm().backward()


def test_musegan_private_codes_reach_only_their_voice(one_thread):
    G, _ = _build("musegan", bars=2, g_width=32)
    G.eval()
    z = G.sample_z(2, torch.Generator().manual_seed(1), "cpu")
    d, k = G.part_dim, G.tracks
    base = G(z)
    for block, voices in (((2 * d + d, 2 * d + 2 * d), {1}),             # private, voice 1
                          (((2 + k) * d + 3 * d, (2 + k) * d + 4 * d), {3}),  # private temporal, voice 3
                          ((0, d), set(range(k)))):                       # shared: every voice
        changed = z.clone()
        changed[:, block[0]:block[1]] += 1.0
        moved = {v for v in range(k) if not torch.allclose(G(changed)[:, v], base[:, v])}
        assert moved == voices


def test_musegan_refuses_shapes_it_cannot_build():
    with pytest.raises(GanforgeError, match="whole octaves"):
        MODELS.build({"name": "musegan", "bars": 2}, (4, 32, 20), None)
    with pytest.raises(GanforgeError, match="bars"):
        MODELS.build({"name": "musegan", "bars": 3}, SHAPE, None)
    with pytest.raises(GanforgeError, match="piano rolls"):
        MODELS.build({"name": "musegan"}, (1, 28, 28, 3), None)


def test_recurrent_generator_is_causal_in_its_noise(one_thread):
    G, _ = _build("crnngan", g_hidden=16)
    z = G.sample_z(2, torch.Generator().manual_seed(2), "cpu")
    changed = z.view(2, SHAPE[1], -1).clone()
    changed[:, 10] += 1.0
    a, b = G(z), G(changed.view(2, -1))
    assert torch.equal(a[:, :, :10], b[:, :, :10]) and not torch.allclose(a[:, :, 10:], b[:, :, 10:])


def _chorale_like() -> torch.Tensor:
    notes = [Note(0, 0, 4, 72), Note(0, 4, 8, 72), Note(0, 8, 16, 74), Note(1, 0, 8, 67), Note(1, 12, 16, 65),
             Note(2, 0, 16, 60), Note(3, 0, 2, 48), Note(3, 2, 4, 50), Note(3, 4, 16, 43)]
    return torch.from_numpy(notes_to_roll(notes, 4, 32, LOW, P)).unsqueeze(0)


def test_voice_states_round_trip_monophonic_rolls():
    roll = _chorale_like()
    states = roll_to_states(roll)
    assert states[0, 0, 4] == 1 + (72 - LOW)           # the repeated C5 is a new onset
    assert states[0, 0, 5] == 1 + P + (72 - LOW)      # then held
    assert states[0, 1, 9] == 0                       # alto rests
    assert torch.equal(states_to_roll(states, P), roll)
    assert roll_to_notes(states_to_roll(states, P)[0].numpy(), LOW) == roll_to_notes(roll[0].numpy(), LOW)


def test_voice_states_keep_the_highest_note_of_a_chord():
    roll = torch.from_numpy(notes_to_roll([Note(0, 0, 4, 60), Note(0, 0, 4, 64)], 4, 32, LOW, P))[None]
    assert roll_to_states(roll)[0, 0, 0] == 1 + (64 - LOW)


def test_language_model_is_causal_over_steps_and_voices(one_thread):
    (lm,) = _build("roll-lstm", embed=8, hidden=16, layers=1)
    states = roll_to_states(_chorale_like())
    logits = lm.logits(states)
    changed = states.clone()
    changed[0, 2:, 6] = 0          # voices 2 and 3 at step 6
    changed[0, :, 7:] = 0          # everything after step 6
    again = lm.logits(changed)
    assert torch.allclose(logits[0, :, :6], again[0, :, :6])          # earlier steps
    assert torch.allclose(logits[0, :3, 6], again[0, :3, 6])          # voices 0-2 at step 6 (not 3)
    assert not torch.allclose(logits[0, 3, 6], again[0, 3, 6])        # voice 3 sees voice 2
    assert logits.shape == (1, 4, 32, 2 * P + 1)


def test_language_model_nll_is_the_cross_entropy_of_its_logits(one_thread):
    (lm,) = _build("roll-lstm", embed=8, hidden=16, layers=1)
    roll = _chorale_like()
    nll, _ = lm.nll(roll)
    states = roll_to_states(roll)
    log_p = torch.log_softmax(lm.logits(states), -1).gather(-1, states.unsqueeze(-1))
    assert nll.item() == pytest.approx(-log_p.mean().item(), rel=1e-6)


def test_language_model_samples_follow_its_distribution(one_thread):
    (lm,) = _build("roll-lstm", embed=8, hidden=16, layers=1)
    with torch.no_grad():
        for head in lm.readout:
            head.weight.zero_()
            head.bias.fill_(-30.0)
            head.bias[1 + 12] = 30.0  # always an onset of pitch 12 (MIDI 52)
    x = lm.sample(3, torch.Generator().manual_seed(0))
    assert x.shape == (3, *SHAPE)
    assert (x[..., 12] == 1).all() and (x[..., :12] == -1).all()
    a = lm.sample(2, torch.Generator().manual_seed(5))
    b = lm.sample(2, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_language_model_learns_a_phrase(one_thread):
    torch.manual_seed(0)
    lm = RollLanguageModel(SHAPE, embed=8, hidden=32, layers=1)
    roll = _chorale_like().repeat(8, 1, 1, 1)
    opt = torch.optim.Adam(lm.parameters(), lr=1e-2)
    first = lm.nll(roll)[0].item()
    for _ in range(100):
        opt.zero_grad()
        loss, _ = lm.nll(roll)
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first
    sample = lm.sample(1, torch.Generator().manual_seed(0), temperature=0.05)  # near its mode
    assert roll_to_notes(sample[0].numpy(), LOW) == roll_to_notes(roll[0].numpy(), LOW)


@pytest.mark.parametrize("name, options", [("musegan", {"bars": 2, "g_width": 32}),
                                           ("crnngan", {"g_hidden": 16})])
def test_generators_start_silent_unless_told(one_thread, name, options):
    G, _ = _build(name, **options)
    G.eval()
    x = G(G.sample_z(4, torch.Generator().manual_seed(0), "cpu"))
    assert not any(roll_to_notes(r.detach().numpy(), LOW) for r in x)  # every cell below -1/2: rests
    G, _ = _build(name, start_bias=0.0, **options)
    G.eval()
    x = G(G.sample_z(4, torch.Generator().manual_seed(0), "cpu"))
    assert (x > -0.5).float().mean() > 0.3  # a zero bias starts with cells held near 0
    for bad in ("low", float("nan")):
        with pytest.raises(GanforgeError, match="start_bias"):
            _build(name, start_bias=bad, **options)
