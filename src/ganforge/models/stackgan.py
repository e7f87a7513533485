"""StackGAN (Zhang et al. 2017, "StackGAN: Text to Photo-realistic Image Synthesis with Stacked
Generative Adversarial Networks"), sized for 32 x 32 grey images and CPU training.

Conditioning augmentation (CA, sec. 3.1): a text embedding e (N, E) gives a Gaussian::

    (mu, logvar) = split(LeakyReLU(W e + b))          two (N, c_dim) halves
    c = mu + exp(logvar / 2) * eps,   eps ~ N(0, I)   (the reparameterisation)
    KL(N(mu, diag exp(logvar)) || N(0, I))             the G loss's regulariser

Stage I (side S1 = S / 2, 16 for 32 x 32 data; w = ``width``; S divisible by 4, >= 16)::

    G1: [z, c1] -> Linear -> 4x4x4w, BN, ReLU -> (nearest x2, conv 3x3, BN, ReLU) until S1
        (2w, then w channels) -> conv 3x3 -> C channels, tanh
    D1: image S1 -> conv 4x4 s2 (w), LeakyReLU -> conv 4x4 s2 (2w), BN, LeakyReLU ... down to 4x4
        -> concat the compressed text code LeakyReLU(W' e) (d_code), replicated over 4x4
        -> conv 1x1 (joint), BN, LeakyReLU -> conv 4x4 -> 1 logit

(a side that is not a power of 2 stops halving at an odd side: 14 -> 7, and G1 starts at 7x7).

Stage II (side S)::

    G2: stage-I image S1 -> conv 3x3 (w), ReLU -> conv 4x4 s2 (2w), BN, ReLU  (S1/2)
        -> concat its own CA code c2, replicated -> conv 3x3 (2w), BN, ReLU
        -> ``residual_blocks`` x [conv 3x3, BN, ReLU, conv 3x3, BN, + input, ReLU]
        -> (nearest x2, conv 3x3, BN, ReLU) x 2 (w, w/2 channels) -> conv 3x3 -> C, tanh
    D2: like D1 on S x S images (one more down-sampling conv).

Both discriminators are matching-aware: they score an (image, text) pair, and the algorithm
(:mod:`ganforge.train.algorithms.stackgan`) labels (real, right text) real and both (fake, right
text) and (real, wrong text) fake. :class:`StackGenerator` holds both stages as one network (one
EMA copy); its output is always S x S: stage II's image once ``stage2_active`` is set, the
nearest-neighbour up-sampled stage-I image before.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganforge import maths
from ganforge.errors import GanforgeError
from ganforge.models._checks import positive_int
from ganforge.models.base import register_model
from ganforge.models.dcgan import dcgan_init_

LEAK = 0.2


class ConditioningAugmentation(nn.Module):
    """Text embedding (N, E) -> (c, mu, logvar), each (N, c_dim); see the module docstring.

    ``generator`` draws eps on CPU (reproducible on every device); ``sample=False`` returns
    c = mu (no noise), e.g. for a deterministic code. :meth:`reset_parameters` draws W ~
    N(0, init_std^2) (the builder calls it after the DCGAN init): for unit-norm embeddings each
    W e is then N(0, init_std^2), so the code carries the text from the first step (with
    DCGAN's 0.02 the text would be 2% of the noise eps and take thousands of steps to surface)."""

    def __init__(self, text_dim: int, c_dim: int, init_std: float = 0.5) -> None:
        super().__init__()
        self.text_dim, self.c_dim, self.init_std = text_dim, c_dim, init_std
        self.fc = nn.Linear(text_dim, 2 * c_dim)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        nn.init.normal_(self.fc.weight, 0.0, self.init_std)
        nn.init.zeros_(self.fc.bias)

    def encode(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = F.leaky_relu(self.fc(text), LEAK).chunk(2, dim=1)
        return mu, logvar

    def forward(self, text: torch.Tensor, generator: torch.Generator | None = None,
                sample: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(text)
        c = maths.reparameterise(mu, logvar, generator) if sample else mu
        return c, mu, logvar

    @staticmethod
    def kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(N(mu, diag exp(logvar)) || N(0, I)) per row, (N,)."""
        return maths.kl_standard_normal(mu, logvar)


def _up(c_in: int, c_out: int) -> nn.Sequential:
    """Nearest x2, conv 3x3 (no bias), BatchNorm, ReLU: side n -> 2n."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                         nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def _down(c_in: int, c_out: int, batchnorm: bool) -> nn.Sequential:
    """Conv 4x4 s2 p1 (side n -> n/2), optional BatchNorm, LeakyReLU 0.2."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=not batchnorm)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.LeakyReLU(LEAK, inplace=True))
    return nn.Sequential(*layers)


def _replicate(code: torch.Tensor, side: int) -> torch.Tensor:
    """(N, D) -> (N, D, side, side), the code copied to every position."""
    return code[:, :, None, None].expand(-1, -1, side, side)


def _halvings(side: int, first: bool = False) -> tuple[int, int]:
    """(k, side / 2^k): how often an even side halves while staying >= 4 (at least once when
    ``first``): 32 -> (3, 4), 16 -> (2, 4), 14 -> (1, 7)."""
    count = 0
    while (first and count == 0) or (side % 2 == 0 and side // 2 >= 4):
        side //= 2
        count += 1
    return count, side


class ResidualBlock(nn.Module):
    """x -> ReLU(x + BN(conv(ReLU(BN(conv(x))))))), 3x3 convs, channels kept."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class Stage1Generator(nn.Module):
    """(z (N, z_dim), text (N, E)) -> (images (N, C, side, side), mu, logvar) of its CA."""

    def __init__(self, z_dim: int, text_dim: int, c_dim: int, out_shape: tuple[int, int, int],
                 width: int, condition_every_layer: bool = False) -> None:
        super().__init__()
        self.z_dim, self.out_shape = z_dim, tuple(out_shape)
        self.condition_every_layer = condition_every_layer
        channels, side, _ = out_shape
        self.ca = ConditioningAugmentation(text_dim, c_dim)
        ups, s0 = _halvings(side)
        c0 = width * 2 ** ups
        self.project = nn.Sequential(nn.Linear(z_dim + c_dim, c0 * s0 * s0, bias=False),
                                     nn.Unflatten(1, (c0, s0, s0)), nn.BatchNorm2d(c0),
                                     nn.ReLU(inplace=True))
        extra = c_dim if condition_every_layer else 0
        self.ups = nn.ModuleList([_up(c0 // 2 ** i + extra, c0 // 2 ** (i + 1)) for i in range(ups)])
        self.to_image = nn.Sequential(nn.Conv2d(width, channels, 3, padding=1), nn.Tanh())

    def forward(self, z: torch.Tensor, text: torch.Tensor, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c, mu, logvar = self.ca(text, generator)
        h = self.project(torch.cat([z, c], dim=1))
        for up in self.ups:
            if self.condition_every_layer:  # the code replicated beside every block's input
                h = torch.cat([h, _replicate(c, h.shape[-1])], dim=1)
            h = up(h)
        return self.to_image(h), mu, logvar


class Stage2Generator(nn.Module):
    """(stage-I images (N, C, S/2, S/2), text (N, E)) -> (images (N, C, S, S), mu, logvar)."""

    def __init__(self, text_dim: int, c_dim: int, out_shape: tuple[int, int, int], width: int,
                 residual_blocks: int) -> None:
        super().__init__()
        self.out_shape = tuple(out_shape)
        channels = out_shape[0]
        self.ca = ConditioningAugmentation(text_dim, c_dim)
        self.encode = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * width), nn.ReLU(inplace=True))
        self.joint = nn.Sequential(nn.Conv2d(2 * width + c_dim, 2 * width, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(2 * width), nn.ReLU(inplace=True))
        self.residual = nn.Sequential(*[ResidualBlock(2 * width) for _ in range(residual_blocks)])
        half = max(width // 2, 1)
        self.ups = nn.Sequential(_up(2 * width, width), _up(width, half))
        self.to_image = nn.Sequential(nn.Conv2d(half, channels, 3, padding=1), nn.Tanh())

    def forward(self, low: torch.Tensor, text: torch.Tensor, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c, mu, logvar = self.ca(text, generator)
        h = self.encode(low)
        h = self.joint(torch.cat([h, _replicate(c, h.shape[-1])], dim=1))
        return self.to_image(self.ups(self.residual(h))), mu, logvar


class MatchingDiscriminator(nn.Module):
    """(images (N, C, side, side), text (N, E)) -> logits (N,) that the pair is real and matched.

    ``features(x)`` is the image trunk (N, F, f, f), f = 4 for a power-of-2 side (7 for 14); the
    text is compressed to ``code_dim`` and replicated over the f x f map before the joint 1x1
    conv and the final f x f conv."""

    def __init__(self, in_shape: tuple[int, int, int], text_dim: int, code_dim: int,
                 width: int, projection: bool = False, num_classes: int | None = None) -> None:
        super().__init__()
        self.in_shape = tuple(in_shape)
        channels, side, _ = in_shape
        downs, final = _halvings(side, first=True)
        layers = [_down(channels, width, batchnorm=False)]
        c = width
        for _ in range(downs - 1):
            layers.append(_down(c, 2 * c, batchnorm=True))
            c *= 2
        self.trunk = nn.Sequential(*layers)
        self.feature_dim = c
        self.compress = nn.Sequential(nn.Linear(text_dim, code_dim), nn.LeakyReLU(LEAK, inplace=True))
        self.joint = nn.Sequential(nn.Conv2d(c + code_dim, c, 1, bias=False), nn.BatchNorm2d(c),
                                   nn.LeakyReLU(LEAK, inplace=True))
        self.head = nn.Conv2d(c, 1, final)
        self.embed = nn.Linear(text_dim, c, bias=False) if projection else None
        self.classify = nn.Linear(c, num_classes) if num_classes else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def scores(self, x: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(matching logits (N,), class logits (N, K) of the auxiliary head or None), one trunk pass."""
        h = self.features(x)
        code = _replicate(self.compress(text), h.shape[-1])
        logit = self.head(self.joint(torch.cat([h, code], dim=1))).flatten()
        pooled = h.sum(dim=(2, 3))
        if self.embed is not None:  # + <sum-pooled features, W e> (Miyato and Koyama 2018)
            logit = logit + (pooled * self.embed(text)).sum(dim=1)
        return logit, (self.classify(pooled) if self.classify is not None else None)

    def forward(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.scores(x, text)[0]


class StackGenerator(nn.Module):
    """Both generator stages as one network: ``stage1`` (S/2) and ``stage2`` (S).

    ``forward(z, text, generator)`` -> (N, C, S, S): stage II on stage I's image once the buffer
    ``stage2_active`` is set (the algorithm sets it when stage II starts; it is checkpointed), else
    stage I's image up-sampled x2 (nearest). ``sample(n, generator, labels, batch_size)`` draws z
    then each CA's eps from ``generator``; ``labels`` are text embeddings (n, E)."""

    def __init__(self, stage1: Stage1Generator, stage2: Stage2Generator) -> None:
        super().__init__()
        self.stage1, self.stage2 = stage1, stage2
        self.z_dim, self.out_shape = stage1.z_dim, stage2.out_shape
        self.text_dim = stage1.ca.text_dim
        self.register_buffer("stage2_active", torch.zeros((), dtype=torch.bool))

    def sample_z(self, n: int, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None) -> torch.Tensor:
        z = torch.randn(n, self.z_dim, generator=generator)
        return z.to(device if device is not None else next(self.parameters()).device)

    def stages(self, z: torch.Tensor, text: torch.Tensor, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """(stage-I images (N, C, S/2, S/2), stage-II images (N, C, S, S)), stage II always run."""
        low = self.stage1(z, text, generator)[0]
        return low, self.stage2(low, text, generator)[0]

    def forward(self, z: torch.Tensor, text: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        if bool(self.stage2_active):
            return self.stages(z, text, generator)[1]
        return F.interpolate(self.stage1(z, text, generator)[0], scale_factor=2, mode="nearest")

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None, batch_size: int = 500) -> torch.Tensor:
        if labels is None or labels.shape != (n, self.text_dim):
            raise GanforgeError(f"StackGAN samples need text embeddings of shape ({n}, {self.text_dim})",
                                "pass labels=algorithm.encode_text(captions) or algorithm.labels_for(n)")
        device = next(self.parameters()).device
        chunks = []
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            z = self.sample_z(m, generator, device)
            chunks.append(self(z, labels[start:start + m].to(device), generator).cpu())
        return torch.cat(chunks) if chunks else torch.empty(0, *self.out_shape)


def _stack_shape(sample_shape: tuple[int, ...]) -> tuple[int, int, int]:
    shape = tuple(sample_shape)
    if len(shape) != 3 or shape[1] != shape[2]:
        raise GanforgeError(f"model 'stackgan' needs square images (C, S, S), got {shape}",
                            "use an image dataset, e.g. data.name=fashion-captions")
    side = shape[1]
    if side < 16 or side % 4:
        raise GanforgeError(f"model 'stackgan' needs a side >= 16 divisible by 4, got {side}",
                            "set data.size=32")
    return shape  # type: ignore[return-value]


@register_model("stackgan")
def build_stackgan(sample_shape: tuple[int, ...], num_classes: int | None = None, *,
                   text_dim: int = 64, z_dim: int = 64, c_dim: int = 32, code_dim: int = 32,
                   g1_width: int = 32, d1_width: int = 32, g2_width: int = 32,
                   d2_width: int = 32, residual_blocks: int = 2,
                   condition_every_layer: bool = False, projection: bool = False,
                   class_head: bool = False
                   ) -> tuple[StackGenerator, MatchingDiscriminator, MatchingDiscriminator]:
    """The StackGAN networks for S x S images: (G = both generator stages, D1 on S/2, D2 on S),
    DCGAN-initialised. ``text_dim`` E (the algorithm sets it from the dataset), ``c_dim`` the CA
    code, ``code_dim`` the discriminators' compressed text; the widths are w of each network.
    ``num_classes`` is accepted for the registry's interface and ignored (the condition is text)."""
    shape = _stack_shape(sample_shape)
    sizes = {k: positive_int(v, k, "stackgan") for k, v in (
        ("text_dim", text_dim), ("z_dim", z_dim), ("c_dim", c_dim), ("code_dim", code_dim),
        ("g1_width", g1_width), ("d1_width", d1_width), ("g2_width", g2_width),
        ("d2_width", d2_width))}
    if isinstance(residual_blocks, bool) or not isinstance(residual_blocks, int) or residual_blocks < 0:
        raise GanforgeError(f"model.residual_blocks={residual_blocks!r} is not an integer >= 0",
                            "set e.g. model.residual_blocks=2")
    low = (shape[0], shape[1] // 2, shape[2] // 2)
    stage1 = Stage1Generator(sizes["z_dim"], sizes["text_dim"], sizes["c_dim"], low, sizes["g1_width"],
                             condition_every_layer=bool(condition_every_layer))
    stage2 = Stage2Generator(sizes["text_dim"], sizes["c_dim"], shape, sizes["g2_width"], residual_blocks)
    G = StackGenerator(stage1, stage2)
    if class_head and not num_classes:
        raise GanforgeError("model.class_head needs labelled data (the dataset has no classes)",
                            "set model.class_head=false")
    heads = num_classes if class_head else None
    D1 = MatchingDiscriminator(low, sizes["text_dim"], sizes["code_dim"], sizes["d1_width"],
                               projection=bool(projection), num_classes=heads)
    D2 = MatchingDiscriminator(shape, sizes["text_dim"], sizes["code_dim"], sizes["d2_width"],
                               projection=bool(projection), num_classes=heads)
    for net in (G, D1, D2):
        dcgan_init_(net)
    for ca in (stage1.ca, stage2.ca):
        ca.reset_parameters()
    return G, D1, D2
