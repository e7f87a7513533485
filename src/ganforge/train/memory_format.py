"""The memory layout of the networks' 4-D weights and activations (``train.channels_last``).

oneDNN's CPU convolutions run on NHWC ("channels last") data; with NCHW weights every
convolution reorders its input and output, and a transposed convolution's output is copied once
more to make it contiguous. Measured on an Intel Xeon (AVX-512, one thread, CPU time of a
training step; ``benchmarks/train_throughput.py`` times both layouts): channels last is 8-19% faster for
DCGAN, BigGAN, StyleGAN, pix2pix and the projection GANs, but 10% slower for StyleGAN2's
generator, whose modulated convolution is a grouped convolution over reshaped weights; that
network opts out with ``prefers_channels_last = False``. Only the layout changes, never the
values a layer computes (to float rounding: the kernels sum in another order).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def is_convolutional(net: nn.Module) -> bool:
    """Whether ``net`` holds 4-D weights: a 2-D (transposed) convolution, or a layer that calls
    ``F.conv2d`` on its own weight (equalised learning rate, modulated convolution)."""
    return any(p.dim() == 4 for p in net.parameters())


def wants_channels_last(net: nn.Module, setting: bool | str, device: torch.device) -> bool:
    """``setting`` True: every convolutional network; False: none; ``auto``: convolutional
    networks on CPU unless the network says it runs slower so (``prefers_channels_last``)."""
    if setting is False or not is_convolutional(net):
        return False
    if setting is True:
        return True
    return device.type == "cpu" and getattr(net, "prefers_channels_last", True)


def apply_memory_format(networks: Iterable[nn.Module], setting: bool | str,
                        device: torch.device) -> None:
    """Convert the networks that want it to channels last, in place (parameters keep their
    identity, so optimisers built before or after see the same tensors)."""
    for net in networks:
        if wants_channels_last(net, setting, device):
            net.to(memory_format=torch.channels_last)
