"""pix2pix's networks: U-Net shapes, gradients and skips, dropout as seeded noise, the PatchGAN's
receptive fields measured by gradients, and the builder's one-line errors."""

from __future__ import annotations

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.models import MODELS
from ganforge.models.pix2pix import (
    RECEPTIVE_FIELDS,
    PatchDiscriminator,
    build_pix2pix,
    patch_receptive_field,
)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_shapes_and_gradients_reach_every_parameter():
    G, D = MODELS.build({"name": "pix2pix", "width": 4}, (3, 32, 32), in_channels=2)
    assert G.depth == 5 and G.multiple == 32
    c = torch.randn(4, 2, 32, 32)
    out = G(c)
    assert out.shape == (4, 3, 32, 32) and out.abs().max() <= 1
    logits = D(c, out)
    assert logits.shape == (4, 1, 2, 2)
    logits.mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())
    assert all(p.grad is not None for p in D.parameters())
    assert G(torch.randn(2, 2, 64, 96)).shape == (2, 3, 64, 96)  # fully convolutional


def test_the_skips_carry_information_past_a_zeroed_bottleneck():
    G, _ = build_pix2pix((1, 32, 32), width=4, dropout=0.0)
    G.eval()
    bottleneck = G.encoders[-1].register_forward_hook(lambda m, i, o: torch.zeros_like(o))
    a, b = torch.randn(1, 1, 32, 32), torch.randn(1, 1, 32, 32)
    assert not torch.allclose(G(a), G(b))  # the bottleneck is blind: only the skips tell a from b
    bottleneck.remove()
    full = G(a)
    skip = G.encoders[0].register_forward_hook(lambda m, i, o: torch.zeros_like(o))
    assert not torch.allclose(G(a), full)  # the first skip is part of the output
    skip.remove()


def test_dropout_is_seeded_noise_kept_at_test_time_as_an_option():
    G, _ = build_pix2pix((1, 32, 32), width=4)
    G.eval()
    c = torch.randn(3, 1, 32, 32)
    one = G(c, torch.Generator().manual_seed(0))
    assert torch.equal(one, G(c, torch.Generator().manual_seed(0)))
    assert not torch.equal(one, G(c, torch.Generator().manual_seed(1)))
    quiet, _ = build_pix2pix((1, 32, 32), width=4, test_dropout=False)
    quiet.eval()
    assert torch.equal(quiet(c, torch.Generator().manual_seed(0)), quiet(c, torch.Generator().manual_seed(1)))


def _measured_field(D: PatchDiscriminator, side: int) -> int:
    """Side of the input window that one central logit's gradient touches."""
    D.eval()
    c = torch.randn(1, 1, side, side, requires_grad=True)
    x = torch.randn(1, 1, side, side, requires_grad=True)
    logits = D(c, x)
    h, w = logits.shape[-2:]
    logits[0, 0, h // 2, w // 2].backward()
    touched = (c.grad.abs() + x.grad.abs())[0, 0] > 0
    rows, cols = touched.any(1).nonzero(), touched.any(0).nonzero()
    assert rows.numel() and cols.numel()
    height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
    assert height == width
    return height


@pytest.mark.parametrize("field", sorted(RECEPTIVE_FIELDS))
def test_patchgan_receptive_field_is_what_it_says(field):
    torch.manual_seed(0)
    D = PatchDiscriminator(1, 1, receptive_field=field, width=4)
    assert patch_receptive_field(RECEPTIVE_FIELDS[field]) == field
    assert _measured_field(D, side=160) == field


def test_patch_logits_per_field_on_32x32():
    c = torch.randn(2, 1, 32, 32)
    sides = {f: PatchDiscriminator(1, 1, receptive_field=f, width=4)(c, c).shape[-1]
             for f in RECEPTIVE_FIELDS}
    assert sides == {1: 32, 16: 14, 34: 6, 70: 2}


@pytest.mark.parametrize("changes, fragment", [
    ({"receptive_field": 50}, "receptive_field=50"),
    ({"depth": 6}, "at most 5"),
    ({"width": 0}, "width=0"),
    ({"dropout": 1.5}, "dropout=1.5"),
    ({"norm": "layer"}, "unknown norm"),
    ({"test_dropout": "yes"}, "test_dropout"),
])
def test_builder_errors_are_one_line(changes, fragment):
    with pytest.raises(GanforgeError, match=fragment) as err:
        build_pix2pix((1, 32, 32), **changes)
    assert "\n" not in str(err.value)
    with pytest.raises(GanforgeError, match="needs images"):
        build_pix2pix((2,))


def test_size_and_channel_checks_name_what_g_accepts():
    G, _ = build_pix2pix((1, 32, 32), width=4, depth=3)
    with pytest.raises(GanforgeError, match="multiples of 8"):
        G(torch.randn(1, 1, 20, 20))
    with pytest.raises(GanforgeError, match="1 channel"):
        G(torch.randn(1, 3, 32, 32))
    assert G(torch.randn(1, 1, 24, 40)).shape == (1, 1, 24, 40)
