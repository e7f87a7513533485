"""Picking latent codes and rendering them: seeds, indices of a seeded batch, class labels.

Codes are reproducible by construction: a code is named either by its *seed* (the single code
``G.sample_z(1, torch.Generator().manual_seed(seed))``) or by its *index* in the batch that
``ganforge sample RUN -n N --seed S`` draws, so a sample you liked in a grid can be picked by its
position (row-major, starting at 0).

Conditional generators (``model.conditional`` in the config; see
:class:`ganforge.models.compose.ConditionalGenerator`) are recognised by their integer
``num_classes`` attribute; class labels are passed to ``G(z, y)`` as int64. Unconditional models
accept and ignore ``y``, so asking for a class there is a user error rather than a silent no-op.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ganforge.errors import GanforgeError
from ganforge.models.base import Generator

#: The chunk size of :meth:`ganforge.train.run.Run.sample`, whose draws :func:`seeded_batch` mirrors.
SAMPLE_CHUNK = 1000


def codes_from_seeds(G: Generator, seeds: Sequence[int]) -> torch.Tensor:
    """One code per seed, ``G.sample_z(1, torch.Generator().manual_seed(seed))``: (len(seeds), z_dim)
    on the CPU. The same seed always gives the same code, whatever else is drawn."""
    if len(seeds) == 0:
        raise GanforgeError("no seeds given", "pass at least one seed, e.g. --seeds 0 1")
    return torch.cat([G.sample_z(1, torch.Generator().manual_seed(int(s)), "cpu") for s in seeds])


def seeded_batch(G: Generator, n: int, seed: int = 0) -> torch.Tensor:
    """The (n, z_dim) CPU codes behind ``ganforge sample -n n --seed seed`` (and
    ``Run.sample(n, seed=seed)``): one ``torch.Generator`` seeded with ``seed``, drawn in chunks of
    ``SAMPLE_CHUNK``. The draw depends on ``n``: the first 10 codes of a batch of 64 are *not* a
    batch of 10, so keep ``n`` equal to the grid you picked from."""
    if n < 1:
        raise GanforgeError(f"the batch size must be at least 1, got {n}", "pass e.g. --batch-n 64")
    noise = torch.Generator().manual_seed(int(seed))
    return torch.cat([G.sample_z(min(SAMPLE_CHUNK, n - i), noise, "cpu")
                      for i in range(0, n, SAMPLE_CHUNK)])


def codes_from_batch(G: Generator, indices: Sequence[int], n: int = 64, seed: int = 0) -> torch.Tensor:
    """Rows ``indices`` of :func:`seeded_batch` ``(G, n, seed)``: the codes of samples
    ``indices`` in the grid of ``ganforge sample -n n --seed seed``. Shape (len(indices), z_dim)."""
    if len(indices) == 0:
        raise GanforgeError("no indices given", "pass at least one index, e.g. --indices 3 17")
    bad = [int(i) for i in indices if not 0 <= int(i) < n]
    if bad:
        raise GanforgeError(f"index {bad[0]} is outside the batch of {n} samples",
                            f"pass indices 0..{n - 1}, or a larger --batch-n")
    return seeded_batch(G, n, seed)[torch.as_tensor([int(i) for i in indices], dtype=torch.long)]


def num_classes_of(G: Generator) -> int | None:
    """K for a conditional generator (its declared :attr:`Generator.num_classes`), else ``None``."""
    k = G.num_classes if isinstance(G, Generator) else None
    return k if isinstance(k, int) and not isinstance(k, bool) and k > 0 else None


def check_label(G: Generator, label: int | None, what: str = "--class") -> int | None:
    """Validate a class label for ``G``: ``None`` passes; a label needs a conditional ``G`` and
    must lie in ``0..K-1``."""
    if label is None:
        return None
    k = num_classes_of(G)
    if k is None:
        raise GanforgeError(f"{what} {label} needs a conditional generator, but "
                            f"{type(G).__name__} is unconditional", f"drop {what}")
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < k:
        raise GanforgeError(f"{what} {label} is out of range for a generator of {k} classes",
                            f"pass a class 0..{k - 1}")
    return label


def class_labels(G: Generator, label: int | None, n: int) -> torch.Tensor | None:
    """Labels for ``n`` samples, as :meth:`ganforge.train.run.Run.labels` draws them: None for an
    unconditional ``G`` (where a ``label`` is an error), ``n`` copies of ``label``, or, with no
    label, the classes 0..K-1 cycled (class-balanced). int64 on the CPU."""
    label = check_label(G, label)
    k = num_classes_of(G)
    if k is None:
        return None
    if label is None:
        return torch.arange(n) % k
    return torch.full((n,), label, dtype=torch.long)


def _device(G: Generator) -> torch.device:
    for p in G.parameters():
        return p.device
    return torch.device("cpu")


@torch.no_grad()
def generate(G: Generator, z: torch.Tensor, y: torch.Tensor | int | None = None, *,
             batch_size: int = 500) -> torch.Tensor:
    """``G(z, y)`` in eval mode, in chunks, as CPU float32 of shape (N, *G.out_shape).

    ``z`` is (N, z_dim) or one (z_dim,) code; ``y`` is (N,) int64 labels, one int label for all,
    or None: no labels for an unconditional ``G``, the classes cycled (:func:`class_labels`) for a
    conditional one. G's train/eval mode is restored afterwards.
    """
    z = torch.as_tensor(z)
    if z.dim() == 1:
        z = z.unsqueeze(0)
    if z.dim() != 2 or z.shape[1] != G.z_dim:
        raise GanforgeError(f"codes must have shape (N, {G.z_dim}), got {tuple(z.shape)}",
                            f"pass codes of the generator's z_dim {G.z_dim}")
    if y is None or isinstance(y, int):
        y = class_labels(G, y, len(z))
    if y is not None and len(y) != len(z):
        raise GanforgeError(f"{len(z)} codes but {len(y)} labels", "pass one label per code")
    device = _device(G)
    was_training = G.training
    G.eval()
    try:
        chunks = []
        for i in range(0, len(z), batch_size):
            zc = z[i:i + batch_size].to(device=device, dtype=torch.float32)
            out = G(zc) if y is None else G(zc, y[i:i + batch_size].to(device=device, dtype=torch.long))
            chunks.append(out.float().cpu())
    finally:
        G.train(was_training)
    return torch.cat(chunks) if chunks else torch.empty(0, *G.out_shape)
