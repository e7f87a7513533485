"""StackGAN (Zhang et al. 2017): text embedding in, image out, in two stages.

Batches carry ``x`` (N, C, S, S), ``y`` (N,) and ``text`` (N, K, E), the embeddings of each
image's K captions. Every step picks one caption per image (a draw from the algorithm's
generator), e_i. The networks (``model: {name: stackgan}``): ``G`` holds both generator stages
(:class:`~ganforge.models.stackgan.StackGenerator`), ``D1`` scores S/2 images, ``D2`` S images.

Phases (stage I on steps [0, stage1_steps), stage II from then to the end)::

    D1 / D2:  minimise  L_D = BCE(D(x, e), 1) + 1/2 [BCE(D(G(z, e), e), 1 -> 0) + BCE(D(x, e_w), 0)]
    G1 / G2:  minimise  L_G = BCE(D(G(z, e), e), 1) + kl_weight * mean KL(N(mu, sigma^2) || N(0, I))

(the paper's matching-aware D, sec. 3 / Reed et al. 2016's GAN-CLS, with its 1/2 weighting; the
non-saturating G loss plus the conditioning augmentation's KL). With ``model.class_head`` D also
has an auxiliary classifier C (TAC-GAN, Dash et al. 2017) and ``class_weight`` w adds
w CE(C(x), y) to L_D and w CE(C(G(z, e)), y) to L_G, y the class of the caption's image.

The wrong text e_w of image i is the picked caption of another image j of the batch whose
class differs, y_j != y_i, drawn uniformly among those (when the batch has no such image,
j = i + 1 mod N, the roll of the batch).
In stage II, G's stage I is frozen: it runs in eval mode (its BatchNorm statistics fixed), under
``no_grad``, and its optimiser ``G1`` takes no more steps; G2 and D2 see its image
x1 = G1(z, c1) and refine it.

The text encoder (frozen, no optimiser) is not one of the Trainer's networks: its constructor
arguments, weights and the vocabulary live in :meth:`StackGAN.state_dict`, with a bank of
``bank_size`` training captions (strings, embeddings, classes) for default sampling, so a loaded
run turns new captions into images with no dataset (:meth:`StackGAN.encode_text`).

Randomness: caption picks, latent codes, CA noise and wrong-text picks from one generator
(seed + 1); the caption bank from seed + 3; snapshots from fixed seed + 2 draws; all checkpointed.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.config import ExperimentConfig
from ganforge.data.base import AnyDataset
from ganforge.errors import GanforgeError
from ganforge.models.base import MODELS
from ganforge.models.stackgan import ConditioningAugmentation, MatchingDiscriminator, StackGenerator
from ganforge.train.algorithms.base import (
    Algorithm,
    OptimizerSpec,
    Phase,
    TextConditioned,
    option_weight,
    register_algorithm,
)

ADAM_STACKGAN = {"name": "adam", "lr": 2e-4, "betas": (0.5, 0.999)}


# ---------------------------------------------------------------------- the losses
def mismatched_indices(y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """For each i, an index j with y_j != y_i drawn uniformly among them; j = (i + 1) mod N for a
    row with none (a batch of one class). ``y`` (N,) -> (N,) long, on ``y``'s device."""
    n = len(y)
    yc = y.cpu()
    allowed = yc[:, None] != yc[None, :]
    scores = torch.rand(n, n, generator=generator).masked_fill(~allowed, -1.0)
    j = scores.argmax(dim=1)
    rolled = (torch.arange(n) + 1) % max(n, 1)
    return torch.where(allowed.any(dim=1), j, rolled).to(y.device)


def matching_aware_d_loss(real_right: torch.Tensor, fake_right: torch.Tensor,
                          real_wrong: torch.Tensor) -> torch.Tensor:
    """L_D = BCE(s_r, 1) + 1/2 (BCE(s_f, 0) + BCE(s_w, 0)), each BCE a batch mean over logits:
    (real image, right text) is real; (fake, right text) and (real image, wrong text) are fake."""
    real = F.binary_cross_entropy_with_logits(real_right, torch.ones_like(real_right))
    fake = F.binary_cross_entropy_with_logits(fake_right, torch.zeros_like(fake_right))
    wrong = F.binary_cross_entropy_with_logits(real_wrong, torch.zeros_like(real_wrong))
    return real + 0.5 * (fake + wrong)


def generator_loss(fake_right: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                   kl_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_G, mean KL): the non-saturating BCE(D(G(z, c), e), 1) + kl_weight * mean KL."""
    adversarial = F.binary_cross_entropy_with_logits(fake_right, torch.ones_like(fake_right))
    kl = ConditioningAugmentation.kl(mu, logvar).mean()
    return adversarial + kl_weight * kl, kl


def pick_captions(text: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One of the K caption embeddings per image, uniformly: (N, K, E) -> (N, E); (N, E) as is."""
    if text.dim() == 2:
        return text
    k = torch.randint(text.shape[1], (len(text),), generator=generator).to(text.device)
    return text[torch.arange(len(text), device=text.device), k]


# ---------------------------------------------------------------------- the text encoder's state
def encoder_spec(encoder: nn.Module) -> dict[str, Any]:
    """The constructor arguments of ``encoder``: its ``init_kwargs`` (or ``config``) dict when it
    keeps one, else the attributes named like its ``__init__`` parameters."""
    for attr in ("init_kwargs", "config", "kwargs"):
        kwargs = getattr(encoder, attr, None)
        if isinstance(kwargs, dict):
            return dict(kwargs)
    params = [p for p in inspect.signature(type(encoder).__init__).parameters.values()
              if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    kwargs = {}
    for p in params:
        if hasattr(encoder, p.name):
            kwargs[p.name] = getattr(encoder, p.name)
        elif p.default is p.empty:
            raise GanforgeError(f"the text encoder {type(encoder).__name__} does not keep its "
                                f"argument {p.name!r}", "store its init kwargs as encoder.init_kwargs")
    return kwargs


def _plain(value: Any) -> Any:
    """Constructor arguments as plain Python values (tuples -> lists) for a weights_only file."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def save_stage_figure(path: Path, captions: list[str], low: torch.Tensor, high: torch.Tensor,
                      title: str | None = None) -> Path:
    """A PNG with one row per caption: its stage-I samples ``low`` (R, n, C, s, s), up-sampled x2
    (nearest), beside its stage-II samples ``high`` (R, n, C, S, S); the caption on the left."""
    from matplotlib.figure import Figure

    from ganforge.viz import make_grid
    from ganforge.viz._atomic import save_figure

    rows = len(captions)
    fig = Figure(figsize=(9, 0.95 * rows + 0.7))
    axes = fig.subplots(rows, 2, squeeze=False)
    for r in range(rows):
        up = F.interpolate(low[r], scale_factor=high.shape[-1] // low.shape[-1], mode="nearest")
        for c, (images, name) in enumerate(((up, "stage I (up-sampled)"), (high[r], "stage II"))):
            ax = axes[r, c]
            grid = make_grid(images, nrow=len(images))
            ax.imshow(grid[..., 0] if grid.shape[2] == 1 else grid, cmap="gray", vmin=0, vmax=255,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=9)
        axes[r, 0].set_ylabel(str(captions[r])[:60], rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.42, right=0.99, top=1 - 0.6 / (0.95 * rows + 0.7), bottom=0.01,
                        wspace=0.05, hspace=0.1)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path, dpi=110)


@register_algorithm("stackgan")
class StackGAN(Algorithm, TextConditioned):
    """StackGAN's two stages with matching-aware discriminators; see the module docstring.

    Options (``algorithm: {name: stackgan, ...}``): ``stage1_steps`` (steps of stage I; stage II
    trains from then to ``train.steps``), ``kl_weight`` (the CA's KL weight, 2 in the paper's
    code), ``bank_size`` (training captions kept for default sampling and snapshots),
    ``class_weight`` (with ``model.class_head``: the weight of the auxiliary classification terms,
    TAC-GAN, Dash et al. 2017: D learns the classes of real images, G is asked for its caption's).
    """

    name = "stackgan"
    data_kind = "captioned"
    required_fields = ("x", "y", "text")
    generator_name = "G"
    ema_networks = ("G",)
    columns = ("loss_D1", "loss_G1", "loss_D2", "loss_G2", "kl", "real_score", "fake_score",
               "wrong_score", "class_loss", "grad_norm_D1", "grad_norm_G1", "grad_norm_D2", "grad_norm_G2")

    @dataclass
    class Options:
        stage1_steps: int = 1000
        kl_weight: float = 2.0
        bank_size: int = 100
        class_weight: float = 1.0

        def __post_init__(self) -> None:
            for key, low in (("stage1_steps", 0), ("bank_size", 1)):
                if getattr(self, key) < low:
                    raise GanforgeError(f"algorithm.{key}={getattr(self, key)!r} is not an integer >= {low}",
                                        f"set e.g. algorithm.{key}={max(low, 100)}")
            option_weight(self.kl_weight, "kl_weight", "set e.g. algorithm.kl_weight=2")
            option_weight(self.class_weight, "class_weight", "set e.g. algorithm.class_weight=1")

    def __init__(self, cfg: ExperimentConfig, dataset: AnyDataset | None, *,
                 sample_shape: tuple[int, ...], num_classes: int | None, device: torch.device,
                 restoring: bool = False) -> None:
        super().__init__(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes,
                         device=device)
        options = self.options
        self.kl_weight, self.class_weight = options.kl_weight, options.class_weight
        self.stage1_steps, self.bank_size = options.stage1_steps, options.bank_size
        model = dict(cfg.model)
        text_dim = model.get("text_dim", 64)
        if dataset is not None and getattr(dataset, "text_dim", None) not in (None, text_dim):
            raise GanforgeError(f"the dataset's caption embeddings have {dataset.text_dim} dimensions "
                                f"and model.text_dim is {text_dim}",
                                f"set model.text_dim={dataset.text_dim}")
        self.G, self.D1, self.D2 = MODELS.build(model, self.sample_shape, num_classes)
        if not isinstance(self.G, StackGenerator):  # the networks say what they are, not the name
            raise GanforgeError(f"algorithm stackgan trains a two-stage StackGenerator, and model "
                                f"{cfg.model.get('name')!r} builds {type(self.G).__name__}",
                                "set model.name=stackgan")
        for net in (self.G, self.D1, self.D2):
            net.to(device)
        self.networks = {"G": self.G, "D1": self.D1, "D2": self.D2}
        self.noise = torch.Generator().manual_seed(cfg.seed + 1)
        self._stage2 = False
        # text: encoder (frozen), vocabulary and the caption bank; a loaded run reads them from state
        self.text_encoder: nn.Module | None = None
        self._encoder_state: dict[str, Any] | None = None
        self.vocab_words: list[str] = []
        self.bank_text = torch.empty(0, self.G.text_dim)
        self.bank_captions: list[str] = []
        self.bank_classes = torch.empty(0, dtype=torch.long)
        if dataset is not None:
            self._take_text(dataset)

    # ------------------------------------------------------------------ text
    def _take_text(self, dataset: AnyDataset) -> None:
        """Copy the dataset's frozen encoder and vocabulary, and draw the caption bank."""
        encoder = getattr(dataset, "encoder", None)
        vocab = getattr(dataset, "vocab", None)
        if encoder is not None:
            self._encoder_state = {
                "kwargs": {k: _plain(v) for k, v in encoder_spec(encoder).items()},
                "weights": {k: v.detach().cpu().clone() for k, v in encoder.state_dict().items()},
            }
            self.text_encoder = self._build_encoder(self._encoder_state)
        if vocab is not None:
            self.vocab_words = list(vocab.words)
        tensors = dataset.tensors()
        text, y = tensors["text"], tensors["y"]
        gen = torch.Generator().manual_seed(self.cfg.seed + 3)
        m = min(self.bank_size, len(text))
        rows = torch.randperm(len(text), generator=gen)[:m]
        cols = (torch.randint(text.shape[1], (m,), generator=gen) if text.dim() == 3
                else torch.zeros(m, dtype=torch.long))
        self.bank_text = (text[rows, cols] if text.dim() == 3 else text[rows]).float().clone()
        self.bank_classes = y[rows].long().clone()
        captions = getattr(dataset, "captions", None)
        self.bank_captions = ([str(captions[int(r)][int(c)]) for r, c in zip(rows, cols, strict=True)]
                              if captions is not None else [f"class {int(c)}" for c in self.bank_classes])

    @staticmethod
    def _build_encoder(state: dict[str, Any]) -> nn.Module:
        from ganforge.text import TextEncoder

        encoder = TextEncoder(**state["kwargs"])
        encoder.load_state_dict(state["weights"])
        encoder.eval().requires_grad_(False)
        return encoder

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """Embeddings (n, E) on CPU of captions, by the run's frozen text encoder (kept on CPU) and
        vocabulary (unknown words map to <unk>); works on a loaded run with no dataset."""
        if self.text_encoder is None or not self.vocab_words:
            raise GanforgeError("this run has no text encoder or vocabulary",
                                "train on a captioned dataset (data.name=fashion-captions)")
        from ganforge.text import Vocabulary, encode_texts

        vocab = Vocabulary.from_words(self.vocab_words)
        return encode_texts(self.text_encoder, vocab, list(texts)).float()

    # ------------------------------------------------------------------ the Trainer's contract
    def optimizers(self) -> dict[str, OptimizerSpec]:
        spec = dict(ADAM_STACKGAN)
        return {"D1": OptimizerSpec(self.D1, dict(spec)), "G1": OptimizerSpec(self.G.stage1, dict(spec)),
                "D2": OptimizerSpec(self.D2, dict(spec)), "G2": OptimizerSpec(self.G.stage2, dict(spec))}

    def phases(self) -> list[Phase]:
        s = self.stage1_steps
        return [Phase("D1", ("D1",), stop=s, loss=partial(self.d_loss, 1)),
                Phase("G1", ("G1",), stop=s, loss=partial(self.g_loss, 1)),
                Phase("D2", ("D2",), start=s, loss=partial(self.d_loss, 2)),
                Phase("G2", ("G2",), start=s, loss=partial(self.g_loss, 2))]

    def begin_step(self, step: int) -> None:
        self._stage2 = step >= self.stage1_steps
        if self._stage2 and not bool(self.G.stage2_active):
            self.G.stage2_active.fill_(True)

    def train(self, mode: bool = True) -> None:
        super().train(mode)
        if self._stage2:  # stage I is frozen: fixed BatchNorm statistics
            self.G.stage1.eval()

    def _batch(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = batch["x"].to(self.device, non_blocking=True)
        text = pick_captions(batch["text"], self.noise).to(self.device)
        return x, text, batch["y"]

    def _fake(self, stage: int, text: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(fake images of ``stage``, mu, logvar of that stage's CA); stage I under no_grad in
        stage II."""
        z = self.G.sample_z(len(text), self.noise, self.device)
        if stage == 1:
            return self.G.stage1(z, text, self.noise)
        with torch.no_grad():
            low = self.G.stage1(z, text, self.noise)[0]
        return self.G.stage2(low, text, self.noise)

    def _stage_batch(self, stage: int, batch: dict[str, torch.Tensor]
                     ) -> tuple[MatchingDiscriminator, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(the stage's D, its real images, the captions drawn, the labels)."""
        x, text, y = self._batch(batch)
        if stage == 1:
            x = F.avg_pool2d(x, 2)  # stage I's real images at S/2
        return (self.D1 if stage == 1 else self.D2), x, text, y

    def d_loss(self, stage: int, batch: dict[str, torch.Tensor],
               step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """A D phase of ``stage``: the matching-aware loss (real, fake and mismatched captions)
        and, with a class head, the real images' classes."""
        D, x, text, y = self._stage_batch(stage, batch)
        with torch.no_grad():
            fake = self._fake(stage, text)[0]
        wrong = text[mismatched_indices(y, self.noise).to(text.device)]
        (s_real, c_real), s_fake, s_wrong = D.scores(x, text), D(fake, text), D(x, wrong)
        loss = matching_aware_d_loss(s_real, s_fake, s_wrong)
        stats = {"real_score": torch.sigmoid(s_real).mean().item(),
                 "fake_score": torch.sigmoid(s_fake).mean().item(),
                 "wrong_score": torch.sigmoid(s_wrong).mean().item()}
        if c_real is not None:  # TAC-GAN's auxiliary head learns the classes of real images
            class_loss = F.cross_entropy(c_real, y.to(c_real.device))
            loss = loss + self.class_weight * class_loss
            stats["class_loss"] = class_loss.item()
        return loss, stats

    def g_loss(self, stage: int, batch: dict[str, torch.Tensor],
               step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """A G phase of ``stage``: fool the stage's D with the caption, plus the KL of the
        conditioning augmentation and, with a class head, the caption's class."""
        D, _, text, y = self._stage_batch(stage, batch)
        fake, mu, logvar = self._fake(stage, text)
        s_fake, c_fake = D.scores(fake, text)
        loss, kl = generator_loss(s_fake, mu, logvar, self.kl_weight)
        if c_fake is not None:  # ...and G is asked for images of its caption's class
            loss = loss + self.class_weight * F.cross_entropy(c_fake, y.to(c_fake.device))
        return loss, {"kl": kl.item()}

    def progress_text(self, row: dict[str, float]) -> str:
        stage = "2" if "loss_D2" in row and row["loss_D2"] == row["loss_D2"] else "1"
        parts = [f"stage {stage}"]
        for key in (f"loss_D{stage}", f"loss_G{stage}", "real_score", "fake_score", "wrong_score"):
            if key in row:
                parts.append(f"{key} {row[key]:.3f}")
        return "  ".join(parts)

    # ------------------------------------------------------------------ sampling
    def labels_for(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Text embeddings (n, E) of bank captions: drawn from ``generator``, or the bank cycled."""
        m = len(self.bank_text)
        if m == 0:
            raise GanforgeError("this run has no caption bank to sample from",
                                "pass labels=algorithm.encode_text([...])")
        idx = torch.arange(n) % m if generator is None else torch.randint(m, (n,), generator=generator)
        return self.bank_text[idx].to(self.device)

    def class_text(self, classes: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Text embeddings (n, E) of bank captions whose class is ``classes[i]`` (n,): drawn from
        ``generator``, or the first such caption."""
        out = []
        for c in classes.tolist():
            rows = (self.bank_classes == c).nonzero().flatten()
            if len(rows) == 0:
                raise GanforgeError(f"the caption bank has no caption of class {c}",
                                    "pass caption embeddings from encode_text instead")
            k = 0 if generator is None else int(torch.randint(len(rows), (1,), generator=generator))
            out.append(self.bank_text[rows[k]])
        return torch.stack(out).to(self.device)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None, network: nn.Module | None = None,
               batch_size: int = 1000) -> torch.Tensor:
        """Final S x S images; ``labels``: text embeddings (n, E), class labels (n,) (bank captions
        of those classes), or None (bank captions cycled)."""
        if labels is None:
            labels = self.labels_for(n)
        elif labels.dim() == 1 and not labels.is_floating_point():
            labels = self.class_text(labels, generator)
        net = self.generator if network is None else network
        return net.sample(n, generator, labels.float(), batch_size)

    @torch.no_grad()
    def sample_stages(self, n: int, generator: torch.Generator | None,
                      text_embeddings: torch.Tensor, network: nn.Module | None = None,
                      batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
        """(stage-I images (n, C, S/2, S/2), stage-II images (n, C, S, S)) on CPU for text
        embeddings (n, E); codes and CA noise from ``generator``. Train/eval mode is the caller's."""
        G: StackGenerator = self.generator if network is None else network
        lows, highs = [], []
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            z = G.sample_z(m, generator, self.device)
            low, high = G.stages(z, text_embeddings[start:start + m].float().to(self.device), generator)
            lows.append(low.cpu())
            highs.append(high.cpu())
        return torch.cat(lows), torch.cat(highs)

    @torch.no_grad()
    def snapshot(self, path: Path, generator: nn.Module, step: int) -> Path:
        """A PNG: one row per bank caption (fixed codes, 4 samples each), stage I up-sampled |
        stage II (untrained, grey, before ``stage1_steps``)."""
        rows, per_row = min(8, len(self.bank_text)), 4
        was_training = generator.training
        generator.eval()
        text = self.bank_text[:rows].repeat_interleave(per_row, dim=0)
        low, high = self.sample_stages(len(text), torch.Generator().manual_seed(self.cfg.seed + 2),
                                       text, generator)
        generator.train(was_training)
        return save_stage_figure(path, self.bank_captions[:rows], low.view(rows, per_row, *low.shape[1:]),
                                 high.view(rows, per_row, *high.shape[1:]), f"step {step}")

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"noise": self.noise.get_state(), "encoder": self._encoder_state,
                "vocab": list(self.vocab_words), "bank_text": self.bank_text.cpu(),
                "bank_captions": list(self.bank_captions), "bank_classes": self.bank_classes.cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.noise.set_state(state["noise"])
        self.load_sampling_state(state)

    def load_sampling_state(self, state: dict[str, Any]) -> None:
        self._encoder_state = state.get("encoder")
        self.text_encoder = (None if self._encoder_state is None
                             else self._build_encoder(self._encoder_state))
        self.vocab_words = list(state.get("vocab", []))
        self.bank_text = state["bank_text"].float()
        self.bank_captions = list(state["bank_captions"])
        self.bank_classes = state["bank_classes"].long()
