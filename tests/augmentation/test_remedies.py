"""The imbalance remedies, on small synthetic data."""

from __future__ import annotations

import pytest
import torch

from ganforge.augmentation.remedies import (
    REMEDIES,
    ac_head_judge,
    apply_remedy,
    augment_images,
    classifier_judge,
    generator_sampler,
    missing_per_class,
    sample_class,
    synthetic_only,
)
from ganforge.data.imbalanced import class_counts
from ganforge.errors import GanforgeError
from ganforge.models import build

K = 3


def _data(counts=(30, 20, 4)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = torch.cat([torch.full((n,), k) for k, n in enumerate(counts)])
    x = (torch.rand(len(y), 1, 8, 8, generator=g) * 0.5 + y[:, None, None, None] * 0.5 - 1).clamp(-1, 1)
    return x, y


def _constant_sampler(k: int, n: int, seed: int) -> torch.Tensor:
    """Class k -> images filled with a value that encodes k and the seed."""
    return torch.full((n, 1, 8, 8), k / 10 + seed / 1e5)


def test_missing_per_class():
    _, y = _data()
    assert missing_per_class(y, K) == [0, 10, 26]


@pytest.mark.parametrize("name", ["oversample", "smote", "classical"])
def test_resampling_remedies_balance_and_keep_the_real_images(name):
    x, y = _data()
    out = apply_remedy(name, x, y, K, seed=0)
    assert class_counts(out.y, K) == [30, 30, 30] and out.info["added"] == 36
    assert out.x.shape == (90, 1, 8, 8) and out.x.min() >= -1 and out.x.max() <= 1
    for k in range(K):  # every real image is still there
        kept = {tuple(row.tolist()) for row in out.x[out.y == k].flatten(1)}
        assert all(tuple(row.tolist()) in kept for row in x[y == k].flatten(1))
    again = apply_remedy(name, x, y, K, seed=0)
    assert torch.equal(out.x, again.x) and torch.equal(out.y, again.y)


def test_none_and_weighted_leave_the_data_and_weights_are_balanced():
    x, y = _data()
    assert apply_remedy("none", x, y, K).x is x
    out = apply_remedy("weighted", x, y, K)
    assert out.x is x and out.class_weight is not None
    expected = torch.tensor([54 / (3 * 30), 54 / (3 * 20), 54 / (3 * 4)])
    assert torch.allclose(out.class_weight, expected)


def test_smote_interpolates_between_minority_images():
    x, y = _data()
    out = apply_remedy("smote", x, y, K, seed=0)
    new = out.x[len(x):][out.y[len(x):] == 2].flatten(1)
    minority = x[y == 2].flatten(1)
    lo, hi = minority.min(0).values, minority.max(0).values  # inside the minority's bounding box
    assert ((new >= lo - 1e-6) & (new <= hi + 1e-6)).all()
    assert out.info["k_neighbors"] == 3  # 4 minority images: at most 3 neighbours


def test_smote_refuses_a_single_image_class():
    x, y = _data((10, 10, 1))
    with pytest.raises(GanforgeError, match="at least 2 images"):
        apply_remedy("smote", x, y, K)


def test_augment_images_flip_only_and_shift_only():
    x = torch.linspace(-1, 1, 64).view(1, 1, 8, 8).repeat(20, 1, 1, 1)
    g = torch.Generator().manual_seed(0)
    flipped = augment_images(x, g, shift=0, min_crop=1.0)
    assert all(torch.equal(a, x[0]) or torch.equal(a, x[0].flip(-1)) for a in flipped)
    shifted = augment_images(x, g, flip=False, shift=1, min_crop=1.0)
    assert (shifted == -1).any() and shifted.shape == x.shape  # background filled in


def test_gan_balanced_tops_up_with_generated_images_of_the_right_class():
    x, y = _data()
    out = apply_remedy("gan", x, y, K, seed=0, sampler=_constant_sampler)
    assert class_counts(out.y, K) == [30, 30, 30]
    added_x, added_y = out.x[len(x):], out.y[len(x):]
    assert torch.allclose(added_x.mean((1, 2, 3)).round(decimals=1), added_y / 10)


def test_gan_every_class_adds_as_many_generated_images_to_every_class():
    x, y = _data()
    out = apply_remedy("gan-every-class", x, y, K, seed=0, sampler=_constant_sampler)
    assert class_counts(out.y, K) == [60, 60, 60]  # topped up to 30, then 30 more in each class
    added = out.y[len(x):]
    assert class_counts(added, K) == [30, 40, 56] and out.info["added"] == 126
    assert torch.allclose(out.x[len(x):].mean((1, 2, 3)).round(decimals=1), added / 10)
    chosen = apply_remedy("gan-every-class", x, y, K, sampler=_constant_sampler, extra=5)
    assert class_counts(chosen.y, K) == [35, 35, 35]
    with pytest.raises(GanforgeError, match="extra must be a number of images >= 0"):
        apply_remedy("gan-every-class", x, y, K, sampler=_constant_sampler, extra=-1)
    with pytest.raises(GanforgeError, match="remedy gan-every-class takes no judge"):
        apply_remedy("gan-every-class", x, y, K, sampler=_constant_sampler, judge=lambda v: v)


def test_gan_filtered_keeps_the_confident_samples_first():
    def sampler(k, n, seed):  # a value in [0, 1) per image; the judge's p(k) is that value
        return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))[:, :, :1, :1].expand(
            n, 1, 8, 8).contiguous()

    def judge(x):
        p = x[:, 0, 0, 0]
        return torch.stack([p, p, p], 1)

    xk, stats = sample_class(sampler, 2, 10, judge=judge, threshold=0.5, oversample=4)
    assert len(xk) == 10 and (xk[:, 0, 0, 0] >= 0.5).all()
    assert torch.all(xk[:-1, 0, 0, 0] >= xk[1:, 0, 0, 0])  # most confident first
    assert stats["drawn"] == 40 and 0 < stats["acceptance"] < 1
    few, stats = sample_class(sampler, 2, 10, judge=judge, threshold=0.999, max_rounds=2)
    assert len(few) < 10 and stats["drawn"] == 80  # gives up after max_rounds
    x, y = _data()
    out = apply_remedy("gan-filtered", x, y, K, sampler=sampler, judge=judge, threshold=0.5)
    assert out.info["filtered"] and class_counts(out.y, K) == [30, 30, 30]


def test_apply_remedy_errors():
    x, y = _data()
    with pytest.raises(GanforgeError, match="unknown remedy"):
        apply_remedy("magic", x, y, K)
    with pytest.raises(GanforgeError, match="needs a judge"):
        apply_remedy("gan-filtered", x, y, K, sampler=_constant_sampler)
    with pytest.raises(GanforgeError, match="takes no judge"):
        apply_remedy("gan", x, y, K, sampler=_constant_sampler, judge=lambda x: x)
    assert set(REMEDIES) == {"none", "oversample", "weighted", "smote", "classical", "gan",
                             "gan-filtered", "gan-every-class"}


def test_real_generator_sampler_and_judges():
    G, D = build({"name": "dcgan", "z_dim": 8, "width": 4, "conditional": "acgan"}, (1, 8, 8), K)
    sampler = generator_sampler(G)
    x = sampler(1, 6, 0)
    assert x.shape == (6, 1, 8, 8) and torch.equal(x, sampler(1, 6, 0))
    p = ac_head_judge(D)(x)
    assert p.shape == (6, K) and torch.allclose(p.sum(1), torch.ones(6))
    _, D_proj = build({"name": "dcgan", "z_dim": 8, "width": 4, "conditional": "projection"}, (1, 8, 8), K)
    with pytest.raises(GanforgeError, match="no AC-GAN class head"):
        ac_head_judge(D_proj)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, K))
    assert classifier_judge(net)(x).shape == (6, K)


def test_synthetic_only_is_balanced_and_purely_generated():
    out = synthetic_only(_constant_sampler, K, 5)
    assert class_counts(out.y, K) == [5, 5, 5] and len(out.x) == 15
