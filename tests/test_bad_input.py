"""Bad input, by mechanism: every reader of user input answers a GanforgeError (one line, exit 2
from the CLI, nothing written) or succeeds, never another exception."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ganforge.cli import main
from ganforge.config import load_config, parse_override
from ganforge.data import build_dataset
from ganforge.data.idx import parse_idx, read_idx_images
from ganforge.errors import GanforgeError

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _error_or_success(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except GanforgeError as err:
        assert "\n" not in str(err)
        return None


# --------------------------------------------------------------------------- fuzz


@FUZZ
@given(st.text(max_size=60))
def test_the_set_parser_never_raises_anything_else(item):
    _error_or_success(parse_override, item)


KEYS = st.sampled_from(["seed", "train.steps", "train.batch_size", "optim.G.lr", "optim.D.betas",
                        "phases.D.repeat", "model.z_dim", "data.size", "loss.name", "train.ema_decay",
                        "stabilisers.pack", "algorithm.penalty_until", "eval.metrics", "nope.x",
                        "algorithm.loss.gp_weight", "algorithm.stabilisers.r1", "privacy.epsilon",
                        "algorithm.nope"])
VALUES = st.one_of(st.integers(min_value=-(10**30), max_value=10**30), st.floats(allow_nan=True),
                   st.text(max_size=12), st.booleans(), st.none(),
                   st.lists(st.floats(allow_nan=False, width=32), max_size=3))


@FUZZ
@given(st.dictionaries(KEYS, VALUES, max_size=3))
def test_the_config_loader_never_raises_anything_else(overrides):
    cfg = _error_or_success(load_config, "digits-dcgan", overrides=overrides)
    if cfg is not None:  # what the config layer accepts, the builders check in turn
        from ganforge.train import Experiment

        _error_or_success(Experiment, cfg, sample_shape=(1, 16, 16), num_classes=10)


@FUZZ
@given(st.binary(max_size=64), st.sampled_from([b"", b"\x00\x00\x08\x03", b"\x00\x00\x08\x01",
                                                 b"\x00\x00\x0d\x03\x00\x00\x00\x02"]))
def test_the_idx_reader_never_raises_anything_else(tmp_path, payload, header):
    path = tmp_path / "f-idx3-ubyte"
    path.write_bytes(header + payload)
    _error_or_success(read_idx_images, path)
    _error_or_success(parse_idx, header + payload)


@FUZZ
@given(st.lists(st.binary(max_size=80), min_size=1, max_size=3), st.integers(1, 40))
def test_the_image_folder_reader_never_raises_anything_else(tmp_path_factory, blobs, size):
    root = tmp_path_factory.mktemp("imgs")
    for i, blob in enumerate(blobs):
        (root / f"{i}.png").write_bytes(blob)
    good = io.BytesIO()
    Image.fromarray(np.zeros((5, 7, 3), np.uint8)).save(good, format="PNG")
    (root / "ok.png").write_bytes(good.getvalue())
    _error_or_success(build_dataset, {"name": "folder", "root": str(root), "size": size})


# --------------------------------------------------------------------------- the review's list


def _cli(capsys, *argv) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_config_files_that_are_not_utf8_or_repeat_a_key(tmp_path, capsys):
    (tmp_path / "latin.yaml").write_bytes(b"train: {steps: 3}\nseed: \xff\n")
    assert "is not UTF-8 text" in _cli(capsys, "train", "--config", str(tmp_path / "latin.yaml"),
                                       "--out", str(tmp_path / "r"))
    (tmp_path / "dup.yaml").write_text("train: {steps: 3}\ntrain: {steps: 4}\n")
    assert "duplicate key 'train'" in _cli(capsys, "train", "--config", str(tmp_path / "dup.yaml"),
                                           "--out", str(tmp_path / "r"))
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("override, fragment", [
    ("train.lr_d=[0.5", "is not valid YAML"),
    ("train.steps=" + "9" * 5000, "cannot be read"),
    ("train.log_every=" + "9" * 40, "does not fit a 64-bit integer"),
    ("optim.D.betas=[0.5, 1.5]", "betas must be two numbers in [0, 1)"),
    ("optim.G.lr=.inf", "must be a finite number > 0"),
    ("algorithm.stabilisers.pack=3", "not a multiple of it"),
    ("train.batch_size=100000000000", "more than half"),
    ("train.num_fixed_samples=10000000000", "more than half"),
    ("data.root=5", "data.root must be a string"),
])
def test_bad_overrides_are_one_line_and_leave_nothing(tmp_path, capsys, override, fragment):
    preset = "digits-dcgan" if "pack" in override else "ring8-mlp"
    argv = ["train", preset, "--steps", "2", "--quiet", "--out", str(tmp_path / "r")]
    if "data.root" in override:
        argv += ["--set", "data.name=folder"]  # a new dataset name drops the old one's keys: first
    argv += ["--set", override]
    assert fragment in _cli(capsys, *argv)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("preset, override, fragments", [
    ("fashion-vae", "loss.name=hinge", ("unknown key 'algorithm.loss' for algorithm 'vae'",
                                        "(an option of algorithm bagan-gp, biggan, dp-gan, gan, molgan, "
                                        "pianoroll-gan, stylegan2)",
                                        "vae's keys are: name, beta, kl_warmup, binarize")),
    ("fashion-vae", "algorithm.stabilisers.spectral_norm=true", ("'algorithm.stabilisers'", "'vae'")),
    ("fashion-pix2pix", "stabilisers.r1=1", ("'algorithm.stabilisers' for algorithm 'pix2pix'",)),
    ("fashion-progan", "algorithm.loss={name: hinge}", ("'algorithm.loss' for algorithm 'progan'",)),
    ("ring8-mlp", "privacy.epsilon=10", ("unknown key 'algorithm.privacy' for algorithm 'gan'",
                                         "(an option of algorithm ctgan, dp-gan)")),
    ("ring8-mlp", "algorithm.beta=2", ("'algorithm.beta' for algorithm 'gan' (an option of algorithm vae)",)),
    ("ring8-mlp", "algorithm.stabilisers.pack=two", ("algorithm.stabilisers.pack must be an integer",)),
    ("ring8-mlp", "algorithm.loss=hinge", ("algorithm.loss must be a mapping",)),
])
def test_an_option_of_another_family_is_one_line_and_leaves_nothing(tmp_path, capsys, preset, override,
                                                                    fragments):
    """Refused by the one validator of algorithm options, before the data are loaded (the VAE,
    pix2pix and ProGAN presets download their data: these runs never reach it)."""
    out = tmp_path / "r"
    message = _cli(capsys, "train", preset, "--steps", "2", "--quiet", "--out", str(out), "--set", override)
    assert all(fragment in message for fragment in fragments), message
    assert not out.exists()


def test_seeds_beyond_64_bits(tmp_path, capsys):
    assert "64-bit" in _cli(capsys, "train", "ring8-mlp", "--seed", "9" * 25, "--out", str(tmp_path / "r"))
    assert "seed must lie in [0, 2**62]" in _cli(capsys, "train", "ring8-mlp", "--seed", str(2**63 - 5),
                                                 "--out", str(tmp_path / "r"))


def test_every_output_path_is_checked_before_anything_is_written(tmp_path, capsys):
    afile = tmp_path / "a.txt"
    afile.write_text("x")
    assert "kernel pseudo-filesystem" in _cli(capsys, "train", "ring8-mlp", "--out", "/proc/ganforge")
    assert "exists and is not a directory" in _cli(capsys, "train", "ring8-mlp", "--out", str(afile))
    assert "which is not a directory" in _cli(capsys, "train", "ring8-mlp", "--out", str(afile / "x"))
    assert "kernel pseudo-filesystem" in _cli(capsys, "theory", "saturation", "--quick", "--out",
                                              "/proc/ganforge")
    run = tmp_path / "run"
    assert main(["train", "ring8-mlp", "--steps", "2", "--quiet", "--out", str(run)]) == 0
    capsys.readouterr()
    (tmp_path / "d.png").mkdir()
    assert "is a directory" in _cli(capsys, "sample", str(run), "-o", str(tmp_path / "d.png"))
    assert "kernel pseudo-filesystem" in _cli(capsys, "sample", str(run), "-o", "/proc/x.png")
    assert "is a directory" in _cli(capsys, "evaluate", str(run), "-o", str(tmp_path))
    assert "is a directory" in _cli(capsys, "latent", str(run), "truncate", "-o", str(tmp_path / "d.png"))
    assert "more than half" in _cli(capsys, "sample", str(run), "-n", str(10**11), "-o",
                                    str(tmp_path / "s.npz"))


def test_damaged_checkpoints_and_metrics(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "ring8-mlp", "--steps", "2", "--quiet", "--out", str(run)]) == 0
    capsys.readouterr()
    state = torch.load(run / "checkpoints" / "final.pt", weights_only=True)
    del state["optimizers"]
    torch.save(state, run / "checkpoints" / "final.pt")
    assert "lacks 'optimizers'" in _cli(capsys, "sample", str(run), "-o", str(tmp_path / "s.npz"))
    with (run / "metrics.csv").open("ab") as fh:
        fh.write(b"\xff\xfe\x00")
    assert "is not UTF-8 text" in _cli(capsys, "info", str(run))


def test_a_failed_download_leaves_no_folder_behind(tmp_path, monkeypatch):
    import ganforge.data.mnist as mnist
    from ganforge.data.mnist import IdxSource

    real = mnist.SOURCES["mnist"]
    monkeypatch.setitem(mnist.SOURCES, "mnist", IdxSource("MNIST", ("http://127.0.0.1:9/",), real.md5,
                                                          real.classes))
    monkeypatch.setattr(mnist, "DOWNLOAD_TIMEOUT", 2.0)
    root = tmp_path / "new" / "mnist"
    with pytest.raises(GanforgeError, match="download"):
        build_dataset({"name": "mnist", "root": str(root), "download": True})
    assert not (tmp_path / "new").exists()


def test_tensorboard_without_the_extra_fails_before_the_run_directory(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else real(name, *a))
    assert "tensorboard is not installed" in _cli(capsys, "train", "ring8-mlp", "--steps", "2", "--out",
                                                  str(tmp_path / "r"), "--set", "train.tensorboard=true")
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- capabilities
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny finished runs of three families: a DCGAN (unconditional), a VAE and a pix2pix."""
    from ganforge.config import ExperimentConfig
    from ganforge.data.digits import digits
    from ganforge.data.paired import PairedDataset, sobel_edges
    from ganforge.train import Trainer
    from tests.conftest import TINY_DIGITS

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("capabilities")
    x = digits(size=32).x[:32]
    trees = {
        "gan": ({**TINY_DIGITS, "train": {**TINY_DIGITS["train"], "steps": 2}}, None),
        "vae": ({"seed": 0, "algorithm": {"name": "vae"}, "data": {"name": "digits", "size": 8},
                 "model": {"name": "vae-mlp", "z_dim": 2, "hidden": [8]},
                 "train": {"steps": 2, "batch_size": 16, "sample_every": 2, "checkpoint_every": 2}}, None),
        "pix2pix": ({"seed": 0, "algorithm": {"name": "pix2pix"}, "data": {"name": "digits", "size": 32},
                     "model": {"name": "pix2pix", "width": 4, "d_width": 4, "depth": 3,
                               "receptive_field": 16},
                     "train": {"steps": 2, "batch_size": 8, "sample_every": 2, "checkpoint_every": 2,
                               "num_fixed_samples": 4}}, PairedDataset(x, sobel_edges(x), name="edges")),
    }
    for name, (tree, data) in trees.items():
        Trainer(ExperimentConfig.from_dict(tree), root / name, progress=False, dataset=data).fit()
    np.savez(root / "images.npz", x=np.zeros((1, 1, 32, 32), np.float32))
    return root


@pytest.mark.parametrize("run, argv, capability, family", [
    ("gan", ["translate", "{run}", "--input", "{root}/images.npz", "-o", "{out}.npz"], "Translates",
     "pix2pix"),
    ("vae", ["sample", "{run}", "--text", "a boot", "-o", "{out}.png"], "TextConditioned", "stackgan"),
    ("pix2pix", ["sample", "{run}", "--text", "a boot", "-o", "{out}.png"], "TextConditioned", "stackgan"),
    ("pix2pix", ["sample", "{run}", "--truncation", "0.5", "-o", "{out}.npz"], "Truncatable", "biggan"),
    ("pix2pix", ["sample", "{run}", "--class", "1", "-o", "{out}.npz"], "ClassConditioned", "gan"),
    ("gan", ["latent", "{run}", "mix", "-o", "{out}.png"], "StyleMixing", "stylegan2"),
    ("pix2pix", ["latent", "{run}", "truncate", "-o", "{out}.png"], "LatentSpace", "vae"),
    ("gan", ["augment", "{run}", "--class", "1", "-n", "2", "-o", "{out}.npz"], "ClassConditioned", "biggan"),
    ("gan", ["sample", "{run}", "--class", "3", "-o", "{out}.npz"], "ClassConditioned", "dp-gan"),
    ("vae", ["sample", "{run}", "--class", "3", "-o", "{out}.npz"], "ClassConditioned", "gan"),
    ("gan", ["evaluate", "{run}", "--metrics", "elbo", "-o", "{out}.json"], "HasLikelihood", "vae"),
])
def test_asking_a_run_for_a_capability_it_lacks(runs, tmp_path, capsys, run, argv, capability, family):
    """One line naming the capability and a family that has it; exit 2; nothing written."""
    out = tmp_path / "out"
    line = _cli(capsys, *[a.format(run=runs / run, root=runs, out=out) for a in argv])
    assert f"run {runs / run} ({run}) cannot " in line and f"(capability {capability}, which" in line, line
    assert family in line.split("which these families have:")[1], line
    assert list(tmp_path.iterdir()) == []
