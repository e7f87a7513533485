"""The third reliability round's bad inputs (issue 32): each is one line, exit 2, nothing left."""

from __future__ import annotations

import pytest
import torch

from ganforge.cli import main


def _cli(capsys, *argv) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("r") / "run"
    assert main(["train", "ring8-mlp", "--steps", "2", "--quiet", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("key, value", [("config", "train: {steps: 3}"), ("config", [1, 2]),
                                        ("nets", "weights")])
def test_a_checkpoint_whose_sections_are_not_mappings(run, tmp_path, capsys, key, value):
    state = torch.load(run / "checkpoints" / "final.pt", weights_only=True)
    state[key] = value
    damaged = tmp_path / "damaged.pt"
    torch.save(state, damaged)
    out = tmp_path / "s.npz"
    assert f"as its '{key}', not a mapping" in _cli(capsys, "sample", str(run), "--checkpoint", str(damaged),
                                                     "-o", str(out))
    assert not out.exists()


@pytest.mark.parametrize("text", ["[" * 5000 + "]" * 5000, "a: " + "{b: " * 3000 + "1" + "}" * 3000])
def test_a_config_nested_thousands_deep(tmp_path, capsys, text):
    (tmp_path / "deep.yaml").write_text(text)
    assert "too deeply" in _cli(capsys, "train", "--config", str(tmp_path / "deep.yaml"),
                                "--out", str(tmp_path / "r"))
    assert "too deeply" in _cli(capsys, "train", "ring8-mlp", "--set", f"train.steps={text}",
                                "--out", str(tmp_path / "r"))
    assert not (tmp_path / "r").exists()


def test_allocations_are_checked_against_the_address_space_limit(run, tmp_path):
    """Under ``ulimit -v`` (6 GB here) the up-front size check counts what the limit leaves, not
    the machine's free memory."""
    import resource
    import subprocess
    import sys

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))

    out = tmp_path / "s.npz"
    done = subprocess.run([sys.executable, "-m", "ganforge.cli", "sample", str(run), "-n", "400000000",
                           "-o", str(out)], capture_output=True, text=True, preexec_fn=limit, timeout=300)
    assert done.returncode == 2, done.stderr[-500:]
    assert "more than half" in done.stderr and done.stderr.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("argv", [
    ["sample", "{run}", "--seed", str(2**70), "-o", "{out}.npz"],
    ["latent", "{run}", "mix", "--seed", str(2**70), "-o", "{out}.png"],
    ["latent", "{run}", "mix", "--rows", str(2**70), "-o", "{out}.png"],
    ["latent", "{run}", "interpolate", "--steps", str(2**64), "-o", "{out}.png"],
    ["translate", "{run}", "--seed", str(2**70), "--input", "{out}.npz", "-o", "{out}.npz"],
    ["augment", "{run}", "--class", "1", "-n", str(2**63), "-o", "{out}.npz"],
    ["evaluate", "{run}", "--importance-samples", "-" + str(2**64)],
])
def test_seeds_and_counts_beyond_64_bits_on_every_command(run, tmp_path, capsys, argv):
    out = tmp_path / "out"
    line = _cli(capsys, *[a.format(run=run, out=out) for a in argv])
    assert "does not fit a 64-bit integer" in line
    assert list(tmp_path.iterdir()) == []
