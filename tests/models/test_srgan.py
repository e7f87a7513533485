"""SRGAN's networks and the perceptual feature networks: shapes, gradients, PixelShuffle against a
hand-written reshaping, the bicubic skip, validation errors, and the VGG19 loader's strictness
(a randomly initialised state dict of the right shapes saved to tmp)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.models import MODELS
from ganforge.models.perceptual import (
    FeatureExtractor,
    build_feature_network,
    load_vgg19,
    vgg19_features,
    vgg_layer_names,
)
from ganforge.models.srgan import SRResNet


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def pixel_shuffle_reference(x: torch.Tensor, r: int) -> torch.Tensor:
    """out[c, h*r+i, w*r+j] = in[c*r^2 + i*r + j, h, w], by loops."""
    n, cr2, h, w = x.shape
    c = cr2 // (r * r)
    out = torch.empty(n, c, h * r, w * r)
    for ch in range(c):
        for i in range(r):
            for j in range(r):
                out[:, ch, i::r, j::r] = x[:, ch * r * r + i * r + j]
    return out


@pytest.mark.parametrize("r", [2, 3])
def test_pixel_shuffle_matches_the_hand_written_reshaping(r):
    x = torch.randn(2, 3 * r * r, 4, 5)
    assert torch.equal(nn.PixelShuffle(r)(x), pixel_shuffle_reference(x, r))


def test_generator_upscales_by_scale_and_the_discriminator_gives_one_logit_per_image():
    G, D = MODELS.build({"name": "srgan", "scale": 4, "width": 8, "blocks": 2, "d_width": 4}, (3, 32, 32))
    c = torch.randn(5, 3, 8, 8, requires_grad=True)
    out = G(c)
    assert out.shape == (5, 3, 32, 32)
    assert D(out).shape == (5,)
    D(out).sum().backward()
    assert c.grad is not None and c.grad.abs().sum() > 0
    assert all(p.grad is not None for p in G.parameters())
    pixel_shuffles = [m for m in G.modules() if isinstance(m, nn.PixelShuffle)]
    assert len(pixel_shuffles) == 2 and len(G.blocks) == 2


def test_scale_2_has_one_sub_pixel_step_and_grey_inputs_work():
    G, _ = MODELS.build({"name": "srgan", "scale": 2, "width": 8, "blocks": 1, "d_width": 4}, (1, 16, 16))
    assert G(torch.randn(2, 1, 8, 8)).shape == (2, 1, 16, 16)
    assert sum(isinstance(m, nn.PixelShuffle) for m in G.modules()) == 1


def test_bicubic_skip_makes_a_zero_residual_the_bicubic_upsampling():
    G = SRResNet(3, 3, scale=4, width=8, blocks=1, bicubic_skip=True)  # the tail starts at 0
    c = torch.rand(2, 3, 8, 8) * 2 - 1
    want = nn.functional.interpolate(c, scale_factor=4, mode="bicubic", align_corners=False)
    assert torch.allclose(G(c), want)


@pytest.mark.parametrize("bad, word", [({"scale": 3}, "power of 2"), ({"width": 0}, "width"),
                                        ({"bicubic_skip": "yes"}, "bicubic_skip")])
def test_bad_options_are_one_line_errors(bad, word):
    with pytest.raises(GanforgeError, match=word):
        MODELS.build({"name": "srgan", **bad}, (3, 32, 32))


def test_hr_sides_must_be_multiples_of_16():
    with pytest.raises(GanforgeError, match="multiples of 16"):
        MODELS.build({"name": "srgan"}, (3, 24, 24))


# ---------------------------------------------------------------------- VGG19 loader
def _vgg_state(tmp_path, mutate=None):
    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in vgg19_features().state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # a full model's extra keys are ignored
    if mutate:
        mutate(state)
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    return path, state


def test_vgg19_has_torchvisions_indices_and_layer_names():
    features = vgg19_features()
    names = vgg_layer_names()
    assert len(features) == len(names) == 37
    assert names.index("relu5_4") == 35 and names.index("relu2_2") == 8
    assert isinstance(features[34], nn.Conv2d) and features[34].in_channels == 512


def test_vgg19_loads_a_right_state_dict_and_cuts_at_the_layer(tmp_path):
    path, state = _vgg_state(tmp_path)
    phi = load_vgg19(path, "relu2_2")
    assert isinstance(phi, FeatureExtractor) and len(phi.body) == 9
    assert torch.equal(phi.body[7].weight, state["features.7.weight"])
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert phi(x).shape == (2, 128, 16, 16)
    assert not any(p.requires_grad for p in phi.parameters())
    via_section = build_feature_network("vgg19", "relu5_4", str(path))
    assert via_section(x).shape == (2, 512, 2, 2)


@pytest.mark.parametrize("mutate, word", [
    (lambda s: s.pop("features.34.bias"), "lacks features.34.bias"),
    (lambda s: s.update({"features.37.weight": torch.zeros(1)}), "unexpected features.37.weight"),
    (lambda s: s.update({"features.0.weight": torch.zeros(64, 3, 5, 5)}), "features.0.weight has shape"),
])
def test_vgg19_loader_is_strict_with_one_line_errors(tmp_path, mutate, word):
    path, _ = _vgg_state(tmp_path, mutate)
    with pytest.raises(GanforgeError, match=word) as info:
        load_vgg19(path)
    assert "\n" not in str(info.value)


def test_vgg19_needs_user_weights_and_a_known_layer(tmp_path):
    with pytest.raises(GanforgeError, match="needs perceptual.weights"):
        build_feature_network("vgg19")
    path, _ = _vgg_state(tmp_path)
    with pytest.raises(GanforgeError, match="not a VGG19 layer"):
        load_vgg19(path, "relu6_1")
    with pytest.raises(GanforgeError, match="do not exist"):
        load_vgg19(tmp_path / "missing.pth")


def test_the_shipped_photo_network_gives_frozen_features_with_gradients_to_the_input():
    phi = build_feature_network("photo", "relu2_2")
    x = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_(True)
    f = phi(x)
    assert f.shape[0] == 2 and f.shape[-1] == 16
    f.sum().backward()
    assert x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in phi.parameters())
    phi.train()
    assert not phi.training
