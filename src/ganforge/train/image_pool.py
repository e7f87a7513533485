"""The history of generated images that CycleGAN's discriminators train on (Shrivastava et al.
2017; Zhu et al. 2017, sec. 4): D sees a mix of the newest fakes and older ones, which damps the
oscillation of G and D chasing each other.

For each image g of a new batch, in order, with a pool of capacity K holding n images::

    n < K:      store g, return g
    otherwise:  with probability 1/2 return a stored image chosen uniformly and store g in its place,
                else return g (the pool unchanged)

K = 0 returns the batch itself. Every random choice is drawn from the caller's
``torch.Generator`` (two draws per image, always, so the generator's position depends only on the
number of images queried); the stored images are part of :meth:`ImagePool.state_dict`, so a
resumed run continues with exactly the same history.
"""

from __future__ import annotations

import torch

from ganforge.errors import GanforgeError


class ImagePool:
    """A history buffer of at most ``size`` images (see the module docstring)."""

    def __init__(self, size: int = 50) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise GanforgeError(f"pool_size={size!r} is not a count >= 0",
                                "set algorithm.pool_size=50 (the paper's), or 0 for no history")
        self.size = size
        self.images: torch.Tensor | None = None   # (n, C, H, W), n <= size, on the images' device
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def query(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The batch D trains on for the new fakes ``images`` (N, C, H, W), detached."""
        images = images.detach()
        if self.size == 0:
            return images
        n = len(images)
        coin = torch.rand(n, generator=generator)
        slot = torch.randint(self.size, (n,), generator=generator)
        if self.images is None:
            self.images = images.new_empty((self.size, *images.shape[1:]))
        out = images.clone()
        for i in range(n):
            if self.count < self.size:
                self.images[self.count] = images[i]
                self.count += 1
            elif coin[i] < 0.5:
                j = int(slot[i])
                out[i] = self.images[j]
                self.images[j] = images[i]
        return out

    def state_dict(self) -> torch.Tensor:
        """The stored images (n, C, H, W) on the CPU (an empty (0,) tensor when none yet)."""
        return torch.zeros(0) if self.images is None else self.images[:self.count].cpu().clone()

    def load_state_dict(self, stored: torch.Tensor, device: torch.device | None = None) -> None:
        if stored.numel() == 0:
            self.images, self.count = None, 0
            return
        if len(stored) > self.size:
            raise GanforgeError(f"the checkpoint's image pool holds {len(stored)} images, more than "
                                f"pool_size={self.size}", "resume with the run's own algorithm.pool_size")
        self.images = stored.new_empty((self.size, *stored.shape[1:])).to(device or stored.device)
        self.images[:len(stored)] = stored.to(self.images.device)
        self.count = len(stored)
