"""``ganforge latent RUN ACTION ...``: latent-space pictures of a trained run.

Actions: ``interpolate`` (PNG strip or animated GIF along a lerp/slerp path), ``arithmetic``
(mean(a) - mean(b) + mean(c)), ``truncate`` (psi and threshold truncation, one row per setting),
``neighbours`` (nearest real samples of generated ones) and ``manifold`` (the decoded grid over a
2-d latent plane). Wiring into the main CLI is two
calls: ``add_latent_parser(sub)`` in ``build_parser`` and ``"latent": cmd_latent`` in the
command table. Every user mistake raises :class:`~ganforge.errors.GanforgeError` before any file
is written, and files are written atomically.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from ganforge._io import check_output_file
from ganforge._subcommand import run_alone
from ganforge.errors import GanforgeError

DEFAULT_PSIS = (1.0, 0.7, 0.5, 0.0)
#: Generated samples drawn as the grey background of 2-D plots.
BACKGROUND_N = 1000
#: Real samples drawn from an infinite (toy 2-D) dataset for ``neighbours``.
STREAM_REAL_N = 10_000


def add_latent_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``latent`` command (with its four actions) to ``subparsers``; returns its parser."""
    latent = subparsers.add_parser(
        "latent", help="latent-space pictures: interpolate, arithmetic, truncate, neighbours, manifold",
        description="Latent-space tools for a trained run (see docs/latent.md).")
    latent.add_argument("run_dir", metavar="RUN", help="run directory written by `ganforge train`")
    actions = latent.add_subparsers(dest="latent_action", metavar="ACTION", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-o", "--output", required=True, help="output file")
    common.add_argument("--ema", action="store_true", help="use the EMA generator")
    common.add_argument("--checkpoint", default="final", help="final | last | best | FILE.pt")
    common.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | mps (default cpu)")
    batch = argparse.ArgumentParser(add_help=False)
    batch.add_argument("--batch-seed", type=int, default=0, metavar="S",
                       help="--seed of the `ganforge sample` grid the indices refer to (default 0)")
    batch.add_argument("--batch-n", type=int, default=64, metavar="N",
                       help="-n of the `ganforge sample` grid the indices refer to (default 64)")

    interp = actions.add_parser(
        "interpolate", parents=[common, batch], help="walk between codes: PNG strip or animated GIF",
        description="Interpolate between keyframe codes; -o FILE.png writes a strip, FILE.gif an "
                    "animation.")
    which = interp.add_mutually_exclusive_group()
    which.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                       help="keyframe codes by seed (default: 0 1)")
    which.add_argument("--indices", type=int, nargs="+", metavar="I",
                       help="keyframe codes by index in the `ganforge sample -n BATCH_N --seed "
                            "BATCH_SEED` grid")
    interp.add_argument("--method", choices=("slerp", "lerp"), default="slerp",
                        help="spherical (default) or linear interpolation")
    interp.add_argument("--steps", type=int, default=10, help="points per segment, both ends included "
                                                              "(default 10)")
    interp.add_argument("--space", choices=("z", "w"), default="z",
                        help="interpolate the codes z (default) or, for the style-based families, "
                             "their styles w = mapping(z), linearly (one noise draw for the strip)")
    interp.add_argument("--loop", action="store_true", help="return to the first keyframe")
    interp.add_argument("--duration", type=int, default=100, metavar="MS",
                        help="GIF frame duration in milliseconds (default 100)")
    interp.add_argument("--class", dest="label", type=int, metavar="K",
                        help="conditional runs: only class K (default: one path per class)")

    arith = actions.add_parser(
        "arithmetic", parents=[common, batch], help="mean(a) - mean(b) + mean(c) on averaged codes",
        description="Vector arithmetic on averaged codes (Radford et al. 2016). Rows: group a, b, c "
                    "(samples, then the sample of the mean code in the last column); last row: "
                    "variations of the result, then G(result).")
    for g in "abc":
        arith.add_argument(f"--{g}", type=int, nargs="+", required=True, metavar="N",
                           help=f"the codes of group {g}: seeds (or indices with --indices)")
    arith.add_argument("--indices", action="store_true",
                       help="read --a/--b/--c as indices into the `ganforge sample` grid")
    labels = arith.add_mutually_exclusive_group()
    labels.add_argument("--class", dest="label", type=int, metavar="K",
                        help="conditional runs: one class for every group")
    labels.add_argument("--classes", type=int, nargs=3, metavar=("KA", "KB", "KC"),
                        help="class labels of groups a, b, c; the result uses KC")
    arith.add_argument("--variations", type=int, metavar="V",
                       help="jittered copies of the result (default: fill the row; 8 for points)")
    arith.add_argument("--noise", type=float, default=0.25,
                       help="variations add U[-noise, noise] to every entry (default 0.25)")
    arith.add_argument("--seed", type=int, default=0, help="seed of the variations (default 0)")

    trunc = actions.add_parser(
        "truncate", parents=[common], help="the truncation trick: one row per psi / threshold",
        description="Render the same codes (those of `ganforge sample -n N --seed SEED`) at several "
                    "truncation settings, one row each: psi rows first, then threshold rows.")
    trunc.add_argument("--psi", type=float, nargs="+", metavar="PSI",
                       help="z' = psi z, psi in [0, 1] (default 1.0 0.7 0.5 0.0 without --threshold)")
    trunc.add_argument("--threshold", type=float, nargs="+", metavar="C",
                       help="BigGAN resampling of entries with |z_i| > C")
    trunc.add_argument("-n", type=int, help="codes per row (default 8; 1000 for points)")
    trunc.add_argument("--seed", type=int, default=0, help="seed of the codes and the resampling")
    trunc.add_argument("--class", dest="label", type=int, metavar="K",
                       help="conditional runs: only class K (default: the columns cycle the classes)")

    near = actions.add_parser(
        "neighbours", parents=[common], help="nearest real samples of generated ones (memorisation)",
        description="For the samples of `ganforge sample -n N --seed SEED`, find the k nearest real "
                    "samples (L2 in pixel or point space); rows: generated, then its neighbours.")
    near.add_argument("-n", type=int, help="generated samples (default 8; 64 for points)")
    near.add_argument("-k", type=int, default=5, help="neighbours per sample (default 5)")
    near.add_argument("--seed", type=int, default=0, help="seed of the generated samples")
    near.add_argument("--data", action="append", default=[], metavar="KEY=VALUE",
                      help="override the run's data section, e.g. --data root=DIR (repeatable)")
    near.add_argument("--real-n", type=int, metavar="N",
                      help=f"real samples searched (default: all; {STREAM_REAL_N} for toy 2-D data)")
    near.add_argument("--class", dest="label", type=int, metavar="K",
                      help="conditional runs: generate class K and search real samples of class K "
                           "(default: classes cycled, all real samples)")
    mix = actions.add_parser(
        "mix", parents=[common], help="style mixing of a style-based run (StyleGAN, StyleGAN2)",
        description="Style mixing (Karras et al. 2019, Fig. 3): row 0 holds the column sources, column "
                    "0 the row sources; cell (i, j) is the column source with the --layers styles "
                    "of row source i (coarse: 4-8 px, middle, fine: the last resolution).")
    mix.add_argument("--rows", type=int, nargs="+", default=[0, 1, 2], metavar="SEED",
                     help="seeds of the row sources (default 0 1 2)")
    mix.add_argument("--cols", type=int, nargs="+", default=[10, 11, 12, 13, 14], metavar="SEED",
                     help="seeds of the column sources (default 10..14)")
    mix.add_argument("--layers", default="coarse",
                     help="coarse | middle | fine, or style indices such as 0,1,2 (default coarse)")
    mix.add_argument("--truncation", type=float, default=1.0, metavar="PSI",
                     help="psi in (0, 1] for every source (default 1: none)")
    mix.add_argument("--seed", type=int, default=0, help="seed of the one noise draw (default 0)")

    mani = actions.add_parser(
        "manifold", parents=[common], help="a 2-d latent space: the decoded grid over the plane",
        description="Decode an n x n grid of codes over a 2-d latent plane (Kingma & Welling 2014, "
                    "Fig. 4): Gaussian quantiles by default, or an even grid on [-extent, extent]^2.")
    mani.add_argument("-n", type=int, default=20, help="grid points per side (default 20)")
    mani.add_argument("--extent", type=float, help="even grid on [-extent, extent]^2 instead of quantiles")
    return latent


# --------------------------------------------------------------------------- helpers


def _output(path: str, suffixes: tuple[str, ...], action: str) -> Path:
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        raise GanforgeError(f"output {out} of `latent {action}` must end in {' or '.join(suffixes)}",
                            f"e.g. -o {action}{suffixes[-1]}")
    check_output_file(out, f"output of `latent {action}`")
    return out


def _at_least(value: int | None, low: int, flag: str, example: str) -> None:
    if value is not None and value < low:
        raise GanforgeError(f"{flag} must be at least {low}, got {value}", f"pass e.g. {flag} {example}")


def _load(args: argparse.Namespace, action: str = "", *, label: int | None = None,
          styles: str | None = None, kind_output: Path | None = None):
    """The run and the generator to draw with. One-line errors (:func:`require`): a run without
    a latent space; ``label`` (``--class``) on a run that is not class-conditional; ``styles``
    (what needs them) on a run without a style-based generator; samples that are neither images
    nor 2-D points, unless ``kind_output`` is a file the run's data kind writes (a molecule run's
    ``.smi``: :func:`_write_with_kind`)."""
    from ganforge.train.algorithms.base import ClassConditioned, LatentSpace, StyleMixing, require
    from ganforge.train.run import load_run

    run = load_run(args.run_dir, args.checkpoint, args.device)
    require(run, LatentSpace, f"draw `latent {action}` pictures" if action else "draw latent pictures")
    if label is not None:
        require(run, ClassConditioned, f"draw class {label}", "drop --class")
    if styles is not None:
        require(run, StyleMixing, styles)
    G = run.pick_generator(args.ema)
    if _draws_pictures(G):
        return run, G
    if kind_output is None:
        raise GanforgeError(f"latent pictures need images (1 or 3, H, W) or 2-D points, but this run "
                            f"generates shape {tuple(G.out_shape)}", "use a run on images or 2-D points")
    run.kind.writer(kind_output)  # one-line error for a file this kind does not write
    return run, G


def _draws_pictures(G) -> bool:
    """Whether G's samples are what the latent pictures show: images (1 or 3, H, W) or 2-D points."""
    shape = tuple(G.out_shape)
    return (len(shape) == 3 and shape[0] in (1, 3)) or shape == (2,)


def _is_points(G) -> bool:
    return tuple(G.out_shape) == (2,)


def _background(G, label: int | None) -> torch.Tensor:
    """Ordinary samples for the grey cloud of 2-D plots (classes cycled on a conditional run)."""
    from ganforge.latent.codes import class_labels, generate, seeded_batch

    return generate(G, seeded_batch(G, BACKGROUND_N, 0), class_labels(G, label, BACKGROUND_N))


def _blank(G) -> torch.Tensor:
    return torch.full((1, *G.out_shape), -1.0)


# --------------------------------------------------------------------------- actions


def _interpolate(args: argparse.Namespace) -> int:
    from ganforge.latent.codes import (
        check_label,
        codes_from_batch,
        codes_from_seeds,
        generate,
        num_classes_of,
    )
    from ganforge.latent.interpolate import interpolation_path
    from ganforge.latent.output import plot_path_2d, save_gif, save_path_gif_2d, save_rows

    pictures = (".png", ".gif")
    out = check_output_file(Path(args.output), "output of `latent interpolate`")  # its suffix: once loaded
    _at_least(args.steps, 2, "--steps", "10")
    _at_least(args.duration, 1, "--duration", "100")
    _at_least(args.batch_n, 1, "--batch-n", "64")
    keys = args.indices if args.indices is not None else (args.seeds or [0, 1])
    if len(keys) < 2:
        raise GanforgeError(f"interpolation needs at least 2 keyframes, got {len(keys)}",
                            "pass e.g. --seeds 0 1 (or --indices 3 17)")
    run, G = _load(args, "interpolate", label=args.label,
                   styles="interpolate in W (--space w)" if args.space == "w" else None,
                   kind_output=out)
    if _draws_pictures(G) and out.suffix.lower() not in pictures:
        _output(args.output, pictures, "interpolate")  # raises: images and points are drawn as pictures
    label = check_label(G, args.label)
    if args.indices is not None:
        codes = codes_from_batch(G, args.indices, args.batch_n, args.batch_seed)
    else:
        codes = codes_from_seeds(G, keys)
    if args.loop:
        codes = torch.cat([codes, codes[:1]])
    if args.space == "w":
        return _interpolate_w(args, out, run, G, codes)
    z = interpolation_path(codes, args.steps, args.method)
    # One path per class on a conditional run without --class (the same codes in every class).
    classes = [label] if label is not None or num_classes_of(G) is None else list(
        range(num_classes_of(G)))
    x = torch.stack([generate(G, z, c) for c in classes])  # (P, T, *out_shape)
    names = None if classes == [None] else [f"class {c}" for c in classes]
    keyframes = [k * (args.steps - 1) for k in range(len(codes))]
    if not _draws_pictures(G):  # e.g. molecules: the kind's own writer
        return _write_with_kind(run, x, out, f"{args.method} through {len(codes)} keyframes")
    if out.suffix.lower() == ".gif":
        frames = x[:, :-1] if args.loop else x  # a looping GIF shows the first keyframe once
        if _is_points(G):
            save_path_gif_2d(frames, out, _background(G, label), duration=args.duration)
        else:
            save_gif(frames.transpose(0, 1), out, duration=args.duration)
        what = f"a {frames.shape[1]}-frame GIF"
    else:
        if _is_points(G):
            plot_path_2d(x, out, _background(G, label), keyframes, labels=names,
                         title=f"{args.method} through {len(codes)} keyframes, step {run.step}")
            what = f"a plot of {x.shape[1]} points along the path"
        else:
            save_rows(x, out)
            what = f"a strip of {x.shape[1]} samples"
    per_class = f", {len(classes)} classes" if names and len(classes) > 1 else ""
    print(f"wrote {what} ({args.method}, {len(codes)} keyframes{per_class}, step {run.step}) to {out}")
    return 0


def _write_with_kind(run, x: torch.Tensor, out: Path, what: str) -> int:
    """Samples ``x`` (paths, steps, *shape) of a run that is neither images nor points, written
    path after path by its data kind's writer of ``out`` (a molecule run's ``.smi``, ``.png``)."""
    from ganforge.data.kinds import Samples

    flat = x.flatten(0, 1)
    samples = Samples(flat, run.algorithm.sample_arrays(), title=f"{what}, step {run.step}")
    run.kind.writer(out).write(samples, out)
    print(f"wrote {len(flat)} samples along the path ({what}, step {run.step}) to {out}")
    return 0


def _interpolate_w(args: argparse.Namespace, out: Path, run, G, codes: torch.Tensor) -> int:
    """``interpolate --space w``: the keyframes' styles w joined by straight lines in W."""
    from ganforge.latent.interpolate import interpolation_path
    from ganforge.latent.output import save_gif, save_rows
    from ganforge.latent.style import map_to_w, synthesise_w

    G.eval()
    w = interpolation_path(map_to_w(G, codes), args.steps, "lerp")
    x = synthesise_w(G, w, torch.Generator().manual_seed(0))
    if out.suffix.lower() == ".gif":
        save_gif((x[:-1] if args.loop else x)[:, None], out, duration=args.duration)
    else:
        save_rows(x[None], out)
    print(f"wrote {len(x)} images along straight lines in W through {len(codes)} keyframes "
          f"(step {run.step}) to {out}")
    return 0


def _mix(args: argparse.Namespace) -> int:
    from ganforge.latent.codes import codes_from_seeds
    from ganforge.latent.output import save_rows
    from ganforge.latent.style import check_style_generator, style_layers, style_mixing_grid
    from ganforge.models.base import check_truncation

    out = _output(args.output, (".png",), "mix")
    layers: str | list[int] = args.layers
    if args.layers not in ("coarse", "middle", "fine"):
        try:
            layers = [int(i) for i in args.layers.split(",")]
        except ValueError:
            raise GanforgeError(f"--layers {args.layers!r} is not coarse, middle, fine or indices",
                                "pass e.g. --layers coarse or --layers 0,1,2") from None
    run, G = _load(args, "mix", styles="mix styles (latent mix)")
    check_style_generator(G).eval()
    check_truncation(G, args.truncation)
    picked = style_layers(G, layers)
    grid = style_mixing_grid(G, codes_from_seeds(G, args.rows), codes_from_seeds(G, args.cols), picked,
                             psi=args.truncation, generator=torch.Generator().manual_seed(args.seed))
    save_rows(grid, out)
    print(f"wrote a {len(args.rows)} x {len(args.cols)} style-mixing grid (styles {list(picked)} "
          f"from the rows; step {run.step}) to {out}")
    return 0


def _arithmetic(args: argparse.Namespace) -> int:
    from ganforge.latent.arithmetic import latent_arithmetic
    from ganforge.latent.codes import check_label, codes_from_batch, codes_from_seeds, num_classes_of
    from ganforge.latent.output import plot_arithmetic_2d
    from ganforge.viz import save_grid

    out = _output(args.output, (".png",), "arithmetic")
    _at_least(args.batch_n, 1, "--batch-n", "64")
    _at_least(args.variations, 0, "--variations", "8")
    if args.noise < 0:
        raise GanforgeError(f"--noise must be non-negative, got {args.noise}", "pass e.g. --noise 0.25")
    run, G = _load(args, "arithmetic", label=args.label if args.classes is None else args.classes[0])
    if args.classes is not None:
        labels = dict(zip("abc", args.classes, strict=True))
    else:
        labels = dict.fromkeys("abc", args.label)
    for g, value in labels.items():
        check_label(G, value, "--class" if args.classes is None else f"--classes (group {g})")
    if num_classes_of(G) is not None and labels["a"] is None:
        raise GanforgeError(f"run {run.path} is class-conditional, so each group needs a class",
                            f"pass --class K or --classes KA KB KC (0..{num_classes_of(G) - 1})")
    if args.indices:
        groups = [codes_from_batch(G, getattr(args, g), args.batch_n, args.batch_seed) for g in "abc"]
    else:
        groups = [codes_from_seeds(G, getattr(args, g)) for g in "abc"]
    width = max(len(z) for z in groups) + 1
    n_var = args.variations if args.variations is not None else (8 if _is_points(G) else width - 1)
    res = latent_arithmetic(G, *groups, labels=labels, n_variations=n_var, noise=args.noise,
                            seed=args.seed)
    if _is_points(G):
        plot_arithmetic_2d(res.samples, res.mean_samples, res.result_sample, res.variation_samples,
                           out, _background(G, labels["c"]))
    else:
        width = max(width, n_var + 1)
        rows = []
        for g in "abc":
            fill = width - 1 - len(res.samples[g])
            rows += [res.samples[g], *([_blank(G)] * fill), res.mean_samples[g]]
        rows += [res.variation_samples, *([_blank(G)] * (width - 1 - n_var)), res.result_sample]
        save_grid(torch.cat(rows), out, nrow=width)
    print(f"wrote mean(a) - mean(b) + mean(c) over {' / '.join(str(len(z)) for z in groups)} codes, "
          f"with {n_var} variations (step {run.step}) to {out}")
    return 0


def _truncate(args: argparse.Namespace) -> int:
    from ganforge.latent.codes import class_labels, generate, seeded_batch
    from ganforge.latent.output import plot_panels_2d, save_rows
    from ganforge.latent.truncation import check_psi, check_threshold, truncation_codes

    out = _output(args.output, (".png",), "truncate")
    psis = args.psi if args.psi is not None else ([] if args.threshold else list(DEFAULT_PSIS))
    thresholds = args.threshold or []
    for p in psis:
        check_psi(p)
    for c in thresholds:
        check_threshold(c)
    _at_least(args.n, 1, "-n", "8")
    run, G = _load(args, "truncate", label=args.label)
    n = args.n or (1000 if _is_points(G) else 8)
    y = class_labels(G, args.label, n)  # a conditional run without --class: classes cycled
    names, codes = truncation_codes(seeded_batch(G, n, args.seed), psis, thresholds, seed=args.seed)
    rows = torch.stack([generate(G, row, y) for row in codes])
    if _is_points(G):
        plot_panels_2d(list(zip(names, rows, strict=True)), out)
    else:
        save_rows(rows, out)
    print(f"wrote {len(names)} rows of {n} samples ({', '.join(names)}; step {run.step}) to {out}")
    return 0


def _neighbours(args: argparse.Namespace) -> int:
    from ganforge.config import parse_override
    from ganforge.data.base import StreamDataset, build_dataset
    from ganforge.latent.codes import check_label, class_labels, generate, seeded_batch
    from ganforge.latent.neighbours import nearest_real, real_neighbour_baseline, save_neighbours

    out = _output(args.output, (".png",), "neighbours")
    _at_least(args.n, 1, "-n", "8")
    _at_least(args.k, 1, "-k", "5")
    _at_least(args.real_n, 2, "--real-n", "10000")
    options = dict(parse_override(item) for item in args.data)
    run, G = _load(args, "neighbours", label=args.label)
    label = check_label(G, args.label)
    dataset = build_dataset({**run.config.data, **options})
    if isinstance(dataset, StreamDataset):
        dataset = dataset.materialise(args.real_n or STREAM_REAL_N, seed=args.seed)
    real, keep = dataset.x, torch.arange(len(dataset.x))
    if label is not None and dataset.y is not None:
        keep = keep[dataset.y == label]
    if args.real_n is not None and args.real_n < len(keep):
        pick = torch.randperm(len(keep), generator=torch.Generator().manual_seed(args.seed))
        keep = keep[pick[: args.real_n].sort().values]
    if len(keep) == 0:
        raise GanforgeError(f"the real data has no samples of class {label}", "pick another --class")
    real = real[keep]
    if tuple(real.shape[1:]) != tuple(G.out_shape):
        raise GanforgeError(f"the real data has shape {tuple(real.shape[1:])} but the generator makes "
                            f"{tuple(G.out_shape)}", "point --data at the data the run was trained on")
    if args.k > len(real):
        raise GanforgeError(f"-k {args.k} exceeds the {len(real)} real samples", "pass a smaller -k")
    n = args.n or (64 if _is_points(G) else 8)
    fake = generate(G, seeded_batch(G, n, args.seed), class_labels(G, label, n))
    idx, dist = nearest_real(fake, real, args.k)
    baseline = real_neighbour_baseline(real, seed=args.seed) if len(real) > 1 else float("nan")
    save_neighbours(fake, real, idx, out)
    print(f"{n} generated samples (seed {args.seed}, step {run.step}) vs {len(real)} real samples; "
          f"median real-to-nearest-real distance {baseline:.4g}")
    for i in range(min(n, 16)):
        j, d = int(keep[idx[i, 0]]), float(dist[i, 0])
        ratio = f" ({d / baseline:.2f} x baseline)" if baseline > 0 else ""
        print(f"  sample {i:3d}: nearest real #{j} at {d:.4g}{ratio}" + ("  <- exact copy" if d == 0 else ""))
    if n > 16:
        print(f"  ... ({n - 16} more)")
    copies = int((dist[:, 0] == 0).sum())
    if copies:
        print(f"warning: {copies} generated sample(s) are exact copies of real samples")
    print(f"wrote {n} rows (generated, then {args.k} nearest real) to {out}")
    return 0


def _manifold(args: argparse.Namespace) -> int:
    from ganforge.latent.manifold import latent_manifold, manifold_codes
    from ganforge.viz import save_grid

    out = _output(args.output, (".png",), "manifold")
    manifold_codes(args.n, args.extent)  # argument checks before loading anything
    run, G = _load(args, "manifold")
    if _is_points(G):
        raise GanforgeError("the manifold figure decodes images, and this run generates 2-D points",
                            "use `latent interpolate` or `latent truncate` on a 2-D run")
    save_grid(latent_manifold(G, args.n, args.extent), out, nrow=args.n)
    grid = "Gaussian quantiles" if args.extent is None else f"[-{args.extent}, {args.extent}]^2"
    print(f"wrote the {args.n} x {args.n} manifold ({grid}, step {run.step}) to {out}")
    return 0


ACTIONS = {"interpolate": _interpolate, "arithmetic": _arithmetic, "truncate": _truncate,
           "neighbours": _neighbours, "manifold": _manifold, "mix": _mix}


def cmd_latent(args: argparse.Namespace) -> int:
    """Run the ``latent`` action parsed by :func:`add_latent_parser`; returns the exit status."""
    return ACTIONS[args.latent_action](args)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ganforge.latent.cli RUN ACTION ...``: the ``latent`` command on its own."""
    return run_alone("latent", add_latent_parser, cmd_latent, "Latent-space tools.", argv)


if __name__ == "__main__":
    sys.exit(main())
