"""Up-front memory estimates of a run: how many bytes one sample's activations take, so that a
batch or a set of fixed samples that cannot fit is refused before anything is allocated or
written (instead of a 25 GB allocation failing at step 0)."""

from __future__ import annotations

import torch

from ganforge._io import available_memory
from ganforge.errors import GanforgeError

#: activations kept per training sample, as a multiple of the generator's forward outputs: G's
#: forward and backward, and D's on the fakes and the reals
TRAINING_FACTOR = 3


def activation_bytes_per_sample(algorithm) -> int | None:
    """Bytes of every module output of the sampling network for one sample, measured on two
    samples in eval mode (no statistics change, the random streams are untouched); None when
    the algorithm cannot draw samples without its data."""
    net = algorithm.generator
    total = 0

    def count(module, inputs, output) -> None:
        nonlocal total
        for t in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()

    handles = [m.register_forward_hook(count) for m in net.modules()]
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            draw = torch.Generator().manual_seed(0)
            algorithm.sample(2, draw, labels=algorithm.labels_for(2, draw))
    except Exception:  # noqa: BLE001  a probe only: the run's own checks come later
        return None
    finally:
        for handle in handles:
            handle.remove()
        net.train(was_training)
    return total // 2


def check_activation_memory(per_sample: int | None, sizes: dict[str, tuple[int, int]]) -> None:
    """Refuse each ``key: (count, factor)`` whose ``count * factor * per_sample`` bytes exceed the
    memory available, with the largest count that fits."""
    if not per_sample:
        return
    budget = available_memory()
    for key, (count, factor) in sizes.items():
        need = count * factor * per_sample
        if need > budget:
            fits = max(budget // (factor * per_sample), 1)
            raise GanforgeError(f"{key}={count} needs about {need / 2**30:.3g} GiB of activations "
                                f"({per_sample * factor:,} bytes per sample), more than the "
                                f"{budget / 2**30:.3g} GiB of memory available",
                                f"set {key} to at most {fits:,}")
