"""The VAE on dynamically binarised Fashion-MNIST: test NLL and -ELBO against training time, next
to a published number for the same protocol, and its samples' FID next to the DCGAN's at equal
training time.

Protocol:
* ``ganforge train fashion-vae`` as a user runs it (a fresh process, 2 threads, data loading
  included), its wall time measured; checkpoints every 10,000 steps.
* Every checkpoint: -ELBO and the importance-weighted bound (IWAE, Burda et al. 2015) on the
  Fashion-MNIST test split, binarised once with seed 0; the final one with k = 1000 on all 10,000
  test images (the issue's protocol), intermediate ones with k = 100 on the first 2,000; the
  final one also with k = 5000 on the first 1,000 images (the published protocol's k) beside
  k = 1000 on the same images.
* The published reference: a VAE with a N(0, I) prior, single stochastic layer (40-d, 2 x 300
  gated MLP), dynamic binarisation, IWAE with k = 5000 on the test set: 228.70 +- 0.15 nats
  (Norouzi, Fleet & Norouzi, "Exemplar VAE", NeurIPS 2020, density-estimation table).
* FID at equal training time: the ``mnist-dcgan`` preset (the seed's DCGAN table) trained on
  Fashion-MNIST's train split for the VAE's wall time; 5,000 samples of each (the VAE's decoder
  means, the DCGAN's G) against 5,000 test images, with the in-project ``lenet_fashion`` features
  (real-vs-real floor: the other 5,000 test images).

    python benchmarks/vae.py [--quick] [--root DIR] [--run EXISTING_RUN_DIR]
    python benchmarks/vae.py --figure docs/figures/vae-nll-vs-time.png   # from results/vae.json
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_result  # noqa: E402
from ganforge import load_config  # noqa: E402
from ganforge.data import build_dataset  # noqa: E402
from ganforge.metrics.evaluate import Evaluator  # noqa: E402
from ganforge.metrics.likelihood import evaluate_likelihood  # noqa: E402
from ganforge.train import Trainer, load_run  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "fashion-mnist"
PUBLISHED = {"nll": 228.70, "std": 0.15, "k": 5000,
             "source": "Norouzi, Fleet & Norouzi, Exemplar VAE, NeurIPS 2020: VAE w/ Gaussian prior, "
                       "dynamically binarised Fashion-MNIST (single 40-d stochastic layer, 2 x 300 "
                       "gated MLP), IWAE k = 5000"}
TARGET_GAP = 5.0


def train_vae(out: Path, root: Path, steps: int | None) -> float:
    """Seconds of one `ganforge train fashion-vae` process."""
    command = [sys.executable, "-m", "ganforge", "train", "fashion-vae", "--out", str(out), "--quiet",
               "--set", f"data.root={root}", "--set", "data.download=false"]
    if steps is not None:
        command += ["--steps", str(steps), "--set", f"train.checkpoint_every={max(steps // 3, 1)}",
                    "--set", f"train.lr_decay_start={steps // 2}",
                    "--set", f"algorithm.kl_warmup={steps // 10}"]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def elapsed_at_steps(run: Path) -> dict[int, float]:
    """Training seconds at every logged step (the cumulative sum of the logged step times)."""
    out, total, last = {}, 0.0, 0
    with (run / "metrics.csv").open() as fh:
        for row in csv.DictReader(fh):
            step = int(row["step"])
            total += float(row["sec_per_step"]) * (step - last)
            out[step], last = total, step
    return out


def likelihood(run: Path, checkpoint: str, x: torch.Tensor, k: int) -> dict[str, float]:
    algorithm = load_run(run, checkpoint).algorithm
    return evaluate_likelihood(algorithm, x, ["elbo", "iwae"], importance_samples=k, seed=0)


def dcgan_for(seconds: float, root: Path, quick: bool) -> tuple[torch.nn.Module, int]:
    """The mnist-dcgan preset on Fashion-MNIST trained for ``seconds`` of wall time."""
    cfg = load_config("mnist-dcgan", overrides={
        "data": {"name": "fashion-mnist", "root": str(root), "split": "train", "size": 28},
        "train.steps": 10**6, "seed": 0})
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "run", progress=False)
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            trainer.train_step()
        return trainer.exp.sampling_network().eval(), trainer.step


def fid_rows(vae_run: Path, vae_seconds: float, root: Path, quick: bool) -> list[dict]:
    test = build_dataset({"name": "fashion-mnist", "root": str(root), "split": "test"})
    n = 1000 if quick else 5000
    ev = Evaluator(test, ["fid", "prdc"], extractor="lenet_fashion", num_samples=n, seed=0)
    G_gan, gan_steps = dcgan_for(vae_seconds, root, quick)
    decoder = load_run(vae_run).generator.eval()
    rows = []
    for name, G, steps in (("VAE (fashion-vae)", decoder, load_run(vae_run).step),
                           ("DCGAN (mnist-dcgan preset)", G_gan, gan_steps)):
        with torch.no_grad():
            x = G.sample(ev.n, torch.Generator().manual_seed(1))
        scores = ev.score(x)
        rows.append({"model": name, "train_seconds": round(vae_seconds, 1), "steps": steps,
                     "fid_lenet_fashion": round(scores["fid_lenet_fashion"], 3),
                     "precision": round(scores["precision_lenet_fashion"], 3),
                     "recall": round(scores["recall_lenet_fashion"], 3)})
    base = ev.baseline()
    rows.append({"model": "real vs real (floor)", "train_seconds": None, "steps": None,
                 "fid_lenet_fashion": round(base["fid_lenet_fashion"], 3),
                 "precision": round(base["precision_lenet_fashion"], 3),
                 "recall": round(base["recall_lenet_fashion"], 3)})
    return rows


def plot_curve(result: dict, path: Path) -> Path:
    """-ELBO and the IWAE bound on the test images against training minutes, with the published
    number as a dashed line."""
    from matplotlib.figure import Figure

    curve = result["curve"]
    minutes = [row["train_seconds"] / 60 for row in curve]
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    ax.plot(minutes, [row["neg_elbo"] for row in curve], marker="o", label="-ELBO")
    ax.plot(minutes, [row["nll_iwae"] for row in curve], marker="o",
            label=f"IWAE bound, k = {curve[0]['k']}")
    final = result["final"]["nll_iwae"]
    ax.plot([result["train_wall_seconds"] / 60], [final], marker="*", markersize=12, linestyle="",
            label=f"final, k = {result['importance_samples']}, all test images: {final:.2f}")
    ax.axhline(PUBLISHED["nll"], color="k", linestyle="--", linewidth=1,
               label=f"published VAE (Exemplar VAE table): {PUBLISHED['nll']}")
    ax.set_xlabel("training time on 2 CPU cores (minutes)")
    ax.set_ylabel("nats per test image")
    ax.set_title(f"fashion-vae on dynamically binarised Fashion-MNIST (first {curve[0]['test_images']} "
                 "test images)", fontsize="small")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 steps, small k (a smoke run)")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="Fashion-MNIST IDX folder")
    parser.add_argument("--run", type=Path, help="evaluate this finished fashion-vae run instead of training")
    parser.add_argument("--train-seconds", type=float,
                        help="with --run: the measured wall time of its `ganforge train` process")
    parser.add_argument("--figure", type=Path, help="only draw results/vae.json's curve into this PNG")
    args = parser.parse_args()
    if args.figure is not None:
        import json

        result = json.loads((Path(__file__).parent / "results" / "vae.json").read_text())
        print(f"wrote {plot_curve(result, args.figure)}")
        return
    if not (args.root / "t10k-images-idx3-ubyte.gz").exists():
        sys.exit(f"Fashion-MNIST not found in {args.root}; pass --root DIR")
    torch.set_num_threads(2)

    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or Path(tmp) / "vae"
        wall = args.train_seconds
        if args.run is None:
            wall = train_vae(run, args.root, 3000 if args.quick else None)
        elapsed = elapsed_at_steps(run)
        wall = wall if wall is not None else elapsed[max(elapsed)]
        test = build_dataset({"name": "fashion-mnist", "root": str(args.root), "split": "test"}).x
        checkpoints = sorted((run / "checkpoints").glob("step_*.pt"))
        curve = []
        k_mid, n_mid = (50, 500) if args.quick else (100, 2000)
        for path in checkpoints:
            step = int(path.stem.removeprefix("step_"))
            m = likelihood(run, path.name, test[:n_mid], k_mid)
            curve.append({"step": step, "train_seconds": round(elapsed.get(step, float("nan")), 1),
                          "test_images": n_mid, "k": k_mid, "neg_elbo": round(m["neg_elbo"], 2),
                          "nll_iwae": round(m["nll_iwae"], 2)})
            print(f"step {step}: -ELBO {m['neg_elbo']:.2f}, IWAE(k={k_mid}) {m['nll_iwae']:.2f}", flush=True)
        k_final, n_final = (100, 1000) if args.quick else (1000, 10_000)
        final = likelihood(run, "final", test[:n_final], k_final)
        n_k = 200 if args.quick else 1000
        k_big = 500 if args.quick else 5000
        same_images = {k: likelihood(run, "final", test[:n_k], k)["nll_iwae"] for k in (k_final, k_big)}
        fids = fid_rows(run, wall, args.root, args.quick)
        steps = load_run(run).step

    gap = final["nll_iwae"] - PUBLISHED["nll"]
    summary = [{"what": f"fashion-vae, {steps} steps", "train_minutes": round(wall / 60, 2),
                "test_images": n_final, "k": k_final, "neg_elbo": round(final["neg_elbo"], 2),
                "recon_nll": round(final["recon_nll"], 2), "kl": round(final["kl"], 2),
                "nll_iwae": round(final["nll_iwae"], 2)},
               {"what": "published (Exemplar VAE table)", "train_minutes": None, "test_images": 10_000,
                "k": PUBLISHED["k"], "neg_elbo": None, "recon_nll": None, "kl": None,
                "nll_iwae": PUBLISHED["nll"]}]
    print_table(curve, ["step", "train_seconds", "test_images", "k", "neg_elbo", "nll_iwae"])
    print()
    print_table(summary, ["what", "train_minutes", "test_images", "k", "neg_elbo", "recon_nll", "kl",
                          "nll_iwae"])
    print(f"\nIWAE on the first {n_k} test images: k={k_final} {same_images[k_final]:.2f}, "
          f"k={k_big} {same_images[k_big]:.2f} nats")
    print(f"gap to the published {PUBLISHED['nll']} nats: {gap:+.2f} (target within {TARGET_GAP})\n")
    print_table(fids, ["model", "train_seconds", "steps", "fid_lenet_fashion", "precision", "recall"])
    name = "vae_quick" if args.quick else "vae"
    path = write_result(name, {
        "preset": "fashion-vae", "quick": args.quick, "threads": 2,
        "train_wall_seconds": round(wall, 1), "budget_minutes": 15, "steps": steps,
        "final": {k: round(v, 3) for k, v in final.items()}, "test_images": n_final,
        "importance_samples": k_final,
        "iwae_by_k_first_images": {"images": n_k, **{str(k): round(v, 3) for k, v in same_images.items()}},
        "published": PUBLISHED, "gap_nats": round(gap, 2), "target_gap_nats": TARGET_GAP,
        "within_target": abs(gap) <= TARGET_GAP or gap < 0, "curve": curve, "fid_equal_time": fids})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
