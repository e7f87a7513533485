"""The video networks: the ConvLSTM cell against its equations, the predictor's closed loop, the
multi-scale clip D, MoCoGAN's content/motion split, shapes, gradients and bad settings."""

from __future__ import annotations

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.models.base import MODELS
from ganforge.models.video import (
    ClipDiscriminator,
    ConvLSTMCell,
    FrameDiscriminator,
    FramePredictor,
    MoCoGenerator,
    MultiScaleClipDiscriminator,
)

SHAPE = (8, 1, 16, 16)


def test_convlstm_cell_follows_its_equations() -> None:
    torch.manual_seed(0)
    cell = ConvLSTMCell(2, 3, 3)
    x, h, c = torch.randn(2, 2, 5, 5), torch.randn(2, 3, 5, 5), torch.randn(2, 3, 5, 5)
    h1, c1 = cell(x, (h, c))
    gates = torch.nn.functional.conv2d(torch.cat([x, h], 1), cell.conv.weight, cell.conv.bias, padding=1)
    i, f, g, o = gates[:, 0:3], gates[:, 3:6], gates[:, 6:9], gates[:, 9:12]
    c_ref = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    torch.testing.assert_close(c1, c_ref)
    torch.testing.assert_close(h1, torch.sigmoid(o) * torch.tanh(c_ref))
    assert torch.all(cell.conv.bias[3:6] == 1.0)  # forget gate opened at initialisation


def test_rollout_feeds_truth_only_while_observing() -> None:
    torch.manual_seed(0)
    G = FramePredictor((1, 16, 16), (4,), 3, patch=4)
    x = torch.rand(2, 8, 1, 16, 16) * 2 - 1
    preds = G.rollout(x, observed=3)
    assert preds.shape == (2, 7, 1, 16, 16)
    assert preds.abs().max() <= 1
    changed = x.clone()
    changed[:, 3:] = 0.0  # frames after the observed ones must not matter
    torch.testing.assert_close(G.rollout(changed, observed=3), preds)
    changed[:, 2] = 0.5  # an observed frame does
    assert not torch.allclose(G.rollout(changed, observed=3)[:, 2:], preds[:, 2:])
    future = G(x[:, :3], horizon=5)
    torch.testing.assert_close(future, preds[:, 2:])


def test_predictor_gradients_reach_every_layer() -> None:
    G, D = MODELS.build({"name": "convlstm", "hidden": [4, 4], "d_frames": 6}, SHAPE, None)
    x = torch.rand(2, *SHAPE) * 2 - 1
    (G.rollout(x, 4) ** 2).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())
    logits = D(torch.rand(2, 6, 1, 16, 16))
    assert logits.shape == (2, 2)
    logits.sum().backward()
    assert all(p.grad is not None for p in D.parameters())


def test_multiscale_discriminator_sees_each_scale() -> None:
    D = MultiScaleClipDiscriminator((1, 32, 32), frames=3, width=4, scales=3)
    assert len(D.nets) == 3
    assert D(torch.zeros(5, 3, 1, 32, 32)).shape == (5, 3)


def test_mocogan_content_is_shared_and_motion_moves() -> None:
    torch.manual_seed(0)
    G = MoCoGenerator((6, 1, 16, 16), content_dim=5, motion_dim=3, noise_dim=2, width=4).eval()
    assert G.z_dim == 5 + 6 * 2
    z = torch.randn(3, G.z_dim)
    clips = G(z)
    assert clips.shape == (3, 6, 1, 16, 16) and clips.abs().max() <= 1
    same_motion = z.clone()
    same_motion[:, :5] = z[0, :5]  # one content code, three motions
    assert not torch.allclose(G(same_motion)[0], G(same_motion)[1])
    codes = G.motion_codes(z[:, 5:].view(3, 6, 2))
    h = torch.zeros(3, 3)
    for t in range(6):  # z_M^(t) = GRU(e_t, z_M^(t-1))
        h = G.motion(z[:, 5 + 2 * t : 7 + 2 * t], h)
        torch.testing.assert_close(codes[:, t], h)
    x = G.sample(4, torch.Generator().manual_seed(1))
    torch.testing.assert_close(x, G.sample(4, torch.Generator().manual_seed(1)))


def test_mocogan_discriminators_and_gradients() -> None:
    G, DI, DV = MODELS.build(
        {"name": "mocogan", "content_dim": 4, "motion_dim": 3, "noise_dim": 2, "width": 4, "d_width": 4},
        SHAPE,
        None,
    )
    assert isinstance(DI, FrameDiscriminator) and isinstance(DV, ClipDiscriminator)
    clips = G(torch.randn(2, G.z_dim))
    loss = DV(clips).sum() + DI(clips[:, 0]).sum()
    assert DV(clips).shape == (2,) and DI(clips[:, 0]).shape == (2,)
    loss.backward()
    assert all(p.grad is not None for p in G.parameters())


@pytest.mark.parametrize(
    ("section", "shape", "message"),
    [
        ({"name": "convlstm"}, (1, 16, 16), "needs clips"),
        ({"name": "convlstm", "patch": 3}, SHAPE, "patch=3"),
        ({"name": "convlstm", "kernel": 4}, SHAPE, "kernel=4"),
        ({"name": "convlstm", "hidden": []}, SHAPE, "hidden"),
        ({"name": "convlstm", "d_scales": 3}, SHAPE, "d_scales=3"),
        ({"name": "mocogan"}, (8, 1, 24, 24), "power-of-2"),
        ({"name": "mocogan", "width": 0}, SHAPE, "width=0"),
    ],
)
def test_bad_settings_are_one_line_errors(section: dict, shape: tuple, message: str) -> None:
    with pytest.raises(GanforgeError, match=message):
        MODELS.build(section, shape, None)
