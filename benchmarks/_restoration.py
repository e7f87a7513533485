"""Restoration sections of benchmarks/image_to_image.py: SRGAN (Ledig et al. 2017, table 2's
bicubic / SRResNet / SRGAN comparison), inpainting and colorization.

**srgan**: x4 super-resolution on the held-out photographs of ``photo-patches`` (``chelsea``,
``flower``; never seen in training, not even as crops), each super-resolved *whole* (G is fully
convolutional): LR = bicubic x1/4 (antialiased) of the photograph (shrunk by ``data.downscale``,
cropped to a multiple of 4), SR = G(LR). Scored per photograph on the BT.601 Y channel with a
4-pixel border cropped (PSNR, SSIM) and by the high-frequency energy ratio E_hf(SR) / E_hf(HR)
(:mod:`ganforge.metrics.restoration`; 1 = the HR's share of fine detail). Rows: bicubic,
SRResNet and SRGAN from one ``photos-srgan`` run, as in the paper (SRGAN is initialised with the
trained SRResNet): its G at the end of the MSE pretraining is SRResNet (the ``photos-srresnet``
preset's settings), its final G, after adversarial 1e-3 + perceptual loss on the shipped photo
feature network, is SRGAN. Checks: SRResNet >= bicubic + 1 dB;
SRGAN's PSNR below SRResNet's and its high-frequency ratio closer to 1 (sharper).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from _common import fashion_overrides, print_checks, train_preset
from ganforge import load_config
from ganforge.data.photos import downsample, load_photo, upsample
from ganforge.metrics.restoration import high_frequency_ratio, y_scores
from ganforge.train import load_run
from ganforge.viz import plot_panels

ROOT = Path(__file__).resolve().parents[1]


def figure_path(name: str, quick: bool) -> Path:
    """docs/figures/NAME.png for a full run, benchmarks/results/NAME_quick.png for --quick."""
    return ROOT / "benchmarks" / "results" / f"{name}_quick.png" if quick else (
        ROOT / "docs" / "figures" / f"{name}.png")


def photo_crops(images: list[torch.Tensor], side: int) -> torch.Tensor:
    """The central ``side`` x ``side`` crop of each (1, C, H, W) image, stacked (N, C, side, side)."""
    from ganforge.data.transforms import centre_crop

    return torch.cat([centre_crop(x, side) for x in images])


QUIET = {"train.sample_every": 10**9, "train.checkpoint_every": 10**9, "train.log_every": 100}
#: --quick: SRGAN's MSE pretraining (SRResNet) + adversarial steps
SRGAN_QUICK = {"pretrain_steps": 300, "adversarial_steps": 100}


def held_out_photographs(data: dict[str, Any]) -> list[torch.Tensor]:
    """The held-out photographs of a photo-patches section, (1, 3, H, W) each, sides cropped to a
    multiple of the scale."""
    from ganforge.data.photos import DEFAULT_TEST

    scale, downscale = data.get("scale", 4), data.get("downscale", 2)
    out = []
    for name in data.get("test_photos") or DEFAULT_TEST:
        photo = load_photo(name, downscale)
        h, w = photo.shape[1] // scale * scale, photo.shape[2] // scale * scale
        out.append(photo[None, :, :h, :w])
    return out


def score_sr(outputs: list[torch.Tensor], targets: list[torch.Tensor], border: int) -> dict[str, float]:
    """Mean per-photograph Y PSNR / SSIM and the high-frequency ratio (pooled over photographs)."""
    psnr, ssim, hf = [], [], []
    for o, t in zip(outputs, targets, strict=True):
        s = y_scores(o, t, border)
        psnr.append(float(s["psnr"][0]))
        ssim.append(float(s["ssim"][0]))
        crop = (..., slice(border, -border), slice(border, -border))
        hf.append(high_frequency_ratio(o[crop], t[crop]))
    n = len(outputs)
    return {"psnr_y": sum(psnr) / n, "ssim_y": sum(ssim) / n, "hf_ratio": sum(hf) / n}


def srgan_section(quick: bool, work: Path) -> dict[str, Any]:
    """bicubic / SRResNet / SRGAN on the held-out photographs; see the module docstring."""
    torch.set_num_threads(1)
    cfg = load_config("photos-srgan")
    scale = cfg.data.get("scale", 4)
    photos = held_out_photographs(cfg.data)
    lr = [downsample(p, scale) for p in photos]
    rows = [{"model": "bicubic", **score_sr([upsample(x, scale) for x in lr], photos, scale),
             "steps": 0, "train_wall_s": 0.0}]
    # One run, as in the paper (SRGAN starts from the trained SRResNet): G at the end of the MSE
    # pretraining is SRResNet (the photos-srresnet preset's settings), the final G is SRGAN.
    over: dict[str, Any] = dict(QUIET)
    if quick:
        over["algorithm.pretrain_steps"] = SRGAN_QUICK["pretrain_steps"]
        over["train.steps"] = SRGAN_QUICK["pretrain_steps"] + SRGAN_QUICK["adversarial_steps"]
    pretrain = over.get("algorithm.pretrain_steps", cfg.algorithm["pretrain_steps"])
    over["train.checkpoint_every"] = pretrain
    run_dir, wall, _ = train_preset("photos-srgan", work, over)
    sr_out: dict[str, list[torch.Tensor]] = {}
    for label, checkpoint in (("SRResNet", f"step_{pretrain:07d}.pt"), ("SRGAN", "final")):
        run = load_run(run_dir, checkpoint)
        sr = sr_out[label] = [run.algorithm.translate(x, batch_size=1) for x in lr]
        rows.append({"model": label, **score_sr(sr, photos, scale), "steps": run.step,
                     "train_wall_s": wall * run.step / run.config.train.steps})
    figure = figure_path("srgan", quick)
    plot_panels({"LR (nearest x4)": photo_crops([F.interpolate(x, scale_factor=scale) for x in lr], 96),
                 "bicubic": photo_crops([upsample(x, scale) for x in lr], 96),
                 **{label: photo_crops([o.clamp(-1, 1) for o in outs], 96) for label, outs in sr_out.items()},
                 "HR": photo_crops(photos, 96)}, figure, nrow=1, panel_inches=1.6)
    by = {r["model"]: r for r in rows}
    checks = {"SRResNet >= bicubic + 1 dB": by["SRResNet"]["psnr_y"] >= by["bicubic"]["psnr_y"] + 1,
              "SRGAN psnr < SRResNet": by["SRGAN"]["psnr_y"] < by["SRResNet"]["psnr_y"],
              "SRGAN sharper (hf_ratio closer to 1)":
                  abs(by["SRGAN"]["hf_ratio"] - 1) < abs(by["SRResNet"]["hf_ratio"] - 1)}
    for r in rows:
        print(f"  {r['model']:9s} Y-PSNR {r['psnr_y']:.2f} dB  Y-SSIM {r['ssim_y']:.4f}  "
              f"HF ratio {r['hf_ratio']:.3f}  ({r['steps']} steps, {r['train_wall_s']:.0f} s)")
    print_checks(checks)
    print(f"  figure {figure}")
    return {"srgan_rows": rows, "checks": checks, "photographs": len(photos),
            "figure": str(figure.relative_to(ROOT))}


def markdown_sr_table(rows: list[dict[str, Any]]) -> str:
    """The SRGAN rows as the markdown table of docs/image-to-image.md."""
    lines = ["| model | Y-PSNR (dB) | Y-SSIM | HF energy ratio |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['model']} | {r['psnr_y']:.2f} | {r['ssim_y']:.4f} | {r['hf_ratio']:.3f} |" for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------- inpainting
INPAINT_PRESETS = {"L2 (context encoder)": "fashion-inpaint-l2",
                   "L2+adv (context encoder GAN)": "fashion-inpaint"}
INPAINT_QUICK = {"steps": 300, "test_pairs": 500, "train_limit": 10_000}


def classical_inpaint(cond: torch.Tensor, method: str) -> torch.Tensor:
    """Completed grey images (N, 1, H, W) in [-1, 1] from inputs [x (1 - m), 2m - 1]:
    ``biharmonic`` (skimage.restoration.inpaint_biharmonic) or ``telea`` (cv2.inpaint with
    cv2.INPAINT_TELEA, radius 3, on uint8 pixels)."""
    import numpy as np

    image = ((cond[:, 0] + 1) / 2).double().numpy()
    mask = (cond[:, -1] > 0).numpy()
    out = np.empty_like(image)
    for i in range(len(image)):
        if method == "biharmonic":
            from skimage.restoration import inpaint_biharmonic

            out[i] = inpaint_biharmonic(image[i], mask[i])
        else:
            import cv2

            u8 = np.round(image[i] * 255).astype(np.uint8)
            out[i] = cv2.inpaint(u8, mask[i].astype(np.uint8), 3, cv2.INPAINT_TELEA) / 255.0
    done = torch.from_numpy(out).float()[:, None] * 2 - 1
    m = (cond[:, -1:] > 0).float()
    return cond[:, :1] * (1 - m) + done.clamp(-1, 1) * m


def inpainting_section(quick: bool, work: Path) -> dict[str, Any]:
    """Context encoder (L2) vs context encoder GAN vs biharmonic / Telea on Fashion-MNIST test
    centre holes: PSNR / SSIM inside the hole, FID (lenet_fashion) of the completed images."""
    from ganforge.data.base import ArrayDataset
    from ganforge.metrics.evaluate import Evaluator
    from ganforge.metrics.paired import held_out_pairs
    from ganforge.metrics.restoration import masked_scores

    torch.set_num_threads(1)
    steps = INPAINT_QUICK["steps"] if quick else load_config("fashion-inpaint").train.steps
    limit = INPAINT_QUICK["train_limit"] if quick else None
    over = {**QUIET, "train.steps": steps, **fashion_overrides(limit)}
    outputs, walls, test = {}, {}, None
    for label, preset in INPAINT_PRESETS.items():
        run_dir, walls[label], _ = train_preset(preset, work, over)
        run = load_run(run_dir)
        if test is None:
            n_test = INPAINT_QUICK["test_pairs"] if quick else 2000
            test, _ = held_out_pairs(run.config.data, {"limit": n_test})
        outputs[label] = run.algorithm.translate(test.cond)
    for method in ("biharmonic", "telea"):
        start = time.perf_counter()
        outputs[method] = classical_inpaint(test.cond, method)
        walls[method] = time.perf_counter() - start
    mask = (test.cond[:, -1:] > 0).float()
    real = ArrayDataset(test.x, name="fashion-mnist", extractor="lenet_fashion")
    ev = Evaluator(real, ["fid"], extractor="lenet_fashion", num_samples=len(test.x) // 2, seed=0)
    rows = []
    for label, out in outputs.items():
        s = masked_scores(out, test.x, mask)
        fid = ev.score(out)
        rows.append({"model": label, "hole_psnr": float(s["psnr"].mean()),
                     "hole_ssim": float(s["ssim"].mean()),
                     "fid": float(next(v for k, v in fid.items() if k.startswith("fid"))),
                     "wall_s": walls[label]})
    figure = figure_path("inpainting", quick)
    short = {"L2 (context encoder)": "L2 only", "L2+adv (context encoder GAN)": "L2 + adv"}
    plot_panels({"input": test.cond[:8, :1],
                 **{short.get(k, k): v[:8].clamp(-1, 1) for k, v in outputs.items()},
                 "target": test.x[:8]}, figure, nrow=1, panel_inches=1.4)
    by = {r["model"]: r for r in rows}
    gan, l2 = by["L2+adv (context encoder GAN)"], by["L2 (context encoder)"]
    checks = {"GAN >= biharmonic + 1 dB (hole)": gan["hole_psnr"] >= by["biharmonic"]["hole_psnr"] + 1,
              "GAN >= Telea + 1 dB (hole)": gan["hole_psnr"] >= by["telea"]["hole_psnr"] + 1,
              "FID: GAN < L2-only": gan["fid"] < l2["fid"]}
    for r in rows:
        print(f"  {r['model']:28s} hole PSNR {r['hole_psnr']:.2f} dB  hole SSIM {r['hole_ssim']:.4f}  "
              f"FID {r['fid']:.2f}  ({r['wall_s']:.0f} s)")
    print_checks(checks)
    print(f"  figure {figure}")
    return {"inpainting_rows": rows, "checks": checks, "test_pairs": len(test), "steps": steps,
            "figure": str(figure.relative_to(ROOT))}


# ---------------------------------------------------------------------- colorization
COLOR_PRESETS = {"L1": "photos-colorize-l1", "L1+cGAN": "photos-colorize"}
COLOR_QUICK = {"steps": 300}


def colorization_section(quick: bool, work: Path) -> dict[str, Any]:
    """L -> ab colorization of the held-out photographs (whole, sides cropped to G's multiple):
    RGB PSNR against the real photograph and Hasler-Suesstrunk colourfulness, for the grey image
    (ab = 0), the L1-only U-Net and the L1+cGAN (pix2pix); is the cGAN's colourfulness closer to
    the real photographs'?"""
    from ganforge.data.photos import lab_to_rgb, rgb_to_lab_pair
    from ganforge.metrics.paired import mean_scores
    from ganforge.metrics.restoration import colourfulness

    torch.set_num_threads(1)
    over: dict[str, Any] = dict(QUIET)
    if quick:
        over["train.steps"] = COLOR_QUICK["steps"]
    cfg = load_config("photos-colorize")
    photos = held_out_photographs({**cfg.data, "scale": 32})
    pairs = [rgb_to_lab_pair(p) for p in photos]
    outputs: dict[str, list[torch.Tensor]] = {"grey (ab = 0)": [lab_to_rgb(L, torch.zeros_like(ab))
                                                                for L, ab in pairs]}
    walls = {"grey (ab = 0)": 0.0}
    for label, preset in COLOR_PRESETS.items():
        run_dir, walls[label], _ = train_preset(preset, work, over)
        algo = load_run(run_dir).algorithm
        outputs[label] = [algo.colorize(L, generator=torch.Generator().manual_seed(0)) for L, _ in pairs]
    real_m = float(torch.cat([colourfulness(p) for p in photos]).mean())
    rows: list[dict[str, Any]] = []
    for label, outs in outputs.items():
        scores = [mean_scores(o, p) for o, p in zip(outs, photos, strict=True)]
        rows.append({"model": label, "psnr": sum(s["psnr"] for s in scores) / len(scores),
                     "ssim": sum(s["ssim"] for s in scores) / len(scores),
                     "colourfulness": float(torch.cat([colourfulness(o) for o in outs]).mean()),
                     "train_wall_s": walls[label]})
    rows.append({"model": "real", "psnr": 100.0, "ssim": 1.0, "colourfulness": real_m, "train_wall_s": 0.0})
    figure = figure_path("colorization", quick)
    side = min(min(p.shape[-2:]) for p in photos)
    plot_panels({**{label: photo_crops(outs, side) for label, outs in outputs.items()},
                 "real": photo_crops(photos, side)}, figure, nrow=1, panel_inches=2.0)
    by = {r["model"]: r for r in rows}
    checks = {"cGAN colourfulness closer to the real photographs' than L1's":
              abs(by["L1+cGAN"]["colourfulness"] - real_m) < abs(by["L1"]["colourfulness"] - real_m)}
    for r in rows:
        print(f"  {r['model']:14s} PSNR {r['psnr']:.2f} dB  SSIM {r['ssim']:.4f}  "
              f"colourfulness {r['colourfulness']:.2f}  ({r['train_wall_s']:.0f} s)")
    print_checks(checks)
    print(f"  figure {figure}")
    return {"colorization_rows": rows, "checks": checks, "photographs": len(photos),
            "figure": str(figure.relative_to(ROOT))}
