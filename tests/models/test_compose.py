"""Generic model options: spectral norm, PacGAN, minibatch layers, and the conditional variants,
each on both families."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.models import build
from ganforge.models.compose import ComposedDiscriminator, ConditionalGenerator, DiscriminatorExtras
from ganforge.models.layers import ConditionalBatchNorm

FAMILIES = [({"name": "mlp", "d_hidden": [16, 8], "g_hidden": [16]}, (2,)),
            ({"name": "dcgan", "width": 4, "z_dim": 8}, (1, 8, 8))]


def weight_layers(module: nn.Module) -> list[nn.Module]:
    kinds = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.Embedding)
    return [m for m in module.modules() if isinstance(m, kinds)]


def test_no_options_leave_the_family_discriminator_untouched() -> None:
    _, D = build("mlp", (2,))
    assert not isinstance(D, ComposedDiscriminator)
    assert not any(hasattr(m, "parametrizations") for m in D.modules())


@pytest.mark.parametrize(("section", "shape"), FAMILIES)
def test_spectral_norm_gives_every_weight_layer_of_d_unit_top_singular_value(section, shape) -> None:
    torch.manual_seed(0)
    G, D = build(section, shape, extras=DiscriminatorExtras(spectral_norm=True))
    layers = weight_layers(D)
    assert layers and all(hasattr(m, "parametrizations") for m in layers)
    assert not any(hasattr(m, "parametrizations") for m in G.modules())
    D.train()
    with torch.no_grad():
        for layer in layers:  # whatever the raw scale, the effective weight is W / sigma(W)
            layer.parametrizations.weight.original.mul_(100.0)
        for _ in range(300):  # each training forward runs one power iteration per layer
            D(torch.randn(8, *shape))
    for layer in layers:
        original = layer.parametrizations.weight.original.flatten(1)
        assert torch.linalg.matrix_norm(original, ord=2) > 1.05  # the raw weight is not unit
        effective = layer.weight.flatten(1)  # conv kernels as (out, in * k * k), as SN reshapes them
        assert float(torch.linalg.matrix_norm(effective, ord=2)) == pytest.approx(1.0, abs=2e-3)


def test_packed_discriminator_concatenates_consecutive_samples() -> None:
    torch.manual_seed(0)
    _, D = build({"name": "mlp", "d_hidden": [8]}, (2,), extras=DiscriminatorExtras(pack=3))
    assert D.pack == 3 and D.trunk.hidden[0].in_features == 6
    x = torch.randn(12, 2)
    out = D(x)
    assert out.shape == (4,)
    expected = D.head(D.trunk.hidden(x.reshape(4, 6))).squeeze(1)  # rows [3k, 3k+3) side by side
    torch.testing.assert_close(out, expected)
    perm = torch.tensor([2, 0, 3, 1])  # permuting whole packs permutes the logits
    torch.testing.assert_close(D(x.reshape(4, 3, 2)[perm].reshape(12, 2)), out[perm])
    swapped = x.clone()
    swapped[[0, 1]] = x[[1, 0]]  # reordering inside a pack changes only that pack's logit
    changed = D(swapped)
    assert not torch.isclose(changed[0], out[0]) and torch.equal(changed[1:], out[1:])


def test_packed_images_stack_channels() -> None:
    _, D = build({"name": "dcgan", "width": 4}, (1, 8, 8), extras=DiscriminatorExtras(pack=2))
    assert D.trunk.net.down1[0].in_channels == 2
    assert D(torch.randn(6, 1, 8, 8)).shape == (3,)
    with pytest.raises(GanforgeError, match="multiple of 2"):
        D(torch.randn(5, 1, 8, 8))


@pytest.mark.parametrize(("section", "shape"), FAMILIES)
def test_minibatch_layers_extend_the_features_and_see_a_collapsed_batch(section, shape) -> None:
    torch.manual_seed(0)
    extras = DiscriminatorExtras(minibatch_std=True, minibatch_discrimination=(6, 3))
    _, D = build(section, shape, extras=extras)
    assert D.feature_dim == D.trunk.feature_dim + 1 + 6
    spread = torch.randn(8, *shape)
    collapsed = spread[:1].expand(8, *shape).clone()
    h_spread, h_collapsed = D.evaluate(spread).features, D.evaluate(collapsed).features
    width = D.trunk.feature_dim
    # minibatch std of a collapsed batch is sqrt(eps) = 1e-4; MBD of identical rows is N - 1 per kernel
    torch.testing.assert_close(h_collapsed[:, width], torch.full((8,), 1e-4))
    assert float(h_spread[:, width].min()) > 1.5e-4
    torch.testing.assert_close(h_collapsed[:, width + 1:], torch.full((8, 6), 7.0))
    assert float(h_spread[:, width + 1:].mean()) < 7.0
    spread.requires_grad_(True)
    D(spread).sum().backward()
    assert spread.grad is not None and spread.grad.abs().sum() > 0


# --------------------------------------------------------------------------- conditioning


@pytest.mark.parametrize(("section", "shape"), FAMILIES)
@pytest.mark.parametrize("conditional", ["concat", "acgan", "projection"])
def test_conditional_variants_use_the_labels(section, shape, conditional) -> None:
    torch.manual_seed(0)
    g_cond = "concat" if section["name"] == "mlp" else None  # the MLP G has no BatchNorm by default
    G, D = build({**section, "conditional": conditional, "g_conditioning": g_cond}, shape, 3)
    assert isinstance(G, ConditionalGenerator) and isinstance(D, ComposedDiscriminator)
    for module in G.modules():  # conditional BatchNorm starts equal for every class: perturb it
        if isinstance(module, ConditionalBatchNorm):
            nn.init.normal_(module.gamma.weight, 1.0, 0.5)
    z = G.sample_z(6, torch.Generator().manual_seed(0))
    y0, y1 = torch.zeros(6, dtype=torch.long), torch.ones(6, dtype=torch.long)
    G.eval()
    assert G(z, y0).shape == (6, *shape)
    assert not torch.allclose(G(z, y0), G(z, y1))  # the class changes the sample
    x = torch.randn(6, *shape)
    out0, out1 = D.evaluate(x, y0), D.evaluate(x, y1)
    if conditional == "acgan":  # AC-GAN's real/fake logit ignores y; its class head does not
        torch.testing.assert_close(out0.logits, out1.logits)
        assert out0.class_logits.shape == (6, 3)
    else:
        assert not torch.allclose(out0.logits, out1.logits)
        assert out0.class_logits is None
    with pytest.raises(GanforgeError, match="without class labels"):
        D(x)
    with pytest.raises(GanforgeError, match="without class labels"):
        G(z)


def test_projection_discriminator_adds_the_inner_product_of_the_class_embedding() -> None:
    torch.manual_seed(0)
    _, D = build({"name": "mlp", "d_hidden": [8], "conditional": "projection",
                  "g_conditioning": "concat"}, (2,), 4)
    x, y = torch.randn(5, 2), torch.tensor([0, 1, 2, 3, 1])
    h = D.trunk.features(x)
    expected = D.head(h).squeeze(1) + (D.embed.weight[y] * h).sum(1)  # psi(h) + <embed(y), h>
    torch.testing.assert_close(D(x, y), expected)


def test_concat_discriminator_reads_one_hot_planes_for_images() -> None:
    torch.manual_seed(0)
    _, D = build({"name": "dcgan", "width": 4, "conditional": "concat"}, (1, 8, 8), 3)
    assert D.trunk.net.down1[0].in_channels == 1 + 3
    x, y = torch.randn(2, 1, 8, 8), torch.tensor([2, 0])
    planes = torch.cat([x, F.one_hot(y, 3).float()[:, :, None, None].expand(2, 3, 8, 8)], 1)
    torch.testing.assert_close(D(x, y), D.head(D.trunk.features(planes)).squeeze(1))


def test_conditional_batchnorm_generator_has_per_class_scales() -> None:
    torch.manual_seed(0)
    G, _ = build({"name": "dcgan", "width": 4, "conditional": "projection"}, (1, 8, 8), 10)
    cbn = [m for m in G.modules() if isinstance(m, ConditionalBatchNorm)]
    assert len(cbn) == 3 and not any(isinstance(m, nn.BatchNorm2d) and m.affine for m in G.modules())
    assert G.inner.net.project[0].in_features == G.z_dim  # cbn alone: no label concatenation


@pytest.mark.parametrize(("section", "num_classes", "extras", "match"), [
    ({"name": "mlp", "conditional": "acgan"}, None, None, "needs labelled data"),
    ({"name": "mlp", "conditional": "bogus"}, 3, None, "unknown model.conditional"),
    ({"name": "mlp", "g_conditioning": "cbn"}, 3, None, "model.conditional is not"),
    ({"name": "mlp", "conditional": "projection"}, 3, None, "needs BatchNorm"),
    ({"name": "mlp", "conditional": "concat"}, 3, DiscriminatorExtras(pack=2), "does not combine"),
    ({"name": "mlp", "widht": 3}, None, None, "conditional, g_conditioning"),
    ({"name": "mlp", "conditional": "concat", "ac_fake_loss": True}, 3, None, "ac_fake_loss"),
])
def test_bad_conditioning_is_a_one_line_error(section, num_classes, extras, match) -> None:
    with pytest.raises(GanforgeError, match=match) as err:
        build(section, (2,), num_classes, extras=extras)
    assert "\n" not in str(err.value)
