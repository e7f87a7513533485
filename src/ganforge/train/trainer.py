"""The GAN training loop.

One iteration (Goodfellow et al. 2014, Algorithm 1, with Adam):

    for k = 1..n_disc:   sample (x, y) ~ p_data, z ~ p_z;  update D to minimise
                         objective.d_loss + objective.d_penalty + the stabilisers' D terms
    sample z ~ p_z (and labels y ~ p(y) for a conditional model);  update G to minimise
                         objective.g_loss + the stabilisers' G terms
    optionally theta_ema <- EMA(theta_G)

A conditional model's fakes in the D phase reuse the real batch's labels; p(y) is uniform, or
the clusters' sizes for a self-conditioned run (:mod:`ganforge.train.self_condition`, whose data
are clustered again before the update of every ``self_condition_every``-th step). D sees every
batch through the stabilisers' input transform (DiffAugment, instance noise) in both phases.

Everything random flows from ``config.seed`` through three dedicated ``torch.Generator`` objects
(data order, latent noise, fixed sample noise) plus the global torch RNG (dropout), all of which
are checkpointed: resuming from ``last.pt`` reproduces an uninterrupted run bit for bit on CPU.
"""

from __future__ import annotations

import functools
import math
import shutil
import signal
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganforge.config import ExperimentConfig, save_config
from ganforge.data.base import AnyDataset, StreamDataset, build_dataset
from ganforge.errors import GanforgeError
from ganforge.models.base import build as build_models
from ganforge.train.batches import batches_for
from ganforge.train.checkpoint import load_checkpoint, load_weights, save_checkpoint
from ganforge.train.ema import EMA
from ganforge.train.logger import MetricsLogger
from ganforge.train.objectives import build_objective
from ganforge.train.self_condition import SelfConditioning, check_conditioning, proportional_labels
from ganforge.train.stabilisers import Stabilisers


def resolve_device(name: str) -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an unavailable explicit choice is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GanforgeError(f"unknown device {name!r}", "use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GanforgeError("device cuda was asked for but CUDA is not available here",
                            "use --device cpu (or auto)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise GanforgeError("device mps was asked for but MPS is not available here",
                            "use --device cpu (or auto)")
    return device


class Callback:
    """Hooks into the :class:`Trainer` without touching the loop.

    ``columns`` names the extra ``metrics.csv`` columns the callback fills. ``on_step_end`` runs
    after every update; a non-empty dict it returns is written on that step's log row (a row is
    logged at that step even off the ``log_every`` grid).
    """

    columns: tuple[str, ...] = ()

    def setup(self, trainer: Trainer) -> None:
        """Runs at the end of ``Trainer.__init__``, before anything is written: raise
        :class:`GanforgeError` here for a problem that must leave no run directory behind."""

    def on_fit_start(self, trainer: Trainer) -> None:
        pass

    def on_step_end(self, trainer: Trainer) -> dict[str, float] | None:
        return None

    def on_fit_end(self, trainer: Trainer) -> None:
        pass


def grad_norm(module: nn.Module) -> float:
    grads = [p.grad.detach().flatten() for p in module.parameters() if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.cat(grads))) if grads else 0.0


class Experiment:
    """The networks, data and optimisers a config describes; shared by training and sampling.

    Building validates every section (unknown keys, missing data, bad sizes) before anything
    touches the disk. ``dataset`` replaces the config's ``data`` section with your own
    :class:`ArrayDataset` or :class:`StreamDataset`. Pass ``sample_shape`` (and ``num_classes``)
    to build the networks without loading the data, e.g. to sample from a checkpoint on a
    machine that lacks the dataset. ``cluster=False`` skips a self-conditioned run's first
    clustering, for a caller that restores the labels from a checkpoint.
    """

    def __init__(self, cfg: ExperimentConfig, device: torch.device | str | None = None, *,
                 dataset: AnyDataset | None = None, sample_shape: tuple[int, ...] | None = None,
                 num_classes: int | None = None, cluster: bool = True) -> None:
        self.cfg = cfg
        self.device = resolve_device(str(device) if device is not None else cfg.device)
        torch.manual_seed(cfg.seed)
        self.dataset = dataset
        if self.dataset is None and sample_shape is None:
            self.dataset = build_dataset(cfg.data)
        if self.dataset is not None:
            sample_shape, num_classes = self.dataset.sample_shape, self.dataset.num_classes
        #: ``concat`` | ``acgan`` | ``projection`` for a class-conditional model, else None
        self.conditional: str | None = cfg.model.get("conditional")
        clusters = cfg.stabilisers.self_condition
        if clusters:  # self-conditioned: the labels are D's clusters, never the dataset's own
            check_conditioning(self.conditional, clusters)
            num_classes = clusters
        self.sample_shape, self.num_classes = tuple(sample_shape), num_classes
        self.G, self.D = build_models(cfg.model, self.sample_shape, num_classes,
                                      extras=cfg.stabilisers.discriminator_extras())
        self.G.to(self.device)
        self.D.to(self.device)
        #: the training data (the dataset, or its self-conditioning relabelled copy)
        self.train_data = self.dataset
        self._label_prior: torch.Tensor | None = None  # a loaded run's, see label_prior
        self.self_conditioning: SelfConditioning | None = None
        if clusters and self.dataset is not None:
            data = self.dataset
            if isinstance(data, StreamDataset):
                data = data.materialise(cfg.stabilisers.self_condition_pool, seed=cfg.seed)
            self.self_conditioning = SelfConditioning(
                data, clusters, every=cfg.stabilisers.self_condition_every, seed=cfg.seed,
                device=self.device)
            self.train_data = self.self_conditioning.data
            if cluster:
                self.self_conditioning.cluster(self.D)
        self.objective = build_objective(cfg.loss)
        t = cfg.train
        self.stabilisers = Stabilisers(cfg.stabilisers, self.objective, self.G, self.D,
                                       total_steps=t.steps, seed=cfg.seed)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=t.lr_g, betas=t.betas_g)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=t.lr_d, betas=t.betas_d)
        self.ema = EMA(self.G, t.ema_decay, warmup=t.ema_warmup) if t.ema_decay else None

    @property
    def label_prior(self) -> torch.Tensor | None:
        """p(y) for G's labels when it is not uniform: a self-conditioned run's clusters' sizes
        (from its clustering, or set from the checkpoint when the data are not loaded)."""
        if self.self_conditioning is not None:
            return self.self_conditioning.prior
        return self._label_prior

    @label_prior.setter
    def label_prior(self, prior: torch.Tensor | None) -> None:
        self._label_prior = prior

    def labels_for(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """Class labels for n generated samples of a conditional model: draws from ``generator``
        (uniform, or from ``label_prior``), or without it 0..K-1 cycled (counts proportional to
        ``label_prior``); None for an unconditional model."""
        if self.conditional is None:
            return None
        if self.label_prior is not None:
            if generator is None:
                return proportional_labels(self.label_prior, n).to(self.device)
            return torch.multinomial(self.label_prior, n, replacement=True,
                                     generator=generator).to(self.device)
        if generator is None:
            return torch.arange(n, device=self.device) % self.num_classes
        return torch.randint(self.num_classes, (n,), generator=generator).to(self.device)


class Trainer:
    """Trains the experiment a config describes into ``run_dir``.

    >>> cfg = load_config("ring8-mlp", overrides={"train.steps": 200})
    >>> Trainer(cfg, "runs/ring8").fit()

    ``dataset`` trains on your own :class:`ArrayDataset`/:class:`StreamDataset` instead of the
    config's ``data`` section.
    """

    def __init__(self, cfg: ExperimentConfig, run_dir: str | Path, *, resume: bool = False,
                 device: str | None = None, progress: bool = True,
                 dataset: AnyDataset | None = None,
                 callbacks: list[Callback] | tuple[Callback, ...] = ()) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.callbacks = list(callbacks)
        if not resume and self.run_dir.exists() and any(self.run_dir.iterdir()):
            raise GanforgeError(f"run directory {self.run_dir} already exists and is not empty",
                                f"choose another --out, or continue it with --resume {self.run_dir}")
        # a resumed run takes its cluster labels from the checkpoint: no k-means on the new D
        self.exp = Experiment(cfg, device, dataset=dataset, cluster=not resume)
        self.batches = batches_for(self.exp.train_data, cfg.train.batch_size, cfg.seed)
        self.noise = torch.Generator().manual_seed(cfg.seed + 1)
        self.fixed_z = self.exp.G.sample_z(
            cfg.train.num_fixed_samples, torch.Generator().manual_seed(cfg.seed + 2))
        self.fixed_y = self.exp.labels_for(cfg.train.num_fixed_samples)  # 0..K-1 cycled
        self.step = 0
        self._stop_requested = False
        if resume:
            self._restore(self.run_dir / "checkpoints" / "last.pt")
            self.fixed_y = self.exp.labels_for(cfg.train.num_fixed_samples)  # the restored prior's
        for callback in self.callbacks:
            callback.setup(self)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        exp = self.exp
        return {
            "config": self.cfg.to_dict(),
            "sample_shape": list(exp.sample_shape),
            "num_classes": exp.num_classes,
            "step": self.step,
            "G": exp.G.state_dict(),
            "D": exp.D.state_dict(),
            "ema": None if exp.ema is None else exp.ema.state_dict(),
            "opt_g": exp.opt_g.state_dict(),
            "opt_d": exp.opt_d.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "noise": self.noise.get_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
            "data": self.batches.state_dict(),
            "stabilisers": exp.stabilisers.state_dict(),
            "self_condition": (None if exp.self_conditioning is None
                               else exp.self_conditioning.state_dict()),
            "fixed_z": self.fixed_z.cpu(),
        }

    def _restore(self, path: Path) -> None:
        state = load_checkpoint(path)
        exp = self.exp
        if (state.get("self_condition") is None) != (exp.self_conditioning is None):
            raise GanforgeError(f"checkpoint {path} and the config disagree on self-conditioning",
                                "resume with the run's own config.yaml")
        load_weights(exp.G, state["G"], "generator", path)
        load_weights(exp.D, state["D"], "discriminator", path)
        if (state["ema"] is None) != (exp.ema is None):
            raise GanforgeError(f"checkpoint {path} and the config disagree on EMA",
                                "resume with the run's own config.yaml")
        if exp.ema is not None:
            exp.ema.load_state_dict(state["ema"])
        exp.opt_g.load_state_dict(state["opt_g"])
        exp.opt_d.load_state_dict(state["opt_d"])
        torch.set_rng_state(state["rng"]["torch"])
        self.noise.set_state(state["rng"]["noise"])
        if state["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.batches.load_state_dict(state["data"])
        if "stabilisers" in state:
            exp.stabilisers.load_state_dict(state["stabilisers"])
        if exp.self_conditioning is not None:
            exp.self_conditioning.load_state_dict(state["self_condition"])
        self.fixed_z = state["fixed_z"].to(exp.device)
        self.step = int(state["step"])

    def save(self, name: str) -> Path:
        return save_checkpoint(self.state_dict(), self.run_dir / "checkpoints" / name)

    # ------------------------------------------------------------------ one update
    def lr_factor(self) -> float:
        """Multiplier of the base learning rates for the coming update (a function of the step
        alone, so resuming needs no scheduler state)."""
        t = self.cfg.train
        if t.lr_schedule == "linear" and self.step >= t.lr_decay_start:
            return 1.0 - (self.step - t.lr_decay_start) / (t.steps - t.lr_decay_start)
        return 1.0

    def penalising(self) -> bool:
        """Whether D's gradient penalties apply to the coming update (``train.penalty_until``)."""
        until = self.cfg.train.penalty_until
        return until is None or self.step < until

    def train_step(self) -> dict[str, float]:
        exp, t, dev = self.exp, self.cfg.train, self.exp.device
        G, D, objective, stab = exp.G, exp.D, exp.objective, exp.stabilisers
        factor, penalise = self.lr_factor(), self.penalising()
        for group in exp.opt_g.param_groups:
            group["lr"] = t.lr_g * factor
        for group in exp.opt_d.param_groups:
            group["lr"] = t.lr_d * factor
        if exp.self_conditioning is not None and exp.self_conditioning.due(self.step):
            exp.self_conditioning.cluster(D)
            self.fixed_y = exp.labels_for(t.num_fixed_samples)
        G.train()
        D.train()
        D.requires_grad_(True)
        for _ in range(t.n_disc):
            real, y_real = self.batches.next()
            real = real.to(dev, non_blocking=True)
            y_real = y_real.to(dev) if exp.conditional is not None else None
            z = G.sample_z(t.batch_size, self.noise, dev)
            with torch.no_grad():
                fake = G(z, y_real)
            real_in, fake_in = stab.d_input(real, self.step), stab.d_input(fake, self.step)
            out_real, out_fake = D.evaluate(real_in, y_real), D.evaluate(fake_in, y_real)
            loss_d = objective.d_loss(out_real.logits, out_fake.logits)
            terms = stab.d_terms(D, real_in, y_real, out_real, out_fake, y_real, penalties=penalise)
            penalty = (objective.d_penalty(functools.partial(D, y=y_real), real_in, fake_in)
                       if penalise else None)
            if penalty is not None:
                terms["penalty"] = penalty
            total_d = loss_d + sum(terms.values())
            exp.opt_d.zero_grad(set_to_none=True)
            total_d.backward()
            norm_d = grad_norm(D)
            exp.opt_d.step()
            objective.after_d_step(D)
            stab.after_d_step(D)

        D.requires_grad_(False)  # G's phase needs gradients through D, not for D's weights
        z = G.sample_z(t.batch_size, self.noise, dev)
        y_fake = exp.labels_for(t.batch_size, self.noise)
        out_g = D.evaluate(stab.d_input(G(z, y_fake), self.step), y_fake)
        real_features = None
        if stab.needs_real_features_for_g:
            with torch.no_grad():
                real_features = D.evaluate(real_in, y_real).features
        loss_g = objective.g_loss(out_g.logits)
        g_terms = stab.g_terms(G, out_g, y_fake, real_features)
        total_g = (loss_g if stab.keeps_adversarial_g_loss else 0.0) + sum(g_terms.values())
        exp.opt_g.zero_grad(set_to_none=True)
        total_g.backward()
        norm_g = grad_norm(G)
        exp.opt_g.step()
        D.requires_grad_(True)
        stab.after_g_step(G)
        if exp.ema is not None:
            exp.ema.update(G)
        self.step += 1
        stats = {k: v.item() for k, v in {**terms, **g_terms}.items() if k != "penalty"}
        if self.cfg.stabilisers.instance_noise:
            stats["instance_noise"] = stab.noise_std(self.step - 1)
        return {
            "loss_D": total_d.item(),
            "loss_G": total_g.item(),  # a tensor: FM's replace mode always adds its own term
            "real_score": torch.sigmoid(out_real.logits.detach()).mean().item(),
            "fake_score": torch.sigmoid(out_fake.logits.detach()).mean().item(),
            "grad_norm_D": norm_d,
            "grad_norm_G": norm_g,
            **stats,
        }

    # ------------------------------------------------------------------ loop
    def fit(self) -> Path:
        """Train to ``train.steps``; returns the run directory. Safe to call on a resumed run."""
        t = self.cfg.train
        created = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            save_config(self.cfg, self.run_dir / "config.yaml")
            logger = MetricsLogger(self.run_dir, t.tensorboard,
                                   resume_step=self.step if self.step else None,
                                   extra_columns=[*self.exp.stabilisers.columns(self.exp.conditional),
                                                  *(c for cb in self.callbacks for c in cb.columns)])
        except BaseException:
            if created:
                shutil.rmtree(self.run_dir, ignore_errors=True)
            raise
        for callback in self.callbacks:
            callback.on_fit_start(self)
        sums: dict[str, float] = {}
        n_in_window, window_start = 0, time.perf_counter()
        with self._graceful_interrupt(), _progress(self.progress, t.steps, self.step) as bar:
            while self.step < t.steps and not self._stop_requested:
                stats = self.train_step()
                for key, value in stats.items():
                    sums[key] = sums.get(key, 0.0) + value
                n_in_window += 1
                extra: dict[str, float] = {}
                for callback in self.callbacks:
                    extra.update(callback.on_step_end(self) or {})
                if self.step % t.log_every == 0 or self.step == t.steps or extra:
                    row = {k: v / n_in_window for k, v in sums.items()}
                    row.update(extra)
                    row.update(self._position(), lr_G=self.exp.opt_g.param_groups[0]["lr"],
                               lr_D=self.exp.opt_d.param_groups[0]["lr"],
                               sec_per_step=(time.perf_counter() - window_start) / n_in_window)
                    logger.log(row)
                    bar.update(self.step, row)
                    sums, n_in_window, window_start = {}, 0, time.perf_counter()
                if self.step % t.sample_every == 0:
                    self.snapshot()
                if self.step % t.checkpoint_every == 0:
                    self.save("last.pt")
                    self.save(f"step_{self.step:07d}.pt")
        logger.close()
        for callback in self.callbacks:
            callback.on_fit_end(self)
        if self._stop_requested and self.step < t.steps:
            self.save("last.pt")
            print(f"interrupted at step {self.step}; saved {self.run_dir / 'checkpoints/last.pt'}"
                  f" — continue with: ganforge train --resume {self.run_dir}")
            return self.run_dir
        self.save("last.pt")
        self.save("final.pt")
        self.snapshot()
        self.plot_curves()
        return self.run_dir

    def _position(self) -> dict[str, int]:
        images = self.step * self.cfg.train.batch_size * self.cfg.train.n_disc
        return {"step": self.step, "epoch": self.batches.epoch, "images_seen": images}

    # ------------------------------------------------------------------ artefacts
    @torch.no_grad()
    def snapshot(self) -> Path:
        """A PNG of the fixed noise batch (images) or a real-vs-fake scatter over D's field (2D)."""
        from ganforge import viz

        G = self.exp.ema.model if self.exp.ema is not None else self.exp.G
        was_training = G.training
        G.eval()
        fake = G(self.fixed_z, self.fixed_y).cpu()
        G.train(was_training)
        path = self.run_dir / "samples" / f"step_{self.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if fake.dim() == 4:  # a conditional run's fixed labels cycle 0..K-1: one column per class
            return viz.save_grid(fake, path, nrow=self.exp.num_classes if self.exp.conditional else None)
        dataset = self.exp.dataset
        if isinstance(dataset, StreamDataset):
            real = dataset.materialise(len(fake), seed=self.cfg.seed + 3).x
        else:
            real = dataset.x[: len(fake)]
        D = self.exp.D
        D.eval()
        centers = getattr(dataset, "centers", None)
        pack = getattr(D, "pack", 1)  # a PacGAN D scores packs: show D(x) on a pack of m copies of x

        def prob_fn(pts: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(D(pts.repeat_interleave(pack, dim=0).to(self.exp.device))).cpu()

        # a conditional D has one field per class: show the points alone
        field = prob_fn if self.exp.conditional is None else None
        out = viz.plot_2d_field(real, fake, path, prob_fn=field, title=f"step {self.step}",
                                centers=centers)
        D.train()
        return out

    def plot_curves(self) -> list[Path]:
        from ganforge import viz

        return viz.plot_all(self.run_dir / "metrics.csv", self.run_dir / "plots")

    # ------------------------------------------------------------------ Ctrl-C
    @contextmanager
    def _graceful_interrupt(self):
        """First Ctrl-C finishes the current step, saves ``last.pt`` and stops; a second one
        interrupts at once."""
        try:
            previous = signal.getsignal(signal.SIGINT)

            def handler(signum, frame):
                self._stop_requested = True
                signal.signal(signal.SIGINT, previous)

            signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread: no signal handling
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


@contextmanager
def _progress(enabled: bool, total: int, start: int):
    """A rich progress bar with ETA and the live losses and scores."""
    if not enabled:
        yield _NoBar()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[stats]}")]
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("train", total=total, completed=start, stats="")
        yield _RichBar(progress, task)


class _NoBar:
    def update(self, step: int, row: dict[str, float]) -> None:
        pass


class _RichBar:
    def __init__(self, progress, task) -> None:
        self.progress, self.task = progress, task

    def update(self, step: int, row: dict[str, float]) -> None:
        stats = (f"loss_D {row['loss_D']:.3f}  loss_G {row['loss_G']:.3f}  "
                 f"D(x) {row['real_score']:.2f}  D(G(z)) {row['fake_score']:.2f}")
        if not all(math.isfinite(row[k]) for k in ("loss_D", "loss_G")):
            stats += "  [red]non-finite loss"
        self.progress.update(self.task, completed=step, stats=stats)
