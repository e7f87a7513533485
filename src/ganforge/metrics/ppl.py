"""Perceptual path length (Karras et al. 2019, "A Style-Based Generator Architecture for GANs",
sec. 4.2) of a style-based generator, in an in-project feature space.

For z_1, z_2 ~ p(z) and t ~ U(0, 1)::

    l_W = E[ d(g(lerp(w_1, w_2, t)), g(lerp(w_1, w_2, t + eps))) / eps^2 ],   w_i = f(z_i)
    l_Z = E[ d(G(slerp(z_1, z_2, t)), G(slerp(z_1, z_2, t + eps))) / eps^2 ]

with eps = 1e-4; the 1% and 99% percentiles of the per-pair values are discarded before the mean
(as the paper). The paper's d is LPIPS on VGG16 features; those weights cannot be fetched here,
so d is the squared L2 distance between the features of an in-project LeNet classifier
(:func:`lenet_features`, e.g. ``lenet_fashion``): :func:`evaluate_ppl` names the numbers
``ppl_w_lenet_fashion`` / ``ppl_z_lenet_fashion``, comparable between ganforge models, never with
published (LPIPS) PPL figures.

Both images of a pair see the same noise inputs: maps drawn from ``generator`` per pair when the
generator has ``make_noise`` (else its ``noise_mode`` is set to ``const``), and neither truncation
nor mixing (the generator is put in eval mode).

In the metric registry PPL is ``ppl`` (column ``ppl_w_lenet_fashion``): a model metric of a run
whose generator provides the capability ``style``
(:class:`~ganforge.metrics.capabilities.StyleSynthesis`), over ``-n`` pairs, computed only when
asked for by name (``ganforge evaluate RUN_DIR --metrics ppl``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import contextmanager

import torch

from ganforge._images import centre_crop
from ganforge.errors import GanforgeError
from ganforge.metrics.capabilities import NoiseMaps, NoiseMode, StyleSynthesis
from ganforge.metrics.registry import LOWER, MetricSpec, ModelInputs, register_metric

EPS = 1e-4
TRIM = (1.0, 99.0)
SPACES = ("w", "z")

Features = Callable[[torch.Tensor], torch.Tensor]


def lenet_features(name: str = "fashion", crop: bool = True) -> Features:
    """Images -> the LeNet ``name``'s 64-d penultimate features. With ``crop``, images larger
    than its native side (32 px padded Fashion-MNIST) are centre-cropped to it; otherwise the
    extractor resizes them."""
    from ganforge.metrics.extractors import LeNetExtractor

    extractor = LeNetExtractor(name)

    def features(x: torch.Tensor) -> torch.Tensor:
        if crop and x.shape[-1] > extractor.size:
            x = centre_crop(x, extractor.size)
        return extractor(x.float().cpu())[0]

    return features


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation on the unit sphere between the directions of ``a`` and ``b``
    (N, D) at ``t`` (N,): sin((1 - t) omega) a^ + sin(t omega) b^, over sin(omega), with
    cos(omega) = <a^, b^>. The result has norm 1 (the mapping's PixelNorm ignores norms)."""
    a_n, b_n = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(1, keepdim=True).clamp(-1.0, 1.0))
    t = t[:, None]
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) * a_n + torch.sin(t * omega) * b_n) / so


@contextmanager
def _evaluating(G: torch.nn.Module):
    was_training, mode = G.training, G.noise_mode if isinstance(G, NoiseMode) else None
    G.eval()
    if mode is not None:
        G.noise_mode = "const"
    try:
        yield
    finally:
        G.train(was_training)
        if mode is not None:
            G.noise_mode = mode


@torch.no_grad()
def path_distances(G: torch.nn.Module, features: Features, n: int, *, space: str = "w",
                   eps: float = EPS, generator: torch.Generator | None = None,
                   batch_size: int = 100) -> torch.Tensor:
    """The n per-pair values d(g(p(t)), g(p(t + eps))) / eps^2 (CPU, float64), before trimming.
    Codes z_1, z_2 (G.sample_z), t, then the noise maps are drawn per batch from ``generator``."""
    if space not in SPACES:
        raise GanforgeError(f"unknown PPL space {space!r}", "use space='w' (lerp in W) or 'z' (slerp in Z)")
    if not isinstance(G, StyleSynthesis):
        raise GanforgeError(f"perceptual path length needs a style-based generator (mapping + synthesis), "
                            f"got {type(G).__name__}", "evaluate a stylegan or stylegan2 run")
    if n < 1:
        raise GanforgeError(f"PPL needs at least one pair, got n={n}", "pass e.g. n=10000")
    param = next(G.parameters())
    out = []
    with _evaluating(G):
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            z = G.sample_z(2 * m, generator, param.device).to(param.dtype)
            t = torch.rand(m, generator=generator).to(z)
            t = torch.cat([t, t + eps])
            z1, z2 = z[:m].repeat(2, 1), z[m:].repeat(2, 1)
            if space == "w":
                w = torch.lerp(G.mapping(z1), G.mapping(z2), t[:, None])
            else:
                w = G.mapping(slerp(z1, z2, t))
            ws = G.broadcast(w)
            if isinstance(G, NoiseMaps):
                noise = [torch.cat([nmap, nmap]) for nmap in G.make_noise(m, generator)]
                img = G.synthesis(ws, noise)
            else:
                img = G.synthesis(ws)
            f = features(img).double().cpu()
            out.append((f[:m] - f[m:]).square().sum(1) / eps ** 2)
    return torch.cat(out)


def trimmed_mean(values: torch.Tensor, trim: tuple[float, float] | None = TRIM) -> float:
    """Mean of the values between the ``trim`` percentiles (inclusive; the lower/higher
    neighbours, as the StyleGAN code's numpy percentile), or of all of them when None."""
    v = values.double()
    if trim is not None:
        s = v.sort().values
        k_lo = math.floor(trim[0] / 100 * (len(s) - 1))
        k_hi = math.ceil(trim[1] / 100 * (len(s) - 1))
        v = v[(v >= s[k_lo]) & (v <= s[k_hi])]
    return float(v.mean())


def perceptual_path_length(G: torch.nn.Module, features: Features, n: int = 10000, *,
                           space: str = "w", eps: float = EPS, generator: torch.Generator | None = None,
                           trim: tuple[float, float] | None = TRIM, batch_size: int = 100) -> float:
    """PPL of ``G`` in ``space`` (``w``: lerp of mapped codes; ``z``: slerp of codes) over ``n``
    pairs, the ``trim`` percentiles discarded; see the module docstring."""
    return trimmed_mean(path_distances(G, features, n, space=space, eps=eps, generator=generator,
                                       batch_size=batch_size), trim)


def evaluate_ppl(G: torch.nn.Module, n: int = 10000, *, extractor: str = "fashion",
                 spaces: tuple[str, ...] = ("w",), seed: int = 0) -> dict[str, float]:
    """``{"ppl_<space>_lenet_<extractor>": value}`` for each space, with codes from ``seed`` (the
    column names say the feature space, like ``fid_lenet_fashion``)."""
    features = lenet_features(extractor)
    return {f"ppl_{space}_lenet_{extractor}": perceptual_path_length(
        G, features, n, space=space, generator=torch.Generator().manual_seed(seed))
        for space in spaces}


PPL_FEATURES = "fashion"


def _ppl(inputs: ModelInputs) -> dict[str, float]:
    return evaluate_ppl(inputs.generator, inputs.n, extractor=PPL_FEATURES, seed=inputs.seed)


register_metric(MetricSpec(
    "ppl", lambda ctx: {f"ppl_w_lenet_{PPL_FEATURES}": LOWER}, source="model", needs={"style"},
    default=lambda ctx: False, needs_features=False, compute=_ppl,
    description="perceptual path length in W (lenet_fashion features), over -n pairs"))
