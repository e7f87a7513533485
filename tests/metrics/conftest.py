from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def digits_features():
    """LeNet-digits features and logits of the 1,797 real digits, split into two halves."""
    from ganforge.data import build_dataset
    from ganforge.metrics.extractors import LeNetExtractor

    torch.set_num_threads(1)
    ds = build_dataset({"name": "digits"})
    feats, logits = LeNetExtractor("digits")(ds.x)
    perm = np.random.default_rng(0).permutation(len(ds))
    half = len(ds) // 2
    return (feats[perm[:half]].double().numpy(), feats[perm[half:2 * half]].double().numpy(),
            logits.double().numpy())
