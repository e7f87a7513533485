"""Golden digests of short seeded runs: the proof that a refactor of the training core left
every update unchanged (tensors compared, not file bytes).

    python -m tests.train.golden.record          # re-record tests/train/golden/digests.json

Each run trains ``STEPS`` steps on one torch thread (two-thread conv/BN backward reductions are
not always bit-identical) and digests the final checkpoint's G, D, EMA copy and both optimiser
states. The digests depend on the CPU's kernels, so the JSON records the CPU model and the test
compares only on a machine of the same model.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
DIGESTS = HERE / "digests.json"
MNIST = HERE.parents[3] / "shared" / "data" / "mnist"
STEPS = 200

#: name -> (preset or None, overrides); the four presets the issue names plus tiny configs that
#: switch on every stabiliser and loss branch of the loop.
RUNS: dict[str, tuple[str | None, dict[str, Any]]] = {
    "digits-dcgan": ("digits-dcgan", {}),
    "ring8-mlp": ("ring8-mlp", {}),
    "mnist-projection": ("mnist-projection", {"data.root": str(MNIST), "data.split": "test",
                                              "data.download": False}),
    "ring8-selfcond": ("ring8-selfcond", {"stabilisers.self_condition_every": 100}),
    "digits-acgan-everything": ("digits-dcgan", {
        "model.conditional": "acgan", "model.ac_fake_loss": True, "data.size": 8,
        "model.width": 8, "model.minibatch_std": False,
        "train.n_disc": 2, "train.lr_schedule": "linear", "train.lr_decay_start": 100,
        "train.penalty_until": 150, "stabilisers.label_smoothing": 0.1, "stabilisers.r1": 0.5,
        "stabilisers.historical_averaging_d": 0.01, "stabilisers.historical_averaging_g": 0.01,
        "stabilisers.feature_matching": 0.5, "stabilisers.feature_matching_mode": "add",
        "stabilisers.diffaugment": "color,translation,cutout", "stabilisers.instance_noise": 0.1,
        "stabilisers.minibatch_discrimination": True}),
    "ring8-wgan-gp-pack": ("ring8-mlp", {"loss.name": "wgan-gp", "loss.gp_weight": 10.0,
                                         "stabilisers.pack": 2, "train.n_disc": 3,
                                         "stabilisers.spectral_norm": True,
                                         "train.ema_decay": 0.99}),
    "ring8-wgan-clip-fm": ("ring8-mlp", {"loss.name": "wgan", "loss.clip": 0.05,
                                         "stabilisers.feature_matching": 1.0,
                                         "train.betas_g": [0.0, 0.9]}),
}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def digest(tensors: dict[str, Any]) -> str:
    """sha256 over (name, dtype, shape, bytes) of every tensor in a nested dict, sorted by path."""
    h = hashlib.sha256()

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key in sorted(value, key=str):
                walk(f"{prefix}/{key}", value[key])
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(f"{prefix}/{i}", item)
        elif isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            h.update(f"{prefix}|{t.dtype}|{tuple(t.shape)}|".encode())
            h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
        else:
            h.update(f"{prefix}={value!r}|".encode())

    walk("", tensors)
    return h.hexdigest()


def components(state: dict[str, Any]) -> dict[str, Any]:
    """The parts of a final checkpoint that training computes, in a layout-independent view."""
    if "nets" in state:  # the algorithm-plug-in layout
        nets, opts, ema = state["nets"], state["optimizers"], state["ema"]
        return {"G": nets["G"], "D": nets["D"], "ema": None if not ema else ema["G"]["model"],
                "opt_G": opts["G"]["state"], "opt_D": opts["D"]["state"]}
    return {"G": state["G"], "D": state["D"],
            "ema": None if state["ema"] is None else state["ema"]["model"],
            "opt_G": state["opt_g"]["state"], "opt_D": state["opt_d"]["state"]}


def run_digests(name: str, out: Path) -> dict[str, str]:
    from ganforge.config import load_config
    from ganforge.train import Trainer
    from ganforge.train.checkpoint import load_checkpoint

    preset, overrides = RUNS[name]
    # recorded in NCHW layout, before train.channels_last existed: the layout changes the
    # kernels' summation order, never what a step computes
    cfg = load_config(preset, overrides={**overrides, "train.steps": STEPS, "train.channels_last": False})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(cfg, out, progress=False).fit()
    finally:
        torch.set_num_threads(threads)
    parts = components(load_checkpoint(out / "checkpoints" / "final.pt"))
    return {key: digest(value) for key, value in parts.items() if value is not None}


def main() -> None:
    import tempfile

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in RUNS:
            results[name] = run_digests(name, Path(tmp) / name)
            print(name, results[name]["G"][:16], flush=True)
    DIGESTS.write_text(json.dumps({"cpu": cpu_model(), "torch": torch.__version__, "steps": STEPS,
                                   "python": sys.version.split()[0], "runs": results}, indent=2) + "\n")
    print(f"wrote {DIGESTS}")


if __name__ == "__main__":
    main()
