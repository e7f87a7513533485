"""The commands over a trained run, fuzzed (hypothesis): any mix of their own flags with edge
values (negative, zero, beyond 64 bits, NaN, text where a number goes, paths that are folders or
devices) ends in 0, or in 2 with one error line; never a traceback. Outputs land in a temporary
folder."""

from __future__ import annotations

import argparse

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ganforge.cli import build_parser, main
from ganforge.config import ExperimentConfig
from ganforge.train import Trainer
from tests.conftest import TINY_DIGITS

#: (command words before the flags, the run argument) of every command that reads a run
COMMANDS = [["sample"], ["info"], ["evaluate"], ["augment"], ["translate"],
            *[["latent", "{run}", sub] for sub in ("interpolate", "arithmetic", "truncate", "neighbours",
                                                   "manifold", "mix")]]
VALUES = ["-1", "0", "1", "2", "3", str(2**63), str(2**70), "1e308", "nan", "-inf", "abc", "", "0.5",
          "/dev/zero", ".", "out.png", "out.npz", "out.gif", "out.json", "out.csv", "x=1", "fid", "elbo"]


def _flags(words: list[str]) -> list[str]:
    """The option strings the (sub)command's parser accepts, read from the parser itself."""
    parser: argparse.ArgumentParser = build_parser()
    for word in [w for w in words if w != "{run}"]:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return sorted(s for a in parser._actions for s in a.option_strings if s not in ("-h", "--help"))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    torch.set_num_threads(1)
    tree = {**TINY_DIGITS, "model": {**TINY_DIGITS["model"], "conditional": "projection"},
            "train": {**TINY_DIGITS["train"], "steps": 2}}
    out = tmp_path_factory.mktemp("fuzz") / "run"
    Trainer(ExperimentConfig.from_dict(tree), out, progress=False).fit()
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_flags_end_in_success_or_one_error_line(run, tmp_path, capsys, monkeypatch, data):
    monkeypatch.chdir(tmp_path)
    words = data.draw(st.sampled_from(COMMANDS))
    flags = _flags(words)
    pairs = st.tuples(st.sampled_from(flags), st.sampled_from(VALUES))
    chosen = data.draw(st.lists(pairs, max_size=4)) if flags else []
    argv = [w.format(run=run) for w in words]
    if "{run}" not in words:
        argv.append(str(run))
    for flag, value in chosen:
        argv += [flag, value]
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err, (argv, err)
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("ganforge: error: "), (argv, err)
