"""A Gaussian copula for synthetic tables: the no-training baseline that CTGAN is compared against
(SDV's ``GaussianCopulaSynthesizer``).

Needs pandas (the tables come and go as ``pandas.DataFrame``) and scipy.

>>> model = GaussianCopula({"age": "integer", "income": "continuous", "city": "categorical"})
>>> fake = model.fit(frame).sample(1000, seed=1)     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats

from ganforge.data.table import COLUMN_TYPES
from ganforge.errors import GanforgeError
from ganforge.models.base import register_model

TYPES = COLUMN_TYPES
FORMAT = "ganforge.gaussian_copula"
VERSION = 1
_EIGEN_FLOOR = 1e-6  # smallest eigenvalue the correlation matrix keeps (then rescaled to unit diagonal)


def _python(value: Any) -> Any:
    """A numpy scalar as the plain Python scalar (JSON and ``torch.load(weights_only=True)`` friendly)."""
    return value.item() if isinstance(value, np.generic) else value


def _frequency_table(values: list) -> tuple[list, list[float]]:
    """Categories sorted by frequency, most frequent first (ties by value), and their frequencies."""
    counts: dict = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    try:
        order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    except TypeError:  # values of several types: ties by type name, then text
        order = sorted(counts.items(), key=lambda kv: (-kv[1], type(kv[0]).__name__, str(kv[0])))
    total = len(values)
    return [k for k, _ in order], [c / total for _, c in order]


def _edges(frequencies: list[float]) -> np.ndarray:
    """The interval bounds c_0 = 0 < c_1 < ... < c_K = 1 of the frequency encoding."""
    edges = np.concatenate([[0.0], np.cumsum(frequencies)])
    edges[-1] = 1.0
    return edges


def _encode_categories(values: list, categories: list, frequencies: list[float]) -> np.ndarray:
    """Each value's u: the midpoint of its category's interval [c_k, c_{k+1})."""
    edges = _edges(frequencies)
    middle = (edges[:-1] + edges[1:]) / 2
    index = {c: k for k, c in enumerate(categories)}
    return middle[[index[v] for v in values]]


def _decode_categories(u: np.ndarray, frequencies: list[float]) -> np.ndarray:
    """The index of the category whose interval [c_k, c_{k+1}) holds each u."""
    upper = _edges(frequencies)[1:-1]
    return np.searchsorted(upper, u, side="right")


def _quantile(u: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The empirical quantile function: order statistic x_(i) sits at plotting position i / (m + 1)
    (Weibull's, ``np.quantile(..., method="weibull")``), linear in between, flat beyond the ends."""
    m = len(values)
    positions = np.arange(1, m + 1) / (m + 1)
    return np.interp(u, positions, values)


def _cdf(x: np.ndarray) -> np.ndarray:
    """The empirical CDF at the training points themselves: average rank / (m + 1), strictly in (0, 1)."""
    return stats.rankdata(x, method="average") / (len(x) + 1)


def _pairwise_correlation(z: np.ndarray) -> np.ndarray:
    """Pearson correlation of the columns of ``z`` over the rows where both are observed (NaN = missing).

    Without NaN this is ``np.corrcoef(z, rowvar=False)``. A pair with no variance on its common rows
    (a constant column, or a missing indicator against its own column) gets correlation 0."""
    observed = ~np.isnan(z)
    m = observed.astype(float)
    z0 = np.where(observed, z, 0.0)
    count = m.T @ m  # rows where both i and j are observed
    with np.errstate(divide="ignore", invalid="ignore"):
        n = np.maximum(count, 1.0)
        mean_i = (z0.T @ m) / n  # mean of column i over the rows where j is observed
        mean_j = mean_i.T
        var_i = ((z0**2).T @ m) / n - mean_i**2
        var_j = var_i.T
        cov = (z0.T @ z0) / n - mean_i * mean_j
        corr = cov / np.sqrt(var_i * var_j)
    scale = np.maximum(np.abs(z0).max(initial=0.0), 1.0) ** 2
    degenerate = (count < 2) | (var_i <= 1e-12 * scale) | (var_j <= 1e-12 * scale) | ~np.isfinite(corr)
    corr = np.where(degenerate, 0.0, np.clip(corr, -1.0, 1.0))
    corr = (corr + corr.T) / 2
    np.fill_diagonal(corr, 1.0)
    return corr


def _positive_definite(corr: np.ndarray) -> np.ndarray:
    """The correlation matrix with eigenvalues clipped to at least 1e-6, rescaled to unit diagonal."""
    eigenvalues, vectors = np.linalg.eigh(corr)
    if eigenvalues.min(initial=1.0) >= _EIGEN_FLOOR:
        return corr
    fixed = (vectors * np.maximum(eigenvalues, _EIGEN_FLOOR)) @ vectors.T
    d = np.sqrt(np.diag(fixed))
    fixed = fixed / np.outer(d, d)
    fixed = (fixed + fixed.T) / 2
    np.fill_diagonal(fixed, 1.0)
    return fixed


class GaussianCopula:
    """A Gaussian copula over a table's columns; fitted in closed form, nothing trained.

    The model, per column j with marginal CDF F_j::

        u_j = F_j(x_j),  z_j = Phi^{-1}(u_j),  Sigma = corr(z)
        sampling: z ~ N(0, Sigma),  x_j = F_j^{-1}(Phi(z_j))

    Marginals:

    * ``continuous`` / ``integer``: the empirical distribution of the training values. F at a
      training value is its average rank / (m + 1) (ties share one u; u stays strictly in (0, 1)).
      F^{-1} interpolates linearly between the order statistics x_(1) <= ... <= x_(m) placed at
      i / (m + 1), i.e. ``np.quantile(values, u, method="weibull")``, and is flat beyond them, so
      samples stay in [min, max]. (``np.quantile``'s default ``"linear"`` method puts x_(i) at
      (i - 1) / (m - 1) instead: F^{-1}((1 + q (m - 1)) / (m + 1)) = ``np.quantile(values, q)``.)
      Integers are rounded back and clipped to [min, max].
    * ``categorical`` / ``boolean``: SDV's frequency encoding. Categories sorted by frequency (most
      frequent first, ties by value) own consecutive intervals [c_k, c_{k+1}) of (0, 1) of width
      their frequency; a value fits at its interval's midpoint, a sampled u becomes the category
      whose interval holds it (so the category frequencies are reproduced exactly in expectation).
    * missing values: a column with any missing value gets an extra binary column in the copula,
      its missing indicator (frequency-encoded like a two-valued categorical); the column's own
      marginal is fitted on the observed values. Sampled rows whose indicator says "missing" are
      NaN (``None`` for categorical and boolean columns), so the missing rate and its correlation
      with the other columns are kept.

    Sigma is the Pearson correlation of the normal scores (``np.corrcoef``; with missing values,
    each pair over the rows where both are observed). A constant column (z = 0) gets identity
    rows and columns. If Sigma is not positive definite its eigenvalues are clipped to 1e-6 and it
    is rescaled to a correlation matrix. Sampling draws z = e L^T with e standard normal from
    ``np.random.default_rng`` and L the Cholesky factor of Sigma.

    ``types`` maps each column to ``"continuous"``, ``"integer"``, ``"categorical"`` or ``"boolean"``;
    the fitted frame must hold exactly those columns, and samples come back with the frame's column
    order and, where they can hold the values, its dtypes (a continuous column stored as integers
    comes back float64; an integer column with NaN keeps its float64 or ``Int64`` dtype).

    Binary and categorical columns enter Sigma through their midpoint scores, so a sampled
    dependence on them (a missing indicator's correlation with another column, say) is weaker than
    the data's, as in SDV.
    """

    def __init__(self, types: Mapping[str, str], *, seed: int = 0) -> None:
        if not isinstance(types, Mapping) or not types:
            raise GanforgeError("GaussianCopula needs the column types as a non-empty mapping",
                                'pass e.g. {"age": "integer", "city": "categorical"}')
        for column, kind in types.items():
            if kind not in TYPES:
                raise GanforgeError(f"column {column!r} has unknown type {kind!r}",
                                    f"use one of {', '.join(TYPES)}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise GanforgeError(f"seed must be an integer, got {seed!r}", "pass e.g. seed=0")
        self.types = dict(types)
        self.seed = int(seed)
        self._columns: list[dict] | None = None
        self._correlation: np.ndarray | None = None
        self._draws = 0  # samples drawn with seed=None (each draws from default_rng([seed, draws]))

    # -- fitting ---------------------------------------------------------------------------------

    def fit(self, frame: pd.DataFrame) -> GaussianCopula:
        """Fit the marginals and the correlation of the normal scores; returns ``self``."""
        if not isinstance(frame, pd.DataFrame):
            raise GanforgeError(f"GaussianCopula.fit needs a pandas DataFrame, got {type(frame).__name__}",
                                "pass pd.DataFrame(...)")
        if len(frame) == 0:
            raise GanforgeError("GaussianCopula.fit got an empty frame (no rows)", "pass at least one row")
        missing = [c for c in self.types if c not in frame.columns]
        if missing:
            raise GanforgeError(f"the frame has no column {', '.join(map(repr, missing))}",
                                "fix the names in types or add the columns to the frame")
        extra = [c for c in frame.columns if c not in self.types]
        if extra:
            raise GanforgeError(f"column {', '.join(map(repr, extra))} has no type",
                                "add it to types or drop it from the frame")
        if frame.columns.duplicated().any():
            raise GanforgeError("the frame has duplicated column names", "rename or drop the duplicates")

        columns, scores = [], []
        for name in frame.columns:
            column, z = self._fit_column(name, self.types[name], frame[name])
            columns.append(column)
            scores.extend(z)
        self._columns = columns
        self._correlation = _positive_definite(_pairwise_correlation(np.column_stack(scores)))
        self._draws = 0
        return self

    def _fit_column(self, name: Any, kind: str, series: pd.Series) -> tuple[dict, list[np.ndarray]]:
        """One column's marginal (a state_dict entry) and its normal scores (plus its indicator's)."""
        is_missing = pd.isna(series).to_numpy(dtype=bool)
        observed = series[~is_missing]
        column: dict = {"name": _python(name), "type": kind, "dtype": str(series.dtype), "missing": None}
        z = np.full(len(series), np.nan)
        if kind in ("continuous", "integer"):
            try:
                x = pd.to_numeric(observed).to_numpy(dtype=float)
            except (TypeError, ValueError) as err:
                raise GanforgeError(f"{kind} column {name!r} holds non-numeric values ({err})",
                                    "declare it categorical or convert it to numbers") from None
            if not np.isfinite(x).all():
                raise GanforgeError(f"{kind} column {name!r} holds infinite values",
                                    "replace them with NaN (missing) or finite numbers")
            column["values"] = [float(v) for v in np.sort(x)]
            if len(x):
                z[~is_missing] = stats.norm.ppf(_cdf(x))
        else:
            values = [_python(v) for v in observed.tolist()]
            categories, frequencies = _frequency_table(values)
            column["categories"], column["frequencies"] = categories, frequencies
            if values:
                z[~is_missing] = stats.norm.ppf(_encode_categories(values, categories, frequencies))
        scores = [z]
        if is_missing.any():
            flags = [bool(v) for v in is_missing]
            categories, frequencies = _frequency_table(flags)
            column["missing"] = {"categories": categories, "frequencies": frequencies}
            scores.append(stats.norm.ppf(_encode_categories(flags, categories, frequencies)))
        return column, scores

    # -- sampling --------------------------------------------------------------------------------

    def sample(self, n: int, seed: int | None = None) -> pd.DataFrame:
        """``n`` synthetic rows. With ``seed=None`` successive calls continue the model's own
        stream (``default_rng([model seed, call number])``); an explicit seed gives the same rows
        every time."""
        if self._columns is None or self._correlation is None:
            raise GanforgeError("GaussianCopula.sample called before fit", "call fit(frame) first")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise GanforgeError(f"sample needs n >= 1 rows, got {n!r}", "pass a positive integer")
        if seed is None:
            rng = np.random.default_rng([self.seed, self._draws])
            self._draws += 1
        elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise GanforgeError(f"seed must be an integer or None, got {seed!r}", "pass e.g. seed=0")
        else:
            rng = np.random.default_rng(int(seed))
        factor = np.linalg.cholesky(self._correlation)
        u = stats.norm.cdf(rng.standard_normal((int(n), len(factor))) @ factor.T)
        out, slot = {}, 0
        for column in self._columns:
            values = self._inverse(column, u[:, slot])
            slot += 1
            if column["missing"] is not None:
                indicator = column["missing"]
                flags = np.asarray(indicator["categories"], dtype=bool)[
                    _decode_categories(u[:, slot], indicator["frequencies"])]
                slot += 1
                values = values.astype(object if values.dtype.kind in "Ob" else float)
                values[flags] = None if column["type"] in ("categorical", "boolean") else np.nan
            dtype = column["dtype"]
            if column["type"] == "continuous" and not dtype.lower().startswith("float"):
                dtype = "float64"  # an int64 (or object) column declared continuous would truncate
            out[column["name"]] = _restore_dtype(values, dtype)
        return pd.DataFrame(out)

    @staticmethod
    def _inverse(column: dict, u: np.ndarray) -> np.ndarray:
        """F_j^{-1}(u) for one column."""
        kind = column["type"]
        if kind in ("continuous", "integer"):
            values = np.asarray(column["values"], dtype=float)
            if len(values) == 0:  # never observed: every row is missing
                return np.full(len(u), np.nan)
            x = np.clip(_quantile(u, values), values[0], values[-1])
            if kind == "integer":
                x = np.clip(np.rint(x), np.ceil(values[0]), np.floor(values[-1]))
                if np.ceil(values[0]) <= np.floor(values[-1]):
                    return x.astype(np.int64)
            return x
        categories = column["categories"]
        if not categories:
            return np.full(len(u), None, dtype=object)
        table = np.empty(len(categories), dtype=object)
        table[:] = categories
        return table[_decode_categories(u, column["frequencies"])]

    # -- state -----------------------------------------------------------------------------------

    @property
    def correlation(self) -> np.ndarray:
        """The fitted correlation matrix Sigma (columns in frame order, each missing indicator right
        after its column)."""
        if self._correlation is None:
            raise GanforgeError("GaussianCopula has no correlation before fit", "call fit(frame) first")
        return self._correlation.copy()

    def state_dict(self) -> dict:
        """The fitted model as plain lists, floats, ints, bools and strings (JSON and
        ``torch.save``/``torch.load(weights_only=True)`` friendly)."""
        if self._columns is None or self._correlation is None:
            raise GanforgeError("GaussianCopula.state_dict called before fit", "call fit(frame) first")
        return {
            "format": FORMAT,
            "version": VERSION,
            "types": [[_python(k), v] for k, v in self.types.items()],
            "seed": self.seed,
            "draws": self._draws,
            "columns": [dict(c, missing=None if c["missing"] is None else dict(c["missing"]))
                        for c in self._columns],
            "correlation": self._correlation.tolist(),
        }

    def load_state_dict(self, state: Mapping) -> GaussianCopula:
        """Restore a fitted model from :meth:`state_dict` (its types and seed replace this one's)."""
        if not isinstance(state, Mapping) or state.get("format") != FORMAT:
            raise GanforgeError("not a GaussianCopula state_dict",
                                "pass what GaussianCopula.state_dict() returned")
        if state.get("version") != VERSION:
            raise GanforgeError(f"GaussianCopula state_dict version {state.get('version')!r} is unsupported",
                                f"re-fit and save it with this version ({VERSION})")
        try:
            types = dict(state["types"])
            columns = [dict(c, missing=None if c["missing"] is None else dict(c["missing"]))
                       for c in state["columns"]]
            correlation = np.asarray(state["correlation"], dtype=float)
            slots = sum(1 + (c["missing"] is not None) for c in columns)
            if correlation.shape != (slots, slots) or any(c["type"] not in TYPES for c in columns):
                raise ValueError("shapes or types disagree")
            np.linalg.cholesky(correlation)
        except (KeyError, TypeError, ValueError, np.linalg.LinAlgError) as err:
            raise GanforgeError(f"GaussianCopula state_dict is corrupt ({err})",
                                "re-fit the model and save a fresh state_dict") from None
        self.types, self.seed, self._draws = types, int(state["seed"]), int(state["draws"])
        self._columns, self._correlation = columns, correlation
        return self


def _restore_dtype(values: np.ndarray, dtype: str) -> pd.Series:
    """The sampled values in the training column's dtype, where that dtype can hold them."""
    series = pd.Series(values)
    try:
        return series.astype(dtype)
    except (TypeError, ValueError):
        return series.infer_objects()


# ---------------------------------------------------------------------- the registered model
class CopulaModel(torch.nn.Module):
    """The copula as a network of a run (``model: {name: copula}``, fitted by the ``copula``
    algorithm): no weights; the fitted :class:`GaussianCopula` (``copula``) travels in the
    algorithm's state (plain lists and numbers, so the checkpoint loads with
    ``weights_only=True``)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.seed = seed
        self.copula: GaussianCopula | None = None

    def fit(self, frame: pd.DataFrame, types: Mapping[str, str]) -> CopulaModel:
        self.copula = GaussianCopula(types, seed=self.seed).fit(frame)
        return self

    def load(self, state: Mapping) -> CopulaModel:
        self.copula = GaussianCopula(dict(state["types"]), seed=self.seed).load_state_dict(state)
        return self


@register_model("copula")
def build_copula(sample_shape: tuple[int, ...], num_classes: int | None = None, *,
                 seed: int = 0) -> CopulaModel:
    """The Gaussian copula baseline of a table run (fitted by the ``copula`` algorithm)."""
    return CopulaModel(seed)
