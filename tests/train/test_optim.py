"""Optimiser settings reach torch only once checked: every value torch would refuse, and every
class the loop cannot step, is a one-line error before the run directory exists."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.train.algorithms.base import OptimizerSpec
from ganforge.train.optim import build_optimizer


@pytest.mark.parametrize("settings, fragment", [
    (["optim.G.weight_decay=-1"], "Invalid weight_decay value: -1"),
    (["optim.G.name=sgd", "optim.G.momentum=-1"], "Invalid momentum value: -1"),
    (["optim.G.name=sgd", "optim.G.nesterov=true"], "Nesterov momentum requires a momentum"),
    (["optim.G.eps=abc"], "optim.G.eps must be a finite number, got 'abc'"),
    (["optim.G.eps=.nan"], "optim.G.eps must be a finite number"),
    (["optim.G.name=rprop", "optim.G.etas=[2,0.5]"], "Invalid eta values: 2, 0.5"),
    (["optim.G.name=rprop", "optim.G.etas=[0.5]"], "etas must be a list of 2 finite numbers"),
    (["optim.G.name=lbfgs"], "needs a closure"),
    (["optim.G.name=sparseadam"], "needs sparse gradients"),
    (["optim.G.amsgrad=maybe"], "optim.G.amsgrad must be true or false, got 'maybe'"),
    (["optim.D.amsgrad=1"], "optim.D.amsgrad must be true or false"),
])
def test_bad_optimiser_settings_are_one_line_and_leave_nothing(tmp_path, capsys, settings, fragment):
    argv = ["train", "ring8-mlp", "--steps", "2", "--quiet", "--out", str(tmp_path / "r")]
    for item in settings:
        argv += ["--set", item]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_good_settings_of_every_kind_still_build():
    net = nn.Linear(3, 2)
    spec = OptimizerSpec(net, {"name": "adam", "lr": 1e-3, "betas": (0.5, 0.999)})
    opt, lrs = build_optimizer("G", spec, {"amsgrad": True, "eps": 1e-7, "weight_decay": 0})
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["amsgrad"] is True and lrs == [1e-3]
    opt, _ = build_optimizer("G", spec, {"name": "sgd", "momentum": 0.9, "nesterov": True})
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"] is True
    opt, _ = build_optimizer("G", spec, {"name": "rprop", "etas": [0.4, 1.3]})
    assert opt.defaults["etas"] == [0.4, 1.3] or tuple(opt.defaults["etas"]) == (0.4, 1.3)
    with pytest.raises(GanforgeError, match="refuses its settings"):
        build_optimizer("G", spec, {"name": "adamw", "weight_decay": -0.5})
