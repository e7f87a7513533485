"""Tabular metrics: sdmetrics as the oracle of the quality scores, closed forms, and sanity checks of
the ML-efficacy, detection and privacy metrics on small seeded tables."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from ganforge.errors import GanforgeError
from ganforge.metrics import tabular as T
from tests.conftest import REPO

CREDIT = REPO.parent / "shared" / "data" / "tables" / "credit.csv"
TYPES = {"x": "continuous", "y": "continuous", "k": "integer", "c": "categorical", "b": "boolean"}


def mixed(seed: int, n: int, shift: float = 0.0, nan: bool = True) -> pd.DataFrame:
    """x ~ N(shift, 1), y = 2x + noise, k in 0..4, c in {a, b, c} from k, b from x; 5% NaN in x, y, k, c."""
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1, n)
    k = rng.integers(0, 5, n)
    frame = pd.DataFrame({"x": x, "y": 2 * x + rng.normal(0, 1, n), "k": k.astype(float),
                          "c": np.array(["a", "b", "c"], dtype=object)[k // 2],
                          "b": x + rng.normal(0, 1, n) > 0})
    if nan:
        for col in ["x", "y", "k", "c"]:
            frame.loc[rng.choice(n, n // 20, replace=False), col] = np.nan
    return frame


def sdtypes(types):
    return {"columns": {c: {"sdtype": "numerical" if t in T.NUMERIC else t} for c, t in types.items()}}


def single_table_quality_report():
    """sdmetrics' single-table QualityReport, whose import warns that it is deprecated."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from sdmetrics.reports.single_table import QualityReport
    return QualityReport


# ------------------------------------------------------------------------------ sdmetrics agreement


def test_column_shapes_equal_sdmetrics_with_missing_values():
    sd = pytest.importorskip("sdmetrics.single_column")
    real, syn = mixed(0, 300), mixed(1, 250, shift=0.3)
    syn.loc[:9, "c"] = "d"  # a category the real column lacks
    syn.loc[10:19, "k"] = 7.0
    ours = T.column_shapes(real, syn, TYPES)
    for col, kind in TYPES.items():
        metric = sd.KSComplement if kind in T.NUMERIC else sd.TVComplement
        assert ours[col] == pytest.approx(metric.compute(real[col], syn[col]), abs=1e-6), col


def test_pair_trends_equal_sdmetrics_metrics_and_report():
    pytest.importorskip("sdmetrics")
    from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity

    QualityReport = single_table_quality_report()

    real, syn = mixed(2, 300), mixed(3, 240, shift=0.5)
    report_binning = T.pair_trends(real, syn, TYPES)
    real_binning = T.pair_trends(real, syn, TYPES, binning="real")
    assert list(report_binning) == [("x", "y"), ("x", "k"), ("x", "c"), ("x", "b"), ("y", "k"), ("y", "c"),
                                    ("y", "b"), ("k", "c"), ("k", "b"), ("c", "b")]
    for (a, b), score in real_binning.items():
        if TYPES[a] in T.NUMERIC and TYPES[b] in T.NUMERIC:
            ref = CorrelationSimilarity.compute(real[[a, b]], syn[[a, b]], coefficient="Pearson")
            assert report_binning[a, b] == score
        else:
            cont = [c for c in (a, b) if TYPES[c] in T.NUMERIC] or None
            ref = ContingencySimilarity.compute(real[[a, b]], syn[[a, b]], continuous_column_names=cont)
        assert score == pytest.approx(ref, abs=1e-6), (a, b)
    report = QualityReport()
    report.real_correlation_threshold = report.real_association_threshold = 0  # score every pair
    report.generate(real, syn, sdtypes(TYPES), verbose=False)
    details = report.get_details("Column Pair Trends")
    for _, row in details.iterrows():
        assert report_binning[row["Column 1"], row["Column 2"]] == pytest.approx(row["Score"], abs=1e-6)


def test_quality_equals_sdmetrics_quality_report():
    """sdmetrics' single-table QualityReport averages by default only the pairs whose real |r| > 0.5
    (numeric pairs) or Cramer's V > 0.3 (others); with both thresholds at 0 it averages every pair,
    which is what ``quality`` does, so the report is run with the thresholds at 0."""
    pytest.importorskip("sdmetrics")
    QualityReport = single_table_quality_report()

    real, syn = mixed(4, 200), mixed(5, 200, shift=0.2)
    report = QualityReport()
    report.real_correlation_threshold = report.real_association_threshold = 0
    report.generate(real, syn, sdtypes(TYPES), verbose=False)
    props = report.get_properties().set_index("Property")["Score"]
    ours = T.quality(real, syn, TYPES)
    assert ours["column_shapes"] == pytest.approx(props["Column Shapes"], abs=1e-6)
    assert ours["pair_trends"] == pytest.approx(props["Column Pair Trends"], abs=1e-6)
    assert ours["quality"] == pytest.approx(report.get_score(), abs=1e-6)


# ---------------------------------------------------------------------------------------- closed forms


def test_tv_complement_of_known_distributions_ignores_missing_values():
    real = pd.DataFrame({"c": ["a"] * 50 + ["b"] * 50 + [None] * 30})
    syn = pd.DataFrame({"c": ["a"] * 25 + ["b"] * 75 + [np.nan] * 5})
    assert T.column_shapes(real, syn, {"c": "categorical"})["c"] == pytest.approx(1 - 0.25)
    disjoint = pd.DataFrame({"c": [1, 2] * 10})
    assert T.column_shapes(disjoint, disjoint + 2, {"c": "categorical"})["c"] == pytest.approx(0, abs=1e-6)


def test_ks_complement_of_shifted_samples_is_scipy_ks():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 300), rng.normal(0.7, 1, 200)
    expected = 1 - ks_2samp(a, b).statistic
    real, syn = pd.DataFrame({"v": a}), pd.DataFrame({"v": np.r_[b, [np.nan] * 20]})
    assert T.column_shapes(real, syn, {"v": "continuous"})["v"] == pytest.approx(expected, abs=1e-12)
    assert T.column_shapes(real, real + 100, {"v": "continuous"})["v"] == 0


def test_boolean_strings_read_as_bools():
    real = mixed(6, 200, nan=False)
    syn = real.copy()
    syn["b"] = syn["b"].map({True: "True", False: "false"})
    assert T.column_shapes(real, syn, TYPES)["b"] == pytest.approx(1)
    assert T.pair_trends(real, syn, TYPES)["c", "b"] == pytest.approx(1)


def test_pair_trends_see_a_broken_dependence():
    real = mixed(7, 300, nan=False)
    syn = real.copy()
    syn["y"] = np.random.default_rng(0).permutation(syn["y"].to_numpy())
    scores = T.pair_trends(real, syn, TYPES)
    assert scores["x", "y"] < 0.6 and scores["x", "k"] == pytest.approx(1)


# --------------------------------------------------------------------------------------------- encoder


def test_table_encoder():
    ref = pd.DataFrame({"v": [0.0, 5.0, 10.0, np.nan], "w": [1, 2, 3, 4], "c": ["a", "b", None, "a"]})
    types = {"v": "continuous", "w": "integer", "c": "categorical"}
    enc = T.TableEncoder().fit(ref, types)
    assert enc.feature_names == ["v", "v=missing", "w", "c=a", "c=b", "c=nan"]
    new = pd.DataFrame({"v": [np.nan, 20.0], "w": [2, 4], "c": ["z", "b"]})
    got = enc.transform(new)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, [[0, 1, 1 / 3, 0, 0, 0], [2, 0, 1, 0, 1, 0]])
    np.testing.assert_allclose(enc.transform(ref)[:, 3:].sum(axis=1), 1)


# ----------------------------------------------------------------------------------------- ML efficacy


def labelled(seed: int, n: int) -> pd.DataFrame:
    """A learnable binary target: t = [x + (c == 'b') + noise > 0.5]."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    c = rng.choice(np.array(["a", "b", "c"], dtype=object), n)
    t = x + (c == "b") + rng.normal(0, 0.3, n) > 0.5
    return pd.DataFrame({"x": x, "z": rng.normal(0, 1, n), "c": c, "t": np.where(t, "yes", "no")})


LTYPES = {"x": "continuous", "z": "continuous", "c": "categorical", "t": "categorical"}


def test_ml_efficacy_reports_every_model_and_score():
    train, test, fresh = labelled(0, 200), labelled(1, 200), labelled(2, 200)
    scores = T.ml_efficacy(train, test, fresh, "t", LTYPES)
    assert set(scores) == {f"{p}_{s}{m}" for p in ("tstr", "trtr") for s in ("accuracy", "f1", "roc_auc")
                           for m in ("", "_logistic", "_forest", "_mlp")}
    assert all(0 <= v <= 1 for v in scores.values())


def test_ml_efficacy_fresh_draw_matches_trtr_and_shuffled_target_is_chance():
    """Logistic regression and the forest only: the early-stopped MLP under-trains on 300 rows (its
    10% validation split stops it after a few dozen Adam steps), which makes it noisy here."""
    train, test, fresh = labelled(0, 300), labelled(1, 300), labelled(2, 300)
    good = T.ml_efficacy(train, test, fresh, "t", LTYPES, models=("logistic", "forest"))
    assert good["trtr_roc_auc"] > 0.9 and good["trtr_accuracy"] > 0.8
    for score in ("accuracy", "f1", "roc_auc"):
        assert abs(good[f"tstr_{score}"] - good[f"trtr_{score}"]) < 0.05, score
    shuffled = fresh.assign(t=np.random.default_rng(0).permutation(fresh["t"].to_numpy()))
    bad = T.ml_efficacy(train, test, shuffled, "t", LTYPES, models=("logistic", "forest"))
    assert abs(bad["tstr_roc_auc"] - 0.5) < 0.12 and bad["tstr_accuracy"] < 0.65
    assert T.ml_efficacy(train, test, shuffled, "t", LTYPES, models=("forest",)) == \
        T.ml_efficacy(train, test, shuffled, "t", LTYPES, models=("forest",))


def test_ml_efficacy_one_class_synthetic_target_gives_nan_not_a_crash():
    train, test = labelled(0, 200), labelled(1, 200)
    syn = labelled(2, 200).assign(t="yes")
    syn.loc[:5, "t"] = None  # missing targets are dropped
    with pytest.warns(RuntimeWarning, match="could not be fitted"):
        scores = T.ml_efficacy(train, test, syn, "t", LTYPES)
    assert np.isnan(scores["tstr_accuracy_logistic"]) and not np.isnan(scores["trtr_accuracy_logistic"])
    for model in ("forest", "mlp"):  # these fit one class: constant predictors, which rank nothing
        assert scores[f"tstr_roc_auc_{model}"] == pytest.approx(0.5)
        assert scores[f"tstr_accuracy_{model}"] == pytest.approx(np.mean(test["t"] == "yes"))
    assert scores["tstr_accuracy"] == scores["tstr_accuracy_forest"]


def test_ml_efficacy_regression():
    train, test, fresh = labelled(0, 300), labelled(1, 300), labelled(2, 300)
    types = {**LTYPES, "x": "continuous", "t": "categorical"}
    scores = T.ml_efficacy(train, test, fresh, "x", types, models=("logistic", "forest"))
    assert set(scores) == {f"{p}_r2{m}" for p in ("tstr", "trtr") for m in ("", "_logistic", "_forest")}
    assert scores["trtr_r2_logistic"] > 0.3 and abs(scores["tstr_r2"] - scores["trtr_r2"]) < 0.1


# ------------------------------------------------------------------------------------ detection, privacy


def test_detection_auc_same_distribution_vs_disjoint():
    real, same, far = mixed(8, 300), mixed(9, 400), mixed(10, 300, shift=6.0)
    same_auc, far_auc = T.detection_auc(real, same, TYPES), T.detection_auc(real, far, TYPES)
    assert abs(same_auc - 0.5) < 0.1 and far_auc > 0.99
    assert T.detection_score(same_auc) > 0.8 and T.detection_score(far_auc) < 0.02
    assert all(0 <= T.detection_score(a) <= 1 for a in (0.0, 0.3, same_auc, far_auc, 1.0))
    assert T.detection_auc(real, same, TYPES, seed=1) == T.detection_auc(real, same, TYPES, seed=1)


def test_dcr_and_membership_inference_copy_vs_fresh():
    train, holdout, fresh = mixed(11, 300), mixed(12, 300), mixed(13, 300)
    copied = T.distance_to_closest_record(train, holdout, train.sample(frac=1, random_state=0), TYPES)
    assert copied["exact_copies"] == 1 and copied["dcr_synthetic_p5"] == 0 and copied["dcr_ratio"] == 0
    honest = T.distance_to_closest_record(train, holdout, fresh, TYPES)
    assert honest["exact_copies"] == 0 and honest["exact_copies_holdout"] == 0
    assert 0.5 < honest["dcr_ratio"] < 2 and honest["dcr_synthetic_median"] > 0
    assert T.membership_inference_auc(train, holdout, train, TYPES) > 0.99
    assert abs(T.membership_inference_auc(train, holdout, fresh, TYPES) - 0.5) < 0.1
    assert abs(T.membership_inference_auc(train, holdout, fresh, TYPES, n=100, seed=3) - 0.5) < 0.15


def test_dcr_queries_in_chunks(monkeypatch):
    train, holdout, fresh = mixed(14, 100), mixed(15, 100), mixed(16, 100)
    whole = T.distance_to_closest_record(train, holdout, fresh, TYPES)
    monkeypatch.setattr(T, "_CHUNK", 7)
    assert T.distance_to_closest_record(train, holdout, fresh, TYPES) == whole


# ------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("call, fragment", [
    (lambda r: T.column_shapes(r, r.drop(columns="y"), TYPES), "columns differ"),
    (lambda r: T.quality(r, r, {**TYPES, "x": "float"}), "unknown type"),
    (lambda r: T.column_shapes(r, r.iloc[:0], TYPES), "empty"),
    (lambda r: T.ml_efficacy(r, r, r, "nope", TYPES), "target column 'nope'"),
    (lambda r: T.score_table(r, r, r, TYPES, target="nope"), "target column 'nope'"),
    (lambda r: T.pair_trends(r, r.assign(x="abc"), TYPES), "non-number"),
])
def test_bad_input_raises_ganforge_error(call, fragment):
    with pytest.raises(GanforgeError, match=fragment):
        call(mixed(0, 50))


# ----------------------------------------------------------------------------------------- real table


@pytest.mark.skipif(not CREDIT.exists(), reason="shared tables not found beside the repo")
def test_score_table_on_credit_with_independently_shuffled_columns():
    credit = pd.read_csv(CREDIT)
    types = {c: "continuous" if credit[c].dtype.kind in "if" else "categorical" for c in credit.columns}
    rows = np.random.default_rng(0).permutation(len(credit))
    train, test = credit.iloc[rows[:500]], credit.iloc[rows[500:1000]]
    rng = np.random.default_rng(1)
    syn = pd.DataFrame({c: rng.permutation(train[c].to_numpy()) for c in train.columns})
    scores = T.score_table(train, test, syn, types, target="Status")
    assert scores["column_shapes"] == pytest.approx(1)
    assert scores["pair_trends"] < 0.95
    assert {"quality", "tstr_roc_auc", "trtr_roc_auc", "detection_auc", "detection_score", "dcr_ratio",
            "exact_copies", "mia_auc"} <= set(scores)
    assert scores["trtr_roc_auc"] > scores["tstr_roc_auc"]


# --------------------------------------------------------------------------------------- registry
def test_a_table_run_gets_the_table_metrics_from_the_one_registry():
    from ganforge.metrics.registry import (
        MetricContext,
        RowInputs,
        compute_metrics,
        plan_metrics,
        select_metrics,
    )

    table = MetricContext(run="table")
    assert plan_metrics(None, table) == {"rows": None}
    assert select_metrics(None, table) == ["quality", "detection", "efficacy", "privacy"]
    with pytest.raises(GanforgeError, match="'fid' does not apply to a run that synthesises table rows"):
        plan_metrics("fid", table)
    with pytest.raises(GanforgeError, match="does not apply to a generative run"):
        plan_metrics("quality", MetricContext())
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200), "c": rng.choice(["a", "b"], 200)})
    types = {"x": "continuous", "c": "categorical"}
    real = compute_metrics(["quality", "efficacy"], RowInputs(frame, frame, frame, types, None))
    assert real["column_shapes"] == pytest.approx(1.0) and not any(k.startswith("tstr") for k in real)
    baseline = compute_metrics(["privacy", "quality"],
                               RowInputs(frame, frame, frame, types, "c", baseline=True))
    assert set(baseline) == {"column_shapes", "pair_trends", "quality"}  # privacy compares with test: skipped
