"""Adversarial neural cryptography (Abadi and Andersen, 2016): how often Alice and Bob learn to
hide a 16-bit plaintext from Eve, at a CPU budget of about 80 s of one thread per run.

Protocol (``ganforge.theory.crypto``; the same settings as ``ganforge theory crypto``):
* Alice, Bob, Eve: the paper's mix-and-transform networks; Eve has one more FC layer.
* Adversarial training: Adam, lr 0.0008, minibatch 512 (the paper: 4096), 7,000 Alice/Bob steps,
  two Eve minibatches per Alice/Bob step; losses L_Eve = E[d(P, P_Eve)] and
  L_AB = E[d(P, P_Bob)] + (8 - L_Eve)^2 / 64, d = L1 distance / 2 = bits wrong (of 16).
* Evaluation: Alice and Bob frozen, 5 fresh Eves trained from scratch (2,500 steps, minibatch 512)
  against Alice; each Eve's lowest error on 8,192 held-out messages over its checkpoints; the
  best (lowest) of the 5 is the run's Eve.
* ``--loss reference``: Alice and Bob's loss as the authors' TensorFlow code computes it (Eve's
  deviation from 8 bits squared per message, Bob's error per bit) instead of the paper's formula
  (``ganforge.theory.crypto.alice_bob_loss``).
* Success (the paper's criterion): Bob < 0.05 bits wrong and best retrained Eve >= 7.5 bits
  (8 = guessing). Seeds 0-9 (quick: 0-1 with the quick settings).

Measured (results/crypto.json, crypto_reference.json): the paper's formula 0/10 (Bob ~0.007 bits,
best retrained Eve 6.0-7.2 bits), the TensorFlow code's form 8/10; about 75 s of CPU per run.

    python benchmarks/crypto.py [--quick] [--out DIR] [--loss paper|reference]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_result  # noqa: E402
from ganforge.theory import crypto  # noqa: E402

COLUMNS = ["seed", "steps", "batch", "seconds", "cpu_seconds", "bob_bits_wrong", "best_eve_bits_wrong",
           "cotrained_eve_bits_wrong", "success"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, the quick settings")
    parser.add_argument("--out", help="folder for the error-curve PNG (default: a temporary folder)")
    parser.add_argument("--loss", choices=crypto.LOSS_FORMS, default="paper",
                        help="Alice/Bob loss: the paper's formula (default) or the authors' TensorFlow "
                             "code's per-message form; results/crypto[_quick].json or "
                             "crypto_reference[_quick].json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = {**(crypto.QUICK if args.quick else crypto.FULL), "loss": args.loss}
    seeds = 2 if args.quick else cfg["seeds"]
    settings = {k: v for k, v in cfg.items() if k != "seeds"}
    runs, rows = [], []
    for seed in range(seeds):
        r = crypto.run_seed(seed, **settings)
        runs.append(r)
        rows.append({c: round(r[c], 4) if isinstance(r[c], float) else r[c] for c in COLUMNS})
        rows[-1]["retrained_eves"] = [round(e, 3) for e in r["retrained_eve_bits_wrong"]]
        print(rows[-1], flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        res = crypto.run(out, quick=args.quick, runs=runs)
        if args.out:
            fig = res["figures"][0]
            fig.replace(fig.with_name(f"crypto_errors_{args.loss}.png"))
    print()
    print_table(rows, COLUMNS)
    n = res["numbers"]
    print(f"\nsuccess rate {n['success_rate']:.2f} over {seeds} seeds; "
          f"{n['seconds_per_run']:.0f} s wall, {n['cpu_seconds_per_run']:.0f} s CPU per run")
    for c in res["checks"]:
        status = {True: "PASS", False: "FAIL", None: "reported"}[c["passed"]]
        print(f"  {c['check']}: {c['value']:.4g} (target {c['target']}) {status}")
    every = max(len(runs[0]["bob_curve"]) // 200, 1)
    payload = {
        "quick": args.quick, "threads": 1, "loss": args.loss, "settings": {**settings, "lr": crypto.LR,
                                                        "eve_steps_per_step": crypto.EVE_STEPS_PER_STEP,
                                                        "eval_messages": crypto.EVAL_BATCH},
        "criterion": {"bob_below_bits": crypto.BOB_TARGET, "best_eve_at_least_bits": crypto.EVE_TARGET},
        "rows": rows,
        "success_rate": n["success_rate"], "seconds_per_run": n["seconds_per_run"],
        "cpu_seconds_per_run": n["cpu_seconds_per_run"],
        "checks": res["checks"],
        "curves_seed0": {"every": every, "bob": runs[0]["bob_curve"][::every],
                         "eve": runs[0]["eve_curve"][::every]},
    }
    name = "crypto" if args.loss == "paper" else f"crypto_{args.loss}"
    path = write_result(f"{name}_quick" if args.quick else name, payload)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
