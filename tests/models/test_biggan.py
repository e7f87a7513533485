"""BigGAN: shapes and gradients, conditional BN against its closed form, the hierarchical latent,
self-attention, spectral norm everywhere, the projection term, truncation and bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize

from ganforge.errors import GanforgeError
from ganforge.models import build
from ganforge.models.biggan import BigGANGenerator, HierarchicalBatchNorm, SelfAttention
from ganforge.models.compose import ComposedDiscriminator

TINY = {"name": "biggan", "z_dim": 16, "width": 2, "embed_dim": 4}
SHAPE = (1, 32, 32)


def _pair(conditional: bool = True, **options):
    section = {**TINY, **options, **({"conditional": "projection"} if conditional else {})}
    return build(section, SHAPE, 10)


def test_shapes_gradients_and_range():
    G, D = _pair()
    z, y = torch.randn(6, 16), torch.randint(10, (6,))
    x = G(z, y)
    assert x.shape == (6, *SHAPE) and x.abs().max() <= 1
    logits = D(x, y)
    assert logits.shape == (6,)
    logits.sum().backward()
    for net in (G, D):
        missing = [n for n, p in net.named_parameters() if p.grad is None]
        # the attention gammas start at 0, so the layers behind them get no gradient on step 1
        assert all(".f." in n or ".g." in n or ".h." in n or ".v." in n for n in missing), missing
    assert G.attention.gamma.grad is not None and G.shared.weight.grad.abs().sum() > 0


def test_hierarchical_batchnorm_is_gamma_bn_plus_beta_from_the_linear_maps():
    torch.manual_seed(1)
    cbn = HierarchicalBatchNorm(3, 5).train()
    x, cond = torch.randn(4, 3, 2, 2) * 2 + 1, torch.randn(4, 5)
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    gamma = 1 + cond @ cbn.gain.weight.T
    beta = cond @ cbn.bias.weight.T
    expected = gamma[:, :, None, None] * (x - mean) / torch.sqrt(var + 1e-5) + beta[:, :, None, None]
    torch.testing.assert_close(cbn(x, cond), expected, atol=1e-5, rtol=1e-5)


def test_each_block_sees_the_shared_embedding_and_only_its_own_z_chunk():
    G, _ = _pair()
    assert isinstance(G, BigGANGenerator) and G.chunk == 4 and len(G.blocks) == 3
    z, y = torch.randn(2, 16), torch.tensor([3, 7])
    z0, conds = G.conditioning(z, y)
    assert torch.equal(z0, z[:, :4])
    for index, cond in enumerate(conds):
        own = z[:, 4 * (index + 1):4 * (index + 2)]
        assert torch.equal(cond[:, :4], G.shared(y)) and torch.equal(cond[:, 4:], own)
    changed = z.clone()
    changed[:, 8:12] += 1.0  # chunk 2: the second up-block's
    z0b, condsb = G.conditioning(changed, y)
    assert torch.equal(z0, z0b)
    assert [not torch.equal(a, b) for a, b in zip(conds, condsb, strict=True)] == [False, True, False]
    # and the network reads that chunk through those CBNs only: their inputs differ, the others' not
    seen: dict[str, list[torch.Tensor]] = {}

    def record(key):
        def hook(module, args, out):
            seen.setdefault(key, []).append(args[1])
        return hook

    hooks = [m.register_forward_hook(record(k)) for k, m in G.named_modules()
             if isinstance(m, HierarchicalBatchNorm)]
    G(z, y), G(changed, y)
    for hook in hooks:
        hook.remove()
    differs = {k: not torch.equal(*v) for k, v in seen.items()}
    assert differs == {"blocks.0.bn1": False, "blocks.0.bn2": False, "blocks.1.bn1": True,
                       "blocks.1.bn2": True, "blocks.2.bn1": False, "blocks.2.bn2": False}


def test_self_attention_starts_as_the_identity_and_its_rows_are_distributions():
    attn = SelfAttention(16)
    x = torch.randn(3, 16, 8, 8)
    assert torch.equal(attn(x), x)
    beta = attn.attention(x)
    assert beta.shape == (3, 64, 16) and (beta >= 0).all()
    torch.testing.assert_close(beta.sum(dim=-1), torch.ones(3, 64))
    with torch.no_grad():
        attn.gamma.fill_(0.5)
    # o_j = W_v sum_i beta_ji h_i, against an explicit loop over one query position
    value = F.max_pool2d(attn.h(x), 2).flatten(2)
    o_5 = attn.v(sum(beta[:, 5, i, None] * value[:, :, i] for i in range(16))[:, :, None, None])
    torch.testing.assert_close(attn(x).flatten(2)[:, :, 5], x.flatten(2)[:, :, 5] + 0.5 * o_5[:, :, 0, 0])


def test_attention_sits_at_the_chosen_side_in_g_and_d():
    G, D = _pair()
    feats: dict[str, torch.Size] = {}

    def record(key):
        def hook(module, args, out):
            feats[key] = args[0].shape
        return hook

    G.attention.register_forward_hook(record("G"))
    [m for m in D.trunk.blocks if isinstance(m, SelfAttention)][0].register_forward_hook(record("D"))
    y = torch.zeros(2, dtype=torch.long)
    D(G(torch.randn(2, 16), y), y)
    assert feats["G"][-1] == feats["D"][-1] == 16
    G8, D8 = _pair(attention=8)
    assert G8.attention_after == 0
    G0, D0 = _pair(attention=None)
    assert G0.attention is None and not any(isinstance(m, SelfAttention) for m in D0.modules())


def _weight_layers(net):
    return [m for m in net.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.Embedding))]


def test_every_weight_layer_is_spectrally_normalised_but_g_shared_embedding():
    G, D = _pair()
    for net in (G, D):
        for name, m in net.named_modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.Embedding)) and name != "shared":
                assert parametrize.is_parametrized(m, "weight"), name
                assert len(m.parametrizations.weight) == 1, name  # not normalised twice
    assert not parametrize.is_parametrized(G.shared, "weight")
    assert isinstance(D, ComposedDiscriminator) and parametrize.is_parametrized(D.embed, "weight")
    G.train(), D.train()
    with torch.no_grad():
        for _ in range(30):  # power iterations
            y = torch.randint(10, (4,))
            D(G(torch.randn(4, 16), y), y)
    for net in (G, D):
        for name, m in net.named_modules():
            if parametrize.is_parametrized(m, "weight"):
                sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item()
                assert sigma == pytest.approx(1.0, abs=0.02), name
    # the stabiliser switch on top normalises nothing twice
    _, D2 = build({**TINY, "conditional": "projection"}, SHAPE, 10, extras=_sn_extras())
    assert all(len(m.parametrizations.weight) == 1 for m in D2.modules()
               if parametrize.is_parametrized(m, "weight"))


def _sn_extras():
    from ganforge.models.compose import DiscriminatorExtras
    return DiscriminatorExtras(spectral_norm=True)


def test_projection_adds_the_inner_product_of_the_class_embedding_and_the_pooled_features():
    _, D = _pair()
    D.eval()
    x, y = torch.randn(5, *SHAPE), torch.tensor([0, 1, 2, 3, 9])
    with torch.no_grad():
        out = D.evaluate(x, y)
        h = F.relu(D.trunk.blocks(x)).sum(dim=(2, 3))  # global sum pooling
        torch.testing.assert_close(out.features, h)
        unconditional = D.head(h).squeeze(1)
        torch.testing.assert_close(out.logits - unconditional, (D.embed(y) * h).sum(dim=1))


def test_truncation_resamples_z_into_psi_times_the_bound():
    G, _ = _pair()
    assert G.truncation == "z"
    codes = G.truncated_z(4000, torch.Generator().manual_seed(0), psi=0.5)
    assert codes.abs().max() <= 0.5 * 2.0 and codes.std() < 0.5 * 0.9  # N(0,1) cut to [-2, 2]: std 0.88
    G.eval()
    x = G.sample(6, torch.Generator().manual_seed(0), labels=torch.arange(6), psi=0.5)
    assert x.shape == (6, *SHAPE)
    with pytest.raises(GanforgeError, match="psi"):
        G.sample(2, labels=torch.arange(2), psi=1.5)


def test_unconditional_biggan_has_no_classes_and_refuses_labels():
    G, D = _pair(conditional=False)
    assert G.shared is None and G.num_classes is None and not isinstance(D, ComposedDiscriminator)
    assert G(torch.randn(3, 16)).shape == (3, *SHAPE) and D(torch.randn(3, *SHAPE)).shape == (3,)
    with pytest.raises(GanforgeError, match="unconditional") as err:
        G(torch.randn(3, 16), torch.tensor([3, 3, 3]))
    assert "\n" not in str(err.value)
    Gc, _ = _pair()
    with pytest.raises(GanforgeError, match="without class labels"):
        Gc(torch.randn(3, 16))


@pytest.mark.parametrize(("options", "shape", "fragment"), [
    ({}, (1, 24, 24), "power of two"),
    ({}, (2,), "needs images"),
    ({"z_dim": 15}, SHAPE, "4 equal chunks"),
    ({"attention": 12}, SHAPE, "attention=12"),
    ({"attention": 32}, SHAPE, "no 32x32"),
    ({"width": 0}, SHAPE, "width"),
    ({"g_conditioning": "cbn", "conditional": "projection"}, SHAPE, "g_conditioning"),
])
def test_bad_options_are_one_line_errors(options, shape, fragment):
    with pytest.raises(GanforgeError, match=fragment) as err:
        build({**TINY, **options}, shape, 10)
    assert "\n" not in str(err.value)
