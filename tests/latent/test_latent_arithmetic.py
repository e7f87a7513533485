"""Averaged-code arithmetic, picking codes by seed / grid index, and class labels."""

from __future__ import annotations

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.latent import (
    arithmetic,
    average_codes,
    check_label,
    codes_from_batch,
    codes_from_seeds,
    generate,
    latent_arithmetic,
    num_classes_of,
    seeded_batch,
    variations,
)
from ganforge.models import build
from ganforge.train.run import load_run


def test_arithmetic_equals_the_hand_computed_averages():
    a = torch.tensor([[1.0, 2.0], [3.0, 4.0]])              # mean (2, 3)
    b = torch.tensor([[0.0, 1.0]])                           # mean (0, 1)
    c = torch.tensor([[1.0, 1.0], [1.0, 3.0], [4.0, 2.0]])   # mean (2, 2)
    assert torch.equal(average_codes(a), torch.tensor([2.0, 3.0]))
    assert torch.equal(average_codes(b[0]), b[0])
    assert torch.equal(arithmetic(a, b, c), torch.tensor([4.0, 4.0]))
    assert torch.equal(arithmetic(a[0], a[0], c[2]), c[2])  # x - x + y = y


@pytest.mark.parametrize("groups", [
    (torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(1, 3)),
    (torch.zeros(0, 3), torch.zeros(2, 3), torch.zeros(1, 3)),
    (torch.zeros(2, 3, 1), torch.zeros(2, 3), torch.zeros(1, 3)),
])
def test_bad_groups_raise(groups):
    with pytest.raises(GanforgeError):
        arithmetic(*groups)


def test_seeded_codes_are_independent_of_what_else_is_drawn():
    G, _ = build({"name": "mlp", "z_dim": 5, "g_hidden": [4]}, (2,))
    codes = codes_from_seeds(G, [7, 3, 7])
    assert codes.shape == (3, 5)
    assert torch.equal(codes[0], codes[2])
    assert torch.equal(codes[1], torch.randn(1, 5, generator=torch.Generator().manual_seed(3))[0])


def test_grid_indices_pick_the_samples_of_ganforge_sample(digits_run):
    run = load_run(digits_run)
    G = run.generator
    picked = codes_from_batch(G, [3, 10, 3], n=16, seed=5)
    assert torch.equal(picked, seeded_batch(G, 16, 5)[[3, 10, 3]])
    # The same images `ganforge sample -n 16 --seed 5` puts at positions 3 and 10.
    torch.testing.assert_close(generate(G, picked[:2]), run.sample(16, seed=5)[[3, 10]],
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(GanforgeError, match="outside the batch of 16"):
        codes_from_batch(G, [16], n=16)


def test_variations_jitter_within_the_noise_scale():
    z = torch.tensor([0.5, -1.0, 2.0])
    v = variations(z, 10, 0.25, seed=1)
    assert v.shape == (10, 3)
    assert ((v - z).abs() <= 0.25).all() and not torch.equal(v[0], v[1])
    assert torch.equal(v, variations(z, 10, 0.25, seed=1))


def test_conditional_groups_are_rendered_with_their_labels():
    torch.manual_seed(0)
    G, _ = build({"name": "mlp", "z_dim": 3, "g_hidden": [8], "conditional": "concat"}, (2,),
                 num_classes=4)
    G.eval()
    assert num_classes_of(G) == 4
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(n, 3, generator=g) for n in (2, 3, 1))
    res = latent_arithmetic(G, a, b, c, labels={"a": 1, "b": 2, "c": 3}, n_variations=2)
    torch.testing.assert_close(res.samples["a"], G(a, torch.full((2,), 1)).detach())
    torch.testing.assert_close(res.mean_samples["b"], G(b.mean(0, keepdim=True), torch.tensor([2])).detach())
    assert res.labels["result"] == 3  # the class of group c, by default
    expected = G((a.mean(0) - b.mean(0) + c.mean(0))[None], torch.tensor([3])).detach()
    torch.testing.assert_close(res.result_sample, expected)
    assert res.variation_samples.shape == (2, 2)
    with pytest.raises(GanforgeError, match="out of range"):
        check_label(G, 4)
    with pytest.raises(GanforgeError, match="needs a class for every group"):
        latent_arithmetic(G, a, b, c, labels={"a": 1})
    # Without labels a conditional G renders the classes cycled, like `ganforge sample`.
    torch.testing.assert_close(generate(G, torch.zeros(6, 3)), G(torch.zeros(6, 3), torch.arange(6) % 4))


def test_class_labels_on_an_unconditional_generator_are_refused():
    G, _ = build({"name": "mlp", "z_dim": 3, "g_hidden": [4]}, (2,), num_classes=8)
    assert num_classes_of(G) is None
    assert check_label(G, None) is None
    with pytest.raises(GanforgeError, match="unconditional"):
        latent_arithmetic(G, torch.zeros(1, 3), torch.zeros(1, 3), torch.zeros(1, 3), labels={"a": 0})
