"""Exponential moving average of generator weights (Karras et al. 2018; Yazici et al. 2019).

    theta_ema <- beta * theta_ema + (1 - beta) * theta,   beta_t = min(beta, (1 + t) / (10 + t))

The warm-up ``beta_t`` lets the average track the fast-moving early weights instead of keeping
the random initialisation for thousands of steps (``warmup=False``: beta_t = beta throughout).
Buffers (BatchNorm statistics) are copied.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ganforge.maths.regularisers import ema_decay_at


class EMA:
    def __init__(self, model: nn.Module, decay: float = 0.999, *, warmup: bool = True) -> None:
        self.decay = decay
        self.warmup = warmup
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.updates = 0

    def current_decay(self) -> float:
        return ema_decay_at(self.updates, self.decay, self.warmup)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        beta = self.current_decay()
        for p_ema, p in zip(self.model.parameters(), model.parameters(), strict=True):
            p_ema.lerp_(p.detach(), 1.0 - beta)
        for b_ema, b in zip(self.model.buffers(), model.buffers(), strict=True):
            b_ema.copy_(b)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])
        self.decay = float(state["decay"])


@torch.no_grad()
def standing_batchnorm_stats(model: nn.Module, inputs: Callable[[], tuple[Any, ...]],
                             batches: int = 20) -> int:
    """BigGAN's "standing statistics" (Brock et al. 2019, app. C.1) for a generator whose weights
    are an average (the EMA copy): every BatchNorm's running mean and variance are recomputed as
    the plain average of the batch statistics of ``batches`` forward passes
    ``model(*inputs())`` in training mode, instead of the copies of the live network's running
    statistics, which belong to other weights. Returns the number of BatchNorm layers updated; the
    model's train/eval mode and the layers' momenta are restored."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
              and m.track_running_stats]
    if not layers:
        return 0
    was_training, momenta = model.training, [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the passes
    model.train()
    try:
        for _ in range(batches):
            model(*inputs())
    finally:
        for m, momentum in zip(layers, momenta, strict=True):
            m.momentum = momentum
        model.train(was_training)
    return len(layers)
