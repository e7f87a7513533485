"""Tables: the ``table`` data kind, CSV reading with typed columns, and CTGAN's reversible
mode-specific normalisation (Xu et al. 2019, "Modeling Tabular Data using Conditional GAN").

A table is read from a CSV (``data: {name: table, path: FILE}``) or given as a pandas DataFrame
(:meth:`TableDataset.from_frame`). Each column has a type, declared (``data.columns: {age:
continuous, sex: categorical}``) or inferred from the values::

    boolean      a bool column, or two values spelled true/false
    categorical  text; or integers with at most ``data.integer_categories`` distinct values
    integer      other whole numbers (rounded on the way back)
    continuous   other numbers (rounded to the decimals the column was written with)

Missing values are kept: a categorical column's missing value is one more category; a numeric
column gets a missing indicator (a two-way one-hot) beside its value. The rows are split into a
train and a test part with a seeded permutation (``data.test_fraction``, ``data.split_seed``);
the metadata (:class:`TableSchema`: names, types, categories, rounding, min/max) and the fitted
transform travel with a run, so its samples come back with the original names, types and
categories.

**The transform** (:class:`TableTransformer`) maps a row to a vector of *spans*:

    numeric column   a variational Gaussian mixture p(x) = sum_k w_k N(x; mu_k, sigma_k^2) fitted
                     by scikit-learn's BayesianGaussianMixture (Dirichlet process prior 0.001, at
                     most 10 components, modes of weight > 0.005 kept); a value x draws its mode
                     k ~ p(k | x) and is coded as alpha = (x - mu_k) / (4 sigma_k), clipped to
                     [-0.99, 0.99] (span ``tanh``), beside the one-hot of k (span ``softmax``)
    discrete column  the one-hot of its category (span ``softmax``)

and back: k = argmax, x = 4 sigma_k alpha + mu_k, rounded and clipped to the training range;
category = argmax. The inverse is exact for categories and, for values with |alpha| < 0.99,
exact up to the column's rounding.

Large CSVs are read in chunks of ``CHUNK_ROWS`` and at most ``data.max_rows`` rows are kept (a
seeded uniform sample of the file's rows when it has more), so memory is bounded by
``max_rows`` whatever the file's size; the mixture of a column is fitted on at most
``FIT_ROWS`` of its values.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.data.base import ArrayDataset, register_dataset
from ganforge.data.kinds import DataKind, Writer, register_kind
from ganforge.data.writers import Samples
from ganforge.errors import GanforgeError

COLUMN_TYPES = ("continuous", "integer", "categorical", "boolean")
NUMERIC = ("continuous", "integer")
DISCRETE = ("categorical", "boolean")
CHUNK_ROWS = 50_000
FIT_ROWS = 20_000
MAX_MODES = 10
MODE_WEIGHT_THRESHOLD = 0.005
TRUE_WORDS = {"true", "t", "yes", "y"}
FALSE_WORDS = {"false", "f", "no", "n"}


# ---------------------------------------------------------------------- the schema
@dataclass
class Column:
    """One column: ``type`` (:data:`COLUMN_TYPES`); ``categories`` of a discrete column (JSON
    scalars, in their order in the one-hot; None stands for missing); ``missing``: the training
    rows had missing values; ``minimum``/``maximum``/``decimals`` of a numeric column."""

    name: str
    type: str
    categories: list[Any] | None = None
    missing: bool = False
    minimum: float | None = None
    maximum: float | None = None
    decimals: int | None = None


@dataclass
class TableSchema:
    """The columns of a table, in order, and the ``target`` (a column, or None)."""

    columns: list[Column]
    target: str | None = None

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def types(self) -> dict[str, str]:
        return {c.name: c.type for c in self.columns}

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise GanforgeError(f"the table has no column {name!r}",
                            f"choose one of: {', '.join(self.names)}")

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [asdict(c) for c in self.columns], "target": self.target}

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> TableSchema:
        return cls([Column(**c) for c in state["columns"]], state.get("target"))


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python scalar a checkpoint (weights_only) and JSON can hold."""
    if _is_missing(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _decimals(values: np.ndarray) -> int:
    """The decimals a numeric column was written with (at most 6)."""
    for d in range(7):
        if np.allclose(values, np.round(values, d), rtol=0, atol=1e-9):
            return d
    return 6


def _boolean_values(series: Any) -> bool:
    values = {str(v).strip().lower() for v in series.dropna().unique()}
    return bool(values) and (values <= TRUE_WORDS | FALSE_WORDS) and len(values) == 2


def infer_schema(frame: Any, declared: Mapping[str, str] | None = None, *, target: str | None = None,
                 integer_categories: int = 10, max_categories: int = 1000) -> TableSchema:
    """The schema of ``frame``: declared types where given, inferred otherwise (module docstring).
    Refuses, one line each: a declared column that is absent, an unknown type, a column with no
    value or a single value, a discrete column with more than ``max_categories`` categories, a
    ``target`` that is not a column."""
    import pandas as pd  # here, not at import: `import ganforge` stays quick
    declared = dict(declared or {})
    if frame.shape[1] == 0 or len(frame) == 0:
        raise GanforgeError("the table is empty (no rows or no columns)",
                            "give a CSV with a header line and at least one row of data")
    for name, kind in declared.items():
        if name not in frame.columns:
            raise GanforgeError(f"data.columns declares column {name!r}, which the table does not have",
                                f"the columns are: {', '.join(map(str, frame.columns))}")
        if kind not in COLUMN_TYPES:
            raise GanforgeError(f"data.columns.{name}={kind!r} is not a column type",
                                f"choose one of: {', '.join(COLUMN_TYPES)}")
    if target is not None and target not in frame.columns:
        raise GanforgeError(f"data.target={target!r} is not a column of the table",
                            f"choose one of: {', '.join(map(str, frame.columns))}")
    columns = []
    for name in frame.columns:
        series = frame[name]
        present = series.dropna()
        if present.empty:
            raise GanforgeError(f"column {name!r} has no values (every row is missing)",
                                f"drop it: --set data.drop=[{name}]")
        if present.nunique() < 2 and not series.isna().any():
            raise GanforgeError(f"column {name!r} is constant ({present.iloc[0]!r} in every row): "
                                "there is nothing to learn", f"drop it: --set data.drop=[{name}]")
        kind = declared.get(name) or _infer_type(series, integer_categories)
        column = Column(str(name), kind, missing=bool(series.isna().any()))
        if kind in DISCRETE:
            values = present.unique()
            if len(values) > max_categories:
                raise GanforgeError(
                    f"column {name!r} has {len(values)} categories, more than data.max_categories="
                    f"{max_categories}", f"drop it (--set data.drop=[{name}]), declare it numeric "
                    f"(data.columns.{name}: continuous) or raise data.max_categories")
            categories = sorted((_plain(v) for v in values), key=lambda v: (str(type(v)), v))
            column.categories = categories + ([None] if column.missing else [])
        else:
            numbers = pd.to_numeric(present, errors="coerce")
            if numbers.isna().any():
                bad = present[numbers.isna()].iloc[0]
                raise GanforgeError(f"column {name!r} is declared {kind} but holds {bad!r}",
                                    f"declare it categorical (data.columns.{name}: categorical)")
            values = numbers.to_numpy(dtype=np.float64)
            column.minimum, column.maximum = float(values.min()), float(values.max())
            column.decimals = 0 if kind == "integer" else _decimals(values)
        columns.append(column)
    return TableSchema(columns, target)


def _infer_type(series: Any, integer_categories: int) -> str:
    import pandas as pd
    if pd.api.types.is_bool_dtype(series) or _boolean_values(series):
        return "boolean"
    if not pd.api.types.is_numeric_dtype(series):
        return "categorical"
    values = series.dropna().to_numpy(dtype=np.float64)
    if np.all(values == np.round(values)):
        return "categorical" if len(np.unique(values)) <= integer_categories else "integer"
    return "continuous"


# ---------------------------------------------------------------------- reading
def _check_csv(path: Path) -> list[str]:
    """The header of ``path``, after the checks that pandas words badly: not a file, not UTF-8,
    empty, no header, ragged rows (reported with their line)."""
    if not path.is_file():
        raise GanforgeError(f"table {path} does not exist",
                            "pass the path of a CSV file: --set data.path=FILE")
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None or not any(h.strip() for h in header):
                raise GanforgeError(f"table {path} is empty", "give a CSV with a header line and rows")
            for line, row in enumerate(reader, start=2):
                if row and len(row) != len(header):
                    raise GanforgeError(f"table {path} line {line} has {len(row)} fields, the header "
                                        f"{len(header)}", "fix that row (a stray comma or a missing "
                                        "field), or quote fields that hold commas")
    except UnicodeDecodeError as err:
        raise GanforgeError(f"table {path} is not UTF-8 text (byte {err.start})",
                            "re-save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
    except csv.Error as err:
        raise GanforgeError(f"table {path} is not a valid CSV ({err})", "fix the quoting") from None
    names = [h.strip() for h in header]
    if all(_looks_numeric(h) for h in names):
        raise GanforgeError(f"table {path} has no header line (its first row is all numbers: "
                            f"{', '.join(names[:4])})", "add a first line naming the columns")
    duplicate = next((h for h in names if names.count(h) > 1), None)
    if duplicate is not None or "" in names:
        raise GanforgeError(f"table {path} has {'an empty' if duplicate is None else 'a repeated'} column "
                            f"name{'' if duplicate is None else ' ' + repr(duplicate)}",
                            "give every column a distinct name in the header")
    return names


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_csv(path: str | Path, *, max_rows: int = 200_000, seed: int = 0,
             drop: Sequence[str] = ()) -> Any:
    """The rows of CSV ``path`` as a DataFrame (empty fields and ``NA`` missing), without the
    columns ``drop``; at most ``max_rows`` rows: a seeded uniform sample of a longer file, read
    ``CHUNK_ROWS`` at a time (bounded memory). Bad files are one-line errors."""
    import pandas as pd
    path = Path(path).expanduser()
    names = _check_csv(path)
    for name in drop:
        if name not in names:
            raise GanforgeError(f"data.drop names column {name!r}, which table {path} does not have",
                                f"the columns are: {', '.join(names)}")
    keep = [n for n in names if n not in set(drop)]
    if not keep:
        raise GanforgeError("data.drop removes every column", "drop fewer columns")
    rng = np.random.default_rng(seed)
    kept, keys = None, None
    chunks = pd.read_csv(path, usecols=keep, chunksize=CHUNK_ROWS, skipinitialspace=True,
                         na_values=["NA", ""], keep_default_na=True, encoding="utf-8")
    for chunk in chunks:  # bottom-k of random keys: a uniform sample of max_rows rows
        chunk_keys = rng.random(len(chunk))
        kept = chunk if kept is None else pd.concat([kept, chunk], ignore_index=True)
        keys = chunk_keys if keys is None else np.concatenate([keys, chunk_keys])
        if len(kept) > max_rows:
            order = np.sort(np.argsort(keys, kind="stable")[:max_rows])
            kept, keys = kept.iloc[order].reset_index(drop=True), keys[order]
    if kept is None or len(kept) == 0:
        raise GanforgeError(f"table {path} has a header but no rows", "give a CSV with rows of data")
    kept.columns = [str(c).strip() for c in kept.columns]
    return kept[[n.strip() for n in keep]]


def split_rows(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices: a seeded permutation, the last ``round(n test_fraction)`` rows
    of it held out (sorted, so the parts keep the file's order)."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


# ---------------------------------------------------------------------- the transform
@dataclass(frozen=True)
class Span:
    """A slice of the transformed vector: ``width`` values with ``activation`` tanh (a
    normalised value alpha) or softmax (a one-hot: modes, categories, missing indicator), of
    ``column``; ``role`` value | mode | category | missing."""

    column: str
    role: str
    width: int
    activation: str


@dataclass
class NumericCode:
    """A numeric column's fitted mixture: the kept modes' means, standard deviations and
    weights."""

    means: list[float] = field(default_factory=list)
    stds: list[float] = field(default_factory=list)
    weights: list[float] | None = None


class TableTransformer:
    """Mode-specific normalisation of numeric columns and one-hot discrete columns (module
    docstring). ``fit(frame, schema)``, ``transform(frame) -> (N, D) float32``,
    ``inverse(array) -> frame``; ``spans`` the layout; ``state_dict`` a checkpoint can hold."""

    def __init__(self, schema: TableSchema, *, seed: int = 0) -> None:
        self.schema = schema
        self.seed = seed
        self.codes: dict[str, NumericCode] = {}

    # ------------------------------------------------------------------ fitting
    def fit(self, frame: Any) -> TableTransformer:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import BayesianGaussianMixture

        rng = np.random.default_rng(self.seed)
        for column in self.schema.columns:
            if column.type not in NUMERIC:
                continue
            values = self._numbers(frame, column)
            values = values[~np.isnan(values)]
            if len(values) > FIT_ROWS:
                values = rng.choice(values, FIT_ROWS, replace=False)
            modes = min(MAX_MODES, len(np.unique(values)))
            if modes < 2:
                self.codes[column.name] = NumericCode([float(values.mean())],
                                                      [max(float(values.std()), 1e-3)], [1.0])
                continue
            mixture = BayesianGaussianMixture(
                n_components=modes, weight_concentration_prior_type="dirichlet_process",
                weight_concentration_prior=0.001, max_iter=100, n_init=1, random_state=self.seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                mixture.fit(values.reshape(-1, 1))
            kept = mixture.weights_ > MODE_WEIGHT_THRESHOLD
            means = mixture.means_.reshape(-1)[kept]
            stds = np.sqrt(mixture.covariances_.reshape(-1))[kept]
            weights = mixture.weights_[kept]
            self.codes[column.name] = NumericCode([float(m) for m in means],
                                                  [max(float(s), 1e-6) for s in stds],
                                                  [float(w) for w in weights / weights.sum()])
        return self

    @staticmethod
    def _numbers(frame: Any, column: Column) -> np.ndarray:
        import pandas as pd
        return pd.to_numeric(frame[column.name], errors="coerce").to_numpy(dtype=np.float64)

    # ------------------------------------------------------------------ layout
    @property
    def spans(self) -> list[Span]:
        out = []
        for column in self.schema.columns:
            if column.type in NUMERIC:
                out.append(Span(column.name, "value", 1, "tanh"))
                out.append(Span(column.name, "mode", len(self.codes[column.name].means), "softmax"))
                if column.missing:
                    out.append(Span(column.name, "missing", 2, "softmax"))
            else:
                out.append(Span(column.name, "category", len(column.categories), "softmax"))
        return out

    @property
    def width(self) -> int:
        return sum(s.width for s in self.spans)

    # ------------------------------------------------------------------ forward and back
    def transform(self, frame: Any, seed: int | None = None) -> np.ndarray:
        """(N, D) float32: every row's spans. A value's mode is drawn from p(k | x) with a numpy
        generator seeded by ``seed`` (default: the transformer's)."""
        rng = np.random.default_rng(self.seed if seed is None else seed)
        parts = []
        for column in self.schema.columns:
            if column.type in NUMERIC:
                parts.extend(self._encode_numeric(frame, column, rng))
            else:
                parts.append(self._encode_discrete(frame, column))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def _encode_numeric(self, frame: Any, column: Column, rng: np.random.Generator) -> list[np.ndarray]:
        code = self.codes[column.name]
        x = self._numbers(frame, column)
        missing = np.isnan(x)
        if missing.any() and not column.missing:
            raise GanforgeError(f"column {column.name!r} has missing values, and the table it was "
                                "fitted on had none", "fill them, or fit on a table that has some")
        means, stds = np.asarray(code.means), np.asarray(code.stds)
        filled = np.where(missing, means[0], x)
        # responsibilities p(k | x) = w_k N(x; mu_k, sigma_k^2) / sum of the kept modes, floored
        # at 1e-6 as the reference does before it draws a mode per value
        weights = np.asarray(code.weights if code.weights is not None else [1.0] * len(means))
        z = (filled[:, None] - means[None, :]) / stds[None, :]
        log_p = -0.5 * z ** 2 - np.log(stds)[None, :] + np.log(weights)[None, :]
        p = np.exp(log_p - log_p.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        p += 1e-6
        p /= p.sum(1, keepdims=True)
        u = rng.random(len(x))[:, None]
        mode = np.minimum((p.cumsum(1) < u).sum(1), len(means) - 1)
        alpha = np.clip((filled - means[mode]) / (4 * stds[mode]), -0.99, 0.99)
        onehot = np.eye(len(means), dtype=np.float32)[mode]
        out = [alpha[:, None], onehot]
        if column.missing:
            out.append(np.eye(2, dtype=np.float32)[missing.astype(int)])
        return out

    def _encode_discrete(self, frame: Any, column: Column) -> np.ndarray:
        index = self.category_index(column, frame[column.name].tolist())
        return np.eye(len(column.categories), dtype=np.float32)[index]

    @staticmethod
    def category_index(column: Column, values: Sequence[Any], what: str = "the table") -> np.ndarray:
        """The one-hot positions of ``values`` among ``column``'s categories (missing -> None's);
        a value the column never had is a one-line error."""
        lookup = {_key(c): i for i, c in enumerate(column.categories)}
        out = np.empty(len(values), dtype=np.int64)
        for i, value in enumerate(values):
            key = _key(_plain(value))
            if key not in lookup:
                shown = ", ".join(map(str, column.categories[:8]))
                raise GanforgeError(f"column {column.name!r} of {what} has value {value!r}, which is not "
                                    f"one of its categories", f"choose one of: {shown}"
                                    f"{', ...' if len(column.categories) > 8 else ''}")
            out[i] = lookup[key]
        return out

    def inverse(self, data: np.ndarray | torch.Tensor) -> Any:
        """The DataFrame of transformed rows ``data`` (N, D): argmax of every one-hot, values
        de-normalised, rounded and clipped to the training range, missing where indicated."""
        import pandas as pd
        data = data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
        columns, offset = {}, 0
        for column in self.schema.columns:
            if column.type in NUMERIC:
                code = self.codes[column.name]
                k = len(code.means)
                alpha = np.clip(data[:, offset], -1, 1)
                mode = data[:, offset + 1: offset + 1 + k].argmax(1)
                offset += 1 + k
                x = alpha * 4 * np.asarray(code.stds)[mode] + np.asarray(code.means)[mode]
                x = np.clip(np.round(x, column.decimals), column.minimum, column.maximum)
                values: Any = x.astype(np.int64) if column.type == "integer" else x
                if column.missing:
                    missing = data[:, offset: offset + 2].argmax(1) == 1
                    offset += 2
                    values = pd.array(values, dtype="Int64" if column.type == "integer" else "Float64")
                    values[missing] = pd.NA
                    values = values.astype("float64") if column.type == "continuous" else values
                columns[column.name] = values
            else:
                k = len(column.categories)
                index = data[:, offset: offset + k].argmax(1)
                offset += k
                columns[column.name] = np.asarray(column.categories, dtype=object)[index]
        return pd.DataFrame(columns)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"schema": self.schema.to_dict(), "seed": self.seed,
                "codes": {name: asdict(code) for name, code in self.codes.items()}}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> TableTransformer:
        out = cls(TableSchema.from_dict(state["schema"]), seed=int(state["seed"]))
        out.codes = {name: NumericCode(**code) for name, code in state["codes"].items()}
        return out


def _key(value: Any) -> Any:
    """How categories are matched: missing as None, whole floats as ints, text as stripped text."""
    value = _plain(value)
    return value.strip() if isinstance(value, str) else value


# ---------------------------------------------------------------------- the dataset
class TableDataset(ArrayDataset):
    """The rows of one split of a table, as the Trainer sees them: ``x`` (N, D) their
    transformed vectors (:class:`TableTransformer`, fitted on the train split, computed when
    first read); ``frame`` the rows themselves, ``schema`` and ``transformer``; ``train_frame``
    and ``test_frame`` both splits (for evaluation)."""

    data_kind = "table"

    def __init__(self, frame: Any, schema: TableSchema, *, split: str = "train",
                 test_fraction: float = 0.2, split_seed: int = 0, seed: int = 0,
                 name: str = "table", transformer: TableTransformer | None = None) -> None:
        train_rows, test_rows = split_rows(len(frame), test_fraction, split_seed)
        if len(train_rows) < 2:
            raise GanforgeError(f"the table has {len(frame)} rows, too few to train on",
                                "give a table with more rows, or lower data.test_fraction")
        self.train_frame = frame.iloc[train_rows].reset_index(drop=True)
        self.test_frame = frame.iloc[test_rows].reset_index(drop=True)
        self.frame = {"train": self.train_frame, "test": self.test_frame, "all": frame}[split]
        self.schema = schema
        self.split = split
        self.seed = seed
        self.name = name
        self.y = None
        self.num_classes = None
        self.classes = None
        self.extractor = "raw"
        self.modes = None
        self._transformer = transformer
        self._x: torch.Tensor | None = None

    @classmethod
    def from_frame(cls, frame: Any, *, columns: Mapping[str, str] | None = None, target: str | None = None,
                   drop: Sequence[str] = (), integer_categories: int = 10, max_categories: int = 1000,
                   **kwargs: Any) -> TableDataset:
        """A table from a pandas DataFrame (the Python API's way in); options as the ``table``
        dataset's."""
        for name in drop:
            if name not in frame.columns:
                raise GanforgeError(f"data.drop names column {name!r}, which the table does not have",
                                    f"the columns are: {', '.join(map(str, frame.columns))}")
        frame = frame.drop(columns=list(drop)).reset_index(drop=True)
        frame.columns = [str(c) for c in frame.columns]
        schema = infer_schema(frame, columns, target=target, integer_categories=integer_categories,
                              max_categories=max_categories)
        return cls(frame, schema, **kwargs)

    @property
    def transformer(self) -> TableTransformer:
        """The transform, fitted on the train split (once)."""
        if self._transformer is None:
            self._transformer = TableTransformer(self.schema, seed=self.seed).fit(self.train_frame)
        return self._transformer

    @property
    def x(self) -> torch.Tensor:  # type: ignore[override]
        if self._x is None:
            self._x = torch.from_numpy(self.transformer.transform(self.frame)).contiguous()
        return self._x

    @property
    def fields(self) -> tuple[str, ...]:
        return ("x",)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"x": self.x}

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.x[i], -1

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.transformer.width,)


@register_dataset("table")
def table(path: str, columns: dict | None = None, drop: list | None = None, target: str | None = None,
          split: str = "train", test_fraction: float = 0.2, split_seed: int = 0, seed: int = 0,
          max_rows: int = 200_000, integer_categories: int = 10,
          max_categories: int = 1000) -> TableDataset:
    """A CSV table (see the module docstring). ``columns``: declared types by column name;
    ``drop``: columns to leave out (an id); ``target``: the column the downstream metrics predict;
    ``split``: train | test | all; ``test_fraction`` held out with ``split_seed``; ``seed`` of the
    transform; ``max_rows`` kept (a seeded sample of a longer file); ``integer_categories``: at
    most this many distinct whole numbers make a column categorical; ``max_categories``: more
    categories than this is an error (an id column)."""
    if split not in ("train", "test", "all"):
        raise GanforgeError(f"data.split={split!r} is not a split of a table", "choose train, test or all")
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) \
            or not 0 <= test_fraction < 1:
        raise GanforgeError(f"data.test_fraction={test_fraction!r} is not in [0, 1)", "set e.g. 0.2")
    for key, value, least in (("max_rows", max_rows, 2), ("integer_categories", integer_categories, 0),
                              ("max_categories", max_categories, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise GanforgeError(f"data.{key}={value!r} is not a whole number >= {least}",
                                f"set data.{key} to e.g. {max(least, 10)}")
    if columns is not None and not isinstance(columns, dict):
        raise GanforgeError("data.columns must map column names to types",
                            "write e.g. data.columns: {age: continuous, sex: categorical}")
    if drop is not None and (not isinstance(drop, list) or not all(isinstance(d, str) for d in drop)):
        raise GanforgeError("data.drop must be a list of column names", "write e.g. data.drop: [id]")
    frame = read_csv(path, max_rows=max_rows, seed=split_seed, drop=drop or ())
    return TableDataset.from_frame(frame, columns=columns, target=target, split=split,
                                   test_fraction=test_fraction, split_seed=split_seed, seed=seed,
                                   integer_categories=integer_categories, max_categories=max_categories,
                                   name=Path(path).stem)


# ---------------------------------------------------------------------- the kind
def write_csv(samples: Samples, path: Path) -> Path:
    """The decoded rows (``samples.table``, a DataFrame) as a CSV with the original header."""
    from ganforge._io import atomic_write

    if samples.table is None:
        raise GanforgeError("these samples have no table to write", "write them as .npz")
    buffer = io.StringIO()
    samples.table.to_csv(buffer, index=False)
    return atomic_write(path, lambda fh: fh.write(buffer.getvalue().encode("utf-8")))


def write_marginals(samples: Samples, path: Path) -> Path:
    """A PNG of every column's distribution in the samples (over the real rows' when given)."""
    from ganforge.viz.tabular import plot_marginals

    return plot_marginals(samples.reference, samples.table, samples.types or {}, path,
                          title=samples.title or None)


register_kind(DataKind(
    "table", {".csv": Writer(write_csv), ".png": Writer(write_marginals)},
    metrics=("quality", "efficacy", "detection", "privacy"), suggested=".csv",
    description="rows of a table: typed columns (continuous, integer, categorical, boolean)"))
