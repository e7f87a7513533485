"""Evaluation metrics of synthetic tables (Xu et al. 2019's CTGAN evaluation, SDV/SDMetrics).

Pure functions over pandas DataFrames. Column types come as ``types: Mapping[str, str]``, column name ->
``"continuous"``, ``"integer"`` (both *numeric*), ``"categorical"`` or ``"boolean"`` (both *discrete*).
Missing values are NaN/None in either frame. Boolean columns may hold bools or strings such as
``"True"``/``"false"``/``"1"``/``"no"``; they are read as bools first (values that are not recognisably
boolean are left as they are).

* :func:`column_shapes`, :func:`pair_trends`, :func:`quality`: the SDMetrics quality report (KS / TV
  complements; correlation / contingency similarities), equal to ``sdmetrics`` to 1e-6.
* :class:`TableEncoder`: min-max + one-hot features for the ML and distance metrics.
* :func:`ml_efficacy`: train on synthetic, test on real (TSTR) against train on real (TRTR).
* :func:`detection_auc`: can a logistic regression tell real from synthetic rows?
* :func:`distance_to_closest_record`, :func:`membership_inference_auc`: privacy.
* :func:`score_table`: all of the above as one flat dict.
"""

from __future__ import annotations

import itertools
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp, pearsonr
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score, r2_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import NearestNeighbors
from sklearn.neural_network import MLPClassifier, MLPRegressor

from ganforge.data.table import COLUMN_TYPES, DISCRETE, NUMERIC
from ganforge.errors import GanforgeError
from ganforge.metrics.registry import (
    HIGHER,
    LOWER,
    NEITHER,
    MetricContext,
    MetricSpec,
    RowInputs,
    register_metric,
)

TYPES = COLUMN_TYPES
MODELS = ("logistic", "forest", "mlp")
_MAX_DECIMALS = 14  # sdmetrics rounds to sys.float_info.dig - 1 decimals before the KS test
_BOOLEAN_WORDS = {"true": True, "t": True, "yes": True, "y": True, "1": True,
                  "false": False, "f": False, "no": False, "n": False, "0": False}
_CHUNK = 2048  # rows per nearest-neighbour query


# ----------------------------------------------------------------------------------------------- input


def _check_types(types: Mapping[str, str]) -> dict[str, str]:
    bad = {c: t for c, t in types.items() if t not in TYPES}
    if bad:
        col, kind = next(iter(bad.items()))
        raise GanforgeError(f"column {col!r} has unknown type {kind!r}",
                            f"give each column one of {', '.join(TYPES)}")
    if not types:
        raise GanforgeError("no column types given", "pass types={column: 'continuous' | ...}")
    return dict(types)


def _as_bool(value: object) -> object:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        return _BOOLEAN_WORDS.get(value.strip().lower(), value)
    if isinstance(value, (int, float, np.integer, np.floating)) and value in (0, 1):
        return bool(value)
    return value


def _prepare(frames: Mapping[str, pd.DataFrame], types: Mapping[str, str]) -> list[pd.DataFrame]:
    """Check that every frame is non-empty with exactly the typed columns; return cleaned copies
    (numeric columns as float64, boolean columns as bools, every missing value NaN)."""
    types = _check_types(types)
    out = []
    for name, frame in frames.items():
        if not isinstance(frame, pd.DataFrame):
            raise GanforgeError(f"{name} is a {type(frame).__name__}, not a pandas DataFrame",
                                "pass the table as a pandas DataFrame")
        if len(frame) == 0 or frame.shape[1] == 0:
            raise GanforgeError(f"the {name} table is empty", "pass a table with at least one row")
        if set(frame.columns) != set(types):
            missing = sorted(set(types) - set(frame.columns), key=str)
            extra = sorted(set(frame.columns) - set(types), key=str)
            raise GanforgeError(f"the {name} table's columns differ from the typed columns "
                                f"(missing {missing}, not typed {extra})",
                                "give every table the same columns and a type for each")
        frame = frame[list(types)].copy()
        for col, kind in types.items():
            values = frame[col]
            if kind in NUMERIC:
                try:
                    frame[col] = pd.to_numeric(values).astype(np.float64)
                except (ValueError, TypeError) as err:
                    raise GanforgeError(f"{kind} column {col!r} of the {name} table holds a non-number "
                                        f"({err})", "type it 'categorical' or clean the values") from None
            else:
                values = values.astype(object).where(values.notna(), np.nan)
                frame[col] = values.map(_as_bool) if kind == "boolean" else values
        out.append(frame.reset_index(drop=True))
    return out


def _check_target(target: str, types: Mapping[str, str]) -> None:
    if target not in types:
        raise GanforgeError(f"target column {target!r} is not in the table",
                            f"pick one of {', '.join(map(str, types))}")


def _nanmean(values: Sequence[float]) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(np.mean(values[~np.isnan(values)])) if (~np.isnan(values)).any() else float("nan")


# --------------------------------------------------------------------------------------------- shapes


def ks_complement(real: pd.Series, synthetic: pd.Series) -> float:
    """1 - D, D the two-sample Kolmogorov-Smirnov statistic sup_x |F_R(x) - F_S(x)| of the non-missing
    values (rounded to 14 decimals as sdmetrics does); NaN when either side has none."""
    real = pd.Series(real, dtype=np.float64).dropna().round(_MAX_DECIMALS)
    synthetic = pd.Series(synthetic, dtype=np.float64).dropna().round(_MAX_DECIMALS)
    if len(real) == 0 or len(synthetic) == 0:
        return float("nan")
    return float(1.0 - ks_2samp(real, synthetic).statistic)


def tv_complement(real: pd.Series, synthetic: pd.Series) -> float:
    """1 - 1/2 sum_k |p_k - q_k| over the categories k of the non-missing values (missing values are
    dropped, as sdmetrics does). Like sdmetrics, a category seen only in the synthetic column adds
    1e-6 to the real counts; NaN when either side has no values."""
    real, synthetic = Counter(pd.Series(real).dropna()), Counter(pd.Series(synthetic).dropna())
    if not real or not synthetic:
        return float("nan")
    for value in synthetic:
        if value not in real:
            real[value] += 1e-6
    n_real, n_syn = sum(real.values()), sum(synthetic.values())
    return float(1.0 - 0.5 * sum(abs(synthetic[k] / n_syn - real[k] / n_real) for k in real))


def column_shapes(real: pd.DataFrame, synthetic: pd.DataFrame, types: Mapping[str, str]) -> dict[str, float]:
    """Per column: :func:`ks_complement` for numeric columns, :func:`tv_complement` for discrete ones.

    Equal to ``sdmetrics.single_column.KSComplement.compute`` / ``TVComplement.compute`` (NaN where
    sdmetrics returns NaN or raises: a column with no non-missing values on one side)."""
    real, synthetic = _prepare({"real": real, "synthetic": synthetic}, types)
    return {col: (ks_complement if kind in NUMERIC else tv_complement)(real[col], synthetic[col])
            for col, kind in types.items()}


# --------------------------------------------------------------------------------------------- pairs


def correlation_similarity(real: pd.DataFrame, synthetic: pd.DataFrame) -> float:
    """1 - |r_R - r_S| / 2 for the Pearson r of the two columns of each frame, over the rows where both
    are present. NaN when a column is constant (sdmetrics raises there) or r is undefined."""
    if (real.nunique() <= 1).any() or (synthetic.nunique() <= 1).any():
        return float("nan")
    real, synthetic = real.dropna(), synthetic.dropna()
    if len(real) < 2 or len(synthetic) < 2:
        return float("nan")
    r_real = pearsonr(real.iloc[:, 0], real.iloc[:, 1])[0]
    with warnings.catch_warnings():  # constant after dropping missing rows: r is NaN
        warnings.simplefilter("ignore")
        r_syn = pearsonr(synthetic.iloc[:, 0], synthetic.iloc[:, 1])[0]
    return float(1.0 - abs(r_real - r_syn) / 2)


def contingency_similarity(real: pd.DataFrame, synthetic: pd.DataFrame) -> float:
    """1 - 1/2 sum_(a,b) |p_R(a, b) - p_S(a, b)| over the joint table of the two (discrete) columns,
    a missing value being a category of its own (sdmetrics' ``groupby(dropna=False)``)."""
    cols = list(real.columns[:2])
    p_real = real.groupby(cols, dropna=False).size() / len(real)
    p_syn = synthetic[cols].groupby(cols, dropna=False).size() / len(synthetic)
    index = p_real.index.union(p_syn.index, sort=False).drop_duplicates()
    diff = (p_real.reindex(index, fill_value=0) - p_syn.reindex(index, fill_value=0)).abs().fillna(0)
    return float(1.0 - diff.sum() / 2)


def _bins(values: pd.Series, edges: np.ndarray | None = None) -> np.ndarray:
    if edges is None:
        edges = np.histogram_bin_edges(values.dropna())
    return np.digitize(values, bins=edges)


def pair_trends(real: pd.DataFrame, synthetic: pd.DataFrame, types: Mapping[str, str],
                *, binning: str = "report") -> dict[tuple[str, str], float]:
    """Per pair of columns (in ``types`` order): :func:`correlation_similarity` when both are numeric,
    else :func:`contingency_similarity`, a numeric column of a mixed pair being cut into 10 bins.

    ``binning="report"`` cuts as sdmetrics' ``QualityReport`` (ColumnPairTrends) does: each frame with
    ``np.digitize`` on the 10 ``np.histogram_bin_edges`` of *its own* non-missing values (so the max
    value and missing values share bin 11, and a shifted synthetic column gets the same bins as the
    real one: the report scores the pair's dependence, not the column's location). ``binning="real"``
    cuts both frames on the real column's edges with open outer bins, as
    ``ContingencySimilarity.compute(..., continuous_column_names=[...])`` does.
    """
    if binning not in ("report", "real"):
        raise GanforgeError(f"unknown binning {binning!r}", "use binning='report' or 'real'")
    real, synthetic = _prepare({"real": real, "synthetic": synthetic}, types)
    scores = {}
    for a, b in itertools.combinations(types, 2):
        numeric = [types[a] in NUMERIC, types[b] in NUMERIC]
        if all(numeric):
            scores[a, b] = correlation_similarity(real[[a, b]], synthetic[[a, b]])
            continue
        r, s = real[[a, b]].copy(), synthetic[[a, b]].copy()
        for col in (c for c, is_num in zip((a, b), numeric, strict=True) if is_num):
            if binning == "report":
                r[col], s[col] = _bins(r[col]), _bins(s[col])
            else:
                edges = np.histogram_bin_edges(r[col].dropna(), bins=10)
                edges[0], edges[-1] = -np.inf, np.inf
                r[col], s[col] = _bins(r[col], edges), _bins(s[col], edges)
        scores[a, b] = contingency_similarity(r, s)
    return scores


def quality(real: pd.DataFrame, synthetic: pd.DataFrame, types: Mapping[str, str]) -> dict[str, float]:
    """``column_shapes`` and ``pair_trends``: the means (skipping NaN) of :func:`column_shapes` and
    :func:`pair_trends`; ``quality``: their mean. The report's properties 'Column Shapes' and 'Column
    Pair Trends' and its score when the report counts every pair (its ``real_correlation_threshold``
    and ``real_association_threshold`` set to 0; by default sdmetrics' single-table QualityReport
    only averages pairs whose real |r| > 0.5 or Cramer's V > 0.3)."""
    shapes = _nanmean(list(column_shapes(real, synthetic, types).values()))
    trends = _nanmean(list(pair_trends(real, synthetic, types).values()))
    return {"column_shapes": shapes, "pair_trends": trends, "quality": _nanmean([shapes, trends])}


# ------------------------------------------------------------------------------------------- encoder


class TableEncoder:
    """Rows -> float64 features, fitted on a reference frame.

    Numeric column: (x - min) / (max - min) with the reference's min and max (a constant column divides
    by 1); NaN -> 0, plus a 0/1 missing-indicator column when the reference column has NaN. Discrete
    column: one-hot on the reference's categories (NaN its own category when the reference has one);
    a category the reference lacks -> all zeros.
    """

    def fit(self, frame: pd.DataFrame, types: Mapping[str, str]) -> TableEncoder:
        (frame,) = _prepare({"reference": frame}, types)
        self.types = dict(types)
        self._numeric: dict[str, tuple[float, float, bool]] = {}
        self._categories: dict[str, pd.Index] = {}
        for col, kind in self.types.items():
            values = frame[col]
            if kind in NUMERIC:
                lo, hi = values.min(), values.max()
                lo = 0.0 if np.isnan(lo) else float(lo)
                span = float(hi) - lo if np.isfinite(hi) and hi > lo else 1.0
                self._numeric[col] = (lo, span, bool(values.isna().any()))
            else:
                cats = sorted(values.dropna().unique(), key=lambda v: (type(v).__name__, str(v)))
                self._categories[col] = pd.Index(cats + ([np.nan] if values.isna().any() else []),
                                                 dtype=object)
        return self

    @property
    def feature_names(self) -> list[str]:
        names = []
        for col in self.types:
            if col in self._numeric:
                names += [f"{col}"] + ([f"{col}=missing"] if self._numeric[col][2] else [])
            else:
                names += [f"{col}={v}" for v in self._categories[col]]
        return names

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """(rows, len(feature_names)) float64 features of ``frame`` (same columns as the reference)."""
        (frame,) = _prepare({"table": frame}, self.types)
        blocks = []
        for col in self.types:
            values = frame[col]
            if col in self._numeric:
                lo, span, indicator = self._numeric[col]
                missing = values.isna().to_numpy()
                blocks.append(np.where(missing, 0.0, (values.to_numpy() - lo) / span)[:, None])
                if indicator:
                    blocks.append(missing.astype(np.float64)[:, None])
            else:
                cats = self._categories[col]
                codes = cats.get_indexer(pd.Index(values.to_numpy(), dtype=object))
                onehot = np.zeros((len(values), len(cats)))
                seen = codes >= 0
                onehot[np.flatnonzero(seen), codes[seen]] = 1.0
                blocks.append(onehot)
        return np.hstack(blocks).astype(np.float64) if blocks else np.zeros((len(frame), 0))

    def fit_transform(self, frame: pd.DataFrame, types: Mapping[str, str]) -> np.ndarray:
        return self.fit(frame, types).transform(frame)


# --------------------------------------------------------------------------------------- ML efficacy


def _model(name: str, classify: bool, seed: int):
    if name in ("logistic", "linear"):
        return LogisticRegression(max_iter=1000) if classify else Ridge(alpha=1.0)
    if name == "forest":
        kind = RandomForestClassifier if classify else RandomForestRegressor
        return kind(n_estimators=100, n_jobs=1, random_state=seed)
    if name == "mlp":
        kind = MLPClassifier if classify else MLPRegressor
        return kind((100,), max_iter=200, random_state=seed)  # early stopping starves small tables
    raise GanforgeError(f"unknown model {name!r}", f"use some of {', '.join(MODELS)}")


def _class_scores(model, x_test: np.ndarray, y_test: np.ndarray, n_real_classes: int) -> dict[str, float]:
    """accuracy, macro F1 over the test's classes, ROC AUC (binary: class 1 = the second real class
    sorted is positive; multi-class: one-vs-rest macro average over the test's classes)."""
    pred = model.predict(x_test)
    proba = np.zeros((len(x_test), max(n_real_classes, int(model.classes_.max()) + 1)))
    if len(model.classes_) == 1:  # fitted on one class (the forest, the MLP): a constant predictor
        proba[:, model.classes_[0]] = 1.0
    else:
        proba[:, model.classes_] = model.predict_proba(x_test)
    present = np.unique(y_test)
    if len(present) < 2:
        auc = float("nan")
    elif n_real_classes == 2:
        auc = roc_auc_score(y_test == 1, proba[:, 1])
    else:
        auc = np.mean([roc_auc_score(y_test == k, proba[:, k]) for k in present])
    return {"accuracy": accuracy_score(y_test, pred),
            "f1": f1_score(y_test, pred, labels=present, average="macro", zero_division=0),
            "roc_auc": float(auc)}


def ml_efficacy(train: pd.DataFrame, test: pd.DataFrame, synthetic: pd.DataFrame, target: str,
                types: Mapping[str, str], *, seed: int = 0,
                models: Sequence[str] = MODELS) -> dict[str, float]:
    """Machine-learning efficacy: each model fitted on ``synthetic`` (TSTR) and on ``train`` (TRTR),
    scored on ``test``; features = :class:`TableEncoder` fitted on ``train`` without the target; rows
    with a missing target are dropped.

    Discrete target (models: LogisticRegression(max_iter=1000), RandomForestClassifier(100 trees),
    MLPClassifier((100,), 200 epochs)): ``{tstr,trtr}_{accuracy,f1,roc_auc}_<model>``, F1 macro
    over the test's classes, AUC as in :func:`_class_scores`. Classes are the real (train and test)
    target values sorted; synthetic rows may hold other values (never right on the test). Numeric
    target (Ridge(alpha=1), RandomForestRegressor, MLPRegressor; ``"logistic"`` names the linear
    model, and the target is standardised with train's mean and std): ``{tstr,trtr}_r2_<model>``.
    Plus ``{tstr,trtr}_<score>``: the mean over models (skipping NaN). A model that cannot be fitted
    (e.g. a synthetic target with one class) scores NaN, with a RuntimeWarning that says why.
    """
    _check_types(types)
    _check_target(target, types)
    train, test, synthetic = _prepare({"train": train, "test": test, "synthetic": synthetic}, types)
    train, test, synthetic = (f[f[target].notna()].reset_index(drop=True) for f in (train, test, synthetic))
    for name, frame in (("train", train), ("test", test), ("synthetic", synthetic)):
        if len(frame) == 0:
            raise GanforgeError(f"every row of the {name} table misses the target {target!r}",
                                "pick a target with values")
    features = {c: t for c, t in types.items() if c != target}
    if not features:
        raise GanforgeError("the table has no column besides the target", "add feature columns")
    encoder = TableEncoder().fit(train[list(features)], features)
    x = {n: encoder.transform(f[list(features)]) for n, f in
         (("train", train), ("test", test), ("synthetic", synthetic))}
    classify = types[target] in DISCRETE
    if classify:
        real_classes = sorted(set(train[target]) | set(test[target]), key=lambda v: (type(v).__name__, v))
        extra = sorted(set(synthetic[target]) - set(real_classes), key=str)
        code = {v: i for i, v in enumerate(real_classes + extra)}
        y = {n: f[target].map(code).to_numpy(dtype=np.int64) for n, f in
             (("train", train), ("test", test), ("synthetic", synthetic))}
    else:
        mean, std = train[target].mean(), train[target].std()
        std = std if np.isfinite(std) and std > 0 else 1.0
        y = {n: ((f[target] - mean) / std).to_numpy() for n, f in
             (("train", train), ("test", test), ("synthetic", synthetic))}
    out: dict[str, float] = {}
    for prefix, source in (("tstr", "synthetic"), ("trtr", "train")):
        per_score: dict[str, list[float]] = {}
        for name in models:
            model = _model(name, classify, seed)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # convergence warnings of tiny fits
                    model.fit(x[source], y[source])
            except ValueError as err:
                n_classes = len(np.unique(y[source]))
                warnings.warn(f"ml_efficacy: {prefix} model {name!r} could not be fitted on the {source} "
                              f"table ({n_classes} target class(es)): {err}; its scores are NaN",
                              RuntimeWarning, stacklevel=2)
                scores = dict.fromkeys(("accuracy", "f1", "roc_auc") if classify else ("r2",), float("nan"))
            else:
                scores = (_class_scores(model, x["test"], y["test"], len(real_classes)) if classify
                          else {"r2": r2_score(y["test"], model.predict(x["test"]))})
            for score, value in scores.items():
                out[f"{prefix}_{score}_{name}"] = float(value)
                per_score.setdefault(score, []).append(float(value))
        for score, values in per_score.items():
            out[f"{prefix}_{score}"] = _nanmean(values)
    return out


# ----------------------------------------------------------------------------------------- detection


def detection_auc(real: pd.DataFrame, synthetic: pd.DataFrame, types: Mapping[str, str], *,
                  seed: int = 0, folds: int = 3) -> float:
    """ROC AUC of LogisticRegression(max_iter=1000) telling real rows (label 0) from synthetic ones
    (label 1): out-of-fold probabilities of a seeded stratified ``folds``-fold split, on a balanced
    sample (the larger side subsampled to the smaller's size, seeded), features = :class:`TableEncoder`
    fitted on the real sample. 0.5 = indistinguishable (best), 1 = told apart perfectly. Values a
    little below 0.5 happen when the synthetic rows reuse the real values (e.g. shuffled columns): a
    rare value learnt as "real" in one fold marks its synthetic twin in the held-out fold as real."""
    real, synthetic = _prepare({"real": real, "synthetic": synthetic}, types)
    rng = np.random.default_rng(seed)
    n = min(len(real), len(synthetic))
    if n < folds:
        raise GanforgeError(f"detection needs at least {folds} rows per table, got {n}", "pass more rows")
    real = real.iloc[np.sort(rng.choice(len(real), n, replace=False))]
    synthetic = synthetic.iloc[np.sort(rng.choice(len(synthetic), n, replace=False))]
    encoder = TableEncoder().fit(real, types)
    x = np.vstack([encoder.transform(real), encoder.transform(synthetic)])
    y = np.r_[np.zeros(n), np.ones(n)]
    scores = np.zeros(2 * n)
    for fit_rows, held_rows in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        model = LogisticRegression(max_iter=1000).fit(x[fit_rows], y[fit_rows])
        scores[held_rows] = model.predict_proba(x[held_rows])[:, 1]
    return float(roc_auc_score(y, scores))


def detection_score(auc: float) -> float:
    """sdmetrics' LogisticDetection scale: 1 - (max(auc, 0.5) * 2 - 1); 1 = indistinguishable, 0 =
    told apart perfectly. (sdmetrics averages this over its 3 folds; here it maps the pooled AUC.)"""
    return float(1.0 - (max(auc, 0.5) * 2.0 - 1.0))


# ------------------------------------------------------------------------------------------- privacy


def _nearest_distances(reference: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Euclidean distance of each query row to its nearest reference row, queried in chunks."""
    index = NearestNeighbors(n_neighbors=1).fit(reference)
    return np.concatenate([index.kneighbors(queries[i:i + _CHUNK])[0][:, 0]
                           for i in range(0, len(queries), _CHUNK)])


def distance_to_closest_record(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame,
                               types: Mapping[str, str]) -> dict[str, float]:
    """Distance to closest record (DCR), features = :class:`TableEncoder` fitted on ``train``.

    For each synthetic row, the Euclidean distance to its nearest train row; for each holdout row the
    same (the baseline: fresh real data). ``dcr_{synthetic,holdout}_{p5,median}`` (5th percentile and
    median), ``exact_copies`` / ``exact_copies_holdout`` (share of rows at distance < 1e-8 from a train
    row), ``dcr_ratio`` = dcr_synthetic_p5 / dcr_holdout_p5 (NaN when the holdout's p5 is 0; well below
    1 = synthetic rows sit closer to the training rows than fresh data does).
    """
    train, holdout, synthetic = _prepare({"train": train, "holdout": holdout, "synthetic": synthetic}, types)
    encoder = TableEncoder().fit(train, types)
    reference = encoder.transform(train)
    d_syn = _nearest_distances(reference, encoder.transform(synthetic))
    d_hold = _nearest_distances(reference, encoder.transform(holdout))
    syn_p5, hold_p5 = float(np.percentile(d_syn, 5)), float(np.percentile(d_hold, 5))
    return {"dcr_synthetic_p5": syn_p5, "dcr_holdout_p5": hold_p5,
            "dcr_synthetic_median": float(np.median(d_syn)), "dcr_holdout_median": float(np.median(d_hold)),
            "exact_copies": float(np.mean(d_syn < 1e-8)),
            "exact_copies_holdout": float(np.mean(d_hold < 1e-8)),
            "dcr_ratio": syn_p5 / hold_p5 if hold_p5 > 0 else float("nan")}


def membership_inference_auc(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame,
                             types: Mapping[str, str], *, seed: int = 0, n: int | None = None) -> float:
    """Distance-based membership inference (Hilprecht et al. 2019; the DCR attack): candidates are
    train rows (members, label 1) and holdout rows (non-members, label 0), as many of each (the larger
    side subsampled, seeded; at most ``n`` each if given); the attack scores a candidate by minus its
    distance to the closest synthetic row (features = :class:`TableEncoder` fitted on ``train``).
    Returns the attack's ROC AUC: 0.5 = no leak, 1 = every member given away."""
    train, holdout, synthetic = _prepare({"train": train, "holdout": holdout, "synthetic": synthetic}, types)
    encoder = TableEncoder().fit(train, types)
    m = min(len(train), len(holdout), n if n is not None else len(train))
    if m < 1:
        raise GanforgeError(f"n must be at least 1, got {n}", "pass n=None or a positive count")
    rng = np.random.default_rng(seed)
    members = encoder.transform(train.iloc[np.sort(rng.choice(len(train), m, replace=False))])
    others = encoder.transform(holdout.iloc[np.sort(rng.choice(len(holdout), m, replace=False))])
    distances = _nearest_distances(encoder.transform(synthetic), np.vstack([members, others]))
    return float(roc_auc_score(np.r_[np.ones(m), np.zeros(m)], -distances))


# -------------------------------------------------------------------------------------------- all


def score_table(train: pd.DataFrame, test: pd.DataFrame, synthetic: pd.DataFrame, types: Mapping[str, str],
                target: str | None = None, *, seed: int = 0) -> dict[str, float]:
    """Every metric above as one flat dict; ``train`` is the real table the generator learned from,
    ``test`` fresh real rows. Keys: ``quality``, ``column_shapes``, ``pair_trends`` (synthetic vs
    train); the :func:`ml_efficacy` columns when ``target`` is given; ``detection_auc`` and
    ``detection_score`` (synthetic vs train); the :func:`distance_to_closest_record` columns (holdout =
    test); ``mia_auc`` (:func:`membership_inference_auc`, holdout = test)."""
    _check_types(types)
    if target is not None:
        _check_target(target, types)
    out = dict(quality(train, synthetic, types))
    if target is not None:
        out.update(ml_efficacy(train, test, synthetic, target, types, seed=seed))
    out["detection_auc"] = detection_auc(train, synthetic, types, seed=seed)
    out["detection_score"] = detection_score(out["detection_auc"])
    out.update(distance_to_closest_record(train, test, synthetic, types))
    out["mia_auc"] = membership_inference_auc(train, test, synthetic, types, seed=seed)
    return out


# --------------------------------------------------------------------------------------- registry
def _rows_metric(name: str, columns, compute, description: str, *, baseline: bool) -> None:
    """Register a table metric (source ``rows``); ``baseline``: it is also computed for held-out
    real rows in the synthetic rows' place (the real-vs-real column of the evaluation)."""
    def run(inputs: RowInputs) -> dict[str, float]:
        return {} if inputs.baseline and not baseline else compute(inputs)

    register_metric(MetricSpec(name, columns, source="rows", runs={"table"}, needs_features=False,
                               compute=run, description=description))


def _efficacy(inputs: RowInputs) -> dict[str, float]:
    """The TSTR and TRTR scores (nothing for a table without a target)."""
    if inputs.target is None:
        return {}
    return ml_efficacy(inputs.train, inputs.test, inputs.synthetic, inputs.target, inputs.types,
                       seed=inputs.seed)


def _efficacy_columns(ctx: MetricContext) -> dict[str, bool | None]:
    return {f"{side}_{score}": HIGHER if side == "tstr" else NEITHER
            for side in ("tstr", "trtr") for score in ("accuracy", "f1", "roc_auc", "r2")}


_rows_metric("quality", lambda ctx: {"quality": HIGHER, "column_shapes": HIGHER, "pair_trends": HIGHER},
             lambda i: quality(i.train, i.synthetic, i.types),
             "column shapes (KS / TV complements) and pair trends (correlation / contingency "
             "similarity), as SDMetrics' quality report", baseline=True)
_rows_metric("detection", lambda ctx: {"detection_auc": NEITHER, "detection_score": HIGHER},
             lambda i: {"detection_auc": (auc := detection_auc(i.train, i.synthetic, i.types, seed=i.seed)),
                        "detection_score": detection_score(auc)},
             "ROC AUC of a classifier telling real from synthetic rows (0.5 best)", baseline=True)
_rows_metric("efficacy", _efficacy_columns, _efficacy,
             "machine-learning efficacy: train on synthetic, test on real (TSTR) beside train on real "
             "(TRTR); needs data.target", baseline=False)
_rows_metric("privacy", lambda ctx: {"dcr_synthetic_p5": HIGHER, "dcr_holdout_p5": NEITHER,
                                     "exact_copies": LOWER, "mia_auc": NEITHER},
             lambda i: {**distance_to_closest_record(i.train, i.test, i.synthetic, i.types),
                        "mia_auc": membership_inference_auc(i.train, i.test, i.synthetic, i.types,
                                                            seed=i.seed)},
             "distance to the closest training record (synthetic vs held-out rows) and a distance-based "
             "membership-inference attack's AUC (0.5: no leak)", baseline=False)
