"""Toy 2D distributions, sampled on the fly.

Every dataset here is a :class:`~ganforge.data.base.StreamDataset` with ``sample_shape == (2,)``.
``sample(n, generator)`` draws only from the ``torch.Generator`` it is given (never the global
RNG), so the same seed always gives the same points.

Points are coordinates and are **not** rescaled to [-1, 1]: a ring of radius 2 stays at radius 2,
so a generator needs an unbounded (linear) output layer. Each dataset exposes:

* ``centers``: (K, 2) float32 tensor of mode means for the Gaussian mixtures (``ring8``,
  ``grid25``); ``None`` for the continuous shapes (``spiral``, ``swissroll``, ``moons``).
* ``std``: the standard deviation of the isotropic Gaussian noise around the clean shape.
* ``num_classes``: K for the mixtures, where ``sample`` returns the mode index as label (int64);
  ``None`` for the continuous shapes, where ``sample`` returns ``y = None``.
"""

from __future__ import annotations

import math
from abc import abstractmethod

import torch

from ganforge.data.base import StreamDataset, register_dataset
from ganforge.errors import GanforgeError

__all__ = [
    "CurveDataset",
    "GaussianMixture2D",
    "Spiral",
    "SwissRoll",
    "TwoMoons",
    "Lines",
    "DrawnPoints",
    "drawn",
    "lines",
    "grid25",
    "moons",
    "ring8",
    "ring_centers",
    "grid_centers",
    "spiral",
    "swissroll",
    "toy2d",
]


def _check_std(std: float) -> float:
    if not (isinstance(std, (int, float)) and math.isfinite(std) and std >= 0):
        raise GanforgeError(f"data.std must be a finite number >= 0, got {std!r}",
                            "set data.std to e.g. 0.02")
    return float(std)


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"sample size must be an int >= 0, got {n!r}")
    return n


def ring_centers(n_modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """(n_modes, 2) points evenly spaced on a circle, the first at angle 0."""
    if isinstance(n_modes, bool) or not isinstance(n_modes, int) or n_modes < 1:
        raise GanforgeError(f"data.n_modes must be an int >= 1, got {n_modes!r}",
                            "set data.n_modes to e.g. 8")
    angles = torch.arange(n_modes, dtype=torch.float64) * (2 * math.pi / n_modes)
    return (float(radius) * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def grid_centers(side: int = 5, spacing: float = 2.0) -> torch.Tensor:
    """(side**2, 2) points on a square grid centred on 0, row-major (x varies slowest)."""
    if isinstance(side, bool) or not isinstance(side, int) or side < 1:
        raise GanforgeError(f"the grid side must be an int >= 1, got {side!r}",
                            "use a square number of modes, e.g. data.n_modes=25")
    axis = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * float(spacing)
    gx, gy = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1).float()


class GaussianMixture2D(StreamDataset):
    """Equal-weight mixture of isotropic Gaussians with means ``centers`` and std ``std``.

    ``sample`` returns points (n, 2) and the index of the mode each was drawn from (n,) int64.
    """

    sample_shape = (2,)

    def __init__(self, centers: torch.Tensor, std: float, name: str = "") -> None:
        centers = torch.as_tensor(centers, dtype=torch.float32)
        if centers.ndim != 2 or centers.shape[1] != 2 or len(centers) == 0:
            raise ValueError(
                f"centers must have shape (K, 2) with K >= 1, got {tuple(centers.shape)}")
        self.centers = centers
        self.modes = "mixture"
        self.std = _check_std(std)
        self.name = name
        self.num_classes = len(centers)

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        n = _check_n(n)
        y = torch.randint(self.num_classes, (n,), generator=generator, dtype=torch.int64)
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float32)
        return self.centers[y] + self.std * noise, y

    def __repr__(self) -> str:
        return f"GaussianMixture2D(name={self.name!r}, modes={self.num_classes}, std={self.std})"


class CurveDataset(StreamDataset):
    """A continuous 1D curve in the plane plus isotropic Gaussian noise; no modes, no labels."""

    sample_shape = (2,)
    centers: torch.Tensor | None = None
    num_classes: int | None = None

    def __init__(self, std: float, name: str) -> None:
        self.std = _check_std(std)
        self.name = name

    @abstractmethod
    def clean(self, u: torch.Tensor) -> torch.Tensor:
        """Map ``u`` ~ U(0, 1) of shape (n,) to noiseless points (n, 2) on the curve."""

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, None]:
        n = _check_n(n)
        u = torch.rand(n, generator=generator, dtype=torch.float32)
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float32)
        return self.clean(u) + self.std * noise, None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(std={self.std})"


class Spiral(CurveDataset):
    """Archimedean spiral r = radius * t, angle = 2 pi turns t, with t = sqrt(u).

    Taking t = sqrt(u) makes the density per unit of arc length roughly uniform (arc length
    grows like t**2), so the outer turns are not sparser than the centre.
    """

    def __init__(self, turns: float = 1.5, radius: float = 4.0, std: float = 0.05) -> None:
        super().__init__(std, "spiral")
        self.turns = float(turns)
        self.radius = float(radius)

    def clean(self, u: torch.Tensor) -> torch.Tensor:
        t = u.sqrt()
        angle = 2 * math.pi * self.turns * t
        r = self.radius * t
        return torch.stack([r * angle.cos(), r * angle.sin()], dim=1)


class SwissRoll(CurveDataset):
    """The 2D swiss roll of scikit-learn's ``make_swiss_roll``: t in [1.5 pi, 4.5 pi],
    point = scale * (t cos t, t sin t). With the default scale 0.25 it fits in about [-3.5, 3.5]."""

    def __init__(self, scale: float = 0.25, std: float = 0.05) -> None:
        super().__init__(std, "swissroll")
        self.scale = float(scale)

    def clean(self, u: torch.Tensor) -> torch.Tensor:
        t = 1.5 * math.pi * (1 + 2 * u)
        return self.scale * torch.stack([t * t.cos(), t * t.sin()], dim=1)


class TwoMoons(CurveDataset):
    """scikit-learn's two interleaving half circles (``make_moons``), shifted so the bounding box
    is centred on 0 and multiplied by ``scale``. Half the points fall on each moon."""

    def __init__(self, scale: float = 2.0, std: float = 0.05) -> None:
        super().__init__(std, "moons")
        self.scale = float(scale)

    def clean(self, u: torch.Tensor) -> torch.Tensor:
        upper = u < 0.5
        theta = math.pi * torch.where(upper, 2 * u, 2 * u - 1)
        x = torch.where(upper, theta.cos(), 1 - theta.cos())
        y = torch.where(upper, theta.sin(), 0.5 - theta.sin())
        # make_moons spans x in [-1, 2], y in [-0.5, 1]: centre that box on the origin.
        return self.scale * torch.stack([x - 0.5, y - 0.25], dim=1)


class Lines(CurveDataset):
    """GAN Lab's "line" data: ``n_lines`` parallel segments from x = -length/2 to length/2,
    ``spacing`` apart and centred on 0; a sample picks a segment uniformly, then a point along it."""

    def __init__(self, n_lines: int = 3, length: float = 4.0, spacing: float = 1.5,
                 std: float = 0.03) -> None:
        super().__init__(std, "lines")
        if isinstance(n_lines, bool) or not isinstance(n_lines, int) or n_lines < 1:
            raise GanforgeError(f"data.n_lines must be an int >= 1, got {n_lines!r}",
                                "set e.g. data.n_lines=3")
        self.n_lines, self.length, self.spacing = n_lines, float(length), float(spacing)

    def clean(self, u: torch.Tensor) -> torch.Tensor:
        scaled = u * self.n_lines
        line = scaled.floor().clamp_max(self.n_lines - 1)
        along = scaled - line  # U(0, 1) within the chosen segment
        y = (line - (self.n_lines - 1) / 2) * self.spacing
        return torch.stack([(along - 0.5) * self.length, y], dim=1)


class DrawnPoints(StreamDataset):
    """A distribution given by example: each sample is one of ``points`` (drawn with the mouse in
    ``ganforge play``, or listed in a config) chosen uniformly, plus N(0, std^2 I) noise."""

    sample_shape = (2,)
    centers: torch.Tensor | None = None
    num_classes: int | None = None
    LIMIT = 10.0
    MAX_POINTS = 2000

    def __init__(self, points: list, std: float = 0.05) -> None:
        self.std = _check_std(std)
        self.name = "drawn"
        try:
            table = torch.as_tensor(points, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            table = None
        if (table is None or table.dim() != 2 or table.shape[1] != 2 or not 2 <= len(table) <= self.MAX_POINTS
                or not torch.isfinite(table).all() or table.abs().max() > self.LIMIT):
            raise GanforgeError(f"data.points must be a list of 2 to {self.MAX_POINTS} [x, y] pairs "
                                f"of finite numbers within +-{self.LIMIT:g}",
                                "draw (or list) at least two points inside the plot")
        self.points = table.float()

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, None]:
        n = _check_n(n)
        index = torch.randint(len(self.points), (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float32)
        return self.points[index] + self.std * noise, None

    def __repr__(self) -> str:
        return f"DrawnPoints(points={len(self.points)}, std={self.std})"


@register_dataset("ring8")
def ring8(radius: float = 2.0, std: float = 0.02) -> GaussianMixture2D:
    """8 Gaussians evenly spaced on a circle of ``radius``; labels are the mode index 0..7."""
    return GaussianMixture2D(ring_centers(8, radius), std, name="ring8")


@register_dataset("grid25")
def grid25(spacing: float = 2.0, std: float = 0.05) -> GaussianMixture2D:
    """25 Gaussians on a 5x5 grid centred on 0 (means {-4, -2, 0, 2, 4}^2 for spacing 2);
    labels are the mode index 0..24, row-major."""
    return GaussianMixture2D(grid_centers(5, spacing), std, name="grid25")


@register_dataset("spiral")
def spiral(turns: float = 1.5, radius: float = 4.0, std: float = 0.05) -> Spiral:
    """A noisy Archimedean spiral (see :class:`Spiral`); no labels."""
    return Spiral(turns=turns, radius=radius, std=std)


@register_dataset("swissroll")
def swissroll(scale: float = 0.25, std: float = 0.05) -> SwissRoll:
    """A noisy 2D swiss roll (see :class:`SwissRoll`); no labels."""
    return SwissRoll(scale=scale, std=std)


@register_dataset("moons")
def moons(scale: float = 2.0, std: float = 0.05) -> TwoMoons:
    """Two noisy interleaving moons (see :class:`TwoMoons`); no labels."""
    return TwoMoons(scale=scale, std=std)


@register_dataset("lines")
def lines(n_lines: int = 3, length: float = 4.0, spacing: float = 1.5, std: float = 0.03) -> Lines:
    """``n_lines`` noisy parallel segments (see :class:`Lines`); no labels."""
    return Lines(n_lines=n_lines, length=length, spacing=spacing, std=std)


@register_dataset("drawn")
def drawn(points: list, std: float = 0.05) -> DrawnPoints:
    """Your own 2D distribution: ``points`` [[x, y], ...] plus Gaussian noise (see
    :class:`DrawnPoints`); no labels."""
    return DrawnPoints(points, std=std)


_KINDS = ("ring", "grid", "spiral", "swissroll", "moons")


@register_dataset("toy2d")
def toy2d(kind: str = "ring", n_modes: int | None = None, radius: float = 2.0,
          spacing: float = 2.0, std: float | None = None) -> StreamDataset:
    """Any toy 2D distribution by ``kind``.

    ``ring``: ``n_modes`` (default 8) Gaussians on a circle of ``radius`` (default std 0.02).
    ``grid``: ``n_modes`` (a square number, default 25) Gaussians on a grid with ``spacing``
    (default std 0.05). ``spiral``/``swissroll``/``moons``: the continuous shapes with their
    defaults; ``n_modes`` must be left unset for them.
    """
    if kind not in _KINDS:
        raise GanforgeError(f"unknown toy2d kind {kind!r}",
                            f"set data.kind to one of: {', '.join(_KINDS)}")
    if kind == "ring":
        n = 8 if n_modes is None else n_modes
        return GaussianMixture2D(ring_centers(n, radius), 0.02 if std is None else std,
                                 name=f"ring{n}")
    if kind == "grid":
        n = 25 if n_modes is None else n_modes
        side = math.isqrt(n) if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 0
        if side * side != n:
            raise GanforgeError(f"a grid needs a square number of modes, got data.n_modes={n!r}",
                                "set data.n_modes to e.g. 9, 16 or 25")
        return GaussianMixture2D(grid_centers(side, spacing), 0.05 if std is None else std,
                                 name=f"grid{n}")
    if n_modes is not None:
        raise GanforgeError(f"toy2d kind {kind!r} has no discrete modes", "remove data.n_modes")
    noise = {} if std is None else {"std": std}
    return {"spiral": Spiral, "swissroll": SwissRoll, "moons": TwoMoons}[kind](**noise)
