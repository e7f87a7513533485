"""Training: the loop, algorithms, objectives, EMA, checkpoints and run loading."""

from ganforge.train.algorithms import ALGORITHMS, Algorithm, Phase, register_algorithm
from ganforge.train.callbacks import Callback
from ganforge.train.objectives import OBJECTIVES, Objective, build_objective, register_objective
from ganforge.train.run import Run, load_run
from ganforge.train.trainer import Experiment, Trainer, resolve_device

__all__ = ["ALGORITHMS", "OBJECTIVES", "Algorithm", "Callback", "Experiment", "Objective", "Phase", "Run",
           "Trainer", "build_objective", "load_run", "register_algorithm", "register_objective",
           "resolve_device"]
