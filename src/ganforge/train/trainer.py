"""The training loop, shared by every algorithm.

One step at ``step`` (see :mod:`ganforge.train.algorithms.base`)::

    learning rates <- base rates * schedule(step)
    algorithm.begin_step(step)
    for phase in phases active at step:        # e.g. D (repeat n_disc), then G
        repeat phase.repeat times:
            batch <- next batch of phase.batch_source (default: the loader) if phase.uses_data
            loss, stats <- phase.loss(batch, step)     # (algorithm.loss(phase.name, ...) if none)
            backward; step the phase's optimisers; algorithm.after_update(phase, step)
    EMA copies <- EMA(networks)                 # train.ema_decay
    step += 1; callbacks (snapshots, metrics); log; checkpoint

The Trainer owns only that loop, the schedules, EMA, checkpoints, logging, callbacks, Ctrl-C and
the progress bar; what is trained, how, and what is logged belongs to the algorithm.

Everything random flows from ``config.seed``: the data order's own ``torch.Generator``, the
algorithm's generators (latent noise, fixed sample noise...) and the global torch RNG (dropout),
all of which are checkpointed: resuming from ``last.pt`` reproduces an uninterrupted run bit for
bit on CPU.
"""

from __future__ import annotations

import math
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Collection
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganforge._io import check_allocation, check_output_dir
from ganforge.config import SMALL_MODEL_PARAMETERS, ExperimentConfig, save_config
from ganforge.data.base import AnyDataset, build_dataset
from ganforge.errors import GanforgeError
from ganforge.metrics.registry import parse_metrics
from ganforge.train.algorithms.base import Algorithm, Phase, algorithm_options, build_algorithm
from ganforge.train.batches import Batch, BatchSource, batches_for
from ganforge.train.callbacks import Callback, CurvePlots, SampleSnapshots
from ganforge.train.checkpoint import load_checkpoint, load_weights, save_checkpoint
from ganforge.train.distributed import (
    World,
    average_gradients,
    broadcast_module,
    init_from_env,
    leave,
    reseed_rank,
    shard,
)
from ganforge.train.ema import EMA
from ganforge.train.logger import MetricsLogger, summary_writer_class
from ganforge.train.memory import TRAINING_FACTOR, activation_bytes_per_sample, check_activation_memory
from ganforge.train.memory_format import apply_memory_format
from ganforge.train.optim import build_optimizers, set_lr
from ganforge.train.rundir import LOCK_NAME, RunLock, clear_run, never_checkpointed, remove_partial_writes


class NonFinite(Exception):
    """A non-finite loss or gradient norm, caught before the optimiser step."""

    def __init__(self, step: int, phase: str, what: str) -> None:
        super().__init__(f"{what} of phase {phase} at step {step}")
        self.step, self.phase, self.what = step, phase, what


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


def grad_norm(module: nn.Module | torch.optim.Optimizer) -> float:
    """||grad||_2 over a module's parameters, or over the parameters an optimiser updates."""
    if isinstance(module, torch.optim.Optimizer):
        params = [p for group in module.param_groups for p in group["params"]]
    else:
        params = list(module.parameters())
    grads = [p.grad.detach().flatten() for p in params if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.cat(grads))) if grads else 0.0


class Experiment:
    """The data, algorithm (its networks), optimisers and EMA copies a config describes; shared
    by training and sampling.

    Building validates every section (unknown keys, missing data, bad sizes, unknown phases and
    optimisers) before anything touches the disk. ``dataset`` replaces the config's ``data``
    section with your own :class:`ArrayDataset` or :class:`StreamDataset`. Pass ``sample_shape``
    (and ``num_classes``) to build the networks without loading the data, e.g. to sample from a
    checkpoint on a machine that lacks the dataset. ``restoring``: a checkpoint is loaded next,
    so the algorithm may skip one-off initial work (a self-conditioned run's first clustering).
    """

    def __init__(self, cfg: ExperimentConfig, device: torch.device | str | None = None, *,
                 dataset: AnyDataset | None = None, sample_shape: tuple[int, ...] | None = None,
                 num_classes: int | None = None, restoring: bool = False) -> None:
        self.cfg = cfg
        self.device = resolve_device(str(device) if device is not None else cfg.device)
        algorithm_options(cfg)  # a bad algorithm option is refused before the data are loaded
        if cfg.eval.metrics is not None:  # checked with or without eval.every: a typo never waits
            parse_metrics(cfg.eval.metrics)
        torch.manual_seed(cfg.seed)
        self.dataset = dataset
        if self.dataset is None and sample_shape is None:
            # building the data never moves the run's random stream: a dataset that trains
            # something on the global RNG (fashion-captions' text encoder, or its cached copy
            # loaded instead) would otherwise change every network's initial weights
            with torch.random.fork_rng(devices=[]):
                self.dataset = build_dataset(cfg.data)
        if self.dataset is not None:
            sample_shape, num_classes = self.dataset.sample_shape, self.dataset.num_classes
        self.sample_shape = tuple(sample_shape)
        t = cfg.train  # sizes against memory before anything is allocated
        check_allocation(t.batch_size, self.sample_shape, f"train.batch_size={t.batch_size}",
                         "lower train.batch_size")
        check_allocation(t.num_fixed_samples, self.sample_shape,
                         f"train.num_fixed_samples={t.num_fixed_samples}", "lower train.num_fixed_samples")
        try:
            self.algorithm: Algorithm = build_algorithm(
                cfg, self.dataset, sample_shape=self.sample_shape, num_classes=num_classes,
                device=self.device, restoring=restoring)
        except (MemoryError, RuntimeError) as err:  # OutOfMemoryError is a RuntimeError
            allocator = isinstance(err, (MemoryError, torch.OutOfMemoryError)) or any(
                word in str(err) for word in ("alloc", "overflow"))  # too large, or a size overflow
            if not allocator:
                raise
            raise GanforgeError(f"the networks do not fit in memory ({' '.join(str(err).split())[:90]})",
                                "use smaller model sizes (z_dim, widths, hidden layers)") from None
        check_activation_memory(activation_bytes_per_sample(self.algorithm), {
            "train.batch_size": (t.batch_size, TRAINING_FACTOR),
            "train.num_fixed_samples": (t.num_fixed_samples, 1)})
        apply_memory_format(self.algorithm.networks.values(), cfg.train.channels_last, self.device)
        self.num_classes = self.algorithm.num_classes
        self.stage = 0
        self.phases = self._configured_phases()
        self.build_optimizers()
        self.emas: dict[str, EMA] = {}
        if cfg.train.ema_decay:
            self.emas = {name: self._ema(name) for name in self.algorithm.ema_networks}

    def _configured_phases(self) -> list[Phase]:
        phases = self.algorithm.phases()
        names = [p.name for p in phases]
        unknown = [name for name in self.cfg.phases if name not in names]
        if unknown:
            raise GanforgeError(f"unknown phase {unknown[0]!r} for algorithm {self.algorithm.name!r}",
                                f"its phases are: {', '.join(names)}")
        return [p.configured(self.cfg.phases[p.name]) if p.name in self.cfg.phases else p
                for p in phases]

    def build_optimizers(self) -> None:
        """Fresh optimisers for the algorithm's current networks (at the start, and at a stage
        change)."""
        self.optimizers, self.base_lrs = build_optimizers(
            self.algorithm.optimizers(), self.cfg.optim, self.algorithm.name)
        self.optimizers = self.algorithm.wrap_optimizers(self.optimizers)
        for phase in self.phases:
            missing = [name for name in phase.optimizers if name not in self.optimizers]
            if missing:
                raise GanforgeError(f"phase {phase.name!r} steps unknown optimiser {missing[0]!r}",
                                    f"the optimisers are: {', '.join(self.optimizers)}")

    def _ema(self, name: str) -> EMA:
        t = self.cfg.train
        return EMA(self.algorithm.networks[name], t.ema_decay, warmup=t.ema_warmup)

    def enter_stage(self, stage: int) -> None:
        """Let the algorithm change its networks for ``stage`` (when it is not the current one);
        fresh optimisers, fresh EMA copies of the networks that changed."""
        if stage == self.stage:
            return
        self.stage = stage
        changed = self.algorithm.enter_stage(stage)
        apply_memory_format([self.algorithm.networks[name] for name in changed],
                            self.cfg.train.channels_last, self.device)
        self.build_optimizers()
        for name in changed:
            if name in self.emas:
                self.emas[name] = self._ema(name)

    @property
    def networks(self) -> dict[str, nn.Module]:
        return self.algorithm.networks

    def sampling_network(self, ema: bool = True) -> nn.Module:
        """The generator, or its EMA copy when there is one and ``ema``."""
        name = self.algorithm.generator_name
        if ema and name in self.emas:
            return self.emas[name].model
        return self.algorithm.networks[name]


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
        self.callbacks = [*callbacks, SampleSnapshots(), CurvePlots()]
        resolved = resolve_device(str(device) if device is not None else cfg.device)
        if cfg.train.deterministic is True or (cfg.train.deterministic == "auto"
                                               and resolved.type == "cpu"):
            import os

            # cuBLAS needs a fixed workspace for deterministic GEMMs; set before CUDA starts
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        if cfg.train.flush_denormal:
            # The flag is per thread and inherited by threads created later: set it before the
            # first tensor operation creates torch's worker threads (the CLI does).
            torch.set_flush_denormal(True)
        self.world: World = init_from_env(resolved)
        check_output_dir(self.run_dir, "run directory")
        if cfg.train.tensorboard:
            summary_writer_class()  # before the run directory exists
        if self.world.main and never_checkpointed(self.run_dir):
            # killed before its first checkpoint: nothing to continue, so start it again (a rerun
            # with the same --out, or --resume, both do)
            if resume:
                print(f"{self.run_dir} stopped before its first checkpoint: starting it again at step 0")
            clear_run(self.run_dir)
            resume = False
        if (not resume and self.world.main and self.run_dir.exists()
                and any(p.name != LOCK_NAME for p in self.run_dir.iterdir())):
            raise GanforgeError(f"run directory {self.run_dir} already exists and is not empty",
                                f"choose another --out, or continue it with --resume {self.run_dir}")
        self.resumed = resume
        self.exp = Experiment(cfg, resolved, dataset=dataset, restoring=resume)
        self.algorithm = self.exp.algorithm
        if self.algorithm.train_data is None:
            raise GanforgeError("the trainer needs data", "give the config a data section")
        if self.world.distributed:
            self.algorithm.check_distributable()
            if cfg.train.sync_batchnorm:
                if self.exp.device.type != "cuda":
                    raise GanforgeError("train.sync_batchnorm needs CUDA (torch's SyncBatchNorm has no "
                                        "CPU kernel)", "set train.sync_batchnorm=false on CPU")
                for net in self.exp.networks.values():  # in place: the layers keep their parameters
                    torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
        # every rank draws the same global batch and keeps its slice (its shard)
        self.batches = batches_for(self.algorithm.train_data, cfg.train.batch_size * self.world.size,
                                   cfg.seed)
        #: the batches whose passes are logged as ``epoch``: the first data phase's source
        first = next((p.batch_source for p in self.exp.phases if p.uses_data), None)
        self.epoch_source: BatchSource = self.batches if first is None else first
        self.step = 0
        self.images_seen = 0
        #: multiplier of every learning rate, halved by each non-finite rollback
        self.lr_scale = 1.0
        self.rollbacks = 0
        self.last_saved_step = 0
        self.finished = False
        #: updates tried and updates dropped as non-finite (``train.on_nonfinite=skip``) per phase,
        #: in this process
        self.updates: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        #: the algorithm's reason for ending before train.steps (see Algorithm.stop_reason)
        self.stop_reason: str | None = None
        self._stop_requested = False
        if resume:
            self._restore(self.run_dir / "checkpoints" / "last.pt")
            broken = next((name for name, net in self.exp.networks.items()
                           if not all(torch.isfinite(t).all() for t in net.state_dict().values()
                                      if t.is_floating_point())), None)
            if broken is not None:  # ganforge never writes one: a damaged or foreign file
                raise GanforgeError(f"{self.run_dir / 'checkpoints' / 'last.pt'} holds non-finite weights "
                                    f"(network {broken}), so there is nothing to resume from",
                                    "copy an earlier checkpoints/step_N.pt over last.pt, or train again")
            self.last_saved_step = self.step
            # a run killed while finishing (after its last step, before final.pt) resumes to
            # finish: its end-of-run snapshots, then final.pt
            finishing = (self.step == cfg.train.steps
                         and not (self.run_dir / "checkpoints" / "final.pt").exists())
            if self.step >= cfg.train.steps and not finishing:
                raise GanforgeError(
                    f"run {self.run_dir} already reached step {self.step}, and train.steps is "
                    f"{cfg.train.steps}", f"pass --steps N with N > {self.step} to train it further")
        if self.world.distributed:
            for net in [*self.exp.networks.values(), *(e.model for e in self.exp.emas.values())]:
                broadcast_module(net)
            reseed_rank(self.algorithm, cfg.seed, self.world, self.step)
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
            "stage": exp.stage,
            "images_seen": self.images_seen,
            "lr_scale": self.lr_scale,
            "rollbacks": self.rollbacks,
            "nets": {name: net.state_dict() for name, net in exp.networks.items()},
            "ema": {name: ema.state_dict() for name, ema in exp.emas.items()},
            "optimizers": {name: opt.state_dict() for name, opt in exp.optimizers.items()},
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
            "data": self.batches.state_dict(),
            "algorithm": self.algorithm.state_dict(),
        }

    def _restore(self, path: Path) -> None:
        state = load_checkpoint(path)
        exp = self.exp
        exp.enter_stage(int(state.get("stage", 0)))
        self.algorithm.load_state_dict(state["algorithm"])  # before the weights: it checks the config
        load_networks(exp, state, path)
        for name, opt in exp.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.batches.load_state_dict(state["data"])
        self.step = int(state["step"])
        self.images_seen = int(state.get("images_seen", 0))
        self.lr_scale = float(state.get("lr_scale", 1.0))
        self.rollbacks = int(state.get("rollbacks", 0))

    def save(self, name: str) -> Path:
        """Write ``checkpoints/NAME``; refused (GanforgeError) when a weight is not finite."""
        for net_name, net in self.exp.networks.items():
            for key, tensor in net.state_dict().items():
                if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                    raise GanforgeError(
                        f"refusing to write checkpoint {name}: {net_name}.{key} is not finite at "
                        f"step {self.step}", "lower the learning rates, or resume from an earlier "
                        "checkpoint")
        path = save_checkpoint(self.state_dict(), self.run_dir / "checkpoints" / name)
        if name == "last.pt":
            self.last_saved_step = self.step
        return path

    # ------------------------------------------------------------------ one update
    def lr_factor(self) -> float:
        """Multiplier of the base learning rates for the coming update (a function of the step
        alone, so resuming needs no scheduler state)."""
        t = self.cfg.train
        if t.lr_schedule == "linear" and self.step >= t.lr_decay_start:
            return 1.0 - (self.step - t.lr_decay_start) / (t.steps - t.lr_decay_start)
        return 1.0

    def _next_batch(self, source: BatchSource | None) -> Batch:
        batch = (self.batches if source is None else source).next()
        self.images_seen += len(batch["x"])
        return shard(batch, self.world) if self.world.distributed else batch

    def train_step(self, only: Collection[str] | None = None) -> dict[str, float]:
        """One iteration: every active phase in order (or just the phases named in ``only``, e.g.
        ``("D",)`` for an interactive D-only step), then the EMA update; returns the logged
        statistics."""
        exp, algo = self.exp, self.algorithm
        exp.enter_stage(algo.stage_at(self.step))
        factor = self.lr_factor() * self.lr_scale
        for name, opt in exp.optimizers.items():
            set_lr(opt, exp.base_lrs[name], factor)
        algo.begin_step(self.step)
        algo.train()
        stats: dict[str, float] = {}
        for phase in exp.phases:
            if not phase.active(self.step) or (only is not None and phase.name not in only):
                continue
            optimizers = [exp.optimizers[name] for name in phase.optimizers]
            params = [p for opt in optimizers for g in opt.param_groups for p in g["params"]]
            trained = {id(p) for p in params}
            # a phase differentiates through the other networks, not for their weights
            for net in exp.networks.values():
                for p in net.parameters():
                    p.requires_grad_(id(p) in trained)
            for _ in range(phase.repeat):
                self.updates[phase.name] += 1
                batch = self._next_batch(phase.batch_source) if phase.uses_data else None
                loss, phase_stats = algo.phase_loss(phase, batch, self.step)
                for opt in optimizers:
                    opt.zero_grad(set_to_none=True)
                loss.backward()
                if self.world.distributed:
                    average_gradients(params, self.world)
                norms = {f"grad_norm_{name}": grad_norm(exp.optimizers[name]) for name in phase.optimizers}
                loss_value = loss.item()
                if not math.isfinite(loss_value) or not all(map(math.isfinite, norms.values())):
                    what = "the loss" if not math.isfinite(loss_value) else "the gradient"
                    if self.cfg.train.on_nonfinite != "skip":
                        raise NonFinite(self.step, phase.name, what)
                    for opt in optimizers:  # skip: drop this update
                        opt.zero_grad(set_to_none=True)
                    stats["nonfinite_skipped"] = stats.get("nonfinite_skipped", 0.0) + 1
                    self.skipped[phase.name] += 1
                    continue
                for opt in optimizers:
                    opt.step()
                algo.after_update(phase.name, self.step)
            stats.update({f"loss_{phase.name}": loss_value, **norms, **phase_stats})
        for net in exp.networks.values():
            net.requires_grad_(True)
        for name, ema in exp.emas.items():
            ema.update(exp.networks[name])
        self.step += 1
        return stats

    # ------------------------------------------------------------------ loop
    def fit(self) -> Path:
        """Train to ``train.steps``; returns the run directory. Safe to call on a resumed run.
        In a multi-process run only rank 0 writes; the others train alongside it."""
        cleanly = False
        try:
            run_dir = self._fit_this_rank()
            cleanly = True
            return run_dir
        finally:
            leave(self.world, cleanly=cleanly)

    def _fit_this_rank(self) -> Path:
        if not self.world.main:
            while self.step < self.cfg.train.steps:
                try:
                    self.train_step()
                except NonFinite as err:  # every rank sees the same averaged gradient
                    self._recover(err, None)
                    continue
                if self.algorithm.stop_reason(self.step):  # the same on every rank
                    break
                if self.step % self.cfg.train.checkpoint_every == 0:
                    reseed_rank(self.algorithm, self.cfg.seed, self.world, self.step)
            self.finished = True
            return self.run_dir
        created = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        lock = RunLock(self.run_dir)
        try:
            lock.acquire()
        except BaseException:
            if created:
                shutil.rmtree(self.run_dir, ignore_errors=True)
            raise
        try:
            with self._threads():
                return self._fit(created)
        finally:
            lock.release()

    @contextmanager
    def _threads(self):
        """``train.threads`` for the loop (``auto``: one thread for small networks)."""
        wanted = self.cfg.train.threads
        if wanted == "auto":
            size = sum(p.numel() for net in self.exp.networks.values() for p in net.parameters())
            wanted = 1 if size < SMALL_MODEL_PARAMETERS and self.exp.device.type == "cpu" else None
        before = torch.get_num_threads()
        if wanted is not None:
            torch.set_num_threads(int(wanted))
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def _fit(self, created: bool) -> Path:
        t = self.cfg.train
        remove_partial_writes(self.run_dir)
        lr_columns = [f"lr_{name}" for name in self.exp.optimizers]
        if t.on_nonfinite == "skip":
            lr_columns.append("nonfinite_skipped")
        try:
            save_config(self.cfg, self.run_dir / "config.yaml")
            logger = MetricsLogger(self.run_dir, t.tensorboard,
                                   resume_step=self.step if self.resumed else None,
                                   columns=[*self.algorithm.columns, *lr_columns, "sec_per_step",
                                            *(c for cb in self.callbacks for c in cb.columns)])
            if not (self.run_dir / "checkpoints" / "last.pt").is_file():
                self.save("last.pt")  # step 0: a run killed before its first checkpoint resumes
        except BaseException:
            if created:
                shutil.rmtree(self.run_dir, ignore_errors=True)
            raise
        for callback in self.callbacks:
            callback.on_fit_start(self)
        sums: dict[str, float] = {}
        n_in_window, window_start = 0, time.perf_counter()
        with self._graceful_interrupt(), _progress(self.progress, t.steps, self.step,
                                                   self.algorithm) as bar:
            while self.step < t.steps and not self._stop_requested:
                try:
                    stats = self.train_step()
                except NonFinite as err:
                    self._recover(err, logger)
                    sums, n_in_window, window_start = {}, 0, time.perf_counter()
                    continue
                for key, value in stats.items():
                    sums[key] = sums.get(key, 0.0) + value
                n_in_window += 1
                extra: dict[str, float] = {}
                for callback in self.callbacks:
                    extra.update(callback.on_step_end(self) or {})
                self.stop_reason = self.algorithm.stop_reason(self.step)
                if self.step % t.log_every == 0 or self.step == t.steps or extra or self.stop_reason:
                    row = {k: v / n_in_window for k, v in sums.items()}
                    row.update(extra)
                    row.update(self._position(), sec_per_step=(time.perf_counter() - window_start)
                               / n_in_window)
                    row.update({f"lr_{name}": opt.param_groups[0]["lr"]
                                for name, opt in self.exp.optimizers.items()})
                    logger.log(row)
                    bar.update(self.step, row)
                    sums, n_in_window, window_start = {}, 0, time.perf_counter()
                if self.step % t.checkpoint_every == 0:
                    # the snapshot first: a kill between the two resumes from the older last.pt
                    # and writes this snapshot again (the steps repeat bit for bit)
                    self.save(f"step_{self.step:07d}.pt")
                    self.save("last.pt")
                if self.stop_reason:
                    print(f"stopped at step {self.step}: {self.stop_reason}")
                    break
        logger.close()
        self._report_skipped()
        self.finished = self.step >= t.steps or self.stop_reason is not None
        if self.finished:
            self.save("last.pt")
        for callback in self.callbacks:
            callback.on_fit_end(self)
        if self.finished:  # last, so that final.pt marks a run whose every artefact is written
            self.save("final.pt")
        else:
            self.save("last.pt")
            print(f"interrupted at step {self.step}; saved {self.run_dir / 'checkpoints/last.pt'}"
                  f" — continue with: ganforge train --resume {self.run_dir}")
        return self.run_dir

    def _report_skipped(self) -> None:
        """``train.on_nonfinite=skip`` says what it dropped; a phase that never updated (every
        update non-finite) is an error: its networks did not train, so the run is not finished
        (``last.pt`` keeps the state)."""
        if not self.skipped:
            return
        counts = ", ".join(f"{n} of {self.updates[name]} updates of phase {name}"
                           for name, n in self.skipped.items())
        never = [name for name, n in self.skipped.items() if n == self.updates[name]]
        if never:
            self.save("last.pt")
            raise GanforgeError(
                f"train.on_nonfinite=skip dropped every update of phase {never[0]} ({counts}): its "
                "networks never trained", "lower the learning rates (e.g. optim.D.lr=2e-4), or set "
                "train.on_nonfinite=rollback")
        print(f"ganforge: warning: train.on_nonfinite=skip dropped {counts} (the loss or gradient was "
              "not finite)", file=sys.stderr)

    def _recover(self, err: NonFinite, logger: MetricsLogger | None) -> None:
        """``rollback``: back to ``last.pt`` with halved learning rates; else a one-line error.
        In a multi-process run every rank rolls back together (rank 0 wrote ``last.pt`` before
        the step that failed could start)."""
        t = self.cfg.train
        rates = ", ".join(f"optim.{name}.lr={opt.param_groups[0]['lr']:.3g}"
                          for name, opt in self.exp.optimizers.items())
        if t.on_nonfinite == "rollback" and self.rollbacks < t.nonfinite_retries:
            scale, rollbacks = self.lr_scale * 0.5, self.rollbacks + 1
            self._restore(self.run_dir / "checkpoints" / "last.pt")
            self.lr_scale, self.rollbacks = scale, rollbacks
            reseed_rank(self.algorithm, self.cfg.seed, self.world, self.step)
            if logger is None:
                return
            logger.truncate_after(self.step)
            print(f"ganforge: {err} is not finite; rolled back to step {self.step} with the learning "
                  f"rates x{scale:g} (retry {rollbacks} of {t.nonfinite_retries})", file=sys.stderr)
            return
        tried = f" after {self.rollbacks} rollbacks" if self.rollbacks else ""
        raise GanforgeError(
            f"training diverged: {err} is not finite{tried} (rates {rates}); checkpoints/last.pt "
            f"holds the last finite state, step {self.last_saved_step}",
            "lower the learning rates (e.g. optim.D.lr=2e-4), or add a stabiliser such as "
            "algorithm.stabilisers.spectral_norm=true") from None

    def _position(self) -> dict[str, int]:
        return {"step": self.step, "epoch": self.epoch_source.epoch, "images_seen": self.images_seen}

    # ------------------------------------------------------------------ artefacts
    def snapshot(self) -> Path:
        """The algorithm's picture of its fixed inputs at this step (EMA generator if any)."""
        path = self.run_dir / "samples" / f"step_{self.step:07d}.png"
        return self.algorithm.snapshot(path, self.exp.sampling_network(), self.step)

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


def load_networks(exp: Experiment, state: dict[str, Any], path: Path) -> None:
    """The checkpoint's weights (and EMA copies) into the experiment's networks, grown to the
    checkpoint's stage first."""
    exp.enter_stage(int(state.get("stage", 0)))
    missing = [name for name in exp.networks if name not in state["nets"]]
    if missing:
        raise GanforgeError(f"checkpoint {path} has no weights for network {missing[0]!r}",
                            "it was written by another algorithm: use the run's own config.yaml")
    for name, net in exp.networks.items():
        load_weights(net, state["nets"][name], f"network {name}", path)
    if set(state["ema"]) != set(exp.emas):
        raise GanforgeError(f"checkpoint {path} and the config disagree on EMA",
                            "resume with the run's own config.yaml")
    for name, ema in exp.emas.items():
        ema.load_state_dict(state["ema"][name])


@contextmanager
def _progress(enabled: bool, total: int, start: int, algorithm: Algorithm):
    """A rich progress bar with ETA and the algorithm's live losses and scores."""
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
        yield _RichBar(progress, task, algorithm)


class _NoBar:
    def update(self, step: int, row: dict[str, float]) -> None:
        pass


class _RichBar:
    def __init__(self, progress, task, algorithm: Algorithm) -> None:
        self.progress, self.task, self.algorithm = progress, task, algorithm

    def update(self, step: int, row: dict[str, float]) -> None:
        stats = self.algorithm.progress_text(row)
        if not all(math.isfinite(v) for k, v in row.items() if k.startswith("loss_")):
            stats += "  [red]non-finite loss"
        self.progress.update(self.task, completed=step, stats=stats)
