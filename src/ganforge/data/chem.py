"""RDKit at the edge of ganforge: importing it (the optional extra ``ganforge[chem]``), reading
SMILES and the molecular properties the molecule kind, its metrics and MolGAN's reward share.

Properties (each of a sanitised RDKit ``Mol``):

* ``qed``: Bickerton et al.'s quantitative estimate of drug-likeness, ``rdkit.Chem.QED.qed``, in [0, 1];
* ``logp``: Wildman and Crippen's octanol-water partition coefficient, ``Crippen.MolLogP``;
* ``sa``: Ertl and Schuffenhauer's synthetic accessibility score, 1 (easy) .. 10 (hard), from the
  ``sascorer`` in RDKit's Contrib directory (``SA_Score``), the module MOSES ships a copy of;
* ``weight``: the average molecular weight, ``Descriptors.MolWt`` (Da).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Mapping
from functools import lru_cache
from types import ModuleType
from typing import Any

import numpy as np

from ganforge.errors import GanforgeError

CHEM_FIX = "pip install 'ganforge[chem]'"

#: the molecular properties of :func:`property_values` (and the MOSES Wasserstein distances)
PROPERTIES = ("qed", "logp", "sa", "weight")

#: MolGAN's normalisation ranges, ``(value scored 0, value scored 1)``, clipped to [0, 1]
#: (utils/molecular_metrics.py of github.com/nicola-decao/MolGAN): logP from its extremes in QM9,
#: SA from 5 (hard, 0) to 1.5 (easy, 1); QED is already in [0, 1].
REWARD_RANGES: dict[str, tuple[float, float]] = {
    "logp": (-2.12178879609, 6.0429063424),
    "sa": (5.0, 1.5),
}
REWARD_PROPERTIES = ("qed", "logp", "sa")


def require_rdkit() -> ModuleType:
    """RDKit's ``Chem`` module, its log silenced; a one-line error naming the extra without it."""
    try:
        from rdkit import Chem, RDLogger
    except ImportError:
        raise GanforgeError("molecules need RDKit", CHEM_FIX) from None
    RDLogger.DisableLog("rdApp.*")
    return Chem


def mol_from_smiles(s: str | None) -> Any:
    """The sanitised RDKit molecule of SMILES ``s``; None when ``s`` is None, empty or invalid
    (RDKit cannot parse or sanitise it: MOSES' ``get_mol``, whose second ``SanitizeMol`` repeats
    what ``MolFromSmiles`` already did)."""
    Chem = require_rdkit()
    if not s:
        return None
    return Chem.MolFromSmiles(s)


def canonical(s: str | None) -> str | None:
    """RDKit's canonical non-isomeric SMILES of ``s`` (stereo dropped); None when invalid."""
    mol = mol_from_smiles(s)
    if mol is None:
        return None
    return require_rdkit().MolToSmiles(mol, isomericSmiles=False) or None


def qed(mol: Any) -> float:
    """Quantitative estimate of drug-likeness (Bickerton et al. 2012), ``QED.qed``, in [0, 1]."""
    require_rdkit()
    from rdkit.Chem import QED

    return float(QED.qed(mol))


def logp(mol: Any) -> float:
    """Wildman-Crippen logP, ``Crippen.MolLogP``."""
    require_rdkit()
    from rdkit.Chem import Crippen

    return float(Crippen.MolLogP(mol))


@lru_cache(maxsize=1)
def _sascorer() -> ModuleType:
    """RDKit Contrib's ``SA_Score/sascorer.py``, imported once from its file (no ``sys.path`` change)."""
    require_rdkit()
    from rdkit import RDConfig

    path = os.path.join(RDConfig.RDContribDir, "SA_Score", "sascorer.py")
    if not os.path.isfile(path):
        raise GanforgeError(f"the SA score needs RDKit's Contrib SA_Score, {path} is missing",
                            "install RDKit from PyPI or conda-forge (their packages ship Contrib)")
    spec = importlib.util.spec_from_file_location("ganforge_sascorer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sa_score(mol: Any) -> float:
    """Synthetic accessibility (Ertl and Schuffenhauer 2009): fragment contributions minus size,
    stereo, spiro, bridgehead and macrocycle penalties, rescaled to 1 (easy) .. 10 (hard)."""
    return float(_sascorer().calculateScore(mol))


def weight(mol: Any) -> float:
    """Average molecular weight, ``Descriptors.MolWt`` (Da, hydrogens included)."""
    require_rdkit()
    from rdkit.Chem import Descriptors

    return float(Descriptors.MolWt(mol))


PROPERTY_FUNCTIONS = {"qed": qed, "logp": logp, "sa": sa_score, "weight": weight}


def _property_function(name: str):
    if name not in PROPERTY_FUNCTIONS:
        raise GanforgeError(f"unknown molecular property {name!r}", f"use one of {', '.join(PROPERTIES)}")
    return PROPERTY_FUNCTIONS[name]


def property_values(mols: Iterable[Any], name: str) -> np.ndarray:
    """float64 values of property ``name`` (one of :data:`PROPERTIES`) for ``mols``; NaN for None
    (an invalid molecule) and for a molecule RDKit fails to score."""
    func = _property_function(name)
    out = []
    for mol in mols:
        if mol is None:
            out.append(np.nan)
            continue
        try:
            out.append(func(mol))
        except (ValueError, RuntimeError, ZeroDivisionError):
            out.append(np.nan)
    return np.asarray(out, dtype=np.float64)


def normalised_property(values: np.ndarray, name: str) -> np.ndarray:
    """MolGAN's normalised score of raw property values: QED as is; logP and SA remapped linearly
    by ``(v - lo) / (hi - lo)`` with ``(lo, hi)`` = :data:`REWARD_RANGES` and clipped to [0, 1];
    NaN (invalid) -> 0."""
    values = np.asarray(values, dtype=np.float64)
    if name in REWARD_RANGES:
        lo, hi = REWARD_RANGES[name]
        values = (values - lo) / (hi - lo)
    return np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0)


def reward(mols: Iterable[Any], weights: Mapping[str, float]) -> np.ndarray:
    """Per-molecule reward in [0, 1]: ``sum_k w_k s_k(m) / sum_k w_k`` over the properties ``k`` of
    ``weights`` (keys among qed, logp, sa), ``s_k`` MolGAN's normalised scores
    (:func:`normalised_property`; MolGAN, De Cao and Kipf 2018, utils/molecular_metrics.py:
    logP remapped from [-2.12178879609, 6.0429063424], SA from [5, 1.5]); 0.0 for None (invalid).

    MolGAN's own example.py multiplies the normalised scores of its chosen metrics; ganforge takes
    their weighted mean, which equals it for a single property."""
    mols = list(mols)
    if not weights:
        raise GanforgeError("the molecule reward needs at least one property weight",
                            f"give weights for some of {', '.join(REWARD_PROPERTIES)}")
    bad = [k for k in weights if k not in REWARD_PROPERTIES]
    if bad:
        raise GanforgeError(f"unknown reward properties {bad}", f"use some of {', '.join(REWARD_PROPERTIES)}")
    total = float(sum(weights.values()))
    if total <= 0 or any(w < 0 for w in weights.values()):
        raise GanforgeError(f"reward weights must be >= 0 with a positive sum, got {dict(weights)}",
                            "give e.g. {'qed': 1.0}")
    out = np.zeros(len(mols), dtype=np.float64)
    for name, w in weights.items():
        if w:
            out += w * normalised_property(property_values(mols, name), name)
    out /= total
    valid = np.array([m is not None for m in mols], dtype=bool)
    return np.where(valid, np.clip(out, 0.0, 1.0), 0.0)
