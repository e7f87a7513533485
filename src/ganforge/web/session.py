"""The state behind ``ganforge play``: a real :class:`~ganforge.train.Trainer` built from a small set
of live settings, trained in a background thread, and pictured as frames.

Nothing here needs the web extra: the server (:mod:`ganforge.web.play`) only moves JSON between
a :class:`PlaySession` and the page, so the session is tested and benchmarked on its own.

A change of settings builds a fresh Trainer from the new config and carries over what still fits:
each network whose parameter shapes are unchanged keeps its weights (and its optimiser state when
the optimiser kind is unchanged), and the step count and history go on. Changing the architecture
(depth, width, noise dimension, spectral norm, packing) therefore restarts only the network that
changed.
"""

from __future__ import annotations

import base64
import inspect
import io
import math
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ganforge._io import folder_written_whole
from ganforge.config import ExperimentConfig, apply_overrides, save_config
from ganforge.data import datasets_of_kind
from ganforge.data.base import StreamDataset
from ganforge.errors import GanforgeError
from ganforge.maths.divergences import jensen_shannon
from ganforge.maths.priors import PRIORS
from ganforge.models import MODELS
from ganforge.train import Trainer
from ganforge.train.algorithms.base import algorithm_options
from ganforge.train.algorithms.gan import ADAM_GAN, DEFAULT_LOSS
from ganforge.train.checkpoint import load_checkpoint
from ganforge.train.logger import MetricsLogger
from ganforge.train.objectives import OBJECTIVES
from ganforge.train.optim import steppable_optimizers
from ganforge.train.trainer import NonFinite
from ganforge.web.server import confined

MODES = ("2d", "image")
#: the data of image mode: the first-run digits, small enough for an MLP to draw live
IMAGE_DATA = {"name": "digits", "size": 8}
FPS = 15
N_POINTS = 256          # real and fake points drawn per frame
HEATMAP = 48            # D's field: HEATMAP x HEATMAP cells
MANIFOLD = 16           # G's warped noise grid: MANIFOLD x MANIFOLD nodes
HISTORY = 100_000       # rows of metrics kept for the page and a saved run
DIVERGENCE_EVERY = 0.5  # seconds between JSD / W1 estimates

#: play's own bounds on each numeric setting (both inclusive): what keeps a CPU page live. Whether
#: a value makes a valid experiment is the config's business: every change is built into one.
LIMITS: dict[str, tuple[float, float]] = {
    "g_depth": (1, 6), "g_width": (2, 512), "d_depth": (1, 6), "d_width": (2, 512), "z_dim": (1, 64),
    "lr_g": (1e-7, 1.0), "lr_d": (1e-7, 1.0), "d_steps": (1, 10), "g_steps": (1, 10),
    "batch_size": (8, 1024), "r1": (0.0, 100.0), "pack": (1, 8), "self_condition": (0, 50),
    "speed": (1, 100), "seed": (0, 2**31 - 1),
}
#: where each one-key setting lives in an experiment config; the settings that fill several keys
#: (depth and width, the optimiser, the data) are written by :meth:`PlaySettings.to_config`
CONFIG_KEYS: dict[str, str] = {
    "z_dim": "model.z_dim", "prior": "model.prior", "loss": "algorithm.loss.name",
    "spectral_norm": "algorithm.stabilisers.spectral_norm", "r1": "algorithm.stabilisers.r1",
    "pack": "algorithm.stabilisers.pack", "self_condition": "algorithm.stabilisers.self_condition",
    "lr_g": "optim.G.lr", "lr_d": "optim.D.lr", "d_steps": "phases.D.repeat", "g_steps": "phases.G.repeat",
    "batch_size": "train.batch_size", "seed": "seed",
}
#: the choices of each named setting, from the registries that own the names
CHOICES: dict[str, tuple[str, ...]] = {
    "mode": MODES, "data": tuple(datasets_of_kind("points-2d")), "loss": tuple(OBJECTIVES.names()),
    "optimizer": tuple(steppable_optimizers()), "prior": PRIORS,
}
#: the losses whose D outputs a probability (the others a critic value), for the page's labels
PROBABILITY_LOSSES = tuple(name for name in OBJECTIVES.names() if OBJECTIVES.get(name).cross_entropy)
#: the settings that change nothing but the pace of play; every other one rebuilds the Trainer
PACE_ONLY = {"speed"}
#: what play builds: an MLP GAN, so that D's field and G's warped grid can be drawn
ALGORITHM, MODEL = "gan", "mlp"


@dataclass(frozen=True)
class PlaySettings:
    """What the page can change; :meth:`to_config` turns it into an ordinary experiment config
    (:data:`CONFIG_KEYS` says where each setting goes), which checks it as any config is checked."""

    mode: str = "2d"
    data: str = "ring8"
    points: tuple[tuple[float, float], ...] = ()
    #: the dataset's own options (e.g. a loaded run's ring radius); cleared when ``data`` changes
    data_options: tuple[tuple[str, float], ...] = ()
    g_depth: int = 2
    g_width: int = 64
    d_depth: int = 2
    d_width: int = 64
    z_dim: int = 2
    prior: str = "normal"
    loss: str = "non-saturating"
    #: the loss's own options (e.g. a loaded run's R1 gamma); cleared when ``loss`` changes
    loss_options: tuple[tuple[str, float], ...] = ()
    optimizer: str = "adam"
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    d_steps: int = 1
    g_steps: int = 1
    batch_size: int = 128
    spectral_norm: bool = False
    r1: float = 0.0
    pack: int = 1
    self_condition: int = 0
    speed: int = 10
    seed: int = 0

    def updated(self, changes: Any) -> PlaySettings:
        """A copy with ``changes`` applied, each checked against its type and play's bounds: an
        unknown key, a wrong type or a value out of range is a one-line :class:`GanforgeError`.
        (What makes a valid experiment is checked when the copy is built into one.)"""
        if not isinstance(changes, dict):
            raise GanforgeError("settings must be a JSON object", 'send e.g. {"loss": "hinge"}')
        known = {f.name: f for f in fields(self)}
        values: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in known:
                raise GanforgeError(f"unknown setting {key!r}", f"the settings are: {', '.join(known)}")
            values[key] = _checked(key, value, type(getattr(self, key)))
        if "points" in values:
            values.setdefault("data", "drawn")
        for name in ("data", "loss"):  # a new dataset or loss does not inherit the old one's options
            if values.get(name, getattr(self, name)) != getattr(self, name):
                values.setdefault(f"{name}_options", ())
        new = replace(self, **values)
        if new.data == "drawn" and not new.points:
            raise GanforgeError("data 'drawn' needs points", "draw a distribution first, then use it")
        return new

    def to_config(self) -> ExperimentConfig:
        """The experiment config these settings describe (an MLP GAN; a run saved from play is
        an ordinary run directory with it), validated as every config is."""
        image = self.mode == "image"
        data: dict[str, Any] = dict(IMAGE_DATA) if image else {"name": self.data, **dict(self.data_options)}
        if not image and self.data == "drawn":
            data["points"] = [list(p) for p in self.points]
        tree: dict[str, Any] = {
            "description": f"ganforge play: {data['name']}, {self.loss} loss", "device": "cpu", "data": data,
            "algorithm": {"name": ALGORITHM, "loss": dict(self.loss_options),
                          "stabilisers": {"self_condition_pool": 4096}},
            "model": {"name": MODEL, "g_hidden": [self.g_width] * self.g_depth,
                      "d_hidden": [self.d_width] * self.d_depth},
            # the algorithm's defaults (Adam's betas) apply when the optimiser is its own
            "optim": {"G": {"name": self.optimizer}, "D": {"name": self.optimizer}},
            "train": {"steps": 10**9, "log_every": 1, "sample_every": 10**9, "checkpoint_every": 10**9,
                      "num_fixed_samples": 64, "threads": 1},
        }
        if self.self_condition:  # clusters of D's features as labels need a conditional model
            tree["model"].update(conditional="projection", g_conditioning="concat")
        tree = apply_overrides(tree, {path: getattr(self, key) for key, path in CONFIG_KEYS.items()})
        return ExperimentConfig.from_dict(tree)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["points"] = [list(p) for p in self.points]
        out["data_options"] = dict(self.data_options)
        out["loss_options"] = dict(self.loss_options)
        return out


def _checked(key: str, value: Any, kind: type) -> Any:
    if key == "points":
        from ganforge.data.toy2d import DrawnPoints

        DrawnPoints(value)  # the dataset's own check: 2..2000 finite pairs within +-10
        return tuple((float(x), float(y)) for x, y in value)
    if key in ("data_options", "loss_options"):
        if not isinstance(value, (dict, tuple)) or not all(
                isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
                and math.isfinite(v) for k, v in dict(value).items()):
            raise GanforgeError(f"setting {key} must map option names to finite numbers",
                                'send e.g. {"radius": 1.0, "std": 0.01}')
        return tuple(sorted((k, float(v)) for k, v in dict(value).items()))
    if kind is bool:
        if not isinstance(value, bool):
            raise GanforgeError(f"setting {key} must be true or false, got {value!r}", "send a JSON boolean")
        return value
    if kind is str:
        if value not in CHOICES[key]:
            raise GanforgeError(f"setting {key}={value!r} is not one of the choices",
                                f"choose one of: {', '.join(CHOICES[key])}")
        return value
    low, high = LIMITS[key]
    number_ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind is int and number_ok and float(value).is_integer():
        value = int(value)
    elif kind is int:
        number_ok = False
    if not number_ok or not low <= value <= high:
        raise GanforgeError(f"setting {key} must be {'an integer' if kind is int else 'a number'} in "
                            f"[{low:g}, {high:g}], got {value!r}",
                            f"send a value between {low:g} and {high:g}")
    return kind(value)


def settings_from_config(cfg: ExperimentConfig) -> PlaySettings:
    """The settings that rebuild ``cfg``'s networks, read from the places :data:`CONFIG_KEYS`
    names (defaults: the algorithm's options, the model builder's signature); refused, naming the
    difference, for a run play cannot rebuild (another algorithm or model, unequal hidden widths,
    a dataset of another kind)."""
    image = cfg.data == IMAGE_DATA
    data = {k: v for k, v in cfg.data.items() if k not in ("name", "points")}
    if cfg.algorithm.get("name") != ALGORITHM or cfg.model.get("name") != MODEL:
        raise GanforgeError(f"play rebuilds {MODEL} {ALGORITHM} runs, and this one is "
                            f"{cfg.model.get('name')} {cfg.algorithm.get('name')}",
                            f"pick a run trained with model.name={MODEL}")
    if not image and cfg.data.get("name") not in CHOICES["data"]:
        raise GanforgeError(f"play shows 2D runs, and this run's data is {cfg.data.get('name')!r}",
                            f"pick a run on one of: {', '.join(CHOICES['data'])}")
    tree = _resolved(cfg)
    g_hidden, d_hidden = tree["model"]["g_hidden"], tree["model"]["d_hidden"]
    if len(set(g_hidden)) != 1 or len(set(d_hidden)) != 1:
        raise GanforgeError("play shows networks whose hidden layers have one width",
                            "pick a run with equal g_hidden and d_hidden widths")
    if tree["optim"]["G"]["name"] != tree["optim"]["D"]["name"]:
        raise GanforgeError("play trains G and D with one kind of optimiser, and this run has two",
                            "pick a run whose optim.G.name and optim.D.name are the same")
    values = {key: _lookup(tree, path) for key, path in CONFIG_KEYS.items()}
    settings = PlaySettings().updated({
        "mode": "image" if image else "2d", **({} if image else {"data": cfg.data["name"]}),
        **({"points": cfg.data["points"]} if cfg.data.get("name") == "drawn" else {}),
        **({} if image else {"data_options": data}), **values,
        "loss_options": {k: v for k, v in tree["algorithm"]["loss"].items() if k != "name"},
        "g_depth": len(g_hidden), "g_width": g_hidden[0], "d_depth": len(d_hidden), "d_width": d_hidden[0],
        "optimizer": tree["optim"]["G"]["name"]})
    rebuilt = _resolved(settings.to_config())["model"]
    differ = [k for k in tree["model"] if tree["model"][k] != rebuilt.get(k)]
    if differ:
        raise GanforgeError(f"play cannot rebuild this run's model: model.{differ[0]}="
                            f"{tree['model'][differ[0]]!r} is not what play's settings build",
                            "pick a run saved from play")
    return settings


def _resolved(cfg: ExperimentConfig) -> dict[str, Any]:
    """``cfg`` as a tree with every key play reads filled in: the algorithm's options (validated,
    defaults included), the model builder's defaults, the optimisers' names (the algorithm's
    default kind, Adam, when unset) and the phases' repeats (1 when unset)."""
    tree = cfg.to_dict()
    options = asdict(algorithm_options(cfg))
    options["loss"] = dict(options.get("loss") or {"name": DEFAULT_LOSS})
    tree["algorithm"] = {"name": cfg.algorithm["name"], **options}
    builder = inspect.signature(MODELS.get(cfg.model["name"]))
    tree["model"] = {**{k: p.default for k, p in builder.parameters.items() if p.default is not p.empty},
                     **cfg.model}
    for net in ("G", "D"):
        section = tree["optim"].setdefault(net, {})
        section.setdefault("name", ADAM_GAN["name"])
        tree["phases"].setdefault(net, {})
        if tree["phases"][net].get("repeat") is None:
            tree["phases"][net]["repeat"] = 1
    return tree


def _lookup(tree: dict[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        node = node[part]
    return node


def _same_shapes(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)


class PlaySession:
    """One live experiment. Thread-safe: the training thread and the frame requests share a lock.

    ``runs_dir`` is where :meth:`save` writes and :meth:`load` reads run directories."""

    def __init__(self, runs_dir: str | Path = "runs", settings: PlaySettings | None = None) -> None:
        self.runs_dir = Path(runs_dir)
        #: bumped whenever the settings change (or a reset restarts them), so every page can follow
        self.settings_version = 0
        self._settings = settings or PlaySettings()
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        self.history: list[dict[str, float]] = []
        #: bumped when the history restarts (reset, load), so that readers start again from 0
        self.history_id = 0
        self.error: str | None = None
        self._rate = (time.perf_counter(), 0)  # (time, step) of the last rate estimate
        self.steps_per_second = 0.0
        self._divergence: dict[str, float] | None = None
        self._divergence_at = 0.0
        self._frame_lock = threading.Lock()  # one picture at a time (several pages may ask)
        self._published_at = 0.0
        self.trainer = self._build(self.settings)
        self._view_data()

    @property
    def settings(self) -> PlaySettings:
        return self._settings

    @settings.setter
    def settings(self, value: PlaySettings) -> None:
        self._settings = value
        self.settings_version += 1

    # ------------------------------------------------------------------ building
    def _build(self, settings: PlaySettings) -> Trainer:
        scratch = Path(tempfile.gettempdir()) / "ganforge-play-unsaved"  # never written: play calls no fit()
        return Trainer(settings.to_config(), scratch, progress=False, callbacks=())

    def _view_data(self) -> None:
        """Fixed real points and fixed noise, so that frames differ only by what trained."""
        algo = self.trainer.algorithm
        seed = self.settings.seed
        data = algo.dataset
        if isinstance(data, StreamDataset):
            self.real = data.sample(4 * N_POINTS, torch.Generator().manual_seed(seed + 11))[0]
        else:
            order = torch.randperm(len(data.x), generator=torch.Generator().manual_seed(seed + 11))
            self.real = data.x[order[: 4 * N_POINTS]]
        self.z = algo.G.sample_z(4 * N_POINTS, torch.Generator().manual_seed(seed + 12), "cpu")
        self.bounds = self._bounds(self.real) if self.settings.mode == "2d" else None
        self._new_templates()

    def _new_templates(self) -> None:
        """Eval copies of G and D for the frame thread, and the labels a conditional G is drawn
        with (fixed by the seed; a switch to or from self-conditioning changes them)."""
        trainer = self.trainer
        draw = torch.Generator().manual_seed(self.settings.seed + 13)
        labels = trainer.algorithm.labels_for(N_POINTS, draw)
        self._templates = (_frozen_copy(trainer.exp.sampling_network()),
                           _frozen_copy(trainer.exp.networks["D"]), labels)
        self._publish()

    def _publish(self) -> None:
        """Hand the frame thread a consistent copy of what it pictures (called with the lock
        held), so that drawing never waits for the training thread's lock."""
        trainer = self.trainer
        G_view, D_view, labels = self._templates
        weights = tuple({k: v.detach().clone() for k, v in net.state_dict().items()}
                        for net in (trainer.exp.sampling_network(), trainer.exp.networks["D"]))
        self._view = {"G": G_view, "D": D_view, "weights": weights, "labels": labels,
                      "objective": trainer.algorithm.objective, "step": trainer.step,
                      "running": self.running, "settings": self.settings, "real": self.real, "z": self.z,
                      "bounds": self.bounds}
        self._published_at = time.perf_counter()

    @staticmethod
    def _bounds(points: torch.Tensor) -> list[float]:
        """A square view around the real data with a 25% margin (at least 2 units wide)."""
        lo, hi = points.min(0).values, points.max(0).values
        centre, half = (lo + hi) / 2, max(float((hi - lo).max()) * 0.625, 1.0)
        return [float(centre[0]) - half, float(centre[0]) + half, float(centre[1]) - half,
                float(centre[1]) + half]

    def configure(self, changes: dict[str, Any]) -> PlaySettings:
        """Apply live setting changes (see the module docstring for what is kept)."""
        with self._lock:
            new = self.settings.updated(changes)
            if new == self.settings:
                return new
            if changes.keys() <= PACE_ONLY:  # nothing to rebuild
                self.settings = new
                self._publish()
                return new
            old = self.trainer
            trainer = self._build(new)
            self._carry_over(old, trainer, same_optimizer=new.optimizer == self.settings.optimizer)
            view_changed = any(getattr(new, k) != getattr(self.settings, k)
                               for k in ("mode", "data", "data_options", "points", "z_dim", "prior", "seed"))
            self.trainer, self.settings = trainer, new
            if view_changed:
                self._view_data()
            else:
                self._new_templates()
            return new

    @staticmethod
    def _carry_over(old: Trainer, new: Trainer, *, same_optimizer: bool) -> None:
        new.step, new.images_seen = old.step, old.images_seen
        old_nets, new_nets = old.exp.networks, new.exp.networks
        for name, net in new_nets.items():
            state = old_nets[name].state_dict() if name in old_nets else {}
            if state and _same_shapes(state, net.state_dict()):
                net.load_state_dict(state)
                if same_optimizer and name in old.exp.optimizers and name in new.exp.optimizers:
                    new.exp.optimizers[name].load_state_dict(old.exp.optimizers[name].state_dict())
        for name, ema in new.exp.emas.items():
            ema.model.load_state_dict(new_nets[name].state_dict())

    def reset(self) -> None:
        """Fresh networks with the same settings; step 0 and an empty history."""
        with self._lock:
            self.trainer = self._build(self.settings)
            self.history = []
            self.history_id += 1
            self.settings_version += 1
            self._divergence = None
            self._view_data()

    # ------------------------------------------------------------------ training
    def step(self, which: str = "both") -> dict[str, float]:
        """One iteration of both networks (``both``), or of D or G alone."""
        if which not in ("both", "D", "G"):
            raise GanforgeError(f"step which={which!r} is not both, D or G", 'send "both", "D" or "G"')
        with self._lock:
            stats = self.trainer.train_step(None if which == "both" else (which,))
            row = {"step": float(self.trainer.step), **stats}
            self.history.append(row)
            if not self.running or time.perf_counter() - self._published_at >= 0.5 / FPS:
                self._publish()
            if len(self.history) > HISTORY:  # keep the newer half; readers start again
                self.history = self.history[HISTORY // 2:]
                self.history_id += 1
            return row

    @property
    def running(self) -> bool:
        return self._running.is_set()

    def play(self) -> None:
        """Train in a background thread, at most ``speed`` iterations per frame interval."""
        with self._lock:
            if self.running:
                return
            self.error = None
            self._running.set()
            self._publish()
            self._thread = threading.Thread(target=self._loop, name="ganforge-play", daemon=True)
            self._thread.start()

    def pause(self) -> None:
        """Stop the training thread after its current step; the next frame shows the last one."""
        self._running.clear()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        with self._lock:
            self._publish()

    def _stop_publishing(self) -> None:
        """Stop playing from inside the training thread and show the stopped state."""
        self._running.clear()
        with self._lock:
            self._publish()

    def _loop(self) -> None:
        torch.set_num_threads(1)  # a tiny model: one thread trains fastest (and leaves the server one)
        while self._running.is_set():
            started = time.perf_counter()
            try:
                for _ in range(self.settings.speed):
                    if not self._running.is_set():
                        break  # paused: no step after the one that was running
                    self.step()
            except NonFinite as err:
                self.error = (f"training stopped: {err} is not finite (the networks diverged); lower "
                              "lr_g and lr_d (or use adam), then Reset or press Play")
                self._stop_publishing()
                return
            except Exception as err:  # noqa: BLE001  a broken step stops play, not the server
                self.error = f"training stopped: {' '.join(str(err).split())[:200]}"
                self._stop_publishing()
                return
            rest = 1 / FPS - (time.perf_counter() - started)
            if self.settings.speed < LIMITS["speed"][1] and rest > 0:
                time.sleep(rest)
            else:
                time.sleep(0)  # let the server thread in

    # ------------------------------------------------------------------ pictures
    def frame(self, since: tuple[int, int] = (0, 0)) -> tuple[dict[str, Any], tuple[int, int]]:
        """The current picture as a JSON-able dict (see docs/play.md) and the cursor
        ``(history_id, index)`` the next call passes as ``since``, so each page gets every metrics
        row once (and all of them again after a reset or a load)."""
        with self._frame_lock:
            return self._frame(since)

    def _frame(self, since: tuple[int, int]) -> tuple[dict[str, Any], tuple[int, int]]:
        view = self._view
        history, history_id = self.history, self.history_id
        start = since[1] if since[0] == history_id else 0
        rows, end = history[start:], (history_id, len(history))
        G, D = view["G"], view["D"]
        G.load_state_dict(view["weights"][0])
        D.load_state_dict(view["weights"][1])
        settings, objective, labels, step = view["settings"], view["objective"], view["labels"], view["step"]
        real, z, bounds = view["real"], view["z"], view["bounds"]
        self._update_rate(step)
        # "running" as published with these weights and this step: a frame that says "stopped" shows
        # the last step, not one published before the training thread's final steps
        out: dict[str, Any] = {"type": "frame", "step": step, "running": view["running"],
                               "mode": settings.mode, "history_id": end[0],
                               "metrics": [_metrics_row(r) for r in rows[-500:]],
                               "steps_per_second": round(self.steps_per_second, 1) if self.running else 0.0}
        if self.error:
            out["error"] = self.error
        with torch.no_grad():
            fake = G(z, None if labels is None else labels.repeat(4)[: len(z)])
        if settings.mode == "image":
            out.update(image=_png_grid(fake[:64]), scores=_digit_scores(fake))
            return out, end
        out.update(self._field(G, D, objective, real, fake, z, bounds, labels, settings))
        return out, end

    def _field(self, G: nn.Module, D: nn.Module, objective: Any, real: torch.Tensor, fake: torch.Tensor,
               z: torch.Tensor, bounds: list[float], labels: torch.Tensor | None,
               settings: PlaySettings) -> dict[str, Any]:
        xmin, xmax, ymin, ymax = bounds
        xs, ys = torch.linspace(xmin, xmax, HEATMAP), torch.linspace(ymin, ymax, HEATMAP)
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(-1, 2)  # row = y
        pack = settings.pack
        conditional = labels is not None
        with torch.no_grad():
            if conditional:  # a self-conditioned D has one field per cluster: show the mean over them
                k = settings.self_condition
                values = torch.stack([D(grid.repeat_interleave(pack, 0), y=torch.full((len(grid),), c))
                                      for c in range(k)]).mean(0)
            else:
                values = D(grid.repeat_interleave(pack, dim=0))
        values = values.reshape(-1)
        probability = objective.cross_entropy
        if probability:
            values = torch.sigmoid(values)
        n = N_POINTS
        shown = fake[:n].clone().requires_grad_(True)
        # where G's loss pushes each sample: minus its gradient with respect to the sample
        with torch.enable_grad():
            if conditional:
                logits = D(shown.repeat_interleave(pack, 0), y=labels[:n])
            else:
                logits = D(shown.repeat_interleave(pack, 0))
            (grad,) = torch.autograd.grad(objective.g_loss(logits) * len(logits), shown)
        push = -grad
        scale = 0.06 * (xmax - xmin) / max(float(push.norm(dim=1).max()), 1e-12)
        arrows = torch.cat([shown.detach(), push * scale], dim=1)
        manifold = _manifold(G, settings, labels)
        out: dict[str, Any] = {
            "bounds": [round(b, 4) for b in bounds], "real": _round(real[:n]), "fake": _round(fake[:n]),
            "heatmap": {"nx": HEATMAP, "ny": HEATMAP, "kind": "probability" if probability else "critic",
                        "min": float(values.min()), "max": float(values.max()),
                        "values": np.round(values.double().numpy(), 4).tolist()},
            "arrows": _round(arrows), "manifold": {"nx": manifold[1], "ny": manifold[2],
                                                   "points": _round(manifold[0])},
        }
        divergence = self._divergence_estimate(real, fake, bounds)
        if divergence is not None:
            out["divergence"] = divergence
        return out

    def _divergence_estimate(self, real: torch.Tensor, fake: torch.Tensor,
                             bounds: list[float]) -> dict[str, float] | None:
        now = time.perf_counter()
        if self._divergence is None or now - self._divergence_at >= DIVERGENCE_EVERY:
            self._divergence_at = now
            self._divergence = {"step": self.trainer.step, **divergences(real, fake, bounds)}
        return self._divergence

    def _update_rate(self, step: int) -> None:
        now = time.perf_counter()
        then, old = self._rate
        if now - then >= 0.5:
            self.steps_per_second = max(step - old, 0) / (now - then)
            self._rate = (now, step)

    # ------------------------------------------------------------------ runs
    def save(self, name: str) -> Path:
        """Write the current state as an ordinary run directory ``runs_dir/name`` (config.yaml with
        train.steps = the current step, checkpoints/last.pt and final.pt, metrics.csv, a snapshot);
        built beside it and renamed, so a failure leaves nothing half-written."""
        target = self._run_path(name)
        if target.exists() or target.is_symlink():  # a dangling link too: renaming onto it fails
            raise GanforgeError(f"run {target} already exists", "save under another name")
        with self._lock:
            trainer = self.trainer
            cfg = ExperimentConfig.from_dict({**trainer.cfg.to_dict(),
                                              "train": {**trainer.cfg.to_dict()["train"],
                                                        "steps": max(trainer.step, 1)}})
            saved_cfg, saved_dir = trainer.cfg, trainer.run_dir
            try:
                with folder_written_whole(target) as partial:
                    trainer.cfg, trainer.run_dir = cfg, partial
                    save_config(cfg, partial / "config.yaml")
                    trainer.save("last.pt")
                    trainer.save("final.pt")
                    columns = sorted({k for row in self.history for k in row} - {"step"})
                    logger = MetricsLogger(partial, columns=columns)
                    for row in self.history:
                        logger.log({**row, "step": int(row["step"])})
                    logger.close()
                    trainer.snapshot()
            finally:
                trainer.cfg, trainer.run_dir = saved_cfg, saved_dir
        return target

    def _run_path(self, name: Any) -> Path:
        """``runs_dir / name`` for a plain folder name that stays inside ``runs_dir`` (a link out
        of it is refused, as the board refuses it)."""
        if (not isinstance(name, str) or not name or len(name) > 100 or name.startswith(".")
                or not all(c.isalnum() or c in "-_." for c in name)):
            raise GanforgeError(f"run name {name!r} is not a plain folder name",
                                "use letters, digits, '-', '_' and '.' (up to 100)")
        if confined(self.runs_dir, name) is None:
            raise GanforgeError(f"run {name!r} is a link out of the runs folder {self.runs_dir}",
                                "keep the runs play loads inside its --runs folder")
        return self.runs_dir / name

    def runs(self) -> list[dict[str, Any]]:
        """The runs under ``runs_dir`` that :meth:`load` accepts, newest first."""
        found = []
        for config in sorted(self.runs_dir.glob("*/config.yaml"), key=lambda p: -p.stat().st_mtime):
            run = config.parent
            final = run / "checkpoints" / "final.pt"
            if not final.is_file() or confined(self.runs_dir, run.name) is None:
                continue
            try:
                from ganforge.config import load_config

                settings = settings_from_config(load_config(config_file=config))
            except (GanforgeError, OSError):
                continue
            data = settings.data if settings.mode == "2d" else IMAGE_DATA["name"]
            found.append({"name": run.name, "data": data, "loss": settings.loss})
        return found

    def load(self, name: str) -> PlaySettings:
        """Load run ``runs_dir/name`` (its settings, final weights and metrics) to replay or continue it."""
        run = self._run_path(name)
        final = run / "checkpoints" / "final.pt"
        if not final.is_file():
            raise GanforgeError(f"{run} is not a finished run (no checkpoints/final.pt)",
                                "pick one from the list")
        state = load_checkpoint(final)
        settings = settings_from_config(ExperimentConfig.from_dict(state["config"]))
        with self._lock:
            self.pause()
            trainer = self._build(settings)
            for net_name, net in trainer.exp.networks.items():
                net.load_state_dict(state["nets"][net_name])
            for net_name, ema in trainer.exp.emas.items():
                ema.model.load_state_dict(state["nets"][net_name])
            trainer.step, trainer.images_seen = int(state["step"]), int(state["images_seen"])
            self.trainer, self.settings = trainer, settings
            self.history = _read_history(run / "metrics.csv")
            self.history_id += 1
            self._divergence = None
            self._view_data()
        return settings

    def close(self) -> None:
        self.pause()


# ---------------------------------------------------------------------- helpers
def _frozen_copy(net: nn.Module) -> nn.Module:
    """An eval-mode copy, so the picture is drawn while training goes on."""
    import copy

    out = copy.deepcopy(net).eval()
    for p in out.parameters():
        p.requires_grad_(False)
    return out


def _round(t: torch.Tensor, digits: int = 4) -> list[list[float]]:
    return np.round(t.detach().double().numpy(), digits).tolist()


#: the log's columns -> the frame's keys: probabilities (d_) and critic values (c_) stay apart, so
#: that a chart never puts both on one axis after a loss switch
METRIC_KEYS = {"loss_D": "loss_D", "loss_G": "loss_G", "real_score": "d_real", "fake_score": "d_fake",
               "critic_real": "c_real", "critic_fake": "c_fake"}


def _metrics_row(row: dict[str, float]) -> dict[str, float]:
    out = {"step": int(row["step"])}
    for key, name in METRIC_KEYS.items():
        value = row.get(key)
        if value is not None and math.isfinite(value):
            out[name] = round(float(value), 5)
    return out


def _manifold(G: nn.Module, settings: PlaySettings,
              labels: torch.Tensor | None) -> tuple[torch.Tensor, int, int]:
    """G on a grid over the first two noise coordinates (the others 0): the prior's central 95%
    for a normal prior, [-1, 1] for a uniform one."""
    reach = 1.0 if settings.prior == "uniform" else 1.96
    axis = torch.linspace(-reach, reach, MANIFOLD)
    ny = MANIFOLD if settings.z_dim >= 2 else 1
    z = torch.zeros(MANIFOLD * ny, settings.z_dim)
    if ny > 1:
        gy, gx = torch.meshgrid(axis, axis, indexing="ij")
        z[:, 0], z[:, 1] = gx.reshape(-1), gy.reshape(-1)
    else:
        z[:, 0] = axis
    y = None if labels is None else labels[: len(z)].repeat(2)[: len(z)]
    with torch.no_grad():
        return G(z, y), MANIFOLD, ny


def divergences(real: torch.Tensor, fake: torch.Tensor, bounds: list[float]) -> dict[str, float]:
    """JSD between 32 x 32 histograms of the points over ``bounds`` (in nats; points outside are
    clipped to the edge cells) and the exact W1 between the first 256 real and fake points (an
    optimal assignment, which for two equal-size uniform samples is the optimal transport)."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    xmin, xmax, ymin, ymax = bounds
    edges = [np.linspace(xmin, xmax, 33), np.linspace(ymin, ymax, 33)]

    def histogram(points: torch.Tensor) -> np.ndarray:
        p = points.double().numpy()
        p = np.clip(p, [xmin, ymin], [xmax - 1e-9, ymax - 1e-9])
        counts, _, _ = np.histogram2d(p[:, 0], p[:, 1], bins=edges)
        return (counts / counts.sum()).reshape(-1)

    jsd = jensen_shannon(histogram(real), histogram(fake)) if torch.isfinite(fake).all() else float("nan")
    a, b = real[:N_POINTS].double().numpy(), fake[:N_POINTS].double().numpy()
    if np.isfinite(b).all():
        cost = cdist(a, b)
        rows, cols = linear_sum_assignment(cost)
        w1 = float(cost[rows, cols].mean())
    else:
        w1 = float("nan")
    return {"jsd": round(float(jsd), 5), "w1": round(w1, 5)}


def _png_grid(images: torch.Tensor) -> str:
    """A data URL of an 8-column grid of images in [-1, 1], upscaled 4x (nearest)."""
    from PIL import Image

    n, c, h, w = images.shape
    cols = 8
    rows = math.ceil(n / cols)
    canvas = torch.full((c, rows * (h + 1) + 1, cols * (w + 1) + 1), -1.0)
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        canvas[:, 1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + k * (w + 1): 1 + k * (w + 1) + w] = img
    pixels = ((canvas.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    array = pixels[0].numpy() if c == 1 else pixels.permute(1, 2, 0).numpy()
    picture = Image.fromarray(array)
    picture = picture.resize((picture.width * 4, picture.height * 4), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


_SCORER: list[nn.Module] = []


def _digit_scores(images: torch.Tensor) -> dict[str, float]:
    """The shipped digits classifier on the samples: mean top-class probability (real held-out
    digits score about 0.98) and how many of the 10 classes appear."""
    if not _SCORER:
        from ganforge.metrics.classifier import load_classifier

        _SCORER.append(load_classifier("digits")[0])
    with torch.no_grad():
        probs = torch.softmax(_SCORER[0](images.clamp(-1, 1)), dim=1)
    top = probs.max(1)
    return {"confidence": round(float(top.values.mean()), 4),
            "classes": int(torch.unique(top.indices).numel())}


def _read_history(path: Path) -> list[dict[str, float]]:
    import csv

    rows: list[dict[str, float]] = []
    if not path.is_file():
        return rows
    with path.open(newline="") as fh:
        for record in csv.DictReader(fh):
            row: dict[str, float] = {}
            for key, value in record.items():
                try:
                    row[key] = float(value)
                except (TypeError, ValueError):
                    continue
            if "step" in row:
                rows.append(row)
    return rows[-HISTORY:]
