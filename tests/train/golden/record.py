"""Golden digests of short seeded runs: the proof that a refactor of the training core left
every update unchanged (tensors compared, not file bytes).

    python -m tests.train.golden.record              # re-record every run in digests.json
    python -m tests.train.golden.record --missing    # record only the runs digests.json lacks
    python -m tests.train.golden.record NAME ...     # re-record these runs, keep the others

Each run trains ``STEPS`` steps (or its own ``train.steps``) on one torch thread (two-thread
conv/BN backward reductions are not always bit-identical) and digests, from the final
checkpoint, every network of the algorithm, every EMA copy and every optimiser state (keys
``G``, ``D``, ``ema`` (G's copy), ``opt_G``, ``opt_D`` for a GAN; ``G_AB``, ``ema_decoder``,
``opt_D_A``... for the other families). The digests depend on the CPU's kernels, so the JSON
records the CPU model and the test compares only on a machine of the same model.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
DIGESTS = HERE / "digests.json"
SHARED = HERE.parents[3] / "shared" / "data"
MNIST = SHARED / "mnist"
FASHION = SHARED / "fashion-mnist"
STEPS = 200


def _beside(suffix: str) -> Callable[[Path], str]:
    """An override computed from the run directory: a fresh folder next to it (a per-run cache)."""
    return lambda out: str(out.parent / f"{out.name}-{suffix}")


#: the Fashion-MNIST test split beside the repo (10,000 images; the train split is not needed)
FASHION_TEST: dict[str, Any] = {"data.root": str(FASHION), "data.split": "test", "data.download": False}
#: the credit table beside the repo (4,454 loans)
CREDIT: dict[str, Any] = {"data.path": str(SHARED / "tables" / "credit.csv")}
#: no snapshot or checkpoint before the end of the run (the final ones are still written)
QUIET: dict[str, Any] = {"train.sample_every": 100_000, "train.checkpoint_every": 100_000}

#: name -> (preset or None, overrides); an override may be a function of the run directory.
#: The first seven: the four presets the issue names plus tiny configs that switch on every
#: stabiliser and loss branch of the loop. Then one short, small run per family, shrunk to
#: seconds while still running the family's own machinery (growth stages, lazy regularisers,
#: DP-SGD, both StackGAN stages, SRGAN's pretraining then adversarial phases...).
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
    # 4 px; 8 px fades in on steps 15-22, 16 px on 30-37, 32 px on 45-52
    "fashion-progan": ("fashion-progan", {
        **FASHION_TEST, **QUIET, "algorithm.stage_steps": 15, "algorithm.fade_steps": 8,
        "model.z_dim": 16, "model.width": 4, "model.max_width": 16, "train.batch_size": 16,
        "train.steps": 60, "train.num_fixed_samples": 4}),
    "fashion-stylegan": ("fashion-stylegan", {
        **FASHION_TEST, **QUIET, "model.z_dim": 16, "model.w_dim": 16, "model.width": 8,
        "model.max_width": 16, "train.batch_size": 16, "train.steps": 40, "train.num_fixed_samples": 4}),
    # D_reg (lazy R1) at steps 0, 16, 32; G_reg (path length) every 4 steps
    "fashion-stylegan2": ("fashion-stylegan2", {
        **FASHION_TEST, **QUIET, "model.z_dim": 16, "model.w_dim": 16, "model.width": 8,
        "model.max_width": 16, "train.batch_size": 16, "train.steps": 40, "train.num_fixed_samples": 4}),
    "fashion-biggan": ("fashion-biggan", {
        **FASHION_TEST, **QUIET, "model.z_dim": 16, "model.width": 4, "model.d_width": 4,
        "model.embed_dim": 8, "train.batch_size": 16, "train.steps": 40, "train.num_fixed_samples": 10}),
    "fashion-pix2pix": ("fashion-pix2pix", {
        **FASHION_TEST, "data.limit": 128, **QUIET, "model.width": 8, "model.d_width": 8,
        "train.batch_size": 8, "train.steps": 30, "train.num_fixed_samples": 4}),
    # the image pool fills and starts swapping; the linear lr decay starts at step 15
    "fashion-cyclegan": ("fashion-cyclegan", {
        **FASHION_TEST, "data.limit": 64, **QUIET, "algorithm.pool_size": 8,
        "model.width": 8, "model.d_width": 8, "model.n_blocks": 1, "train.batch_size": 4,
        "train.steps": 30, "train.lr_decay_start": 15, "train.num_fixed_samples": 4}),
    # MSE pretraining for 15 steps, then adversarial + perceptual (the shipped photo network)
    "photos-srgan": ("photos-srgan", {
        "data.n_patches": 256, **QUIET, "algorithm.pretrain_steps": 15, "model.width": 8,
        "model.blocks": 1, "model.d_width": 8, "train.batch_size": 4, "train.steps": 30,
        "train.num_fixed_samples": 4}),
    "fashion-inpaint": ("fashion-inpaint", {
        **FASHION_TEST, "data.limit": 128, **QUIET, "model.width": 8, "model.d_width": 8,
        "train.batch_size": 8, "train.steps": 30, "train.num_fixed_samples": 4}),
    "photos-colorize": ("photos-colorize", {
        "data.n_patches": 256, **QUIET, "model.width": 8, "model.d_width": 8,
        "train.batch_size": 8, "train.steps": 30, "train.num_fixed_samples": 4}),
    # stage I on steps 0-19, stage II from 20; the text encoder trained into a per-run cache
    "fashion-stackgan": ("fashion-stackgan", {
        "data.root": str(FASHION), "data.download": False, "data.limit": 256,
        "data.captions_per_image": 2, "data.encoder_images": 500, "data.encoder_epochs": 1,
        "data.cache_dir": _beside("text-cache"), **QUIET, "algorithm.stage1_steps": 20,
        "algorithm.bank_size": 16, "model.z_dim": 16, "model.c_dim": 8, "model.code_dim": 8,
        "model.g1_width": 8, "model.d1_width": 8, "model.g2_width": 4, "model.d2_width": 4,
        "model.residual_blocks": 1, "train.batch_size": 16, "train.steps": 40,
        "train.num_fixed_samples": 4}),
    # DP-SGD (Opacus) on D, the noise multiplier computed for epsilon 10 over these 30 steps
    "mnist-dpgan": ("mnist-dpgan", {
        "data.root": str(MNIST), "data.split": "test", "data.download": False, **QUIET,
        "model.z_dim": 16, "model.width": 8, "train.batch_size": 32, "train.steps": 30,
        "train.num_fixed_samples": 10}),
    "fashion-vae": ("fashion-vae", {
        **FASHION_TEST, **QUIET, "algorithm.kl_warmup": 40, "model.z_dim": 8,
        "model.hidden": [64, 64], "train.batch_size": 32, "train.steps": 60,
        "train.lr_decay_start": 30, "train.ema_decay": 0.99, "train.num_fixed_samples": 4}),
    # tables: CTGAN (training by sampling, per-pack GP), TVAE, and CTGAN with DP-SGD (ghost clipping)
    "credit-ctgan": ("credit-ctgan", {
        **CREDIT, **QUIET, "model.generator_dims": [32, 32], "model.discriminator_dims": [32, 32],
        "train.batch_size": 100, "train.steps": 30}),
    "credit-tvae": ("credit-tvae", {
        **CREDIT, **QUIET, "model.compress_dims": [32], "model.decompress_dims": [32],
        "train.batch_size": 100, "train.steps": 30, "train.ema_decay": 0.99}),
    "credit-ctgan-dp": ("credit-ctgan", {
        **CREDIT, **QUIET, "algorithm.privacy.epsilon": 10, "model.pac": 1,
        "model.generator_dims": [32, 32], "model.discriminator_dims": [32, 32],
        "train.batch_size": 100, "train.steps": 30}),
}

#: name -> the files a run reads from ../shared/data (the test skips the run without them)
NEEDS: dict[str, tuple[Path, ...]] = {
    **{name: (MNIST / "t10k-images-idx3-ubyte.gz",) for name in ("mnist-projection", "mnist-dpgan")},
    **{name: (FASHION / "t10k-images-idx3-ubyte.gz",) for name in (
        "fashion-progan", "fashion-stylegan", "fashion-stylegan2", "fashion-biggan",
        "fashion-pix2pix", "fashion-cyclegan", "fashion-inpaint", "fashion-vae")},
    "fashion-stackgan": (FASHION / "train-images-idx3-ubyte.gz", FASHION / "t10k-images-idx3-ubyte.gz"),
    **{name: (SHARED / "tables" / "credit.csv",)
       for name in ("credit-ctgan", "credit-tvae", "credit-ctgan-dp")},
}


def missing_data(name: str) -> str | None:
    """Why run ``name`` cannot run here (a data file is absent), or None."""
    for need in NEEDS.get(name, ()):
        if not need.exists():
            return f"{need.name} is not in {need.parent} (../shared/data beside the repo)"
    return None


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
    """The parts of a final checkpoint that training computes, in a layout-independent view:
    every network by its name, every EMA copy (``ema`` for G's, ``ema_<name>`` for another
    network's) and every optimiser's state (``opt_<name>``)."""
    if "nets" in state:  # the algorithm-plug-in layout
        parts: dict[str, Any] = dict(state["nets"])
        for name, ema in state["ema"].items():
            parts["ema" if name == "G" else f"ema_{name}"] = ema["model"]
        for name, opt in state["optimizers"].items():
            parts[f"opt_{name}"] = opt["state"]
        return parts
    return {"G": state["G"], "D": state["D"],
            "ema": None if state["ema"] is None else state["ema"]["model"],
            "opt_G": state["opt_g"]["state"], "opt_D": state["opt_d"]["state"]}


def run_digests(name: str, out: Path) -> dict[str, str]:
    from ganforge.config import load_config
    from ganforge.train import Trainer
    from ganforge.train.checkpoint import load_checkpoint

    preset, overrides = RUNS[name]
    overrides = {key: value(out) if callable(value) else value for key, value in overrides.items()}
    # recorded in NCHW layout, before train.channels_last existed: the layout changes the
    # kernels' summation order, never what a step computes
    cfg = load_config(preset, overrides={"train.steps": STEPS, **overrides, "train.channels_last": False})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    # train.flush_denormal (fashion-vae's preset) sets a process-wide flag that torch cannot
    # report: every run starts from torch's default, and leaves it there, whatever ran before
    torch.set_flush_denormal(False)
    try:
        Trainer(cfg, out, progress=False).fit()
    finally:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(False)
    parts = components(load_checkpoint(out / "checkpoints" / "final.pt"))
    return {key: digest(value) for key, value in parts.items() if value is not None}


def main(argv: list[str] | None = None) -> None:
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m tests.train.golden.record",
                                     description="Record the golden digests of short seeded runs.")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"runs to (re-)record, keeping the others (default: all): {', '.join(RUNS)}")
    parser.add_argument("--missing", action="store_true",
                        help="record only the runs that digests.json lacks")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in RUNS]
    if unknown:
        parser.error(f"unknown run {unknown[0]!r}; the runs are: {', '.join(RUNS)}")
    old = json.loads(DIGESTS.read_text()) if DIGESTS.exists() else {"runs": {}}
    partial = bool(args.names) or args.missing
    if partial and old["runs"] and (old.get("cpu"), old.get("torch")) != (cpu_model(), torch.__version__):
        parser.error(f"digests.json was recorded on {old.get('cpu')!r} with torch {old.get('torch')}; "
                     "re-record every run here (no NAME, no --missing) rather than mix machines")
    wanted = [name for name in RUNS if (name in args.names if args.names else
                                        not args.missing or name not in old["runs"])]
    results = {name: old["runs"][name] for name in RUNS if name in old["runs"]}
    with tempfile.TemporaryDirectory() as tmp:
        for name in wanted:
            why = missing_data(name)
            if why is not None:
                print(f"{name}: skipped, {why}", flush=True)
                continue
            start = time.perf_counter()
            results[name] = run_digests(name, Path(tmp) / name)
            first = next(iter(results[name].values()))
            print(f"{name}: {first[:16]}  {time.perf_counter() - start:.1f} s", flush=True)
    results = {name: results[name] for name in RUNS if name in results}  # RUNS's order
    DIGESTS.write_text(json.dumps({"cpu": cpu_model(), "torch": torch.__version__, "steps": STEPS,
                                   "python": sys.version.split()[0], "runs": results}, indent=2) + "\n")
    print(f"wrote {DIGESTS}")


if __name__ == "__main__":
    main()
