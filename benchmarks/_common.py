"""Shared helpers for the benchmark scripts: machine info, result files, tables, training a
preset."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).resolve().parent / "results"
SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
SHARED_FASHION = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fashion-mnist"


def cpu_slug() -> str:
    """``intel-xeon``, ``amd-epyc``...: the CPU's vendor and family, for per-machine result files."""
    import re

    words = re.findall(r"[a-z]+", machine_info()["cpu"].lower().replace("(r)", "").replace("(tm)", ""))
    return "-".join(w for w in words if w not in ("processor", "cpu", "core"))[:40] or "cpu"


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, cwd=Path(__file__).parent, check=False).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpu": cpu, "logical_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(), "torch": torch.__version__,
        "platform": platform.platform(), "cuda": torch.cuda.get_device_name(0)
        if torch.cuda.is_available() else None, "git_commit": commit,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine_info(), **payload}, indent=2) + "\n")
    return path


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    print("  ".join("-" * widths[c] for c in columns))
    for row in rows:
        print("  ".join(_fmt(row.get(c)).ljust(widths[c]) for c in columns))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def print_checks(checks: dict[str, bool]) -> None:
    """One ``  name: yes|NO`` line per check."""
    for name, ok in checks.items():
        print(f"  {name}: {'yes' if ok else 'NO'}")


def fashion_overrides(limit: int | None) -> dict[str, Any]:
    """Config overrides for the Fashion-MNIST presets: the shared copy of the data when there is
    one (no download), and ``data.limit`` when ``limit`` is given."""
    over: dict[str, Any] = {}
    if SHARED_FASHION.is_dir():
        over["data.root"] = str(SHARED_FASHION)
        over["data.download"] = False
    if limit is not None:
        over["data.limit"] = limit
    return over


def train_preset(preset: str, work: Path, overrides: dict[str, Any]) -> tuple[Path, float, float]:
    """Train ``preset`` with ``overrides`` into ``work/preset``; (run dir, wall s, CPU s)."""
    from ganforge import load_config
    from ganforge.train import Trainer

    cfg = load_config(preset, overrides=overrides)
    run_dir = work / preset
    wall, cpu = time.perf_counter(), time.process_time()
    Trainer(cfg, run_dir, progress=False).fit()
    return run_dir, time.perf_counter() - wall, time.process_time() - cpu


def train_for_budget(preset: str, overrides: dict[str, Any], budget: float,
                     run_dir: Path) -> tuple[Any, dict[str, Any]]:
    """Train ``preset`` with ``overrides`` into ``run_dir`` for ``budget`` CPU seconds of this
    (one-thread) process, one ``train_step`` at a time; (the Trainer, steps and CPU/wall seconds)."""
    from ganforge import load_config
    from ganforge.train import Trainer

    torch.set_num_threads(1)
    trainer = Trainer(load_config(preset, overrides=overrides), run_dir, progress=False)
    spent, start_wall = 0.0, time.perf_counter()
    while spent < budget:
        start = time.process_time()
        trainer.train_step()
        spent += time.process_time() - start
    return trainer, {"steps": trainer.step, "train_cpu_seconds": spent,
                     "train_wall_seconds": time.perf_counter() - start_wall}


def budget_parser(description: str, quick: str, models: list[str]) -> argparse.ArgumentParser:
    """The options of a benchmark that trains ``models`` for a CPU-time budget each, with seeds:
    ``--quick`` (``quick`` says what it runs), ``--budget``, ``--seeds``, ``--jobs``, ``--models``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--budget", type=float, default=None,
                        help="CPU seconds of training per model and seed")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--jobs", type=int, default=2, help="processes at a time (one thread each)")
    parser.add_argument("--models", default=",".join(models), help=f"comma-separated: {','.join(models)}")
    return parser
