"""Experiment configuration: presets, YAML files and ``--set key=value`` overrides.

A config is a small tree of generic sections::

    description: one line shown by `ganforge presets`
    seed: 0
    device: auto              # auto | cpu | cuda | cuda:N | mps
    algorithm: {name: gan, loss: {name: hinge}, stabilisers: {spectral_norm: true}}
                                             # the way of training (train/algorithms/), its options
    data:  {name: digits, size: 16}          # keys of the dataset builder
    model: {name: dcgan, width: 64}          # keys of the model builder
    optim: {G: {name: adam, lr: 2e-4, betas: [0.5, 0.999]}, D: {...}}  # per optimiser, any torch.optim
    phases: {D: {repeat: 2}}                 # per phase: every, repeat, start, stop
    train: {steps: 3000, batch_size: 64, ...} # TrainConfig below
    eval: {every: 1000, metrics: [fid]}      # EvalConfig below

Resolution order: built-in defaults < preset < ``--config FILE`` < ``--set`` overrides. The
``train``, ``phases`` and ``eval`` sections are type-checked here; the other sections are checked
by the registry that owns them (algorithm: its options dataclass; dataset, model, objective,
optimiser, metric: the builder's signature) when the experiment is built, before anything is
written to disk. Every family-only key is an option of its algorithm (``algorithm.loss``,
``algorithm.stabilisers``, ``algorithm.privacy``...). This module imports nothing from
``train``, ``models`` or ``metrics``.

Legacy layouts: before algorithms were plug-ins the optimisers lived in ``train`` (``lr_g``,
``lr_d``, ``betas_g``, ``betas_d``, ``n_disc``, ``penalty_until``), and before algorithms owned
their options ``loss``, ``stabilisers`` and ``privacy`` were top-level sections.
:func:`translate_legacy` and :func:`translate_key` move those keys (in presets, files, ``--set``
overrides and the ``config.yaml`` of old runs) to their new places.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ganforge._io import atomic_write_text
from ganforge.errors import GanforgeError

DEFAULT_PRESET = "digits-projection"
#: every integer in a config must fit a signed 64-bit int (torch's seeds, counts and sizes)
INT64_MAX = 2**63 - 1
MAX_SEED = 2**62


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping with the same key twice (PyYAML keeps the last)."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def parse_yaml(text: str, what: str) -> Any:
    """YAML from ``text`` (safe tags only, no duplicate keys); a one-line GanforgeError otherwise."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "invalid syntax"
        raise GanforgeError(f"{what} is not valid YAML{where} ({problem})", "fix the syntax") from None
    except ValueError as err:  # e.g. an integer longer than Python's 4,300-digit limit
        raise GanforgeError(f"{what} holds a value that cannot be read ({str(err)[:80]})",
                            "use an ordinary number") from None
    except RecursionError:  # a list or mapping nested thousands deep
        raise GanforgeError(f"{what} nests lists or mappings too deeply to read",
                            "write a config a few levels deep") from None
LR_SCHEDULES = ("constant", "linear")
NONFINITE_ACTIONS = ("rollback", "stop", "skip")
#: ``train.threads: auto`` trains networks smaller than this on one thread
SMALL_MODEL_PARAMETERS = 100_000


@dataclass
class TrainConfig:
    """The loop's schedule, shared by every algorithm (the optimisers live in ``optim``, the
    phases in ``phases``).

    ``lr_schedule``: ``constant``, or ``linear``: the base rates until ``lr_decay_start``, then a
    linear decay to 0 at ``steps`` (a run shorter than ``lr_decay_start`` keeps the base rates,
    so ``--steps`` can shorten a preset). ``ema_decay`` keeps an exponential moving average of
    the algorithm's sampling network(s) (G), with the warm-up beta_t = min(decay, (1 + t) / (10 + t))
    unless ``ema_warmup`` is false. ``flush_denormal`` flushes subnormal floats to zero on CPU
    for the rest of the process (``torch.set_flush_denormal``; set by the Trainer before it
    builds anything, since torch's worker threads inherit the flag when they are created): a
    Bernoulli decoder's logits for the always-black border pixels run below -87, where the
    gradient sigmoid(l) is subnormal and CPU arithmetic many times slower (fashion-vae: 8 ms per
    step instead of 12).

    ``threads``: torch's CPU threads while training: a number, or ``auto`` = one thread for
    networks of fewer than ``SMALL_MODEL_PARAMETERS`` parameters (their ops are too small to
    split, and two threads beside any other busy process can be 50 times slower than one), else
    torch's default.

    ``deterministic``: ``torch.use_deterministic_algorithms(True)`` and cuDNN's deterministic,
    non-benchmarking mode for the run. ``auto`` (default): on for CPU runs, where it costs
    nothing measurable and made two-thread runs repeat more often (without it 1 of 3 two-thread
    600-step ``digits-projection`` runs differed, with it 4 of 4 agreed; two-thread runs beside
    other work can still drift, one thread is the reproducible setting); off on CUDA, where
    deterministic kernels are slower. ``true``: on everywhere. See docs/training.md.

    ``channels_last``: the networks' memory layout (:mod:`ganforge.train.memory_format`):
    ``auto`` (default) puts convolutional networks in channels-last layout on CPU, where oneDNN
    runs them 8-19% faster, except networks that are measured slower so (StyleGAN2's generator);
    ``true`` converts every convolutional network on any device, ``false`` none.

    ``sync_batchnorm``: in a multi-process run (:mod:`ganforge.train.distributed`), BatchNorm
    statistics over the global batch (``SyncBatchNorm``, CUDA only) instead of each rank's shard.

    ``on_nonfinite``: what a non-finite loss or gradient norm does (checked before the optimiser
    step, so the weights never take a NaN update): ``rollback`` (default) restores the last
    checkpoint, halves every learning rate and retries, at most ``nonfinite_retries`` times,
    then stops; ``stop`` stops at once; ``skip`` drops that update and goes on. Stopping is a
    one-line error naming the step and the likely cause; no checkpoint holding a non-finite
    tensor is ever written.
    """

    steps: int = 2000
    batch_size: int = 64
    lr_schedule: str = "constant"
    lr_decay_start: int = 0
    ema_decay: float | None = None
    ema_warmup: bool = True
    flush_denormal: bool = False
    threads: int | str = "auto"
    deterministic: bool | str = "auto"
    channels_last: bool | str = "auto"
    sync_batchnorm: bool = False
    on_nonfinite: str = "rollback"
    nonfinite_retries: int = 3
    log_every: int = 25
    sample_every: int = 500
    checkpoint_every: int = 1000
    num_fixed_samples: int = 64
    tensorboard: bool = False

    def __post_init__(self) -> None:
        positive = ("steps", "batch_size", "log_every", "sample_every", "checkpoint_every",
                    "num_fixed_samples")
        for name in positive:
            if getattr(self, name) < 1:
                raise GanforgeError(f"train.{name} must be at least 1, got {getattr(self, name)}",
                                    f"set train.{name} to a positive integer")
        if self.threads != "auto" and (isinstance(self.threads, str) or self.threads < 1):
            raise GanforgeError(f"train.threads must be auto or a number >= 1, got {self.threads!r}",
                                "set train.threads=auto, or e.g. 2")
        for name in ("deterministic", "channels_last"):
            value = getattr(self, name)
            if value is not True and value is not False and value != "auto":
                raise GanforgeError(f"train.{name} must be auto, true or false, got {value!r}",
                                    f"set train.{name}=auto")
        if self.on_nonfinite not in NONFINITE_ACTIONS:
            raise GanforgeError(f"unknown train.on_nonfinite {self.on_nonfinite!r}",
                                f"choose one of: {', '.join(NONFINITE_ACTIONS)}")
        if self.nonfinite_retries < 0:
            raise GanforgeError(f"train.nonfinite_retries must be >= 0, got {self.nonfinite_retries}",
                                "set e.g. train.nonfinite_retries=3")
        if self.lr_schedule not in LR_SCHEDULES:
            raise GanforgeError(f"unknown train.lr_schedule {self.lr_schedule!r}",
                                f"choose one of: {', '.join(LR_SCHEDULES)}")
        if self.lr_decay_start < 0:
            raise GanforgeError(f"train.lr_decay_start={self.lr_decay_start} is negative",
                                "set it to the step at which the linear decay starts, e.g. 0")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise GanforgeError("train.ema_decay must lie in (0, 1)",
                                "use e.g. 0.999, or null to disable EMA")


@dataclass
class PhaseConfig:
    """When one phase of an algorithm runs (every phase has defaults set by its algorithm; these
    keys override them): at steps ``start <= step < stop`` with ``(step - start) % every == 0``,
    ``repeat`` times in a row. ``stop`` null: to the end."""

    every: int | None = None
    repeat: int | None = None
    start: int | None = None
    stop: int | None = None

    def __post_init__(self) -> None:
        for name in ("every", "repeat"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise GanforgeError(f"phase {name} must be at least 1, got {value}",
                                    f"set phases.<PHASE>.{name} to a positive integer")
        for name in ("start", "stop"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise GanforgeError(f"phase {name} must be a step >= 0, got {value}",
                                    f"set phases.<PHASE>.{name} to a step number, or null")

    def overrides(self) -> dict[str, int | None]:
        """The keys the config sets (None: keep the algorithm's default), ``stop`` included."""
        out = {k: v for k, v in dataclasses.asdict(self).items() if v is not None and k != "stop"}
        if self.stop is not None:
            out["stop"] = self.stop
        return out


@dataclass
class EvalConfig:
    """Metrics during training (see docs/evaluation.md): every ``every`` steps (None: never) score
    ``num_samples`` generated samples with ``metrics`` (None: all that apply to the data) using the
    feature ``extractor``, log them to metrics.csv and keep ``best.pt`` by the metric ``best``."""

    every: int | None = None
    metrics: list[str] | None = None
    num_samples: int = 2000
    best: str | None = None
    extractor: str = "auto"

    def __post_init__(self) -> None:
        if self.every is not None and self.every < 1:
            raise GanforgeError(f"eval.every must be at least 1, got {self.every}",
                                "set eval.every to a positive integer, or null to disable")
        if self.num_samples < 2:
            raise GanforgeError(f"eval.num_samples must be at least 2, got {self.num_samples}",
                                "set e.g. eval.num_samples=2000")
        # metric and extractor names are checked by the metric registry when training starts
        if isinstance(self.metrics, str):
            self.metrics = [m.strip() for m in self.metrics.split(",") if m.strip()]
        if self.metrics is not None:
            if not isinstance(self.metrics, list) or not self.metrics or not all(
                    isinstance(m, str) for m in self.metrics):
                raise GanforgeError(f"eval.metrics must be a list of metric names, got {self.metrics!r}",
                                    "set e.g. eval.metrics=[fid,kid]")
        if self.best is not None and not isinstance(self.best, str):
            raise GanforgeError(f"eval.best must be a metric name, got {self.best!r}",
                                "set e.g. eval.best=fid")


@dataclass
class ExperimentConfig:
    description: str = ""
    seed: int = 0
    device: str = "auto"
    algorithm: dict[str, Any] = field(default_factory=lambda: {"name": "gan"})
    data: dict[str, Any] = field(default_factory=lambda: {"name": "digits"})
    model: dict[str, Any] = field(default_factory=lambda: {"name": "dcgan"})
    optim: dict[str, Any] = field(default_factory=dict)
    phases: dict[str, PhaseConfig] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        # the run derives its generators' seeds as seed + small offsets: keep them in torch's range
        if not 0 <= self.seed <= MAX_SEED:
            raise GanforgeError(f"seed must lie in [0, 2**62], got {str(self.seed)[:24]}",
                                "pass a smaller --seed, e.g. --seed 0")

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-safe primitives (tuples become lists)."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, tree: dict[str, Any]) -> ExperimentConfig:
        """Validate a config tree (the legacy layout is translated first)."""
        tree = translate_legacy(tree)
        if isinstance(tree.get("algorithm"), dict) and "name" not in tree["algorithm"]:
            tree = {**tree, "algorithm": {"name": "gan", **tree["algorithm"]}}  # legacy trees: a GAN
        phases = tree.get("phases") or {}
        if not isinstance(phases, dict):
            raise GanforgeError(f"phases must be a mapping of phase names, got {phases!r}",
                                "set e.g. phases.D.repeat=2")
        cfg = from_mapping(cls, {**tree, "phases": {}}, prefix="")
        cfg.phases = {str(name): from_mapping(PhaseConfig, value or {}, prefix=f"phases.{name}.")
                      for name, value in phases.items()}
        for name in ("algorithm", "data", "model"):
            if "name" not in getattr(cfg, name):
                raise GanforgeError(f"the {name} section has no 'name'", f"add {name}.name")
        return cfg


# --------------------------------------------------------------------------- the legacy layout

#: ``train.<key>`` of the layout before algorithm plug-ins -> its dotted place now
LEGACY_KEYS = {
    "train.lr_g": "optim.G.lr", "train.lr_d": "optim.D.lr",
    "train.betas_g": "optim.G.betas", "train.betas_d": "optim.D.betas",
    "train.n_disc": "phases.D.repeat", "train.penalty_until": "algorithm.penalty_until",
}
#: top-level sections of the layout before algorithms owned their options: each moved under
#: ``algorithm`` (``loss.name`` -> ``algorithm.loss.name``), as an option of the algorithms that
#: read it (gan and its descendants; ``privacy``: dp-gan)
LEGACY_SECTIONS = ("loss", "stabilisers", "privacy")
#: the values every config of that layout wrote for its ``stabilisers`` and ``privacy`` sections
#: when they were not set (a run's config.yaml held them all, whatever its algorithm)
LEGACY_SECTION_DEFAULTS: dict[str, dict[str, Any]] = {
    "stabilisers": {
        "spectral_norm": False, "pack": 1, "minibatch_std": False, "minibatch_discrimination": False,
        "mbd_kernels": 50, "mbd_kernel_dim": 5, "label_smoothing": 0.0, "r1": 0.0,
        "historical_averaging_d": 0.0, "historical_averaging_g": 0.0, "feature_matching": 0.0,
        "feature_matching_mode": "replace", "diffaugment": "", "instance_noise": 0.0,
        "instance_noise_anneal": None, "self_condition": 0, "self_condition_every": None,
        "self_condition_pool": 20_000},
    "privacy": {"epsilon": None, "noise_multiplier": None, "delta": 1e-5, "max_grad_norm": 1.0,
                "accountant": "rdp"},
}


def translate_key(dotted: str) -> str:
    """``train.lr_g`` -> ``optim.G.lr``, ``loss.name`` -> ``algorithm.loss.name`` (other keys
    unchanged)."""
    if dotted in LEGACY_KEYS:
        return LEGACY_KEYS[dotted]
    if dotted.split(".", 1)[0] in LEGACY_SECTIONS:
        return f"algorithm.{dotted}"
    return dotted


def legacy_section_unset(name: str, value: Any) -> bool:
    """Whether ``value``, moved from the legacy top-level section ``name``, sets nothing: empty, or
    only the old layout's defaults (as every old run's config.yaml wrote them, a VAE's included).
    The algorithm registry ignores such a section on an algorithm that does not read it."""
    if name not in LEGACY_SECTIONS:
        return False
    if value is None or value == {}:
        return True
    defaults = LEGACY_SECTION_DEFAULTS.get(name, {})
    return isinstance(value, dict) and all(
        key in defaults and item == defaults[key]
        and isinstance(item, bool) == isinstance(defaults[key], bool) for key, item in value.items())


def translate_legacy(tree: dict[str, Any]) -> dict[str, Any]:
    """Move the legacy ``train`` keys and the legacy ``loss``, ``stabilisers`` and ``privacy``
    sections of a (partial) config tree to their new places under ``optim``, ``phases`` and
    ``algorithm``; a value already set in the new place by the same tree wins only when the legacy
    key is absent."""
    train = tree.get("train")
    legacy_train = isinstance(train, dict) and any(f"train.{k}" in LEGACY_KEYS for k in train)
    sections = [name for name in LEGACY_SECTIONS if name in tree]
    if not legacy_train and not sections:
        return tree
    out = copy.deepcopy(tree)
    if legacy_train:
        for key in [k for k in train if f"train.{k}" in LEGACY_KEYS]:
            out = apply_overrides(out, {LEGACY_KEYS[f"train.{key}"]: out["train"].pop(key)})
    for name in sections:
        value = out.pop(name)
        algorithm = out.setdefault("algorithm", {})
        if not isinstance(algorithm, dict):
            raise GanforgeError(f"algorithm must be a mapping, got {type(algorithm).__name__}",
                                "write e.g. algorithm: {name: gan}")
        # merged as a section of the tree: a changed loss name replaces the whole loss
        algorithm[name] = merge({name: algorithm.get(name)}, {name: value})[name]
    return out


# --------------------------------------------------------------------------- presets


def presets_dir() -> Path:
    """The folder of preset YAML files: packaged inside the wheel, or ``configs/`` in a checkout."""
    packaged = resources.files("ganforge") / "configs"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "configs"


def list_presets() -> dict[str, str]:
    """Preset name -> one-line description."""
    out = {}
    for path in sorted(presets_dir().glob("*.yaml")):
        tree = _read_yaml(path, "preset")
        out[path.stem] = str(tree.get("description", "")).strip()
    return out


def _read_yaml(path: Path, what: str) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise GanforgeError(f"cannot read {what} {path}: {err.strerror}",
                            "check the path") from None
    except UnicodeDecodeError as err:
        raise GanforgeError(f"{what} {path} is not UTF-8 text (byte {err.start})",
                            "save it as UTF-8") from None
    tree = parse_yaml(text, f"{what} {path}")
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise GanforgeError(f"{what} {path} must hold a mapping of keys", "see configs/ for examples")
    return tree


def load_preset(name: str) -> dict[str, Any]:
    path = presets_dir() / f"{name}.yaml"
    if not path.is_file():
        names = ", ".join(list_presets())
        raise GanforgeError(f"unknown preset {name!r}",
                            f"choose one of: {names} (see `ganforge presets`)")
    return _read_yaml(path, "preset")


# --------------------------------------------------------------------------- loading


def parse_override(item: str) -> tuple[str, Any]:
    """``"train.lr_g=1e-4"`` -> ``("train.lr_g", 0.0001)``; values are read as YAML scalars."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise GanforgeError(f"override {item[:80]!r} is not of the form key=value",
                            "write e.g. --set train.steps=500")
    value = parse_yaml(raw, f"the value of {key.strip()[:60]}") if raw.strip() else None
    if isinstance(value, str):
        try:  # YAML 1.1 reads "2e-4" as a string; users mean a number
            value = float(value)
        except ValueError:
            pass
    return key.strip(), value


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``update`` wins. A changed ``name`` replaces the whole section."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if (isinstance(value, dict) and isinstance(out.get(key), dict)
                and value.get("name", out[key].get("name")) == out[key].get("name")):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_overrides(tree: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(tree)
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = out
        for part in parents:
            if not isinstance(node.get(part, {}), dict):
                raise GanforgeError(f"cannot set {dotted!r}: {part!r} is not a section",
                                    "check the key path")
            node = node.setdefault(part, {})
        if leaf == "name" and parents and node.get("name") not in (None, value):
            node.clear()  # a new model/dataset/loss does not inherit the old one's keys
        node[leaf] = value
    return out


def load_config(preset: str | None = None, config_file: str | Path | None = None,
                overrides: dict[str, Any] | list[str] | None = None) -> ExperimentConfig:
    """Resolve a config: defaults < preset < file < overrides.

    With neither ``preset`` nor ``config_file`` the default preset (``digits-projection``) is used.
    ``overrides`` maps dotted keys to values, or is a list of ``key=value`` strings.
    """
    tree = ExperimentConfig().to_dict()
    if preset is None and config_file is None:
        preset = DEFAULT_PRESET
    if preset is not None:
        tree = merge(tree, translate_legacy(load_preset(preset)))
    if config_file is not None:
        tree = merge(tree, translate_legacy(_read_yaml(Path(config_file), "config file")))
    if isinstance(overrides, list):
        overrides = dict(parse_override(item) for item in overrides)
    tree = apply_overrides(tree, {translate_key(k): v for k, v in (overrides or {}).items()})
    return ExperimentConfig.from_dict(tree)


def save_config(cfg: ExperimentConfig, path: Path) -> None:
    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))


# --------------------------------------------------------------------------- typing helpers


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def from_mapping(cls: type, tree: Any, prefix: str) -> Any:
    """Build dataclass ``cls`` from a mapping, type-checking every key (``prefix`` names the
    section in errors, e.g. ``"train."``); unknown keys are errors naming the accepted ones."""
    where = prefix.rstrip(".") or "the config"
    if not isinstance(tree, dict):
        raise GanforgeError(f"{where} must be a mapping, got {type(tree).__name__}",
                            "see configs/ for examples")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = [k for k in tree if k not in fields]
    if unknown:
        raise GanforgeError(f"unknown key '{prefix}{unknown[0]}' in {where}",
                            f"accepted keys are: {', '.join(fields)}")
    kwargs = {}
    for key, value in tree.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = from_mapping(hint, value, f"{prefix}{key}.")
        else:
            kwargs[key] = _coerce(value, hint, f"{prefix}{key}")
    return cls(**kwargs)


def check_value(value: Any, hint: Any, key: str) -> None:
    """One-line GanforgeError when ``value`` does not fit type hint ``hint`` (for the registries)."""
    _coerce(value, hint, key)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check ``value`` against a type hint, converting where lossless (int -> float, list -> tuple)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, key)
            except GanforgeError as err:
                errors.append(err)
        raise errors[0]
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise _type_error(key, value, f"a list of {len(args)} numbers")
        return tuple(_coerce(v, a, key) for v, a in zip(value, args, strict=True))
    if origin is dict:
        if not isinstance(value, dict):
            raise _type_error(key, value, "a mapping")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise _type_error(key, value, "true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer() and abs(value) <= INT64_MAX:
                return int(value)
            raise _type_error(key, value, "an integer")
        if not -INT64_MAX - 1 <= value <= INT64_MAX:
            raise GanforgeError(f"{key}={str(value)[:20]}... does not fit a 64-bit integer",
                                f"set {key} to a number below 2**63")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(key, value, "a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise _type_error(key, value, "a string")
        return value
    return value


def _type_error(key: str, value: Any, expected: str) -> GanforgeError:
    return GanforgeError(f"{key} must be {expected}, got {repr(value)[:60]}",
                         f"set it with e.g. --set {key}=<{expected}>")
