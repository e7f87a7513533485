"""``ganforge watermark embed|verify``: give a trained GAN's images a k-bit key, and test images for it.

``embed RUN_DIR --key K -o OUT`` fine-tunes the run's generator with a new decoder (see
:mod:`ganforge.watermark.embed`) and writes OUT, a normal run directory (``ganforge sample``,
``info`` and ``evaluate`` accept it) plus ``watermark/decoder.pt`` and ``watermark/key.json``.
``verify OUT IMAGES`` decodes the images and prints the recovered key, the bit accuracy against
the key and the binomial p-value. Wiring into the main CLI is two calls:
``add_watermark_parser(sub)`` in ``build_parser`` and ``"watermark": cmd_watermark`` in the
command table. Every user mistake raises :class:`~ganforge.errors.GanforgeError` before any file
is written.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from ganforge._subcommand import run_alone
from ganforge.errors import GanforgeError
from ganforge.watermark.key import DEFAULT_BITS

DEFAULT_ALPHA = 1e-3


def add_watermark_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``watermark`` command (actions ``embed`` and ``verify``) to ``subparsers``."""
    wm = subparsers.add_parser(
        "watermark", help="embed a k-bit key in every image a GAN generates, or verify images for it",
        description="Watermark a trained GAN (see docs/applications.md).")
    actions = wm.add_subparsers(dest="watermark_action", metavar="ACTION", required=True)

    embed = actions.add_parser(
        "embed", help="fine-tune a run's generator so that a decoder reads KEY from its images",
        description="Fine-tune G with a new decoder (bit loss through random noise, blur and resizing, "
                    "+ adversarial loss with the run's D, + closeness to the original G); writes a new "
                    "run directory with the watermarked G, watermark/decoder.pt and watermark/key.json.")
    embed.add_argument("run_dir", metavar="RUN_DIR", help="a GAN run directory written by `ganforge train`")
    embed.add_argument("--key", required=True,
                       help="the key: K characters of 0/1, or K/4 hex digits (e.g. 0x9f3a61c2)")
    embed.add_argument("--bits", type=int, default=DEFAULT_BITS, metavar="K",
                       help=f"key length in bits (default {DEFAULT_BITS})")
    embed.add_argument("-o", "--output", required=True, metavar="OUT_RUN_DIR",
                       help="new run directory (must not exist, or be empty)")
    embed.add_argument("--steps", type=int, default=1000, help="fine-tuning steps (default 1000)")
    embed.add_argument("--seed", type=int, default=0, help="seed of the codes, distortions and decoder")
    embed.add_argument("--checkpoint", default="final", help="final | last | best | FILE.pt")
    embed.add_argument("--ema", action="store_true", help="start from the run's EMA generator")
    embed.add_argument("--frozen-d", action="store_true",
                       help="keep the run's D frozen (no real data needed) instead of training it on")
    embed.add_argument("--batch-size", type=int, help="default: the run's train.batch_size")
    embed.add_argument("--lr", type=float, default=1e-4, help="G's learning rate (default 1e-4)")
    embed.add_argument("--adv-weight", type=float, default=None, metavar="W",
                       help="weight of the adversarial loss (default 0.05)")
    embed.add_argument("--rec-weight", type=float, default=None, metavar="W",
                       help="weight of mean (G'(z) - G(z))^2 (default 20; higher: smaller change, "
                            "weaker key)")
    embed.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | mps (default cpu)")
    embed.add_argument("--quiet", action="store_true", help="no progress lines")

    ver = actions.add_parser(
        "verify", help="decode images and test them for a watermarked run's key",
        description="Decode each image's bits, print the recovered key (majority vote), the bit "
                    "accuracy against the key and the binomial p-value (the chance that an image "
                    "without the key matches at least as many bits).")
    ver.add_argument("run_dir", metavar="DECODER_RUN_DIR",
                     help="run directory written by `watermark embed` (or its watermark/decoder.pt)")
    ver.add_argument("images", metavar="IMAGES",
                     help="FILE.npz (array x in [-1, 1], as `ganforge sample` writes), a PNG/JPEG, "
                          "or a folder of them")
    ver.add_argument("--key", help="the key to test (default: the run's own, from its decoder)")
    ver.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                     help=f"an image is flagged when its p-value is below alpha (default {DEFAULT_ALPHA:g})")
    ver.add_argument("-o", "--output", help="also write per-image results to FILE.json")
    return wm


# --------------------------------------------------------------------------- embed


def _embed(args: argparse.Namespace) -> int:
    import torch

    from ganforge.train import load_run
    from ganforge.watermark.embed import EmbedSettings, check_watermarkable, embed_watermark, quick_check
    from ganforge.watermark.key import format_key, parse_key
    from ganforge.watermark.store import check_new_run_dir, save_watermarked_run

    key = parse_key(args.key, args.bits)
    out = check_new_run_dir(args.output)
    if Path(args.run_dir).absolute() == out:
        raise GanforgeError("the output run directory is the run itself", "choose another -o folder")
    settings = EmbedSettings(steps=args.steps, seed=args.seed, batch_size=args.batch_size, lr_g=args.lr,
                             train_d=not args.frozen_d, ema=args.ema)
    if args.adv_weight is not None:
        settings.w_adv = args.adv_weight
    if args.rec_weight is not None:
        settings.w_rec = args.rec_weight
    settings.check()
    run = load_run(args.run_dir, args.checkpoint, args.device)
    check_watermarkable(run)
    c, h, w = run.generator.out_shape
    print(f"embedding key {format_key(key)} ({len(key)} bits) into {run.path} (step {run.step}, "
          f"{c}x{h}x{w} images) for {args.steps} steps{' from the EMA generator' if args.ema else ''}")

    def log(row: dict) -> None:
        if not args.quiet:
            d = f"  loss_D {row['loss_D']:.3f}" if "loss_D" in row else ""
            print(f"  step {row['step']:>6}/{args.steps}  bit acc {row['bit_acc']:.3f}  "
                  f"unmarked {row['neg_acc']:.3f}  mse to G {row['loss_rec']:.4f}{d}", flush=True)

    result = embed_watermark(run, key, settings, log_every=max(1, args.steps // 10), on_log=log)
    check = quick_check(result, run)
    if not math.isfinite(check["bit_accuracy"]) or not torch.isfinite(result.key).all():
        raise GanforgeError("the watermark training diverged", "lower --lr and embed again")
    save_watermarked_run(run, result, out, {"check": check})
    print(f"bit accuracy {check['bit_accuracy']:.4f} on {check['images']} fresh images (lowest "
          f"{check['bit_accuracy_min']:.3f}); the unwatermarked G's images: "
          f"{check['bit_accuracy_unwatermarked']:.3f}; rms change {check['rms_change']:.4f}")
    print(f"wrote {out}")
    print(f"  next  ganforge sample {out} -n 100 -o marked.npz && ganforge watermark verify {out} marked.npz")
    return 0


# --------------------------------------------------------------------------- verify


def _verify(args: argparse.Namespace) -> int:
    from ganforge._io import atomic_write_text, check_output_file
    from ganforge.watermark.key import format_key, key_to_bits, parse_key
    from ganforge.watermark.store import find_decoder, load_decoder, load_images
    from ganforge.watermark.verify import format_p, verify

    if not (0 < args.alpha < 1):
        raise GanforgeError(f"--alpha must lie in (0, 1), got {args.alpha}", "pass e.g. --alpha 0.001")
    output = check_output_file(args.output, "output") if args.output else None
    if output is not None and output.suffix.lower() != ".json":
        raise GanforgeError(f"output {output} must end in .json", "e.g. -o verdict.json")
    decoder, own_key, _ = load_decoder(find_decoder(args.run_dir))
    key = parse_key(args.key, decoder.bits) if args.key is not None else own_key
    images = load_images(args.images, decoder.in_shape)
    res = verify(decoder, key, images)
    n, k = len(images), decoder.bits
    source = "given with --key" if args.key is not None else "the run's own"
    print(f"{n} image{'s' * (n != 1)} from {args.images} against key {format_key(key)} ({k} bits, {source})")
    if n == 1:
        m = int(res.matches[0])
        print(f"recovered key  {format_key(res.recovered)}")
        print(f"bit accuracy   {m / k:.4f} ({m}/{k} bits match)")
        print(f"p-value        {format_p(float(res.p_values[0]))} (chance that an image without the key "
              f"matches >= {m} of {k} bits)")
    else:
        acc = res.matches.double() / k
        agree = int((res.recovered == key).sum())
        print(f"recovered key  {format_key(res.recovered)} (bitwise majority; {agree}/{k} bits match)")
        print(f"bit accuracy   {res.bit_accuracy:.4f} (mean; per image min {float(acc.min()):.3f}, "
              f"median {float(acc.median()):.3f})")
        together = format_p(res.set_p_value, res.set_log10_p)
        print(f"p-value        median per image {format_p(float(res.p_values.median()))}; all {n} images "
              f"together {together} ({int(res.matches.sum())}/{n * k} bits)")
        best = 0.5 ** k  # the p-value of an image that matches every bit
        note = f" (with {k} bits no image gets below p = {best:.3g})" if best >= args.alpha else ""
        print(f"flagged        {res.flagged(args.alpha)}/{n} images with p < {args.alpha:g}{note}")
    if output is not None:
        payload = {"images": str(args.images), "n": n, "bits": k, "key": key_to_bits(key),
                   "recovered": key_to_bits(res.recovered), "bit_accuracy": res.bit_accuracy,
                   "set_p_value": res.set_p_value, "set_log10_p_value": res.set_log10_p,
                   "alpha": args.alpha, "flagged": res.flagged(args.alpha),
                   "per_image": [{"matches": int(m), "p_value": float(p)}
                                 for m, p in zip(res.matches, res.p_values, strict=True)]}
        atomic_write_text(output, json.dumps(payload, indent=2) + "\n")
        print(f"wrote {output}")
    return 0


ACTIONS = {"embed": _embed, "verify": _verify}


def cmd_watermark(args: argparse.Namespace) -> int:
    """Run the ``watermark`` action parsed by :func:`add_watermark_parser`; returns the exit status."""
    return ACTIONS[args.watermark_action](args)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ganforge.watermark.cli ACTION ...``: the ``watermark`` command on its own."""
    return run_alone("watermark", add_watermark_parser, cmd_watermark, "GAN watermarking.", argv)


if __name__ == "__main__":
    sys.exit(main())
