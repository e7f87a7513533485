"""``ganforge board RUNS_DIR``: a read-only dashboard of the run directories below RUNS_DIR.

A run is any folder at most :data:`MAX_DEPTH` levels below RUNS_DIR that holds a ``config.yaml``
(hidden folders and the insides of runs are not searched). The pure functions here list runs and
read their files; :func:`create_board_app` serves them as JSON under ``/api`` plus the static page.

Every path a request names goes through :func:`~ganforge.web.server.confined`, so nothing outside
RUNS_DIR (``..``, absolute paths, links pointing out) is ever read, and run files are confined to
their own run. Nothing is ever written below RUNS_DIR. Damaged files never fail a request: the run
is listed with an ``error`` string instead.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganforge.errors import GanforgeError
from ganforge.web.server import STATIC, confined

if TYPE_CHECKING:
    from starlette.applications import Starlette

MAX_DEPTH = 3
MAX_TEXT_BYTES = 1 << 20         # config.yaml, eval.json: larger is not one of ours
POSITION = ("step", "epoch", "images_seen")
SAMPLE = re.compile(r"^step_(\d+)\.png$")
#: metrics.csv columns written by the evaluation metrics (see ganforge.metrics.registry)
EVAL_COLUMN = re.compile(r"^(fid|kid|is|precision|recall|density|coverage|class_match|intra_fid)_"
                         r"|^(modes|high_quality|reverse_kl|neg_elbo|recon_nll|kl|nll_iwae)$")

Number = float | None


# ---------------------------------------------------------------------------------------------
# finding runs


def is_run(path: Path) -> bool:
    """Whether ``path`` is a folder holding a ``config.yaml`` file."""
    return path.is_dir() and (path / "config.yaml").is_file()


def find_runs(root: Path, max_depth: int = MAX_DEPTH) -> list[str]:
    """The ids (posix paths relative to ``root``, sorted) of the runs at depth 1..``max_depth``
    below ``root``. Hidden folders, the insides of runs, and links leaving ``root`` are skipped."""
    found: list[str] = []
    root = root.resolve()

    def walk(folder: Path, rel: str, depth: int) -> None:
        try:
            entries = sorted(folder.iterdir())
            above = {folder.resolve(), *folder.resolve().parents}
        except (OSError, RuntimeError):
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            child = f"{rel}/{entry.name}" if rel else entry.name
            target = confined(root, child)
            if target is None or not entry.is_dir() or target in above:
                continue  # outside root, not a folder, or a link back up (a loop)
            if is_run(entry):
                found.append(child)
            elif depth < max_depth:
                walk(entry, child, depth + 1)

    walk(root, "", 1)
    return found


def resolve_run(root: Path, run_id: str) -> Path | None:
    """The folder of run ``run_id`` (as listed by :func:`find_runs`), or None for anything else:
    empty, ``.``/``..``/hidden segments, too deep, outside ``root`` after links, not a run."""
    parts = run_id.split("/")
    if not 1 <= len(parts) <= MAX_DEPTH or any(not p or p.startswith(".") or "\\" in p for p in parts):
        return None
    here = root.resolve()
    for i in range(1, len(parts) + 1):  # the same checks as find_runs, one level at a time
        target = confined(root, "/".join(parts[:i]))
        if target is None or not target.is_dir() or target == here or target in here.parents:
            return None
        if i < len(parts) and is_run(target):  # the listing never looks inside a run
            return None
        here = target
    return here if is_run(here) else None


def run_file(run_dir: Path, rel: str) -> Path | None:
    """The file ``rel`` inside ``run_dir`` (links resolved, never leaving it), or None."""
    if any(p in ("", ".", "..") for p in rel.split("/")):
        return None
    path = confined(run_dir, rel)
    return path if path is not None and path.is_file() else None


# ---------------------------------------------------------------------------------------------
# reading run files


def read_text(path: Path | None) -> str | None:
    """The text of ``path`` (undecodable bytes replaced), or None when absent or too large."""
    if path is None:
        return None
    try:
        if path.stat().st_size > MAX_TEXT_BYTES:
            return None
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return None


def read_config(run_dir: Path) -> tuple[dict, str | None]:
    """The parsed ``config.yaml`` of a run and None, or ``({}, error)`` when it cannot be read."""
    import yaml

    text = read_text(run_file(run_dir, "config.yaml"))
    if text is None:
        return {}, "config.yaml cannot be read"
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as err:
        return {}, f"config.yaml is not valid YAML ({str(err).splitlines()[0][:80]})"
    if not isinstance(cfg, dict):
        return {}, "config.yaml is not a mapping"
    return cfg, None


def to_number(cell: str | None) -> Number:
    """A csv cell as a finite float, else None (blank, ``nan``, ``inf``, not a number)."""
    try:
        value = float(cell) if cell not in (None, "") else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_metrics(text: str) -> tuple[dict[str, list[Number]], str | None]:
    """``metrics.csv`` text as columns (header order, one entry per complete row; None for blank or
    non-finite cells) and an error string or None.

    A last line without its newline is a row a live trainer is still writing, so it is dropped.
    Cells that are not numbers become None and are reported in the error; cells beyond the header
    are ignored.
    """
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as err:
        return {}, f"metrics.csv cannot be read as CSV ({err})"
    if not rows:
        return {}, None
    header = rows[0]
    columns: dict[str, list[Number]] = {name: [] for name in header}
    bad = 0
    for row in rows[1:]:
        if not row:
            continue
        for i, name in enumerate(header):
            cell = row[i].strip() if i < len(row) else ""
            value = to_number(cell)
            if value is None and cell and cell.lower().lstrip("+-") not in ("nan", "inf", "infinity"):
                bad += 1
            columns[name].append(value)
    error = f"metrics.csv has {bad} cell(s) that are not numbers" if bad else None
    if "step" not in columns:
        error = "metrics.csv has no step column"
    return columns, error


def read_json(path: Path | None) -> dict | None:
    """A JSON object file, or None when absent, damaged or not an object."""
    text = read_text(path)
    try:
        data = json.loads(text) if text is not None else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def numbers(mapping: Any) -> dict[str, Number]:
    """The entries of ``mapping`` that are numbers, non-finite ones as None."""
    if not isinstance(mapping, dict):
        return {}
    return {str(k): (float(v) if math.isfinite(v) else None) for k, v in mapping.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def eval_columns(columns: dict[str, list[Number]], baseline: dict[str, Number]) -> list[str]:
    """The metric columns that evaluation wrote into metrics.csv (by name, or named in the
    real-vs-real baseline of ``eval_baseline.json``)."""
    return [c for c in columns if c not in POSITION and (c in baseline or EVAL_COLUMN.match(c))]


def last_finite(values: list[Number]) -> Number:
    return next((v for v in reversed(values) if v is not None), None)


def chart_groups(columns: dict[str, list[Number]], evals: list[str]) -> list[dict]:
    """The charts of a run: ``{"title", "columns", "ylog"}`` for the losses, the discriminator
    scores, the gradient norms, the learning rates, each evaluation metric (standard deviations
    left out) and the remaining columns. Empty groups are left out."""
    rest = [c for c in columns if c not in POSITION and c not in evals]
    taken: set[str] = set()

    def pick(test: Any) -> list[str]:
        chosen = [c for c in rest if c not in taken and test(c)]
        taken.update(chosen)
        return chosen

    groups = [
        ("losses", pick(lambda c: c.startswith("loss")), False),
        ("D scores", pick(lambda c: c.endswith("_score") or c.startswith("critic_")), False),
        ("grad norms", pick(lambda c: c.startswith("grad_norm")), True),
        ("learning rates", pick(lambda c: c.startswith("lr_")), False),
        ("seconds per step", pick(lambda c: c == "sec_per_step"), False),
    ]
    groups += [(c, [c], False) for c in evals if "_std_" not in c]
    groups.append(("other", pick(lambda c: True), False))
    return [{"title": t, "columns": cols, "ylog": ylog} for t, cols, ylog in groups if cols]


class MetricsCache:
    """Parsed ``metrics.csv`` files, re-read only when their size or mtime changes (the page polls
    every run every few seconds)."""

    def __init__(self) -> None:
        self._entries: dict[Path, tuple[tuple[int, int], tuple[dict, str | None]]] = {}

    def get(self, run_dir: Path) -> tuple[dict[str, list[Number]], str | None]:
        """The columns and error of :func:`parse_metrics` for a run; ``({}, None)`` without a file."""
        path = run_file(run_dir, "metrics.csv")
        if path is None:
            return {}, None
        try:
            stat = path.stat()
            key = (stat.st_mtime_ns, stat.st_size)
            cached = self._entries.get(path)
            if cached and cached[0] == key:
                return cached[1]
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            return {}, "metrics.csv is not UTF-8 text"
        except OSError as err:
            return {}, f"metrics.csv cannot be read ({err.strerror or err})"
        result = parse_metrics(text)
        self._entries[path] = (key, result)
        return result


def run_mtime(run_dir: Path) -> float:
    """The latest modification time (seconds) of the run folder and the files the page shows."""
    times = []
    for rel in ("", "config.yaml", "metrics.csv", "eval.json", "eval_baseline.json", "samples"):
        try:
            times.append((run_dir / rel).stat().st_mtime if rel else run_dir.stat().st_mtime)
        except OSError:
            pass
    return max(times, default=0.0)


def run_summary(root: Path, run_id: str, cache: MetricsCache) -> dict | None:
    """One row of ``/api/runs``, or None when ``run_id`` is not a run (any more)."""
    run_dir = resolve_run(root, run_id)
    if run_dir is None:
        return None
    cfg, cfg_error = read_config(run_dir)
    columns, metrics_error = cache.get(run_dir)
    baseline = numbers((read_json(run_file(run_dir, "eval_baseline.json")) or {}).get("baseline"))
    evals = eval_columns(columns, baseline)
    final = read_json(run_file(run_dir, "eval.json"))
    results = {c: last_finite(columns[c]) for c in evals}
    results.update(numbers((final or {}).get("metrics")))

    def name(section: str) -> str | None:
        value = cfg.get(section)
        value = value.get("name") if isinstance(value, dict) else value
        return str(value) if value is not None else None

    train = cfg.get("train") if isinstance(cfg.get("train"), dict) else {}
    steps = train.get("steps")
    rows = len(columns.get("step", []))
    return {
        "id": run_id,
        "description": str(cfg["description"]) if cfg.get("description") is not None else None,
        "data": name("data"), "model": name("model"), "algorithm": name("algorithm"),
        "step": int(last_finite(columns.get("step", [])) or 0),
        "steps": steps if isinstance(steps, int) and not isinstance(steps, bool) else None,
        "last": {c: v[-1] for c, v in columns.items()} if rows else {},
        "eval": results,
        "eval_file": final is not None,
        "mtime": run_mtime(run_dir),
        "error": "; ".join(e for e in (cfg_error, metrics_error) if e) or None,
    }


def list_samples(run_dir: Path) -> list[dict]:
    """The ``samples/step_NNNNNNN.png`` snapshots of a run as ``{"step", "file"}``, by step."""
    folder = confined(run_dir, "samples")
    if folder is None or not folder.is_dir():
        return []
    found = []
    try:
        paths = list(folder.iterdir())
    except OSError:
        return []
    for path in paths:
        match = SAMPLE.match(path.name)
        if match and run_file(run_dir, f"samples/{path.name}") is not None:
            found.append({"step": int(match.group(1)), "file": f"samples/{path.name}"})
    return sorted(found, key=lambda s: s["step"])


def run_metrics(run_dir: Path, run_id: str, cache: MetricsCache) -> dict:
    """The body of ``/api/run/ID/metrics``: the metrics.csv columns as arrays (None for blanks),
    the evaluation columns among them, their real-vs-real baseline, the chart groups and the
    final ``eval.json`` figures (with its step) if any."""
    columns, error = cache.get(run_dir)
    baseline = numbers((read_json(run_file(run_dir, "eval_baseline.json")) or {}).get("baseline"))
    evals = eval_columns(columns, baseline)
    final = read_json(run_file(run_dir, "eval.json"))
    return {
        "id": run_id, "columns": columns, "eval_columns": evals, "baseline": baseline,
        "groups": chart_groups(columns, evals), "error": error,
        "final_eval": None if final is None else {"step": numbers(final).get("step"),
                                                  "metrics": numbers(final.get("metrics"))},
    }


# ---------------------------------------------------------------------------------------------
# the app


def create_board_app(runs_dir: Path) -> Starlette:
    """The board's Starlette app over ``runs_dir`` (an existing folder; else GanforgeError).

    Routes (all GET): ``/`` the page, ``/static/PATH`` its files, ``/api/runs``, ``/api/changes``
    (``{"runs": {id: mtime}}``, cheap enough to poll), and for a run ``/api/run/ID/metrics``,
    ``/config`` (``{"text"}``), ``/samples`` and ``/file/REL``. Anything else is a JSON 404.
    """
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Route

    root = Path(runs_dir)
    if not root.is_dir():
        raise GanforgeError(f"runs directory {root} does not exist",
                            "pass the folder that holds your run directories, e.g. runs/")
    root = root.resolve()
    cache = MetricsCache()
    no_store = {"Cache-Control": "no-store"}

    def answer(body: Any) -> Response:
        return JSONResponse(body, headers=no_store)

    def the_run(request: Request) -> tuple[str, Path]:
        run_id = request.path_params["id"]
        run_dir = resolve_run(root, run_id)
        if run_dir is None:
            raise HTTPException(404, f"no run {run_id!r}")
        return run_id, run_dir

    def index(request: Request) -> Response:
        return FileResponse(STATIC / "board.html", headers=no_store)

    def static(request: Request) -> Response:
        path = confined(STATIC, request.path_params["path"])
        if path is None or not path.is_file():
            raise HTTPException(404, "no such file")
        return FileResponse(path)

    def runs(request: Request) -> Response:
        rows = [run_summary(root, run_id, cache) for run_id in find_runs(root)]
        return answer({"root": str(runs_dir), "runs": [r for r in rows if r is not None]})

    def changes(request: Request) -> Response:
        mtimes = {}
        for run_id in find_runs(root):
            run_dir = resolve_run(root, run_id)
            if run_dir is not None:
                mtimes[run_id] = run_mtime(run_dir)
        return answer({"runs": mtimes})

    def metrics(request: Request) -> Response:
        run_id, run_dir = the_run(request)
        return answer(run_metrics(run_dir, run_id, cache))

    def config(request: Request) -> Response:
        run_id, run_dir = the_run(request)
        text = read_text(run_file(run_dir, "config.yaml"))
        if text is None:
            raise HTTPException(404, "config.yaml cannot be read")
        return answer({"id": run_id, "text": text})

    def samples(request: Request) -> Response:
        run_id, run_dir = the_run(request)
        return answer({"id": run_id, "samples": list_samples(run_dir)})

    def file(request: Request) -> Response:
        _, run_dir = the_run(request)
        path = run_file(run_dir, request.path_params["rel"])
        if path is None:
            raise HTTPException(404, "no such file in this run")
        # a run may hold anything: never let a file act as a page of this origin
        return FileResponse(path, headers={"X-Content-Type-Options": "nosniff",
                                           "Content-Security-Policy": "sandbox"})

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        detail = getattr(exc, "detail", None) or "error"
        return JSONResponse({"error": detail if status < 500 else "internal error"}, status_code=status)

    # plain functions: Starlette runs them in its thread pool, so file reads never block the loop
    routes = [
        Route("/", index),
        Route("/static/{path:path}", static),
        Route("/api/runs", runs),
        Route("/api/changes", changes),
        # the file route first: a file named like an action must not look like one
        Route("/api/run/{id:path}/file/{rel:path}", file),
        Route("/api/run/{id:path}/metrics", metrics),
        Route("/api/run/{id:path}/config", config),
        Route("/api/run/{id:path}/samples", samples),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: http_error})
