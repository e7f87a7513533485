"""Optimisers from config: ``optim: {<name>: {name: adam, lr: 2e-4, betas: [0.5, 0.999], ...}}``.

Each algorithm names its optimisers and gives defaults (:class:`OptimizerSpec`); the config's
keys override them. ``name`` is any ``torch.optim`` optimiser (case-insensitive: ``adam``,
``AdamW``, ``sgd``, ``rmsprop``...; naming another class than the default keeps only the default
``lr``); every other key is passed to its constructor and checked against its signature, except
``lr_mult``: ``{submodule prefix: factor}`` puts the parameters under that prefix in a group of
their own with learning rate ``lr * factor`` (StyleGAN's mapping network at 0.01, say).
Learning-rate schedules scale each group's base rate (:func:`set_lr`).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from typing import Any

import torch

from ganforge.errors import GanforgeError
from ganforge.registry import check_kwargs
from ganforge.train.algorithms.base import OptimizerSpec


def _optimizer_classes() -> dict[str, type[torch.optim.Optimizer]]:
    return {name.lower(): cls for name, cls in vars(torch.optim).items()
            if inspect.isclass(cls) and issubclass(cls, torch.optim.Optimizer)
            and cls is not torch.optim.Optimizer}


#: torch.optim classes a training step cannot drive, and why
UNSTEPPABLE = {"lbfgs": "it needs a closure that re-evaluates the loss at every step",
               "sparseadam": "it needs sparse gradients, and the networks' gradients are dense"}


def steppable_optimizers() -> list[str]:
    """The torch.optim classes (lower-case names) a training step can drive."""
    return sorted(name for name in _optimizer_classes() if name not in UNSTEPPABLE)


def _check_types(cls: type[torch.optim.Optimizer], settings: Mapping[str, Any], where: str) -> None:
    """Each keyword's value against the type of the constructor's default: a flag must be true or
    false (``amsgrad=maybe`` is not), a number a finite number, a pair a list of numbers."""
    params = inspect.signature(cls).parameters
    for key, value in settings.items():
        default = params[key].default if key in params else inspect.Parameter.empty
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise GanforgeError(f"{where}.{key} must be true or false, got {value!r}",
                                    f"set {where}.{key}=true or false")
        elif isinstance(default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise GanforgeError(f"{where}.{key} must be a finite number, got {repr(value)[:40]}",
                                    f"set e.g. {where}.{key}={default}")
        elif isinstance(default, tuple):
            if (not isinstance(value, (list, tuple)) or len(value) != len(default)
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                               and math.isfinite(v) for v in value)):
                raise GanforgeError(f"{where}.{key} must be a list of {len(default)} finite numbers, got "
                                    f"{repr(value)[:40]}",
                                    f"set e.g. {where}.{key}=[{','.join(str(d) for d in default)}]")


def _check_settings(where: str, settings: Mapping[str, Any]) -> None:
    lr = settings.get("lr")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < math.inf:
        raise GanforgeError(f"{where}.lr must be a finite number > 0, got {lr!r}",
                            f"set e.g. {where}.lr=2e-4")
    betas = settings.get("betas")
    if betas is not None:
        ok = isinstance(betas, (list, tuple)) and len(betas) == 2 and all(
            isinstance(b, (int, float)) and not isinstance(b, bool) and 0.0 <= b < 1.0 for b in betas)
        if not ok:
            raise GanforgeError(f"{where}.betas must be two numbers in [0, 1), got {betas!r}",
                                f"set e.g. {where}.betas=[0.5,0.999]")


def _param_groups(spec: OptimizerSpec, lr: float, lr_mult: Mapping[str, Any],
                  where: str) -> list[dict[str, Any]]:
    if not isinstance(lr_mult, Mapping):
        raise GanforgeError(f"{where}.lr_mult must map submodule names to factors, got {lr_mult!r}",
                            f"set e.g. {where}.lr_mult={{mapping: 0.01}}")
    named = list(spec.module.named_parameters())
    groups: list[dict[str, Any]] = []
    taken: set[str] = set()
    for prefix, factor in lr_mult.items():
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor < math.inf:
            raise GanforgeError(f"{where}.lr_mult.{prefix} must be a finite number > 0, got {factor!r}",
                                "set e.g. 0.01")
        params = [(n, p) for n, p in named if (n == prefix or n.startswith(prefix + ".")) and n not in taken]
        if not params:
            raise GanforgeError(f"{where}.lr_mult names {prefix!r}, which holds no parameters",
                                "use the name of a submodule of that network")
        taken.update(n for n, _ in params)
        groups.append({"params": [p for _, p in params], "lr": lr * factor})
    rest = [p for n, p in named if n not in taken]
    return ([{"params": rest, "lr": lr}] if rest else []) + groups


def build_optimizer(name: str, spec: OptimizerSpec,
                    config: Mapping[str, Any] | None) -> tuple[torch.optim.Optimizer, list[float]]:
    """One optimiser and its groups' base learning rates (config keys over the spec's defaults)."""
    where = f"optim.{name}"
    defaults = dict(spec.defaults)
    chosen = (config or {}).get("name")
    if chosen is not None and str(chosen).lower() != str(defaults.get("name", "adam")).lower():
        # another optimiser class: the default's own keywords (Adam's betas) do not carry over
        defaults = {"lr": defaults["lr"]} if "lr" in defaults else {}
    settings = {**defaults, **(config or {})}
    settings = {k: v for k, v in settings.items() if v is not None}  # null: the optimiser's default
    kind = str(settings.pop("name", "adam"))
    classes = _optimizer_classes()
    if kind.lower() not in classes:
        raise GanforgeError(f"unknown optimiser {where}.name={kind!r}",
                            f"choose a torch.optim class, e.g.: {', '.join(sorted(classes)[:8])}, ...")
    if kind.lower() in UNSTEPPABLE:
        raise GanforgeError(f"{where}.name={kind} cannot train here: {UNSTEPPABLE[kind.lower()]}",
                            "choose another torch.optim class, e.g. adam, adamw, sgd or rmsprop")
    cls = classes[kind.lower()]
    lr_mult = settings.pop("lr_mult", None) or {}
    _check_settings(where, settings)
    if "betas" in settings:
        settings["betas"] = tuple(float(b) for b in settings["betas"])
    lr = float(settings.pop("lr"))
    check_kwargs(cls, {**settings, "lr": lr}, f"optimiser {where} ({cls.__name__})", skip=1)
    _check_types(cls, settings, where)
    groups = _param_groups(spec, lr, lr_mult, where)
    try:  # torch checks the ranges (a negative weight_decay, nesterov without momentum, ...)
        optimizer = cls(groups, lr=lr, **settings)
    except (ValueError, TypeError, RuntimeError) as err:
        reason = (str(err).splitlines() or [type(err).__name__])[0][:160]
        raise GanforgeError(f"{where} ({cls.__name__}) refuses its settings: {reason}",
                            f"change the value it names (see torch.optim.{cls.__name__})") from None
    return optimizer, [g["lr"] for g in optimizer.param_groups]


def build_optimizers(specs: Mapping[str, OptimizerSpec], config: Mapping[str, Any],
                     algorithm: str) -> tuple[dict[str, torch.optim.Optimizer], dict[str, list[float]]]:
    """Every optimiser an algorithm declares; unknown names in ``config`` are errors."""
    if not isinstance(config, Mapping):
        raise GanforgeError(f"optim must map optimiser names to settings, got {config!r}",
                            f"set e.g. optim.{next(iter(specs))}.lr=1e-3")
    unknown = [k for k in config if k not in specs]
    if unknown:
        raise GanforgeError(f"unknown optimiser {unknown[0]!r} for algorithm {algorithm!r}",
                            f"its optimisers are: {', '.join(specs)}")
    optimizers, base_lrs = {}, {}
    for name, spec in specs.items():
        section = config.get(name) or {}
        if not isinstance(section, Mapping):
            raise GanforgeError(f"optim.{name} must be a mapping of settings, got {section!r}",
                                f"set e.g. optim.{name}.lr=1e-3")
        optimizers[name], base_lrs[name] = build_optimizer(name, spec, section)
    return optimizers, base_lrs


def set_lr(optimizer: torch.optim.Optimizer, base_lrs: list[float], factor: float) -> None:
    """Every group's rate = its base rate * ``factor`` (the schedule's multiplier)."""
    for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
        group["lr"] = base * factor
