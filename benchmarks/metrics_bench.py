"""Time and peak memory of ganforge's PRDC and FID against the reference implementations.

Cases: N x N features (real and generated, both N) for N in {10k, 50k} and d in {64, 2048},
Gaussian features (float32; generated = shifted and scaled). Each measurement runs in its own
subprocess so its peak resident memory (ru_maxrss, which includes Python, torch and the feature
arrays themselves) is its own. References, in the same run where they fit in memory:

* PRDC: the ``prdc`` package (``compute_prdc`` called with k=3 for precision/recall and k=5 for
  density/coverage, as ganforge reports them); it holds three N x N float32 distance matrices, so
  it is skipped at 50k (3 x 10 GB).
* FID: pytorch-fid's recipe (``np.cov`` + ``scipy.linalg.sqrtm(sigma1 @ sigma2)``).

    python benchmarks/metrics_bench.py [--quick] [--threads 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_result  # noqa: E402


def features(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = torch.randn(n, d, generator=g) * 1.02 + 0.01
    return x.numpy(), y.numpy()


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(spec: dict) -> dict:
    """Runs inside the child process."""
    torch.set_num_threads(spec["threads"])
    x, y = features(spec["n"], spec["d"], 0)
    import scipy.linalg
    from prdc import compute_prdc

    from ganforge.metrics.fid import fid_from_features
    from ganforge.metrics.prdc import prdc

    base = rss_mb()
    start = time.perf_counter()
    if spec["what"] == "prdc_ganforge":
        out = prdc(torch.from_numpy(x), torch.from_numpy(y))
    elif spec["what"] == "prdc_package":
        with contextlib.redirect_stdout(io.StringIO()):
            a, b = compute_prdc(x, y, 3), compute_prdc(x, y, 5)
        out = {"precision": float(a["precision"]), "recall": float(a["recall"]),
               "density": float(b["density"]), "coverage": float(b["coverage"])}
    elif spec["what"] == "fid_ganforge":
        out = {"fid": fid_from_features(torch.from_numpy(x), torch.from_numpy(y))}
    else:  # fid_reference: pytorch-fid's recipe
        xd, yd = x.astype(np.float64), y.astype(np.float64)
        mu1, mu2 = xd.mean(0), yd.mean(0)
        s1, s2 = np.cov(xd, rowvar=False), np.cov(yd, rowvar=False)
        covmean = scipy.linalg.sqrtm(s1.dot(s2))
        covmean = covmean.real if np.iscomplexobj(covmean) else covmean
        diff = mu1 - mu2
        out = {"fid": float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))}
    seconds = time.perf_counter() - start
    return {**spec, "seconds": seconds, "peak_rss_mb": rss_mb(), "rss_before_mb": base, "result": out}


def measure(spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        return {**spec, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2k and 5k features only (smoke run)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--only", choices=("prdc", "fid"),
                        help="measure one metric (results go to metrics_bench_<metric>.json)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(json.loads(args.child))))
        return
    sizes = [2000, 5000] if args.quick else [10_000, 50_000]
    rows = []
    for n in sizes:
        for d in (64, 2048):
            whats = ["prdc_ganforge", "fid_ganforge", "fid_reference"]
            if n <= 10_000:
                whats.insert(1, "prdc_package")
            if args.only:
                whats = [w for w in whats if w.startswith(args.only)]
            for what in whats:
                row = measure({"what": what, "n": n, "d": d, "threads": args.threads}, args.timeout)
                print(json.dumps(row), flush=True)
                rows.append(row)
    table = []
    for row in rows:
        res = row.get("result", {})
        table.append({"what": row["what"], "n": row["n"], "d": row["d"], "seconds": row.get("seconds"),
                      "peak_rss_mb": row.get("peak_rss_mb"), "features_rss_mb": row.get("rss_before_mb"),
                      "values": " ".join(f"{k}={v:.6g}" for k, v in res.items()) or row.get("error")})
    speedups = {}
    for n in sizes:
        for d in (64, 2048):
            for metric, ref in (("prdc", "prdc_package"), ("fid", "fid_reference")):
                ours = next((r for r in rows if r["what"] == f"{metric}_ganforge" and r["n"] == n
                             and r["d"] == d and "seconds" in r), None)
                theirs = next((r for r in rows if r["what"] == ref and r["n"] == n and r["d"] == d
                               and "seconds" in r), None)
                if ours and theirs:
                    a, b = ours["result"], theirs["result"]
                    rel = max(abs(a[k] - b[k]) / max(abs(b[k]), 1e-12) for k in a)
                    speedups[f"{metric}_{n}x{d}"] = {"speedup": theirs["seconds"] / ours["seconds"],
                                                     "max_relative_difference": rel}
    print_table(table, ["what", "n", "d", "seconds", "peak_rss_mb", "features_rss_mb", "values"])
    for key, val in speedups.items():
        print(f"{key}: {val['speedup']:.2f}x faster, "
              f"max relative difference {val['max_relative_difference']:.2e}")
    name = "metrics_bench" + (f"_{args.only}" if args.only else "") + ("_quick" if args.quick else "")
    path = write_result(name, {"threads": args.threads, "rows": rows, "speedups": speedups})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
