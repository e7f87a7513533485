"""Watermarking a trained GAN: bit accuracy, robustness, false positives and the FID cost.

Trains a base GAN (the ``digits-dcgan`` preset, 16 px digits), then for each of ``--keys``
random 32-bit keys fine-tunes its EMA generator with a fresh decoder
(:func:`ganforge.watermark.embed_watermark`, default settings) and measures, on 2,000 generated
images (fresh codes, never seen in training):

* bit accuracy and the detection rate (images whose binomial p-value is below 1e-3), clean and
  after Gaussian noise (sigma 0.05, 0.1 in [-1, 1] units), Gaussian blur (sigma 0.5, 1 px),
  bilinear resizing to 0.5x and back, and 8-bit PNG quantisation;
* false positives: the same on real images (all 1,797 digits) and on 2,000 images of the
  unwatermarked generator, with the empirical rates at the nominal p < 1e-2 and p < 1e-3;
* the FID cost: FID (the shipped LeNet digits extractor, 898 samples against half of the real
  data, as in benchmarks/ablation.py) of the watermarked G and of the unwatermarked G.

    python benchmarks/watermark.py [--quick] [--keys 3] [--steps 1000] [--base-steps 2500] [--figure PATH]

Writes benchmarks/results/watermark.json (``--quick``: watermark_quick.json) and, on a full run,
docs/figures/watermark_example.png: the first key's images, unwatermarked | watermarked | the
difference magnified.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_result  # noqa: E402
from ganforge import build_dataset, load_config  # noqa: E402
from ganforge.metrics.evaluate import Evaluator  # noqa: E402
from ganforge.train import Trainer, load_run  # noqa: E402
from ganforge.viz import plot_panels  # noqa: E402
from ganforge.watermark import (  # noqa: E402
    EmbedSettings,
    embed_watermark,
    gaussian_blur,
    gaussian_noise,
    generated,
    random_key,
    resize_down_up,
    verify,
)

PRESET = "digits-dcgan"
QUIET = {"train.sample_every": 10**9, "train.checkpoint_every": 10**9}
ALPHA = 1e-3
REPO = Path(__file__).resolve().parents[1]
FIGURE = REPO / "docs" / "figures" / "watermark_example.png"
DIFF_GAIN = 10


def attacks() -> dict[str, Any]:
    g = torch.Generator().manual_seed(4321)
    return {
        "clean": lambda x: x,
        "noise 0.05": lambda x: gaussian_noise(x, 0.05, g),
        "noise 0.1": lambda x: gaussian_noise(x, 0.1, g),
        "blur 0.5": lambda x: gaussian_blur(x, 0.5),
        "blur 1.0": lambda x: gaussian_blur(x, 1.0),
        "resize 0.5x": lambda x: resize_down_up(x, 0.5),
        "png (uint8)": lambda x: torch.round((x + 1) * 127.5) / 127.5 - 1,
    }


def scores(decoder, key, x: torch.Tensor) -> dict[str, float]:
    v = verify(decoder, key, x)
    acc = v.matches.double() / len(key)
    return {"bit_accuracy": float(acc.mean()), "bit_accuracy_std": float(acc.std()),
            "detected": float((v.p_values < ALPHA).double().mean()),
            "p_below_0.01": float((v.p_values < 1e-2).double().mean()),
            "set_log10_p": v.set_log10_p}


def train_base(steps: int, seed: int, run_dir: Path) -> float:
    cfg = load_config(PRESET, overrides={"train.steps": steps, "seed": seed, **QUIET})
    start = time.perf_counter()
    Trainer(cfg, run_dir, progress=False).fit()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short base run, one key, fewer steps")
    parser.add_argument("--keys", type=int, help="random keys (each its own seed; default 3, quick 1)")
    parser.add_argument("--steps", type=int, help="fine-tuning steps per key (default 1000, quick 500)")
    parser.add_argument("--base-steps", type=int, help="base GAN steps (default 2500, quick 500)")
    parser.add_argument("-n", type=int, help="generated images scored per key (default 2000, quick 500)")
    parser.add_argument("--figure", type=Path, help="example figure (default docs/figures/"
                        "watermark_example.png on a full run, none with --quick)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    keys = args.keys or (1 if args.quick else 3)
    steps = args.steps or (500 if args.quick else 1000)
    base_steps = args.base_steps or (500 if args.quick else 2500)
    n = args.n or (500 if args.quick else 2000)
    figure = args.figure or (None if args.quick else FIGURE)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        base_seconds = train_base(base_steps, 0, Path(tmp) / "base")
        run = load_run(Path(tmp) / "base")
        print(f"base {PRESET}: {base_steps} steps in {base_seconds:.0f} s", flush=True)
        real = build_dataset(run.config.data)
        ev = Evaluator(real, ["fid"], num_samples=len(real) // 2, seed=0, data_name=real.name,
                       data_section=run.config.data)
        G0 = run.ema_generator
        fid_real = ev.baseline()[f"fid_{ev.extractor.id}"]
        fid_g0 = ev.score(generated(G0, ev.n, 20_000))[f"fid_{ev.extractor.id}"]
        fid_g0_raw = ev.score(generated(run.generator, ev.n, 20_000))[f"fid_{ev.extractor.id}"]
        rows, runs = [], []
        for k in range(keys):
            key = random_key(32, seed=100 + k)
            settings = EmbedSettings(steps=steps, seed=k, ema=True)
            start = time.perf_counter()
            res = embed_watermark(run, key, settings, log_every=max(1, steps // 4))
            seconds = time.perf_counter() - start
            marked = generated(res.generator, n, 30_000 + k)
            plain = generated(res.reference, n, 30_000 + k)
            result: dict[str, Any] = {"key": "".join(str(int(b)) for b in key), "seed": k, "seconds": seconds,
                                      "rms_change": float((marked - plain).pow(2).mean().sqrt())}
            for name, attack in attacks().items():
                result[name] = scores(res.decoder, key, attack(marked))
            result["real images"] = scores(res.decoder, key, real.x)
            result["unwatermarked G"] = scores(res.decoder, key, plain)
            result["fid"] = ev.score(generated(res.generator, ev.n, 20_000))[f"fid_{ev.extractor.id}"]
            result["history"] = res.history
            runs.append(result)
            if k == 0 and figure is not None:
                diff = (marked[:32] - plain[:32]) * DIFF_GAIN
                plot_panels({"unwatermarked G": plain[:32], "watermarked G'": marked[:32],
                             f"difference x{DIFF_GAIN} (grey = 0)": diff.clamp(-1, 1)}, figure, nrow=8,
                            title=f"32-bit key {result['key']}: the same codes through G and G'")
                print(f"figure: {figure}")
            print(f"key {k}: {result['key']}  {seconds:.0f} s  clean bit accuracy "
                  f"{result['clean']['bit_accuracy']:.4f}  FID {result['fid']:.2f} "
                  f"(unwatermarked {fid_g0:.2f})", flush=True)
    total = time.perf_counter() - t0

    def mean(get) -> float:
        return statistics.fmean(get(r) for r in runs)

    def spread(get) -> float:
        return statistics.stdev(get(r) for r in runs) if len(runs) > 1 else 0.0

    for name in [*attacks(), "real images", "unwatermarked G"]:
        rows.append({"images": name,
                     "bit_accuracy": mean(lambda r, c=name: r[c]["bit_accuracy"]),
                     "± (keys)": spread(lambda r, c=name: r[c]["bit_accuracy"]),
                     "per-image std": mean(lambda r, c=name: r[c]["bit_accuracy_std"]),
                     f"p<{ALPHA:g}": mean(lambda r, c=name: r[c]["detected"]),
                     "p<0.01": mean(lambda r, c=name: r[c]["p_below_0.01"])})
    print()
    print(f"{keys} keys x {n} generated images (32 bits; fine-tuning {steps} steps from the EMA G of a "
          f"{base_steps}-step {PRESET} run)")
    print_table(rows, ["images", "bit_accuracy", "± (keys)", "per-image std", f"p<{ALPHA:g}", "p<0.01"])
    print(f"binomial null (32 bits): per-image std {0.5 / 32 ** 0.5:.4f}, P(p < 0.01) = 0.0035, "
          f"P(p < 0.001) = 0.00027")
    fid_rows = [{"generator": "real (half B vs A)", "fid": fid_real},
                {"generator": "unwatermarked G (EMA)", "fid": fid_g0},
                {"generator": "unwatermarked G (raw)", "fid": fid_g0_raw},
                {"generator": "watermarked G'", "fid": mean(lambda r: r["fid"]),
                 "± (keys)": spread(lambda r: r["fid"])}]
    print()
    print_table(fid_rows, ["generator", "fid", "± (keys)"])
    print(f"rms change G' - G: {mean(lambda r: r['rms_change']):.4f} (in [-1, 1] units); "
          f"fine-tuning {mean(lambda r: r['seconds']):.0f} s per key; total {total / 60:.1f} min")
    payload = {"quick": args.quick, "preset": PRESET, "base_steps": base_steps, "base_seconds": base_seconds,
               "steps": steps, "keys": keys, "images": n, "bits": 32, "alpha": ALPHA,
               "extractor": ev.extractor.id, "fid_samples": ev.n,
               "fid": {"real_baseline": fid_real, "unwatermarked_ema": fid_g0,
                       "unwatermarked_raw": fid_g0_raw,
                       "watermarked_mean": mean(lambda r: r["fid"]),
                       "watermarked_sd": spread(lambda r: r["fid"])},
               "table": rows, "runs": runs, "total_seconds": total,
               "figure": str(figure.relative_to(REPO)) if figure and figure.is_relative_to(REPO) else None,
               "settings": {k: v for k, v in vars(EmbedSettings()).items() if k != "augment"}}
    path = write_result("watermark_quick" if args.quick else "watermark", payload)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
