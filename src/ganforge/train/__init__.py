"""Training: the loop, objectives, EMA, checkpoints and run loading."""

from ganforge.train.objectives import OBJECTIVES, Objective, build_objective, register_objective
from ganforge.train.run import Run, load_run
from ganforge.train.trainer import Callback, Experiment, Trainer, resolve_device

__all__ = ["OBJECTIVES", "Callback", "Experiment", "Objective", "Run", "Trainer", "build_objective",
           "load_run", "register_objective", "resolve_device"]
