"""CycleGAN's networks: shapes, gradients, the generator's layout (downsampling, residual
blocks, reflection padding, instance norm), the unconditional PatchGAN, registry errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.models.base import MODELS
from ganforge.models.cyclegan import ImageDiscriminator, ResidualBlock, ResnetGenerator, build_cyclegan


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_builder_returns_two_generators_and_two_discriminators_of_the_right_shapes():
    G_AB, G_BA, D_A, D_B = MODELS.build({"name": "cyclegan", "width": 4, "n_blocks": 2}, (3, 32, 32),
                                        None, in_channels=1)
    a, b = torch.rand(2, 1, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    assert G_AB(a).shape == (2, 3, 32, 32) and G_BA(b).shape == (2, 1, 32, 32)
    assert D_A(a).shape == (2, 1, 2, 2) and D_B(b).shape == (2, 1, 2, 2)   # 70-field on 32x32
    assert G_AB(a).abs().max() <= 1
    assert G_AB.multiple == 4 and G_AB.in_channels == 1


def test_generator_layout_follows_the_paper():
    G = ResnetGenerator(1, (1, 16, 16), width=8, n_blocks=3)
    convs = [m for m in G.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].kernel_size == (7, 7) and convs[-1].kernel_size == (7, 7)
    assert [c.stride for c in convs[1:3]] == [(2, 2), (2, 2)]
    assert [c.out_channels for c in convs[:3]] == [8, 16, 32]
    assert sum(isinstance(m, ResidualBlock) for m in G.modules()) == 3
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in G.modules()) == 2
    assert any(isinstance(m, nn.ReflectionPad2d) for m in G.modules())
    assert any(isinstance(m, nn.InstanceNorm2d) for m in G.modules())


def test_residual_block_adds_its_input():
    block = ResidualBlock(4)
    for p in block.parameters():
        nn.init.zeros_(p)
    h = torch.randn(2, 4, 8, 8)
    assert torch.allclose(block(h), h)


def test_gradients_reach_every_parameter():
    G_AB, G_BA, D_A, D_B = build_cyclegan((1, 16, 16), width=4, n_blocks=1, receptive_field=16)
    a = torch.rand(3, 1, 16, 16) * 2 - 1
    loss = D_B(G_AB(a)).mean() + D_A(G_BA(G_AB(a))).mean()
    loss.backward()
    for net in (G_AB, G_BA, D_A, D_B):
        for name, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_discriminator_sees_one_image():
    D = ImageDiscriminator(3, receptive_field=34, width=4)
    first = next(m for m in D.modules() if isinstance(m, nn.Conv2d))
    assert first.in_channels == 3
    assert D(torch.zeros(1, 3, 32, 32)).shape == (1, 1, 6, 6)


@pytest.mark.parametrize(("kwargs", "shape", "fragment"), [
    ({"width": 0}, (1, 32, 32), "width"),
    ({"n_blocks": -1}, (1, 32, 32), "n_blocks"),
    ({"receptive_field": 50}, (1, 32, 32), "receptive_field"),
    ({"norm": "layer"}, (1, 32, 32), "norm"),
    ({}, (1, 30, 30), "multiples of 4"),
    ({}, (2,), "images"),
])
def test_bad_settings_are_one_line_errors(kwargs, shape, fragment):
    with pytest.raises(GanforgeError, match=fragment):
        build_cyclegan(shape, **kwargs)


def test_generator_refuses_wrong_inputs():
    G = ResnetGenerator(1, (1, 32, 32), width=4, n_blocks=1)
    with pytest.raises(GanforgeError, match="channel"):
        G(torch.zeros(1, 3, 32, 32))
    with pytest.raises(GanforgeError, match="multiples of 4"):
        G(torch.zeros(1, 1, 30, 30))
