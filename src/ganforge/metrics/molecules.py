"""The MOSES benchmark's metrics over lists of SMILES (Polykovskiy et al. 2020, "Molecular Sets
(MOSES): A Benchmarking Platform for Molecular Generation Models"; definitions as in
github.com/molecularsets/moses, moses/metrics).

A generated list ``gen`` may hold None or "" (invalid samples). :func:`valid_canonical` keeps the
canonical SMILES of the valid ones, duplicates and order kept; every other metric reads such a list
of valid SMILES (``valid_smiles``), duplicates counting as often as they occur, as in MOSES.
Fingerprints are Morgan bit vectors of radius 2 and 1,024 bits, Tanimoto
``T(a, b) = |a & b| / |a | b|`` (1 when both are empty).

A reference set (held-out molecules; for novelty, the training set) is summarised once by
:class:`MosesReference` (its fingerprints, BRICS fragment and scaffold counts, property values and
ChemNet statistics) and reused for every generated set; the functions that take a ``reference``
accept a :class:`MosesReference` or a list of SMILES. :func:`moses_metrics` computes them all.

Molecules are processed once per distinct SMILES (weights = multiplicities), so a collapsed
generator's 30,000 copies of ten molecules cost ten molecules' work. RDKit, ``fcd``, SciPy and
torch are imported inside the functions: ``import ganforge.metrics`` works without RDKit.
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence, Set
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from ganforge.data.chem import CHEM_FIX, PROPERTIES, canonical, mol_from_smiles, require_rdkit
from ganforge.errors import GanforgeError

FINGERPRINT_RADIUS = 2
FINGERPRINT_BITS = 1024
#: MOSES' allowed elements (``mol_passes_filters``)
ALLOWED_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})
#: rings of this many atoms or more fail the filters
MAX_RING_SIZE = 8
#: the Bemis-Murcko scaffolds that count for Scaf have at least this many rings (MOSES' ``min_rings``)
SCAFFOLD_MIN_RINGS = 2
#: bits of RDKit's pattern fingerprints, the exact screen in front of the filters' SMARTS matches
_PATTERN_BITS = 2048

MOSES_KEYS = (
    "valid",
    "unique@1000",
    "unique@10000",
    "novelty",
    "int_div1",
    "int_div2",
    "fcd",
    "snn",
    "frag",
    "scaf",
    "filters",
    "wasserstein_qed",
    "wasserstein_logp",
    "wasserstein_sa",
    "wasserstein_weight",
)

#: the MOSES paper's table 2 (Polykovskiy et al. 2020; github.com/molecularsets/moses README), its "Test"
#: columns: the training set scored against the test set, and the models it benchmarks
MOSES_PAPER = {
    "Train": {
        "valid": 1.0,
        "unique@1000": 1.0,
        "unique@10000": 1.0,
        "fcd": 0.008,
        "snn": 0.6419,
        "frag": 1.0,
        "scaf": 0.9907,
        "int_div1": 0.8567,
        "int_div2": 0.8508,
        "filters": 1.0,
        "novelty": 0.0,
    },
    "CharRNN": {
        "valid": 0.9748,
        "unique@1000": 1.0,
        "unique@10000": 0.9994,
        "fcd": 0.0732,
        "snn": 0.6015,
        "frag": 0.9998,
        "scaf": 0.9242,
        "int_div1": 0.8562,
        "int_div2": 0.8503,
        "filters": 0.9943,
        "novelty": 0.8419,
    },
    "VAE": {
        "valid": 0.9767,
        "unique@1000": 1.0,
        "unique@10000": 0.9984,
        "fcd": 0.099,
        "snn": 0.6257,
        "frag": 0.9994,
        "scaf": 0.9386,
        "int_div1": 0.8558,
        "int_div2": 0.8498,
        "filters": 0.997,
        "novelty": 0.6949,
    },
    "AAE": {
        "valid": 0.9368,
        "unique@1000": 1.0,
        "unique@10000": 0.9973,
        "fcd": 0.5555,
        "snn": 0.6081,
        "frag": 0.991,
        "scaf": 0.9022,
        "int_div1": 0.8557,
        "int_div2": 0.8499,
        "filters": 0.996,
        "novelty": 0.7931,
    },
    "JTN-VAE": {
        "valid": 1.0,
        "unique@1000": 1.0,
        "unique@10000": 0.9996,
        "fcd": 0.3954,
        "snn": 0.5477,
        "frag": 0.9965,
        "scaf": 0.8964,
        "int_div1": 0.8551,
        "int_div2": 0.8493,
        "filters": 0.976,
        "novelty": 0.9143,
    },
    "LatentGAN": {
        "valid": 0.8966,
        "unique@1000": 1.0,
        "unique@10000": 0.9968,
        "fcd": 0.2968,
        "snn": 0.5371,
        "frag": 0.9986,
        "scaf": 0.8867,
        "int_div1": 0.8565,
        "int_div2": 0.8505,
        "filters": 0.9735,
        "novelty": 0.9498,
    },
}
#: per-molecule features one pass over a molecule can compute
_KINDS = ("fp", "frag", "scaf", "filters", *PROPERTIES)
#: fewer distinct molecules than this are scored in this process even when ``n_jobs > 1``
_POOL_MIN = 2000


# ----------------------------------------------------------------------------------- validity


def fraction_valid(gen: Sequence[str | None]) -> float:
    """MOSES' Valid: ``1 - #invalid / |gen|``, a sample valid when RDKit parses and sanitises it
    (None and "" are invalid). 0 for an empty list (no valid sample)."""
    gen = list(gen)
    if not gen:
        return 0.0
    return sum(mol_from_smiles(s) is not None for s in gen) / len(gen)


def valid_canonical(gen: Iterable[str | None]) -> list[str]:
    """The canonical (non-isomeric) SMILES of the valid samples of ``gen``, in order, duplicates
    kept: MOSES' ``remove_invalid(gen, canonize=True)``."""
    out = []
    for s in gen:
        c = canonical(s)
        if c is not None:
            out.append(c)
    return out


def _unique_at(valid_smiles: Sequence[str], k: int | None) -> tuple[float, int]:
    """(unique@k, how many molecules it was computed over)."""
    head = list(valid_smiles) if k is None else list(valid_smiles)[:k]
    if not head:
        return math.nan, 0
    return len(set(head)) / len(head), len(head)


def fraction_unique(valid_smiles: Sequence[str], k: int | None = None) -> float:
    """MOSES' unique@k: ``|set(V[:k])| / |V[:k]|`` over the first ``k`` valid canonical SMILES
    ``V`` (all of them when ``k`` is None). With fewer than ``k`` valid molecules it is computed
    over those there are and, as MOSES does, a warning gives their count. NaN when ``V`` is empty."""
    value, n = _unique_at(valid_smiles, k)
    if k is not None and n < k:
        warnings.warn(f"unique@{k} computed over only {n} valid molecules", stacklevel=2)
    return value


def novelty(valid_smiles: Sequence[str], train_set: Set[str]) -> float:
    """MOSES' Novelty: ``|U - train| / |U|``, ``U`` the set of distinct valid canonical SMILES.
    ``train_set`` is compared as given, as MOSES does: pass canonical SMILES (:func:`canonical_set`);
    MOSES' stored training SMILES are RDKit's canonical form but for 0.05% of them (such as
    "[H]N=c1n(...)..."), which a raw set counts as novel. NaN when ``U`` is empty."""
    unique = set(valid_smiles)
    if not unique:
        return math.nan
    return sum(s not in train_set for s in unique) / len(unique)


def _canonical_chunk(smiles: list[str]) -> list[str | None]:
    return [canonical(s) for s in smiles]


def canonical_set(smiles: Iterable[str | None], n_jobs: int = 1) -> set[str]:
    """The set of canonical SMILES of the valid ones among ``smiles`` (e.g. a training set for
    :func:`novelty`), canonicalised over ``n_jobs`` processes (about 2 minutes per million
    SMILES on one core)."""
    distinct = list(dict.fromkeys(s for s in smiles if s))
    return {c for c in _pool_map(_canonical_chunk, distinct, n_jobs) if c is not None}


# ------------------------------------------------------------------------- per-molecule work


@lru_cache(maxsize=1)
def _morgan_generator() -> Any:
    require_rdkit()
    from rdkit.Chem import rdFingerprintGenerator

    return rdFingerprintGenerator.GetMorganGenerator(radius=FINGERPRINT_RADIUS, fpSize=FINGERPRINT_BITS)


def _read_package_csv(name: str) -> str:
    return resources.files("ganforge.metrics").joinpath("moses", name).read_text(encoding="utf-8")


def filter_smarts() -> list[tuple[str, str]]:
    """MOSES' structural alerts as ``(name, SMARTS)``: the 22 MCF filters (``moses/mcf.csv``) then
    the WEHI PAINS list (``moses/wehi_pains.csv``), both copied from MOSES (MIT)."""
    rows = [
        (r["names"].strip(), r["smarts"].strip())
        for r in csv.DictReader(io.StringIO(_read_package_csv("mcf.csv")))
    ]
    for row in csv.reader(io.StringIO(_read_package_csv("wehi_pains.csv"))):
        if row and row[0].strip():
            rows.append((row[1].strip() if len(row) > 1 else "", row[0].strip()))
    return rows


def _packed_pattern_bits(fp: Any) -> np.ndarray:
    from rdkit import DataStructs

    return np.frombuffer(DataStructs.BitVectToBinaryText(fp), dtype=np.uint64)


@lru_cache(maxsize=1)
def _filter_patterns() -> tuple[list[Any], np.ndarray]:
    """The compiled SMARTS of :func:`filter_smarts` and their pattern fingerprints (packed bits)."""
    Chem = require_rdkit()
    patterns = []
    for name, smarts in filter_smarts():
        query = Chem.MolFromSmarts(smarts)
        if query is None:  # pragma: no cover - the shipped list compiles
            raise GanforgeError(f"the MOSES filter {name} does not compile", "reinstall ganforge")
        patterns.append(query)
    bits = np.stack(
        [_packed_pattern_bits(Chem.PatternFingerprint(q, fpSize=_PATTERN_BITS)) for q in patterns]
    )
    return patterns, bits


def _filter_candidates(with_h: Any) -> np.ndarray:
    """Indices of the filter SMARTS whose pattern fingerprint is a subset of the molecule's (with
    explicit hydrogens): the only ones that can match it."""
    Chem = require_rdkit()
    _, bits = _filter_patterns()
    mol_bits = _packed_pattern_bits(Chem.PatternFingerprint(with_h, fpSize=_PATTERN_BITS))
    return np.flatnonzero(~np.any(bits & ~mol_bits, axis=1))


def _passes_filters(mol: Any, screen: bool = True) -> bool:
    """MOSES' ``mol_passes_filters`` of a sanitised molecule: no ring of ``MAX_RING_SIZE`` atoms or
    more (RDKit's ring perception, ``RingInfo.AtomRings``), no charged atom, only
    :data:`ALLOWED_ATOMS`, no match of an MCF or PAINS SMARTS in the molecule with explicit
    hydrogens, and a non-empty SMILES that RDKit reads back.

    A SMARTS is matched only when its RDKit pattern fingerprint is a subset of the molecule's
    (RDKit's substructure screen: a match implies the subset, so the screen drops no match);
    ``screen=False`` matches every SMARTS."""
    Chem = require_rdkit()
    if any(len(ring) >= MAX_RING_SIZE for ring in mol.GetRingInfo().AtomRings()):
        return False
    atoms = list(mol.GetAtoms())
    if any(a.GetFormalCharge() != 0 for a in atoms) or any(a.GetSymbol() not in ALLOWED_ATOMS for a in atoms):
        return False
    patterns, _ = _filter_patterns()
    with_h = Chem.AddHs(mol)
    candidates = _filter_candidates(with_h) if screen else range(len(patterns))
    if any(with_h.HasSubstructMatch(patterns[i]) for i in candidates):
        return False
    smiles = Chem.MolToSmiles(mol, isomericSmiles=False)
    return bool(smiles) and Chem.MolFromSmiles(smiles) is not None


def _fragments(mol: Any) -> list[str]:
    """MOSES' ``fragmenter``: the SMILES of the pieces left by cutting the BRICS bonds (the cut
    ends as labelled dummy atoms, so isomeric SMILES keep the labels)."""
    Chem = require_rdkit()
    return Chem.MolToSmiles(Chem.FragmentOnBRICSBonds(mol)).split(".")


def _scaffold(mol: Any) -> str | None:
    """MOSES' ``compute_scaffold``: the Bemis-Murcko scaffold's SMILES; None when it is empty or
    has fewer than :data:`SCAFFOLD_MIN_RINGS` rings."""
    Chem = require_rdkit()
    from rdkit.Chem.Scaffolds import MurckoScaffold

    try:
        scaffold = MurckoScaffold.GetScaffoldForMol(mol)
    except (ValueError, RuntimeError):
        return None
    smiles = Chem.MolToSmiles(scaffold)
    if not smiles or scaffold.GetRingInfo().NumRings() < SCAFFOLD_MIN_RINGS:
        return None
    return smiles


def _feature(mol: Any, kind: str) -> Any:
    from ganforge.data import chem

    if kind == "fp":
        return np.packbits(_morgan_generator().GetFingerprintAsNumPy(mol).astype(bool))
    if kind == "frag":
        return _fragments(mol)
    if kind == "scaf":
        return _scaffold(mol)
    if kind == "filters":
        return _passes_filters(mol)
    try:
        return chem.PROPERTY_FUNCTIONS[kind](mol)
    except (ValueError, RuntimeError, ZeroDivisionError):
        return math.nan


def _features_chunk(smiles: list[str], kinds: tuple[str, ...]) -> list[tuple]:
    """One tuple of the ``kinds`` features per SMILES (each parsed once); None rows for invalid."""
    out = []
    for s in smiles:
        mol = mol_from_smiles(s)
        out.append(None if mol is None else tuple(_feature(mol, k) for k in kinds))
    return out


def _pool_map(func, items: list, n_jobs: int, *args) -> list:
    """``func(chunk, *args)`` over chunks of ``items``, concatenated; split over ``n_jobs``
    processes when there are at least ``_POOL_MIN`` items: forked where the platform forks (the
    workers run RDKit only, and a script need not guard its ``__main__``), spawned elsewhere."""
    if n_jobs <= 1 or len(items) < _POOL_MIN:
        return func(items, *args)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    size = max(100, math.ceil(len(items) / (4 * n_jobs)))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context(method)) as pool:
        parts = pool.map(func, chunks, *([a] * len(chunks) for a in args))
        return [row for part in parts for row in part]


def _features(smiles: list[str], kinds: tuple[str, ...], n_jobs: int = 1) -> list[tuple]:
    """:func:`_features_chunk` over ``smiles`` in ``n_jobs`` processes (:func:`_pool_map`)."""
    return _pool_map(_features_chunk, smiles, n_jobs, kinds)


class MoleculeSet:
    """A list of valid SMILES as its distinct molecules and their multiplicities, with their
    per-molecule features (fingerprints, fragments, scaffolds, filters, properties) computed on
    demand, once each. ``smiles``: the distinct SMILES (first-seen order); ``weights``: counts."""

    def __init__(self, valid_smiles: Iterable[str], n_jobs: int = 1) -> None:
        counts = Counter(valid_smiles)
        self.smiles: list[str] = list(counts)
        self.weights = np.array([counts[s] for s in self.smiles], dtype=np.float64)
        self.n_jobs = n_jobs
        self._cache: dict[str, list] = {}

    def __len__(self) -> int:
        """How many molecules, duplicates included."""
        return int(self.weights.sum())

    def compute(self, kinds: Iterable[str]) -> MoleculeSet:
        """Compute the missing features of ``kinds`` (among fp, frag, scaf, filters and the
        properties) in one pass over the molecules; returns self."""
        missing = tuple(k for k in dict.fromkeys(kinds) if k not in self._cache)
        for k in missing:
            if k not in _KINDS:
                raise GanforgeError(f"unknown molecule feature {k!r}", f"use one of {', '.join(_KINDS)}")
        if not missing or not self.smiles:
            self._cache.update({k: [] for k in missing})
            return self
        rows = _features(self.smiles, missing, self.n_jobs)
        bad = [s for s, row in zip(self.smiles, rows, strict=True) if row is None]
        if bad:
            raise GanforgeError(
                f"{len(bad)} SMILES given as valid do not parse, e.g. {bad[0]!r}",
                "pass valid_canonical(gen), the valid samples' canonical SMILES",
            )
        for i, k in enumerate(missing):
            self._cache[k] = [row[i] for row in rows]
        return self

    def feature(self, kind: str) -> list:
        return self.compute([kind])._cache[kind]

    def fingerprints(self) -> np.ndarray:
        """uint8 (distinct molecules, FINGERPRINT_BITS) Morgan bits."""
        fps = self.feature("fp")
        if not fps:
            return np.zeros((0, FINGERPRINT_BITS), dtype=np.uint8)
        return np.unpackbits(np.stack(fps), axis=1)[:, :FINGERPRINT_BITS]

    def fragment_counts(self) -> Counter:
        """BRICS fragment SMILES -> occurrences over all molecules (with multiplicity)."""
        counts: Counter = Counter()
        for frags, w in zip(self.feature("frag"), self.weights, strict=True):
            for f in frags:
                counts[f] += int(w)
        return counts

    def scaffold_counts(self) -> Counter:
        """Bemis-Murcko scaffold SMILES (>= 2 rings) -> molecules having it (with multiplicity)."""
        counts: Counter = Counter()
        for scaf, w in zip(self.feature("scaf"), self.weights, strict=True):
            if scaf is not None:
                counts[scaf] += int(w)
        return counts

    def property_values(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(values, weights) of property ``name`` over the distinct molecules RDKit could score."""
        if name not in PROPERTIES:
            raise GanforgeError(f"unknown molecular property {name!r}", f"use one of {', '.join(PROPERTIES)}")
        values = np.asarray(self.feature(name), dtype=np.float64)
        ok = np.isfinite(values)
        return values[ok], self.weights[ok]

    def passes_filters(self) -> np.ndarray:
        """bool per distinct molecule: :func:`_passes_filters`."""
        return np.asarray(self.feature("filters"), dtype=bool)


def _as_set(smiles: Sequence[str] | MoleculeSet) -> MoleculeSet:
    return smiles if isinstance(smiles, MoleculeSet) else MoleculeSet(smiles)


# ------------------------------------------------------------------------ Tanimoto kernels


_BLOCK = 4096


def _tensor(fps: np.ndarray, device: str):
    import torch

    x = torch.from_numpy(np.ascontiguousarray(fps)).to(device=device, dtype=torch.float32)
    return x, x.sum(1)


def _tanimoto(a, a_count, b, b_count):
    """Tanimoto similarities of two blocks of 0/1 rows: ``|a&b| / (|a| + |b| - |a&b|)``, 1 where
    both are empty (as MOSES)."""
    inter = a @ b.T
    union = a_count[:, None] + b_count[None, :] - inter
    t = inter.div_(union)
    if bool((a_count == 0).any()) and bool((b_count == 0).any()):
        t = t.nan_to_num_(nan=1.0)
    return t


def mean_similarity_powers(
    fps: np.ndarray, weights: np.ndarray, ps: Sequence[float] = (1,), device: str = "cpu"
) -> dict[float, np.ndarray]:
    """For each molecule ``i`` of a weighted set, ``sum_j w_j T(i, j)^p / sum_j w_j`` for each
    ``p`` (self pairs included), one symmetric pass over the blocks of the similarity matrix
    (float32 blocks, float64 sums)."""
    import torch

    x, count = _tensor(fps, device)
    w = torch.as_tensor(weights, dtype=torch.float32, device=device)
    n = len(x)
    sums = {p: torch.zeros(n, dtype=torch.float64, device=device) for p in ps}
    with torch.no_grad():
        for i in range(0, n, _BLOCK):
            rows = slice(i, i + _BLOCK)
            for j in range(i, n, _BLOCK):
                cols = slice(j, j + _BLOCK)
                t = _tanimoto(x[rows], count[rows], x[cols], count[cols])
                for p in ps:
                    tp = t if p == 1 else t * t if p == 2 else t.pow(p)
                    sums[p][rows] += (tp @ w[cols]).double()
                    if j != i:
                        sums[p][cols] += (w[rows] @ tp).double()
    total = float(weights.sum())
    return {p: (s / total).cpu().numpy() for p, s in sums.items()}


def max_similarity(fps: np.ndarray, reference_fps: np.ndarray, device: str = "cpu") -> np.ndarray:
    """``max_r T(i, r)`` over the reference fingerprints, for each row ``i`` of ``fps``."""
    import torch

    x, xc = _tensor(fps, device)
    r, rc = _tensor(reference_fps, device)
    best = torch.zeros(len(x), dtype=torch.float32, device=device)
    with torch.no_grad():
        for i in range(0, len(x), _BLOCK):
            for j in range(0, len(r), _BLOCK):
                rows, cols = slice(i, i + _BLOCK), slice(j, j + _BLOCK)
                t = _tanimoto(x[rows], xc[rows], r[cols], rc[cols])
                best[rows] = torch.maximum(best[rows], t.amax(1))
    return best.double().cpu().numpy()


def internal_diversity(valid_smiles: Sequence[str] | MoleculeSet, p: float = 1, device: str = "cpu") -> float:
    """MOSES' IntDiv_p: ``1 - (1/|G|) sum_i ( (1/|G|) sum_j T(i, j)^p )^(1/p)`` over the generated
    molecules ``G`` (all pairs, self pairs included, duplicates counted). NaN when ``G`` is empty."""
    return _internal_diversities(_as_set(valid_smiles), (p,), device)[p]


def _internal_diversities(mols: MoleculeSet, ps: Sequence[float], device: str) -> dict[float, float]:
    if len(mols) == 0:
        return {p: math.nan for p in ps}
    means = mean_similarity_powers(mols.fingerprints(), mols.weights, ps, device)
    total = mols.weights.sum()
    return {p: float(1 - np.dot(mols.weights, means[p] ** (1 / p)) / total) for p in ps}


def _cosine(a: Counter, b: Counter) -> float:
    """``<a, b> / (|a| |b|)`` of two count dictionaries (missing keys are 0); NaN if one is empty."""
    if not a or not b:
        return math.nan
    dot = sum(v * b.get(k, 0) for k, v in a.items())
    norm_a = math.sqrt(sum(v * v for v in a.values()))
    norm_b = math.sqrt(sum(v * v for v in b.values()))
    return float(dot / (norm_a * norm_b))


# ---------------------------------------------------------------------------- the reference


class MosesReference:
    """A reference set of molecules (MOSES' test set) summarised once, for many generated sets.

    ``reference_smiles`` are canonicalised (invalid ones dropped: ``n_invalid``); their
    fingerprints, fragment and scaffold counts, property values and ChemNet activations' mean and
    covariance are computed on first use (or all at once by :meth:`prepare`) and kept.
    ``train_set`` (canonical SMILES; a set is kept, not copied) is what :meth:`novelty` compares to.
    """

    def __init__(
        self,
        reference_smiles: Iterable[str | None],
        train_set: Iterable[str] = frozenset(),
        *,
        n_jobs: int = 1,
        device: str = "cpu",
    ) -> None:
        given = list(reference_smiles)
        valid = valid_canonical(given)
        if not valid:
            raise GanforgeError("the MOSES reference holds no valid molecule", "pass held-out SMILES")
        self.n_invalid = len(given) - len(valid)
        self.smiles = valid
        self.train_set = train_set if isinstance(train_set, Set) else frozenset(train_set)
        self.device = device
        self.molecules = MoleculeSet(valid, n_jobs=n_jobs)
        self._fps: np.ndarray | None = None
        self._fragments: Counter | None = None
        self._scaffolds: Counter | None = None
        self._chemnet: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.smiles)

    def prepare(self, fcd: bool = True) -> MosesReference:
        """Compute every statistic now (ChemNet's too unless ``fcd`` is False); returns self."""
        self.molecules.compute(_KINDS[:3] + PROPERTIES)
        self.fingerprints(), self.fragment_counts(), self.scaffold_counts()
        if fcd:
            self.chemnet_stats()
        return self

    def fingerprints(self) -> np.ndarray:
        if self._fps is None:
            self._fps = self.molecules.fingerprints()
        return self._fps

    def fragment_counts(self) -> Counter:
        if self._fragments is None:
            self._fragments = self.molecules.fragment_counts()
        return self._fragments

    def scaffold_counts(self) -> Counter:
        if self._scaffolds is None:
            self._scaffolds = self.molecules.scaffold_counts()
        return self._scaffolds

    def chemnet_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, covariance) of ChemNet's penultimate activations over the reference."""
        if self._chemnet is None:
            self._chemnet = chemnet_stats(self.molecules, device=self.device)
        return self._chemnet

    # the metrics of a generated set against this reference
    def novelty(self, valid_smiles: Sequence[str] | MoleculeSet) -> float:
        smiles = valid_smiles.smiles if isinstance(valid_smiles, MoleculeSet) else valid_smiles
        return novelty(smiles, self.train_set)

    def snn(self, valid_smiles: Sequence[str] | MoleculeSet, device: str | None = None) -> float:
        gen = _as_set(valid_smiles)
        if len(gen) == 0:
            return math.nan
        best = max_similarity(gen.fingerprints(), self.fingerprints(), device or self.device)
        return float(np.dot(gen.weights, best) / gen.weights.sum())

    def frag(self, valid_smiles: Sequence[str] | MoleculeSet) -> float:
        return _cosine(self.fragment_counts(), _as_set(valid_smiles).fragment_counts())

    def scaf(self, valid_smiles: Sequence[str] | MoleculeSet) -> float:
        return _cosine(self.scaffold_counts(), _as_set(valid_smiles).scaffold_counts())

    def wasserstein(self, valid_smiles: Sequence[str] | MoleculeSet, name: str) -> float:
        from scipy.stats import wasserstein_distance

        gen_values, gen_weights = _as_set(valid_smiles).property_values(name)
        ref_values, ref_weights = self.molecules.property_values(name)
        if len(gen_values) == 0 or len(ref_values) == 0:
            return math.nan
        return float(wasserstein_distance(ref_values, gen_values, ref_weights, gen_weights))

    def fcd(self, valid_smiles: Sequence[str] | MoleculeSet, device: str | None = None) -> float:
        gen = _as_set(valid_smiles)
        if len(gen) < 2:
            return math.nan
        mu, sigma = chemnet_stats(gen, device=device or self.device)
        mu_ref, sigma_ref = self.chemnet_stats()
        return frechet_distance(mu, sigma, mu_ref, sigma_ref)


def _reference(reference: Sequence[str] | MosesReference) -> MosesReference:
    return reference if isinstance(reference, MosesReference) else MosesReference(reference)


# ------------------------------------------------------------------- metrics with a reference


def snn(valid_smiles: Sequence[str], reference: Sequence[str] | MosesReference, device: str = "cpu") -> float:
    """MOSES' SNN: ``(1/|G|) sum_{g in G} max_{r in R} T(g, r)``, the mean Tanimoto similarity of
    each generated molecule to its nearest reference molecule (Morgan r=2, 1,024 bits)."""
    return _reference(reference).snn(valid_smiles, device)


def frag_similarity(valid_smiles: Sequence[str], reference: Sequence[str] | MosesReference) -> float:
    """MOSES' Frag: the cosine similarity ``<f_G, f_R> / (|f_G| |f_R|)`` of the BRICS fragment
    count vectors (how often each fragment SMILES occurs, summed over the molecules) of the
    generated set and the reference. NaN when either has no fragment."""
    return _reference(reference).frag(valid_smiles)


def scaffold_similarity(valid_smiles: Sequence[str], reference: Sequence[str] | MosesReference) -> float:
    """MOSES' Scaf: the cosine similarity of the Bemis-Murcko scaffold count vectors (scaffolds
    of at least two rings, as MOSES' ``compute_scaffolds``) of the generated set and the
    reference. NaN when either has no such scaffold."""
    return _reference(reference).scaf(valid_smiles)


def fraction_passes_filters(valid_smiles: Sequence[str] | MoleculeSet) -> float:
    """MOSES' Filters: the share of generated molecules that pass ``mol_passes_filters``: atoms
    among C N S O F Cl Br H, no charged atom, no ring of 8 or more atoms, no MCF or PAINS
    substructure (:func:`filter_smarts`). NaN for an empty list."""
    mols = _as_set(valid_smiles)
    if len(mols) == 0:
        return math.nan
    return float(np.dot(mols.weights, mols.passes_filters()) / mols.weights.sum())


def property_wasserstein(
    valid_smiles: Sequence[str], reference: Sequence[str] | MosesReference, name: str
) -> float:
    """MOSES' property distance: the 1-Wasserstein distance ``int |F_G(x) - F_R(x)| dx`` between
    the empirical distributions of property ``name`` (qed, logp, sa or weight;
    :mod:`ganforge.data.chem`) over the generated and reference molecules
    (``scipy.stats.wasserstein_distance``)."""
    return _reference(reference).wasserstein(valid_smiles, name)


@lru_cache(maxsize=1)
def _fcd_module() -> Any:
    try:
        import fcd
    except ImportError:
        raise GanforgeError("the Fréchet ChemNet Distance needs the fcd package", CHEM_FIX) from None
    return fcd


@lru_cache(maxsize=1)
def _chemnet() -> Any:
    return _fcd_module().load_ref_model()


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``: ``fcd.calculate_frechet_distance`` (SciPy's
    ``sqrtm``, an offset on the diagonals when the product is singular) on one BLAS thread, which
    for these 512 x 512 matrices is faster than several (0.13 s against 0.8-3 s on two busy cores)."""
    try:  # scikit-learn's dependency
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        from contextlib import nullcontext as threadpool_limits

    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fcd passes sqrtm's deprecated ``disp``
        return float(_fcd_module().calculate_frechet_distance(mu1, sigma1, mu2, sigma2))


def chemnet_activations(smiles: Sequence[str], device: str = "cpu", batch_size: int = 256) -> np.ndarray:
    """float64 (n, 512) ChemNet penultimate activations of SMILES (Preuer et al. 2018; the ``fcd``
    package's weights and one-hot encoding)."""
    fcd = _fcd_module()
    if not smiles:
        return np.zeros((0, 512))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # fcd's note when a SMILES exceeds 349 characters
        warnings.simplefilter("ignore", DeprecationWarning)  # fcd's np.row_stack
        act = fcd.get_predictions(_chemnet(), list(smiles), batch_size=batch_size, n_jobs=0, device=device)
    return np.asarray(act, dtype=np.float64)


def chemnet_stats(
    molecules: Sequence[str] | MoleculeSet, device: str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of the ChemNet activations over a list of SMILES (duplicates counted:
    the distinct ones' activations weighted by their multiplicities)."""
    mols = _as_set(molecules)
    act = chemnet_activations(mols.smiles, device=device)
    weights = mols.weights.astype(np.int64)
    mu = np.average(act, axis=0, weights=weights)
    sigma = np.cov(act, rowvar=False, fweights=weights)
    return mu, sigma


def fcd(valid_smiles: Sequence[str], reference: Sequence[str] | MosesReference, device: str = "cpu") -> float:
    """MOSES' FCD (Preuer et al. 2018): the Fréchet distance between Gaussians fitted to ChemNet's
    activations of the generated and reference molecules,
    ``|mu_G - mu_R|^2 + tr(S_G + S_R - 2 (S_G S_R)^(1/2))``. NaN for fewer than two molecules.
    Needs the ``fcd`` package (``pip install 'ganforge[chem]'``)."""
    return _reference(reference).fcd(valid_smiles, device)


# ------------------------------------------------------------------------------- all of them


def moses_metrics(
    gen: Sequence[str | None], reference: MosesReference, *, n_jobs: int = 1, device: str = "cpu"
) -> dict[str, float]:
    """The MOSES metrics of generated samples ``gen`` (SMILES; None or "" = invalid) against
    ``reference`` (held-out molecules and the training set), keys :data:`MOSES_KEYS` plus
    ``valid_count`` (how many samples are valid; unique@k is computed over the first
    ``min(k, valid_count)`` of them). Every metric but ``valid`` reads the valid samples'
    canonical SMILES; with none valid (or no sample) ``valid`` is 0 and those are NaN.
    ``n_jobs`` processes share the per-molecule RDKit work; ``device`` runs the Tanimoto products
    and ChemNet."""
    gen = list(gen)
    valid = valid_canonical(gen)
    report: dict[str, float] = {
        "valid": len(valid) / len(gen) if gen else 0.0,
        "valid_count": float(len(valid)),
    }
    if not valid:
        report.update({k: math.nan for k in MOSES_KEYS if k not in report})
        return report
    for k in (1000, 10000):
        report[f"unique@{k}"] = _unique_at(valid, k)[0]
    mols = MoleculeSet(valid, n_jobs=n_jobs).compute(_KINDS)
    report["novelty"] = reference.novelty(mols)
    divs = _internal_diversities(mols, (1, 2), device)
    report["int_div1"], report["int_div2"] = divs[1], divs[2]
    report["fcd"] = reference.fcd(mols, device)
    report["snn"] = reference.snn(mols, device)
    report["frag"] = reference.frag(mols)
    report["scaf"] = reference.scaf(mols)
    report["filters"] = fraction_passes_filters(mols)
    for name in PROPERTIES:
        report[f"wasserstein_{name}"] = reference.wasserstein(mols, name)
    return {k: report[k] for k in (*MOSES_KEYS, "valid_count")}
