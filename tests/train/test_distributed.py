"""Multi-process training on torch.distributed (gloo, 2 processes on CPU)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from ganforge.cli import main
from ganforge.train import Trainer, load_run
from ganforge.train.checkpoint import load_checkpoint
from tests.conftest import REPO
from tests.train import ddp_worker

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")


def _torchrun(*args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                           "--master_addr", "127.0.0.1", "--master_port", str(_port()), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=240)


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_update_like_one_on_the_concatenated_batch(tmp_path, one_thread):
    done = _torchrun(str(REPO / "tests" / "train" / "ddp_worker.py"), str(tmp_path / "ddp"), "16", "10")
    assert done.returncode == 0, done.stderr[-2000:]
    ddp_worker.register()
    Trainer(ddp_worker.config(32, 10), tmp_path / "one", progress=False).fit()
    a = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "final.pt")
    b = load_checkpoint(tmp_path / "one" / "checkpoints" / "final.pt")
    assert a["images_seen"] == b["images_seen"] == 10 * 32
    for name, t in a["nets"]["net"].items():
        torch.testing.assert_close(t, b["nets"]["net"][name], rtol=1e-5, atol=1e-6)
    for name, t in a["ema"]["net"]["model"].items():
        torch.testing.assert_close(t, b["ema"]["net"]["model"][name], rtol=1e-5, atol=1e-6)
    assert not torch.equal(a["nets"]["net"]["0.weight"],
                           torch.load(tmp_path / "one" / "checkpoints" / "step_0000005.pt",
                                      weights_only=True)["nets"]["net"]["0.weight"])  # it trained


def test_a_two_process_gan_resumes_exactly_and_with_another_world_size(tmp_path, capsys):
    common = ["-m", "ganforge", "train", "ring8-mlp", "--quiet", "--set", "train.checkpoint_every=5",
              "--set", "train.batch_size=64"]
    full = _torchrun(*common, "--steps", "10", "--out", str(tmp_path / "full"))
    assert full.returncode == 0, full.stderr[-2000:]
    half = _torchrun(*common, "--steps", "5", "--out", str(tmp_path / "split"))
    assert half.returncode == 0, half.stderr[-2000:]
    resumed = _torchrun("-m", "ganforge", "train", "--resume", str(tmp_path / "split"), "--steps", "10",
                        "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "final.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "final.pt")
    for net in ("G", "D"):
        for name, t in a["nets"][net].items():
            assert torch.equal(t, b["nets"][net][name]), f"{net}.{name}"
    assert a["images_seen"] == 10 * 2 * 64  # each step: a global batch of 2 x 64
    # the same run goes on in one process
    assert main(["train", "--resume", str(tmp_path / "full"), "--steps", "14", "--quiet"]) == 0
    assert load_run(tmp_path / "full").step == 14


def test_nproc_launches_torchrun_and_bad_input_is_still_one_line(tmp_path, capsys):
    assert main(["train", "ring8-mlp", "--nproc", "2", "--steps", "6", "--quiet", "--out",
                 str(tmp_path / "run"), "--set", "train.checkpoint_every=3"]) == 0
    assert load_run(tmp_path / "run").step == 6
    capsys.readouterr()
    out = tmp_path / "sc"
    assert main(["train", "ring8-selfcond", "--nproc", "2", "--steps", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "self-conditioning" in err[0] and not out.exists()
