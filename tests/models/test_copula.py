"""The Gaussian copula baseline for tables: marginals, category frequencies, correlation, integers,
missing values, the state_dict round trip, the CDF/quantile transform against numpy/scipy, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

pd = pytest.importorskip("pandas")

from ganforge.errors import GanforgeError  # noqa: E402
from ganforge.models.copula import GaussianCopula, _cdf, _quantile  # noqa: E402

N = 5000


def mixed_frame(n: int = N, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b = rng.multivariate_normal([0, 0], [[1, 0.7], [0.7, 1]], size=n).T
    bimodal = np.where(rng.random(n) < 0.3, rng.normal(-3, 0.5, n), rng.normal(2, 1.0, n))
    city = rng.choice(["paris", "oslo", "lima", "kyiv"], size=n, p=[0.5, 0.25, 0.15, 0.1])
    return pd.DataFrame({
        "a": a, "b": b,
        "lognormal": rng.lognormal(0.0, 1.0, n),
        "bimodal": bimodal,
        "age": rng.integers(18, 90, n),
        "city": city,
        "member": rng.random(n) < 0.35,
    })


TYPES = {"a": "continuous", "b": "continuous", "lognormal": "continuous", "bimodal": "continuous",
         "age": "integer", "city": "categorical", "member": "boolean"}


@pytest.fixture(scope="module")
def fitted():
    real = mixed_frame()
    model = GaussianCopula(TYPES, seed=0).fit(real)
    return real, model, model.sample(N, seed=1)


def test_columns_order_and_dtypes(fitted):
    real, _, fake = fitted
    assert list(fake.columns) == list(real.columns)
    assert len(fake) == N
    assert dict(fake.dtypes) == dict(real.dtypes)


def test_continuous_marginals_preserved(fitted):
    real, _, fake = fitted
    for column in ("lognormal", "bimodal", "a"):
        assert stats.ks_2samp(real[column], fake[column]).statistic < 0.05, column
        assert real[column].min() <= fake[column].min() and fake[column].max() <= real[column].max()


def test_category_frequencies_preserved(fitted):
    real, _, fake = fitted
    for column in ("city", "member"):
        p = real[column].value_counts(normalize=True)
        q = fake[column].value_counts(normalize=True).reindex(p.index, fill_value=0.0)
        assert set(fake[column].unique()) <= set(p.index)
        assert 0.5 * np.abs(p - q).sum() < 0.03, column


def test_correlation_recovered(fitted):
    real, _, fake = fitted
    assert abs(np.corrcoef(fake["a"], fake["b"])[0, 1] - 0.7) < 0.05


def test_spearman_of_monotone_transform_recovered():
    rng = np.random.default_rng(3)
    a, b = rng.multivariate_normal([0, 0], [[1, 0.7], [0.7, 1]], size=N).T
    real = pd.DataFrame({"x": np.exp(a), "y": b**3})
    fake = GaussianCopula({"x": "continuous", "y": "continuous"}).fit(real).sample(N, seed=4)
    rho_real = stats.spearmanr(real["x"], real["y"]).statistic
    assert abs(stats.spearmanr(fake["x"], fake["y"]).statistic - rho_real) < 0.05


def test_integers_stay_integers_in_range(fitted):
    real, _, fake = fitted
    assert fake["age"].dtype == np.int64
    assert fake["age"].min() >= real["age"].min() and fake["age"].max() <= real["age"].max()
    small = pd.DataFrame({"k": [1, 2, 2, 3, 7]})
    out = GaussianCopula({"k": "integer"}).fit(small).sample(2000, seed=0)["k"]
    assert out.dtype == np.int64 and out.between(1, 7).all()


def test_missing_rate_and_its_correlation_preserved():
    rng = np.random.default_rng(5)
    n = N
    driver = rng.normal(size=n)
    value = rng.lognormal(size=n)
    label = rng.choice(["x", "y", "z"], size=n).astype(object)
    value[(driver + rng.normal(0, 0.5, n)) > 0.8] = np.nan  # missing mostly when driver is high
    label[rng.random(n) < 0.1] = None  # missing at random
    real = pd.DataFrame({"driver": driver, "value": value, "label": label})
    model = GaussianCopula({"driver": "continuous", "value": "continuous", "label": "categorical"})
    fake = model.fit(real).sample(n, seed=6)
    for column in ("value", "label"):
        assert abs(fake[column].isna().mean() - real[column].isna().mean()) < 0.02, column
    assert fake["label"][fake["label"].isna()].map(lambda v: v is None).all()
    r_real = np.corrcoef(real["driver"], real["value"].isna())[0, 1]
    r_fake = np.corrcoef(fake["driver"], fake["value"].isna())[0, 1]
    assert r_real > 0.5 and r_fake > 0.4
    assert abs(np.corrcoef(fake["driver"], fake["label"].isna())[0, 1]) < 0.05
    # the observed values keep their marginal
    assert stats.ks_2samp(real["value"].dropna(), fake["value"].dropna()).statistic < 0.05
    assert model.correlation.shape == (5, 5)  # driver, value, value missing, label, label missing


def test_missing_integers_keep_nullable_dtype():
    real = pd.DataFrame({"k": pd.array([1, None, 3, 4, None, 6, 7, 8], dtype="Int64"),
                         "f": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0, 8.0]})
    fake = GaussianCopula({"k": "integer", "f": "integer"}).fit(real).sample(500, seed=0)
    assert str(fake["k"].dtype) == "Int64" and fake["f"].dtype == np.float64
    assert fake["k"].isna().any() and fake["f"].isna().any()
    assert (fake["f"].dropna() % 1 == 0).all() and fake["k"].dropna().between(1, 8).all()


def test_state_dict_round_trip_samples_identically(fitted, tmp_path):
    real, model, fake = fitted
    state = json.loads(json.dumps(model.state_dict()))
    clone = GaussianCopula({"other": "continuous"}).load_state_dict(state)
    pd.testing.assert_frame_equal(clone.sample(N, seed=1), fake)
    # the seed=None stream continues identically too
    model.sample(10)
    clone = GaussianCopula({"other": "continuous"}).load_state_dict(model.state_dict())
    pd.testing.assert_frame_equal(clone.sample(100), model.sample(100))
    torch = pytest.importorskip("torch")
    torch.save(model.state_dict(), tmp_path / "copula.pt")
    loaded = torch.load(tmp_path / "copula.pt", weights_only=True)
    pd.testing.assert_frame_equal(GaussianCopula(TYPES).load_state_dict(loaded).sample(50, seed=2),
                                  model.sample(50, seed=2))


def test_seed_none_advances_and_explicit_seed_repeats(fitted):
    _, model, _ = fitted
    assert not model.sample(20).equals(model.sample(20))
    pd.testing.assert_frame_equal(model.sample(20, seed=9), model.sample(20, seed=9))


def test_quantile_and_cdf_against_numpy_and_scipy():
    rng = np.random.default_rng(7)
    x = np.sort(rng.gamma(2.0, size=101))
    m = len(x)
    u = np.linspace(1 / (m + 1), m / (m + 1), 397)
    # x_(i) sits at i / (m + 1): numpy's "weibull" plotting position ...
    np.testing.assert_allclose(_quantile(u, x), np.quantile(x, u, method="weibull"), rtol=1e-12)
    # ... which is np.quantile's default "linear" (x_(i) at (i - 1) / (m - 1)) after q -> u
    q = np.linspace(0, 1, 211)
    np.testing.assert_allclose(_quantile((1 + q * (m - 1)) / (m + 1), x), np.quantile(x, q), rtol=1e-12)
    # flat beyond the ends
    assert _quantile(np.array([1e-9, 1 - 1e-9]), x).tolist() == [x[0], x[-1]]
    # the CDF: scipy's percentileofscore(kind="mean") counts ties by half, = (average rank - 1/2) / m
    ties = np.array([3.0, 1.0, 2.0, 2.0, 5.0, 2.0])
    ranks = np.array([stats.percentileofscore(ties, v, kind="mean") / 100 * len(ties) + 0.5 for v in ties])
    np.testing.assert_allclose(_cdf(ties), ranks / (len(ties) + 1))
    assert 0 < _cdf(ties).min() and _cdf(ties).max() < 1
    # the CDF inverts the quantile function at the (distinct) training points
    np.testing.assert_allclose(_quantile(_cdf(x), x), x)


def test_correlation_is_corrcoef_of_normal_scores():
    real = mixed_frame(400, seed=2)
    model = GaussianCopula(TYPES).fit(real)
    z = [stats.norm.ppf(stats.rankdata(real[c]) / (len(real) + 1)) for c in ("a", "b", "lognormal")]
    np.testing.assert_allclose(model.correlation[:3, :3], np.corrcoef(z), atol=1e-12)


def test_correlation_matches_copulas_oracle():
    """copulas' GaussianMultivariate with the same normal scores (its univariates fitted to z itself:
    a Gaussian univariate on already-normal scores is close to the identity)."""
    multivariate = pytest.importorskip("copulas.multivariate")
    rng = np.random.default_rng(8)
    a, b, c = rng.multivariate_normal([0, 0, 0], [[1, .5, -.3], [.5, 1, .2], [-.3, .2, 1]], size=3000).T
    real = pd.DataFrame({"a": np.exp(a), "b": b**3, "c": c})
    model = GaussianCopula(dict.fromkeys(real, "continuous")).fit(real)
    z = pd.DataFrame({k: stats.norm.ppf(stats.rankdata(v) / (len(v) + 1)) for k, v in real.items()})
    oracle = multivariate.GaussianMultivariate(distribution="copulas.univariate.GaussianUnivariate")
    oracle.fit(z)
    np.testing.assert_allclose(model.correlation, np.asarray(oracle.correlation), atol=5e-3)


def test_category_frequency_encoding():
    real = pd.DataFrame({"c": ["b"] * 5 + ["a"] * 3 + ["c"] * 3 + ["d"] * 1})
    state = GaussianCopula({"c": "categorical"}).fit(real).state_dict()
    column = state["columns"][0]
    assert column["categories"] == ["b", "a", "c", "d"]  # by frequency, ties by value
    np.testing.assert_allclose(column["frequencies"], [5 / 12, 3 / 12, 3 / 12, 1 / 12])


def test_constant_and_degenerate_columns():
    rng = np.random.default_rng(9)
    real = pd.DataFrame({"k": np.full(50, 4.5), "one": ["x"] * 50, "v": rng.normal(size=50),
                         "w": np.nan})
    model = GaussianCopula({"k": "continuous", "one": "categorical", "v": "continuous", "w": "continuous"})
    fake = model.fit(real).sample(30, seed=0)
    assert (fake["k"] == 4.5).all() and (fake["one"] == "x").all() and fake["w"].isna().all()
    sigma = model.correlation
    np.testing.assert_array_equal(sigma[:2], np.eye(len(sigma))[:2])
    np.testing.assert_array_equal(sigma[:, :2], np.eye(len(sigma))[:, :2])


def test_duplicate_columns_made_positive_definite():
    rng = np.random.default_rng(10)
    x = rng.normal(size=200)
    real = pd.DataFrame({"x": x, "y": x, "z": -x, "n": rng.normal(size=200)})
    model = GaussianCopula(dict.fromkeys(real, "continuous")).fit(real)
    sigma = model.correlation
    np.testing.assert_allclose(np.diag(sigma), 1.0)
    assert np.linalg.eigvalsh(sigma).min() > 0
    fake = model.sample(500, seed=0)
    assert np.corrcoef(fake["x"], fake["y"])[0, 1] > 0.99 and np.corrcoef(fake["x"], fake["z"])[0, 1] < -0.99


@pytest.mark.parametrize("make, match", [
    (lambda: GaussianCopula({"a": "float"}), "unknown type"),
    (lambda: GaussianCopula({}), "non-empty"),
    (lambda: GaussianCopula({"a": "continuous"}).fit(pd.DataFrame({"b": [1.0]})), "no column 'a'"),
    (lambda: GaussianCopula({"a": "continuous"}).fit(pd.DataFrame({"a": [1.0], "b": [2]})), "no type"),
    (lambda: GaussianCopula({"a": "continuous"}).fit(pd.DataFrame({"a": []})), "empty"),
    (lambda: GaussianCopula({"a": "continuous"}).fit([[1.0]]), "DataFrame"),
    (lambda: GaussianCopula({"a": "continuous"}).fit(pd.DataFrame({"a": ["x"]})), "non-numeric"),
    (lambda: GaussianCopula({"a": "continuous"}).fit(pd.DataFrame({"a": [np.inf]})), "infinite"),
    (lambda: GaussianCopula({"a": "continuous"}).sample(5), "before fit"),
    (lambda: GaussianCopula({"a": "continuous"}).fit(pd.DataFrame({"a": [1.0]})).sample(0), "n >= 1"),
    (lambda: GaussianCopula({"a": "continuous"}).fit(pd.DataFrame({"a": [1.0]})).sample(2.5), "n >= 1"),
    (lambda: GaussianCopula({"a": "continuous"}).load_state_dict({"format": "other"}), "not a Gaussian"),
])
def test_bad_input(make, match):
    with pytest.raises(GanforgeError, match=match):
        make()
