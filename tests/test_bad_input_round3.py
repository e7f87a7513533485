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


def test_sizes_that_cannot_fit_are_refused_up_front_with_what_fits(run, tmp_path, capsys):
    out = tmp_path / "r"
    line = _cli(capsys, "train", "ring8-mlp", "--steps", "2", "--set", "train.batch_size=100000000",
                "--out", str(out))
    assert "needs about" in line and "set train.batch_size to at most" in line and not out.exists()
    line = _cli(capsys, "train", "ring8-mlp", "--steps", "2", "--set", "train.num_fixed_samples=10000000000",
                "--out", str(out))
    assert "train.num_fixed_samples" in line and not out.exists()
    assert "pass at most -n 100" in _cli(capsys, "latent", str(run), "manifold", "-n", "100000",
                                         "-o", str(tmp_path / "m.png"))
    assert "--importance-samples must lie in [1, 100,000]" in _cli(
        capsys, "evaluate", str(run), "--importance-samples", "1000000000", "-o", str(tmp_path / "e.json"))
    assert "is not a regular file" in _cli(capsys, "sample", str(run), "--text-file", "/dev/zero",
                                           "-o", str(tmp_path / "t.png"))
    big = tmp_path / "captions.txt"
    big.write_text("a light sneaker\n" * 100_000)
    assert "pass at most 1,000,000 bytes" in _cli(capsys, "sample", str(run), "--text-file", str(big),
                                                  "-o", str(tmp_path / "t.png"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["captions.txt"]


def test_silently_accepted_inputs_are_refused(run, tmp_path, capsys):
    import numpy as np

    out = tmp_path / "r"
    assert "unknown metric 'bogus'" in _cli(capsys, "train", "ring8-mlp", "--steps", "2", "--set",
                                            "eval.metrics=[bogus]", "--out", str(out))
    assert not out.exists()
    np.savez(tmp_path / "complex.npz", x=np.zeros((2, 2), np.complex64))
    assert "of type complex64, not real numbers" in _cli(capsys, "evaluate", "--samples",
                                                         str(tmp_path / "complex.npz"), "--ref", "ring8")
    np.savez(tmp_path / "points.npz", x=np.zeros((8, 2), np.float32))
    assert "elbo" in _cli(capsys, "evaluate", "--samples", str(tmp_path / "points.npz"), "--ref", "ring8",
                          "--metrics", "elbo")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["complex.npz", "points.npz"]  # no eval.json


def test_a_last_checkpoint_with_nan_weights_is_one_line_not_three_rollbacks(run, tmp_path, capsys):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    state = torch.load(copy / "checkpoints" / "last.pt", weights_only=True)
    weight = next(t for t in state["nets"]["D"].values() if t.is_floating_point())
    weight.fill_(float("nan"))
    torch.save(state, copy / "checkpoints" / "last.pt")
    line = _cli(capsys, "train", "--resume", str(copy), "--steps", "6")
    assert "holds non-finite weights (network D)" in line and "rolled back" not in line


def test_a_failed_download_is_one_line(tmp_path, capfd):
    from ganforge.data.download import download_from_mirrors
    from ganforge.errors import GanforgeError

    with pytest.raises(GanforgeError, match="could not download x.gz from any mirror"):
        download_from_mirrors("x.gz", ["http://127.0.0.1:9/a/", "http://127.0.0.1:9/b/"], tmp_path, md5=None,
                              timeout=5)
    assert capfd.readouterr().err == ""  # pooch's and ganforge's retry chatter stays out
