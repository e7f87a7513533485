"""The base of the image-to-image algorithms (pix2pix; later CycleGAN, SRGAN, colorization,
inpainting): a generator G that maps an *input* image c to an output image G(c).

The contract on top of :class:`~ganforge.train.algorithms.base.Algorithm`:

* the data are paired (:class:`~ganforge.data.paired.PairedDataset`): batches carry ``x`` (the
  targets) and ``cond`` (the inputs); ``required_fields`` says so;
* it declares :class:`~ganforge.train.algorithms.base.Translates` (and no latent space): tools
  that need latent codes (``ganforge latent``) refuse such runs, and ``ganforge sample`` /
  ``evaluate`` / ``translate`` hand them to the algorithm; its samples are of the ``paired`` data
  kind (input | output | target figures);
* :meth:`ImageToImage.translate` (c -> G(c), batched, CPU out) is what ``ganforge translate`` and
  the paired metrics call; :meth:`ImageToImage.sample` translates given inputs (passed as
  ``labels``) or, without them, the run's fixed pairs;
* ``cond_shape`` (C', H', W'), the inputs' shape, is read from the data and kept in the
  algorithm's state; a loaded run rebuilds its networks without its data from the checkpoint's
  (:meth:`ImageToImage.restored_options`), or from an older run's ``algorithm.cond_shape``;
* the fixed pairs, ``train.num_fixed_samples`` (input, target) pairs drawn once from the data
  (seed + 2), live in the algorithm's state: snapshots and ``ganforge sample`` show
  input | output | target for them, also from a loaded run.

G's noise (pix2pix's dropout) is drawn from ``self.noise`` (seed + 1) in training, and from the
caller's generator when sampling; both are explicit ``torch.Generator``s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ganforge.config import ExperimentConfig
from ganforge.data.base import AnyDataset
from ganforge.data.kinds import Samples
from ganforge.errors import GanforgeError
from ganforge.models.base import MODELS
from ganforge.train.algorithms.base import Algorithm, Translates


def displayable(images: torch.Tensor) -> torch.Tensor:
    """Inputs as a picture: 1 or 3 channels as they are; otherwise (e.g. an image plus a mask
    channel) the first 3 channels when there are more than 3, else the first one."""
    c = images.shape[1]
    if c in (1, 3):
        return images
    return images[:, :3] if c > 3 else images[:, :1]


def probability_scores(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict[str, float]:
    """The D phase's logged ``real_score`` / ``fake_score``: mean sigmoid(D) on reals and fakes."""
    return {"real_score": torch.sigmoid(real_logits.detach()).mean().item(),
            "fake_score": torch.sigmoid(fake_logits.detach()).mean().item()}


def resolve_cond_shape(dataset: AnyDataset | None, recorded: Any,
                       sample_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """The inputs' shape: the data's (checked against ``recorded``, a run's
    ``algorithm.cond_shape``, when both exist); without data ``recorded``, or else the targets'
    ``sample_shape`` (networks built without data or a run, e.g. to inspect a preset)."""
    if recorded is not None:
        if (isinstance(recorded, (str, bytes)) or not hasattr(recorded, "__len__") or len(recorded) != 3
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in recorded)):
            raise GanforgeError(f"algorithm.cond_shape={recorded!r} is not [C, H, W]",
                                "drop algorithm.cond_shape: it is read from the data")
        recorded = tuple(recorded)
    if dataset is None:
        return recorded if recorded is not None else tuple(sample_shape)
    shape = getattr(dataset, "cond_shape", None)
    if shape is None:
        cond = dataset.tensors()["cond"]
        shape = tuple(cond.shape[1:])
    shape = tuple(int(v) for v in shape)
    if len(shape) != 3:
        raise GanforgeError(f"the inputs (cond) of dataset {dataset.name!r} have shape {shape}, "
                            "not (C, H, W)",
                            "use a paired image dataset (see docs/image-to-image.md)")
    if recorded is not None and recorded != shape:
        raise GanforgeError(f"algorithm.cond_shape={list(recorded)} but the data's inputs are {list(shape)}",
                            "drop algorithm.cond_shape (it is read from the data), or use the run's data")
    return shape


@dataclass
class ImageToImageOptions:
    """The option every image-to-image algorithm shares: ``cond_shape``, the inputs' [C, H, W]
    (recorded by the run itself, see the module docstring; its own check names a bad value)."""

    cond_shape: list[int] | None = None


class ImageToImage(Algorithm, Translates):
    """Base class: G maps inputs ``cond`` (N, C', H', W') to images (N, *sample_shape); see the
    module docstring. Subclasses build ``self.G`` (and whatever else), set ``networks``, and
    implement ``optimizers``, ``phases`` and ``loss``; their ``Options`` derive from
    :class:`ImageToImageOptions`."""

    Options: ClassVar[type] = ImageToImageOptions

    data_kind: ClassVar[str | None] = "paired"
    required_fields: ClassVar[tuple[str, ...]] = ("x", "cond")
    generator_name: ClassVar[str] = "G"
    ema_networks: ClassVar[tuple[str, ...]] = ("G",)

    G: nn.Module

    def __init__(self, cfg: ExperimentConfig, dataset: AnyDataset | None, *,
                 sample_shape: tuple[int, ...], num_classes: int | None, device: torch.device) -> None:
        super().__init__(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes,
                         device=device)
        if len(self.sample_shape) != 3:
            raise GanforgeError(f"algorithm {self.name!r} translates images, and the data hold "
                                f"shape {self.sample_shape}", "use a paired image dataset")
        self.cond_shape = resolve_cond_shape(dataset, self.options.cond_shape, self.sample_shape)
        self.noise = torch.Generator().manual_seed(cfg.seed + 1)
        n = cfg.train.num_fixed_samples
        if dataset is not None:
            tensors = dataset.tensors()
            order = torch.Generator().manual_seed(cfg.seed + 2)
            pick = torch.randperm(len(tensors["x"]), generator=order)[:n]
            self.fixed_cond, self.fixed_target = tensors["cond"][pick].clone(), tensors["x"][pick].clone()
        else:  # a loaded run: load_state_dict restores them
            self.fixed_cond = torch.zeros(0, *self.cond_shape)
            self.fixed_target = torch.zeros(0, *self.sample_shape)

    def build_networks(self, cfg: ExperimentConfig, num_classes: int | None,
                       inputs: str = "the inputs have") -> Any:
        """``MODELS.build`` of ``cfg.model`` with ``in_channels`` read from the data (the inputs'
        channels, ``cond_shape[0]``); a one-line error when ``model.in_channels`` says otherwise
        (``inputs``: how the message names the inputs, e.g. ``"domain A has"``)."""
        c_in = self.cond_shape[0]
        given = cfg.model.get("in_channels")
        if given is not None and given != c_in:
            raise GanforgeError(f"model.in_channels={given!r} but {inputs} {c_in} channel(s)",
                                "drop model.in_channels: it is read from the data")
        section = {k: v for k, v in cfg.model.items() if k != "in_channels"}
        return MODELS.build(section, self.sample_shape, num_classes, in_channels=c_in)

    # ------------------------------------------------------------------ translating
    @torch.no_grad()
    def translate(self, cond: torch.Tensor, network: nn.Module | None = None,
                  generator: torch.Generator | None = None, batch_size: int = 256) -> torch.Tensor:
        """G(c) for inputs ``cond`` (N, C', H, W) in [-1, 1], on CPU, ``batch_size`` at a time, G in
        eval mode (its noise per its own settings, drawn from ``generator``); G's mode is restored."""
        net = self.generator if network is None else network
        was_training = net.training
        net.eval()
        device = next(net.parameters()).device
        try:
            out = [net(cond[i:i + batch_size].to(device), generator).cpu()
                   for i in range(0, len(cond), batch_size)]
        finally:
            net.train(was_training)
        return torch.cat(out) if out else torch.empty(0, *self.sample_shape)

    # ------------------------------------------------------------------ a user's images
    def user_channels(self, network: nn.Module | None = None) -> int:
        """Channels of the images a user passes to ``ganforge translate`` (default: G's input's)."""
        return (self.generator if network is None else network).in_channels

    def prepare_inputs(self, images: torch.Tensor) -> torch.Tensor:
        """G's inputs from a user's images (N, :meth:`user_channels`, H, W) in [-1, 1]."""
        return images

    def output_images(self, cond: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The images to show for G's outputs ``out`` on inputs ``cond`` (default: ``out``)."""
        return out

    def input_multiple(self, network: nn.Module) -> int:
        """The number every input side must be a multiple of (default 1: any side)."""
        return 1

    def fixed_pairs(self, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets) of the fixed pairs, cycled to ``n`` (default: all of them)."""
        if len(self.fixed_cond) == 0:
            raise GanforgeError("this run has no fixed pairs to translate", "pass input images")
        n = len(self.fixed_cond) if n is None else n
        index = torch.arange(n) % len(self.fixed_cond)
        return self.fixed_cond[index], self.fixed_target[index]

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None, network: nn.Module | None = None,
               batch_size: int = 1000) -> torch.Tensor:
        """Translations of ``n`` inputs: ``labels`` holds the input images (n, C', H, W) for an
        image-to-image run; None translates the fixed pairs' inputs, cycled."""
        cond = self.fixed_pairs(n)[0] if labels is None else labels[:n]
        if cond.dim() != 4:
            raise GanforgeError("an image-to-image run samples from input images, not class labels",
                                "pass labels=input images (N, C, H, W), or use `ganforge translate`")
        return self.translate(cond, network, generator, batch_size)

    def panels(self, n: int | None = None, network: nn.Module | None = None,
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """{"input", "output", "target"} for the fixed pairs (cycled to ``n``), displayable."""
        cond, target = self.fixed_pairs(n)
        out = self.translate(cond, network, generator)
        return {"input": displayable(cond), "output": out, "target": target}

    def snapshot(self, path: Path, generator: nn.Module, step: int) -> Path:
        """input | output | target for the fixed pairs (G's noise from a fixed seed), the data
        kind's figure."""
        panels = self.panels(network=generator, generator=torch.Generator().manual_seed(self.cfg.seed + 3))
        return self.kind.preview(Samples(panels["output"], panels=panels, title=f"step {step}"), path)

    def progress_text(self, row: Mapping[str, float]) -> str:
        return "  ".join(f"{c} {row[c]:.3f}" for c in self.columns[:4] if c in row)

    # ------------------------------------------------------------------ state
    @classmethod
    def restored_options(cls, state: dict[str, Any]) -> dict[str, Any]:
        return {"cond_shape": list(state["cond_shape"])}

    def state_dict(self) -> dict[str, Any]:
        return {"noise": self.noise.get_state(), "fixed_cond": self.fixed_cond.cpu(),
                "fixed_target": self.fixed_target.cpu(), "cond_shape": list(self.cond_shape)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if tuple(state["cond_shape"]) != tuple(self.cond_shape):
            raise GanforgeError(f"the checkpoint's inputs are {state['cond_shape']} but the config's "
                                f"{list(self.cond_shape)}", "resume with the run's own config.yaml and data")
        self.noise.set_state(state["noise"])
        self.fixed_cond, self.fixed_target = state["fixed_cond"], state["fixed_target"]
