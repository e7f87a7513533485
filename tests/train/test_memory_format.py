"""train.channels_last: which networks change layout, that only the layout changes, and the
config's bad values."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.cli import main
from ganforge.config import ExperimentConfig, load_config
from ganforge.errors import GanforgeError
from ganforge.train import ALGORITHMS, Experiment, Trainer
from ganforge.train.algorithms import register_algorithm
from ganforge.train.checkpoint import load_checkpoint
from ganforge.train.memory_format import apply_memory_format, wants_channels_last
from tests.conftest import TINY_DIGITS, TINY_RING, one_error_line
from tests.train.test_algorithms import _Growing

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
TINY_STYLEGAN2 = {"seed": 0, "data": {"name": "digits", "size": 8},
                  "algorithm": {"name": "stylegan2", "loss": {"name": "non-saturating"}},
                  "model": {"name": "stylegan2", "z_dim": 8, "w_dim": 8, "mapping_layers": 2,
                            "width": 4, "max_width": 8},
                  "train": {"steps": 2, "batch_size": 8}}


def _digits(channels_last) -> ExperimentConfig:
    return ExperimentConfig.from_dict({**TINY_DIGITS, "train": {**TINY_DIGITS["train"],
                                                               "channels_last": channels_last}})


def _layout(net: nn.Module) -> set[bool]:
    """For each 4-D weight of ``net`` whose layouts differ (one input channel or a 1x1 kernel
    is both): is it stored channels last?"""
    return {p.is_contiguous(memory_format=torch.channels_last) for p in net.parameters()
            if p.dim() == 4 and p.is_contiguous() != p.is_contiguous(memory_format=torch.channels_last)
            or p.dim() == 4 and not p.is_contiguous()}


def test_auto_puts_convolutional_networks_in_channels_last_on_cpu_only():
    conv, mlp = nn.Sequential(nn.Conv2d(3, 8, 3)), nn.Sequential(nn.Linear(2, 2))
    assert wants_channels_last(conv, "auto", CPU) and not wants_channels_last(conv, "auto", CUDA)
    assert not wants_channels_last(mlp, "auto", CPU) and not wants_channels_last(mlp, True, CPU)
    assert wants_channels_last(conv, True, CUDA) and not wants_channels_last(conv, False, CPU)
    conv.prefers_channels_last = False  # a network measured slower in channels last opts out
    assert not wants_channels_last(conv, "auto", CPU) and wants_channels_last(conv, True, CPU)
    params = list(conv.parameters())
    apply_memory_format([conv], True, CPU)
    assert list(conv.parameters())[0] is params[0] and _layout(conv) == {True}


def test_the_experiment_converts_every_network_but_stylegan2s_generator(one_thread):
    exp = Experiment(_digits("auto"))
    assert _layout(exp.networks["G"]) == {True} and _layout(exp.networks["D"]) == {True}
    assert _layout(Experiment(_digits(False)).networks["G"]) == {False}
    style = Experiment(ExperimentConfig.from_dict(TINY_STYLEGAN2))
    assert _layout(style.networks["G"]) == {False} and _layout(style.networks["D"]) == {True}
    ring = Experiment(ExperimentConfig.from_dict(TINY_RING))
    assert all(p.dim() < 4 for p in ring.networks["G"].parameters())


def test_channels_last_changes_the_layout_not_the_updates(tmp_path, one_thread):
    """The same seeded steps in both layouts: every weight, the EMA copy and Adam's moments agree
    to float rounding (the kernels only sum in another order)."""
    out = {}
    for channels_last in (False, True):
        Trainer(_digits(channels_last), tmp_path / str(channels_last), progress=False).fit()
        out[channels_last] = load_checkpoint(tmp_path / str(channels_last) / "checkpoints" / "final.pt")
    a, b = out[False], out[True]
    for key in ("G", "D"):
        for name, tensor in a["nets"][key].items():
            torch.testing.assert_close(b["nets"][key][name], tensor, rtol=1e-4, atol=1e-5)
    assert a["step"] == b["step"] == TINY_DIGITS["train"]["steps"]


def test_a_network_changed_at_a_stage_is_converted_too(tmp_path):
    class _GrowingConv(_Growing):
        name = "growing-conv-test"

        def enter_stage(self, stage):
            if stage == 1 and not hasattr(self.net, "extra"):
                self.net.extra = nn.Conv2d(2, 2, 3)  # a convolutional part, unused by the fit
                return ("net",)
            return ()

    if _GrowingConv.name not in ALGORITHMS:
        register_algorithm(_GrowingConv.name)(_GrowingConv)
    exp = Experiment(ExperimentConfig.from_dict({**TINY_RING, "algorithm": {"name": _GrowingConv.name}}))
    exp.enter_stage(1)
    assert _layout(exp.networks["net"]) == {True}


@pytest.mark.parametrize("value", ["maybe", 1, 0.5])
def test_a_bad_channels_last_is_one_line(value):
    with pytest.raises(GanforgeError, match="train.channels_last must be .*true or false") as info:
        load_config("digits-dcgan", overrides={"train.channels_last": value})
    assert "\n" not in str(info.value)


def test_the_cli_refuses_a_bad_channels_last_writing_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "digits-dcgan", "--quiet", "--steps", "2", "--out", str(out),
                 "--set", "train.channels_last=sometimes"]) == 2
    one_error_line(capsys, "train.channels_last", "auto")
    assert not out.exists()
