"""Image-to-image translation benchmarks, one section per algorithm (pix2pix; CycleGAN, SRGAN,
colorization and inpainting add their own section function to :data:`SECTIONS`).

pix2pix (Isola et al. 2017, sec. 4.2 and table 1): edges -> Fashion-MNIST (``edges2fashion``,
32x32), the three presets at one step budget:

* ``L1`` (``fashion-pix2pix-l1``: adversarial false), ``cGAN`` (``fashion-pix2pix-gan``:
  l1_weight 0) and ``L1+cGAN`` (``fashion-pix2pix``: lambda = 100);
* scored on the Fashion-MNIST *test* split's pairs (10,000; ``--quick``: 1,000): mean L1,
  PSNR and SSIM of G(edges) against the true image, and FID with the shipped ``lenet_fashion``
  features (the outputs against half of the test targets), with the real-vs-real FID floor;
* the paper's ordering: L1+cGAN has a lower FID (sharper, more realistic outputs) than L1 alone,
  and a lower L1 than the cGAN alone (the L1 term keeps the outputs on the target);
* figure: edges | L1 | cGAN | L1+cGAN | target for 8 test pairs (docs/figures/pix2pix.png;
  ``--quick`` writes benchmarks/results/pix2pix_quick.png).

    python benchmarks/image_to_image.py [--quick] [--sections pix2pix]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, fashion_overrides, print_checks, print_table, train_preset, write_result  # noqa: E402
from _cyclegan import cyclegan_section  # noqa: E402
from _restoration import colorization_section, inpainting_section, srgan_section  # noqa: E402
from ganforge import load_config  # noqa: E402
from ganforge.metrics.paired import evaluate_translation  # noqa: E402
from ganforge.train import load_run  # noqa: E402
from ganforge.viz import plot_panels  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"
QUIET = {"train.sample_every": 10**9, "train.checkpoint_every": 10**9, "train.log_every": 100}

#: label -> preset, in the order of the paper's table
PIX2PIX_PRESETS = {"L1": "fashion-pix2pix-l1", "cGAN": "fashion-pix2pix-gan",
                   "L1+cGAN": "fashion-pix2pix"}
PIX2PIX_QUICK = {"steps": 300, "test_pairs": 1000, "train_limit": 10_000}


def pix2pix_section(quick: bool, work: Path) -> dict[str, Any]:
    """The three pix2pix presets at one step budget, scored on the test pairs; see the module
    docstring."""
    from ganforge.metrics.paired import held_out_pairs

    torch.set_num_threads(1)
    steps = PIX2PIX_QUICK["steps"] if quick else load_config("fashion-pix2pix").train.steps
    limit = PIX2PIX_QUICK["train_limit"] if quick else None
    overrides = {**QUIET, "train.steps": steps, **fashion_overrides(limit)}
    rows, outputs = [], {}
    test = None
    for label, preset in PIX2PIX_PRESETS.items():
        run_dir, wall, cpu = train_preset(preset, work, overrides)
        run = load_run(run_dir)
        if test is None:
            test_limit = PIX2PIX_QUICK["test_pairs"] if quick else None
            test, _ = held_out_pairs(run.config.data, {"limit": test_limit})
        n = len(test)
        result = evaluate_translation(run.algorithm, test, n=n, seed=0, fid=True, extractor="lenet_fashion")
        m = result["metrics"]
        fid_key = next(k for k in m if k.startswith("fid"))
        rows.append({"model": label, "preset": preset, "steps": steps, "l1": m["l1"], "psnr": m["psnr"],
                     "ssim": m["ssim"], "fid": m[fid_key], "fid_real_vs_real":
                     result["fid_baseline_real_vs_real"][fid_key], "train_wall_s": wall, "train_cpu_s": cpu})
        outputs[label] = run.algorithm.translate(test.cond[:8], generator=torch.Generator().manual_seed(0))
        baselines = result["baselines"]
    print_table(rows, ["model", "steps", "l1", "psnr", "ssim", "fid", "fid_real_vs_real", "train_wall_s",
                       "train_cpu_s"])
    by = {r["model"]: r for r in rows}
    checks = {"fid: L1+cGAN < L1": by["L1+cGAN"]["fid"] < by["L1"]["fid"],
              "l1: L1+cGAN < cGAN": by["L1+cGAN"]["l1"] < by["cGAN"]["l1"]}
    print_checks(checks)
    figure = (ROOT / "benchmarks" / "results" / "pix2pix_quick.png") if quick else FIGURES / "pix2pix.png"
    plot_panels({"edges": test.cond[:8], **outputs, "target": test.x[:8]}, figure, nrow=1,
                title=f"pix2pix on edges2fashion, {steps} steps (test pairs)", panel_inches=1.6)
    print(f"  figure {figure}")
    return {"rows": rows, "checks": checks, "baselines": baselines, "test_pairs": len(test),
            "figure": str(figure.relative_to(ROOT))}


#: section name -> function(quick, work dir) -> its results
SECTIONS: dict[str, Callable[[bool, Path], dict[str, Any]]] = {"pix2pix": pix2pix_section}
SECTIONS["cyclegan"] = cyclegan_section
SECTIONS["srgan"] = srgan_section
SECTIONS["inpainting"] = inpainting_section
SECTIONS["colorization"] = colorization_section


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The pix2pix rows as the markdown table of docs/image-to-image.md."""
    lines = ["| model | L1 | PSNR (dB) | SSIM | FID (lenet_fashion) |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['model']} | {r['l1']:.4f} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['fid']:.2f} |"
              for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few steps, 1,000 test pairs")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma list of {', '.join(SECTIONS)} (default: all)")
    args = parser.parse_args()
    names = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in names if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section {unknown[0]!r}; choose from {', '.join(SECTIONS)}")
    result_name = "image_to_image" + ("_quick" if args.quick else "")
    previous = RESULTS / f"{result_name}.json"
    # sections run separately land in one file: keep the other sections' earlier results
    payload: dict[str, Any] = {k: v for k, v in json.loads(previous.read_text()).items()
                               if k in SECTIONS} if previous.is_file() else {}
    payload["quick"] = args.quick
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            print(f"== {name}")
            payload[name] = SECTIONS[name](args.quick, Path(tmp))
            if "rows" in payload[name]:
                print(markdown_table(payload[name]["rows"]))
    payload["seconds"] = time.perf_counter() - start
    payload["sections_run"] = names
    path = write_result(result_name, payload)
    print(f"wrote {path} ({payload['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
