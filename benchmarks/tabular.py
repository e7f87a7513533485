"""Synthetic tables: ganforge's CTGAN and TVAE beside the authors' ``ctgan`` package (the same
models, as users know them) and a Gaussian copula, on four real tables, with the quality,
machine-learning efficacy, detection and privacy measures of ``ganforge evaluate``.

Protocol (per table and seed; every model sees the same rows):
* the table (``../shared/data/tables/``) read by ganforge's ``table`` dataset: at most
  ``--max-rows`` rows (a seeded sample of a longer file), 20% held out with split seed 0;
  column types as ganforge infers them, the same discrete columns given to the ``ctgan``
  package;
* ganforge CTGAN and TVAE (the ``credit-ctgan`` / ``credit-tvae`` presets' settings: the paper's)
  and ``ctgan.CTGAN`` / ``ctgan.TVAE`` (their defaults, the paper's) for the same ``--epochs``
  at batch 500, both on one torch thread (the tiny MLPs run fastest so; the same for both);
  the Gaussian copula (:class:`ganforge.models.copula.GaussianCopula`) needs no training;
* as many synthetic rows as training rows (capped at ``--eval-rows``), scored against the same
  train and held-out rows (capped likewise): column shapes and pair trends (SDMetrics'
  definitions), TSTR (train on synthetic, test on real) and TRTR with logistic regression, a
  random forest and an MLP (accuracy, macro F1 and ROC AUC for a categorical target, R2 for a
  continuous one), the detection AUC, the distance to the closest record (5th percentile) and
  exact copies, and the distance-based membership-inference AUC;
* wall time of training, and seconds per epoch: training time less the transform's fit (ours
  timed around the Trainer's loop; the package's fit less its DataTransformer's fit and
  transform timed separately on the same rows).

The minority experiment (``nasscds``, target ``dead``, 4% of occupants): a random forest trained
on the real rows, with class weights, with SMOTE (imbalanced-learn) or with the real rows plus
ganforge CTGAN rows drawn under ``dead=dead`` until the classes balance; the minority recall and
balanced accuracy on the held-out rows. The features leave out ``injSeverity`` (its level 4 is
"killed": the outcome itself).

    python benchmarks/tabular.py [--quick] [--tables credit,pima] [--seeds 0,1,2] [--epochs 30]
    python benchmarks/tabular.py --figures docs/figures    # marginals and correlation figures
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine_info, print_checks, print_table, write_result  # noqa: E402
from ganforge import load_config  # noqa: E402
from ganforge.data.table import DISCRETE, TableDataset, infer_schema, read_csv  # noqa: E402
from ganforge.metrics import tabular as tm  # noqa: E402
from ganforge.models.copula import GaussianCopula  # noqa: E402
from ganforge.train import Trainer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TABLES_DIR = REPO.parent / "shared" / "data" / "tables"
#: table -> (target, columns to drop: an id, the original split flag)
TABLES = {"nasscds": ("dead", ["caseid"]), "credit": ("Status", []), "pima": ("type", ["split"]),
          "cps": ("earnings", [])}
#: table -> columns that restate its target (left out of the minority experiment's features)
LEAKS = {"nasscds": ("injSeverity",)}
MODELS = ("ganforge-ctgan", "ctgan-package-ctgan", "ganforge-tvae", "ctgan-package-tvae", "copula",
          "ganforge-ctgan-dp-eps10", "ganforge-ctgan-dp-eps1")
#: the private runs: ctgan with algorithm.privacy (DP-SGD on D, pac 1, no conditional vector)
PRIVATE = {"ganforge-ctgan-dp-eps10": 10.0, "ganforge-ctgan-dp-eps1": 1.0}
BATCH = 500


def batch_size(data: TableDataset) -> int:
    """500 (the paper's), or the largest multiple of 10 (the pac) within a smaller train split."""
    return min(BATCH, len(data) // 10 * 10)


def load_table(name: str, max_rows: int) -> TableDataset:
    """The table's rows without those missing a numeric value (the ``ctgan`` package refuses
    them; ganforge would keep them with a missing indicator): the same rows for every model."""
    target, drop = TABLES[name]
    frame = read_csv(TABLES_DIR / f"{name}.csv", max_rows=max_rows, seed=0, drop=drop)
    numeric = [c.name for c in infer_schema(frame, target=target).columns if c.type not in DISCRETE]
    frame = frame.dropna(subset=numeric).reset_index(drop=True)
    return TableDataset.from_frame(frame, target=target, test_fraction=0.2, split_seed=0, name=name)


# ---------------------------------------------------------------------- the models
def train_ours(family: str, data: TableDataset, epochs: int, seed: int, work: Path,
               epsilon: float | None = None) -> tuple[Any, float, float]:
    """(the trained algorithm, wall s of the whole fit, s per epoch of the training loop);
    ``epsilon``: a private ctgan run at that budget (delta 1e-5 or below 1/N)."""
    steps = epochs * max(len(data) // batch_size(data), 1)
    private = {} if epsilon is None else {
        "algorithm.privacy.epsilon": epsilon, "model.pac": 1,
        "algorithm.privacy.delta": min(1e-5, 10 ** math.floor(math.log10(0.1 / len(data))))}
    cfg = load_config(f"credit-{family}", overrides={**private,
        "seed": seed, "train.steps": steps, "train.batch_size": batch_size(data), "train.threads": 1,
        "train.sample_every": 10**9, "train.checkpoint_every": 10**9, "train.log_every": max(steps // 10, 1),
        "data.path": str(TABLES_DIR / f"{data.name}.csv")})
    start = time.perf_counter()
    data._transformer = None  # the transform's fit is part of a run's cost (seeded per run)
    data._x = None
    data.seed = seed
    run_dir = work / f"{data.name}-{family}-{seed}-{epsilon}"
    trainer = Trainer(cfg, run_dir, progress=False, dataset=data)
    trainer.fit()
    wall = time.perf_counter() - start
    with open(run_dir / "metrics.csv") as fh:  # the loop's own time: sec_per_step of every window
        log = list(csv.DictReader(fh))
    seconds, done = 0.0, 0
    for row in log:
        step = int(row["step"])
        seconds += float(row["sec_per_step"]) * (step - done)
        done = step
    return trainer.exp.algorithm, wall, seconds / epochs


def train_package(family: str, data: TableDataset, epochs: int, seed: int) -> tuple[Any, float, float]:
    import ctgan
    from ctgan.data_transformer import DataTransformer

    discrete = [c.name for c in data.schema.columns if c.type in DISCRETE]
    frame = _package_frame(data.train_frame, data)
    torch.manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (the package draws its rows and modes from numpy's global state)
    spent = [0.0]  # the package's transform (fit and transform) timed inside its own fit

    def timed(method: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start
        return wrapper

    cls = ctgan.CTGAN if family == "ctgan" else ctgan.TVAE
    model = cls(epochs=epochs, batch_size=batch_size(data), enable_gpu=False)
    originals = DataTransformer.fit, DataTransformer.transform
    DataTransformer.fit, DataTransformer.transform = timed(originals[0]), timed(originals[1])
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(frame, discrete)
    finally:
        DataTransformer.fit, DataTransformer.transform = originals
    wall = time.perf_counter() - start
    return model, wall, (wall - spent[0]) / epochs


def _package_frame(frame: Any, data: TableDataset) -> Any:
    """The rows as the package reads them: discrete columns as text (missing as its own value)."""
    out = frame.copy()
    for column in data.schema.columns:
        if column.type in DISCRETE:
            values = out[column.name].astype(object)
            out[column.name] = values.where(values.notna(), "NaN").astype(str)
    return out


def _from_package(rows: Any, data: TableDataset) -> Any:
    """The package's rows back in ganforge's values: each text the package was given (as
    :func:`_package_frame` wrote it, e.g. "3.0" for a float category) to the value it stood for."""
    out = rows.copy()
    given = _package_frame(data.train_frame, data)
    for column in data.schema.columns:
        if column.type in DISCRETE:
            lookup = dict(zip(given[column.name], data.train_frame[column.name].astype(object), strict=True))
            lookup = {text: (None if text == "NaN" else value) for text, value in lookup.items()}
            out[column.name] = out[column.name].astype(str).map(lambda v, lookup=lookup: lookup.get(v))
    return out


# ---------------------------------------------------------------------- scoring
def held_out_rows(data: TableDataset, eval_rows: int) -> tuple[Any, Any]:
    """Seeded uniform samples (seed 0, the same for every model) of at most ``eval_rows`` rows of
    each split: the file's order (by year, in some tables) must not decide which rows are
    scored."""
    return tuple(frame.sample(n=min(eval_rows, len(frame)), random_state=0).reset_index(drop=True)
                 for frame in (data.train_frame, data.test_frame))


def score(data: TableDataset, synthetic: Any, eval_rows: int, seed: int) -> dict[str, float]:
    train, test = held_out_rows(data, eval_rows)
    types, target = data.schema.types, data.schema.target
    out = dict(tm.quality(train, synthetic, types))
    efficacy = tm.ml_efficacy(train, test, synthetic, target, types, seed=seed)
    main = "r2" if types[target] in tm.NUMERIC else "roc_auc"
    out.update(tstr=efficacy[f"tstr_{main}"], trtr=efficacy[f"trtr_{main}"], efficacy_score=main)
    if main == "roc_auc":
        out.update(tstr_accuracy=efficacy["tstr_accuracy"], tstr_f1=efficacy["tstr_f1"])
    out["detection_auc"] = tm.detection_auc(train, synthetic, types, seed=seed)
    dcr = tm.distance_to_closest_record(train, test, synthetic, types)
    out.update(dcr_p5=dcr["dcr_synthetic_p5"], dcr_holdout_p5=dcr["dcr_holdout_p5"],
               exact_copies=dcr["exact_copies"])
    out["mia_auc"] = tm.membership_inference_auc(train, test, synthetic, types, seed=seed)
    return out


def run_table(name: str, seeds: list[int], epochs: int, max_rows: int, eval_rows: int,
              work: Path) -> tuple[list[dict[str, Any]], Any]:
    data = load_table(name, max_rows)
    n_rows = min(len(data), eval_rows)
    rows, kept = [], None
    for seed in seeds:
        for model in MODELS:
            gen = torch.Generator().manual_seed(seed)
            torch.set_num_threads(1)
            if model.startswith("ganforge"):
                algorithm, wall, per_epoch = train_ours(model.split("-")[1], data, epochs, seed, work,
                                                        PRIVATE.get(model))
                synthetic = algorithm.sample_rows(n_rows, gen)
                if model == "ganforge-ctgan" and seed == seeds[0]:
                    kept = algorithm
            elif model.startswith("ctgan-package"):
                fitted, wall, per_epoch = train_package(model.split("-")[2], data, epochs, seed)
                synthetic = _from_package(fitted.sample(n_rows), data)
            else:
                start = time.perf_counter()
                copula = GaussianCopula(data.schema.types, seed=seed).fit(data.train_frame)
                synthetic = copula.sample(n_rows, seed)
                wall, per_epoch = time.perf_counter() - start, math.nan
            row = {"table": name, "model": model, "seed": seed, "rows_train": len(data), "epochs": epochs,
                   "wall_s": wall, "s_per_epoch": per_epoch, **score(data, synthetic, eval_rows, seed)}
            rows.append(row)
            print(f"  {name} seed {seed} {model}: shapes {row['column_shapes']:.3f} tstr {row['tstr']:.3f} "
                  f"(trtr {row['trtr']:.3f}) det {row['detection_auc']:.3f} mia {row['mia_auc']:.3f} "
                  f"{per_epoch:.3f} s/epoch", flush=True)
    return rows, (data, kept)


# ---------------------------------------------------------------------- the minority experiment
def minority(data: TableDataset, algorithm: Any, seed: int, eval_rows: int) -> list[dict[str, Any]]:
    from imblearn.over_sampling import SMOTE
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import balanced_accuracy_score, recall_score

    target, types = data.schema.target, data.schema.types
    train, test = data.train_frame, held_out_rows(data, eval_rows)[1]
    # injSeverity 4 is "killed": a copy of the outcome, which would make every method perfect
    features = {k: v for k, v in types.items() if k not in (target, *LEAKS.get(data.name, ()))}
    encoder = tm.TableEncoder().fit(train[list(features)], features)
    counts = train[target].value_counts()
    minority_class, gap = counts.idxmin(), int(counts.max() - counts.min())

    def fit_score(x: np.ndarray, y: np.ndarray, **kwargs: Any) -> dict[str, float]:
        model = RandomForestClassifier(n_estimators=200, n_jobs=1, random_state=seed, **kwargs).fit(x, y)
        pred = model.predict(encoder.transform(test[list(features)]))
        truth = test[target].to_numpy()
        return {"minority_recall": recall_score(truth == minority_class, pred == minority_class),
                "balanced_accuracy": balanced_accuracy_score(truth, pred)}

    x, y = encoder.transform(train[list(features)]), train[target].to_numpy().astype(str)
    out = [{"method": "real rows", **fit_score(x, y)},
           {"method": "class weights", **fit_score(x, y, class_weight="balanced")}]
    x_smote, y_smote = SMOTE(random_state=seed).fit_resample(x, y)
    out.append({"method": "SMOTE", **fit_score(x_smote, y_smote)})
    extra = algorithm.sample_rows(gap, torch.Generator().manual_seed(seed), {target: minority_class})
    x_gan = np.concatenate([x, encoder.transform(extra[list(features)])])
    y_gan = np.concatenate([y, extra[target].to_numpy().astype(str)])
    out.append({"method": f"+ {gap} CTGAN rows ({target}={minority_class})", **fit_score(x_gan, y_gan)})
    for row in out:
        row["minority_class"], row["minority_share"] = str(minority_class), float(counts.min() / counts.sum())
    return out


# ---------------------------------------------------------------------- summary
def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for table in dict.fromkeys(r["table"] for r in rows):
        for model in MODELS:
            group = [r for r in rows if r["table"] == table and r["model"] == model]
            if not group:
                continue
            entry: dict[str, Any] = {"table": table, "model": model, "seeds": len(group)}
            for key in ("column_shapes", "pair_trends", "tstr", "trtr", "detection_auc", "dcr_p5",
                        "dcr_holdout_p5", "exact_copies", "mia_auc", "wall_s", "s_per_epoch"):
                values = [r[key] for r in group if not (isinstance(r[key], float) and math.isnan(r[key]))]
                entry[key] = statistics.fmean(values) if values else math.nan
                entry[f"{key}_se"] = (statistics.stdev(values) / math.sqrt(len(values))
                                      if len(values) > 1 else 0.0)
            out.append(entry)
    return out


def dp_checks(summary: list[dict[str, Any]], tables: list[str]) -> dict[str, bool]:
    """Per table: quality and TSTR order non-private > epsilon 10 > epsilon 1; the MIA AUC no
    farther from 1/2 as epsilon falls."""
    out = {}
    for table in tables:
        runs = [next(s for s in summary if s["table"] == table and s["model"] == m)
                for m in ("ganforge-ctgan", "ganforge-ctgan-dp-eps10", "ganforge-ctgan-dp-eps1")]
        for key in ("column_shapes", "tstr"):
            ordered = runs[0][key] > runs[1][key] > runs[2][key]
            out[f"{table}: {key} orders non-private > eps 10 > eps 1"] = ordered
        gaps = [abs(r["mia_auc"] - 0.5) for r in runs]
        out[f"{table}: MIA AUC closer to 1/2 as epsilon falls ({' > '.join(f'{g:.3f}' for g in gaps)})"] = (
            gaps[0] >= gaps[1] >= gaps[2])
    return out


def checks(summary: list[dict[str, Any]]) -> dict[str, bool]:
    def get(table: str, model: str) -> dict[str, Any]:
        return next(s for s in summary if s["table"] == table and s["model"] == model)

    out: dict[str, bool] = {}
    tables = list(dict.fromkeys(s["table"] for s in summary))
    for family in ("ctgan", "tvae"):
        for table in tables:
            ours, theirs = get(table, f"ganforge-{family}"), get(table, f"ctgan-package-{family}")
            for key in ("tstr", "column_shapes"):
                slack = max(ours[f"{key}_se"], theirs[f"{key}_se"])
                out[f"{table}: ganforge {family} {key} >= package's (within one SE)"] = (
                    ours[key] >= theirs[key] - slack)
            out[f"{table}: ganforge {family} >= 1.5x faster per epoch"] = (
                theirs["s_per_epoch"] >= 1.5 * ours["s_per_epoch"])
    wins = sum(get(t, "ganforge-ctgan")["tstr"] > get(t, "copula")["tstr"] for t in tables)
    out[f"CTGAN's TSTR beats the Gaussian copula's on >= 3 of 4 tables ({wins} of {len(tables)})"] = wins >= 3
    out.update(dp_checks(summary, tables))
    return out


def figures(out_dir: Path, max_rows: int) -> None:
    """Marginals and the correlation-difference heatmap of ganforge CTGAN on credit (seed 0)."""
    from ganforge.viz.tabular import plot_correlation_difference, plot_marginals

    data = load_table("credit", max_rows)
    with tempfile.TemporaryDirectory() as work:
        algorithm, _, _ = train_ours("ctgan", data, 100, 0, Path(work))
        rows = algorithm.sample_rows(len(data), torch.Generator().manual_seed(0))
    plot_marginals(data.train_frame, rows, data.schema.types, out_dir / "tabular-marginals.png",
                   title="credit: real (grey) vs ganforge CTGAN (orange), 100 epochs")
    plot_correlation_difference(data.train_frame, rows, data.schema.types,
                                out_dir / "tabular-correlations.png",
                                title="credit: associations, real vs ganforge CTGAN")
    print(f"wrote {out_dir / 'tabular-marginals.png'} and {out_dir / 'tabular-correlations.png'}")


def minority_only(epochs: int, max_rows: int, eval_rows: int) -> int:
    """The minority experiment alone (ganforge CTGAN on nasscds, seed 0), written into the
    ``minority`` entry of results/tabular.json with the commit it ran at."""
    import json

    data = load_table("nasscds", max_rows)
    with tempfile.TemporaryDirectory() as work:
        algorithm, _, _ = train_ours("ctgan", data, epochs, 0, Path(work))
    rows = minority(data, algorithm, 0, eval_rows * 2)
    print_table(rows, ["method", "minority_recall", "balanced_accuracy"])
    path = RESULTS / "tabular.json"
    result = json.loads(path.read_text())
    result["minority"] = rows
    result["minority_protocol"] = {
        "epochs": epochs, "seed": 0, "code_commit": machine_info()["git_commit"],
        "features": "every column but dead and injSeverity", "classifier": "random forest, 200 trees",
        "test_rows": min(eval_rows * 2, len(data.test_frame))}
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote the minority experiment into {path}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="two tables, one seed, 3 epochs")
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--max-rows", type=int, default=10_000)
    parser.add_argument("--eval-rows", type=int, default=3_000)
    parser.add_argument("--figures", metavar="DIR", help="only draw the figures into DIR")
    parser.add_argument("--merge", action="store_true",
                        help="replace only these tables' rows in results/tabular.json (same protocol)")
    parser.add_argument("--minority-only", action="store_true",
                        help="re-run only the minority experiment into results/tabular.json")
    args = parser.parse_args()
    if not TABLES_DIR.is_dir():
        print(f"skipped: {TABLES_DIR} not found (the shared real tables)")
        return 0
    if args.figures:
        figures(Path(args.figures), args.max_rows)
        return 0
    if args.minority_only:
        return minority_only(args.epochs, args.max_rows, args.eval_rows)
    tables = ["credit", "pima"] if args.quick else args.tables.split(",")
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    epochs = 3 if args.quick else args.epochs
    max_rows, eval_rows = (2_000, 1_000) if args.quick else (args.max_rows, args.eval_rows)
    rows, kept = [], {}
    started = time.perf_counter()
    code = machine_info()["git_commit"]  # the code measured (the result file records HEAD when written)
    with tempfile.TemporaryDirectory() as work:
        for table in tables:
            table_rows, kept[table] = run_table(table, seeds, epochs, max_rows, eval_rows, Path(work))
            rows += table_rows
    if args.merge:  # the other tables' rows from the committed result, this run's for these
        import json

        previous = json.loads((RESULTS / "tabular.json").read_text())
        rows = [r for r in previous["rows"] if r["table"] not in tables] + rows
        tables = list(dict.fromkeys(r["table"] for r in rows))
        code = {"merged": previous.get("code_commit"), **{t: code for t in args.tables.split(",")}}
    summary = summarise(rows)
    print_table(summary, ["table", "model", "column_shapes", "pair_trends", "tstr", "trtr", "detection_auc",
                          "dcr_p5", "exact_copies", "mia_auc", "s_per_epoch"])
    minority_rows = []
    if "nasscds" in kept:
        data, algorithm = kept["nasscds"]
        minority_rows = minority(data, algorithm, seeds[0], eval_rows * 2)
        print_table(minority_rows, ["method", "minority_recall", "balanced_accuracy"])
    verdicts = checks(summary) if len(tables) >= 2 else {}
    print_checks(verdicts)
    path = write_result("tabular-quick" if args.quick else "tabular", {
        "code_commit": code,
        "protocol": {"tables": tables, "seeds": seeds, "epochs": epochs,
                     "batch_size": f"{BATCH}, or the largest multiple of 10 within a smaller train split",
                     "max_rows": max_rows, "eval_rows": eval_rows, "torch_threads": 1, "split_seed": 0,
                     "test_fraction": 0.2},
        "rows": rows, "summary": summary, "minority": minority_rows, "checks": verdicts,
        "minority_protocol": {"epochs": epochs, "seed": seeds[0], "features": "every column but dead and "
                              "injSeverity", "classifier": "random forest, 200 trees"},
        "wall_s": time.perf_counter() - started})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
