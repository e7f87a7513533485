"""Molecules: the ``graph`` data kind, MOSES and a user's file of SMILES.

**The graph encoding.** A molecule of at most N heavy atoms (``max_atoms``) over the atom types
T = ``atom_types`` is one float32 tensor x of shape (N, A + 4N), A = |T| + 1::

    x[i, :A]              one-hot of atom i's type: index 0 = EMPTY (no atom), 1 + t = T[t]
    x[i, A + 4 j + b]     one-hot of the bond (i, j)'s type b in BOND_TYPES = (none, single,
                          double, triple)

An atom type is the element symbol followed by the formal charge (``C``, ``N+``, ``O-``,
``Fe+2``); hydrogens are implicit, aromatic rings are kekulised (so there is no aromatic bond
type), the atoms fill slots 0..n-1 in the molecule's atom order and the slots after them are
EMPTY; the bond one-hot is symmetric and ``none`` on the diagonal and on empty slots. Stereo
(chirality, cis/trans) and explicit hydrogen counts are not encoded: the graph stands for the
canonical *non-isomeric* SMILES, and a decoded molecule gets the hydrogens RDKit's valence
model gives it. :func:`split_graph` / :func:`join_graph` cut x into nodes (N, A) and edges
(N, N, 4) and back; :func:`graphs_to_tensor` builds x from the compact codes a dataset keeps
(atoms int8 (M, N) in 0..A-1, bonds int8 (M, N, N) in 0..3).

**Decoding** (:func:`decode_graphs`): node type = argmax; the edges are symmetrised,
e = (e + e^T) / 2, and each pair i < j of non-empty atoms gets the argmax bond type; RDKit
sanitises the molecule, and its canonical non-isomeric SMILES is returned (None when
sanitisation fails or there is no atom). With ``valency=True`` the bonds are added in order
of decreasing score of their chosen type, and a bond that would lift either atom above its
maximum valence (:func:`max_valence`: the largest of RDKit's allowed valences of the element
isoelectronic with the charged atom, so N+ 4 like C, O- 1 like F) is dropped: every non-empty
graph then decodes to a valid molecule.

**SMILES tokens** (for CharRNN): PAD 0, BOS 1, EOS 2, and the k-th character of the
``alphabet`` (the sorted characters of the training SMILES) is 3 + k; a SMILES of at most
``max_length`` characters is the row [BOS c1 .. ck EOS PAD ..] of length ``max_length + 2``.

**Datasets.** :class:`MoleculeDataset` keeps the compact codes (``atoms``, ``bonds``,
``tokens``), the canonical SMILES of its molecules, the vocabulary and alphabet, and the
canonical SMILES of the train split (``train_smiles``, the novelty set of the metrics) and of
the test split (``test_smiles``, their reference set). The loader's batches are built by the
kind's :func:`collate_graphs`: {``x``: the one-hot graphs (B, N, A + 4N), ``tokens``: int64
(B, max_length + 2)}, so 100,000 molecules take 50 MB, not the 700 MB of their one-hot.
A SMILES is skipped, and counted, when it is ``unparsable`` (RDKit cannot read it or it has a
bond other than single, double or triple once kekulised), ``above N atoms``, ``too long``
(its canonical SMILES is longer than ``max_length``), has an ``unknown atom`` (a type outside
a given run's vocabulary) or an ``unknown character`` (outside a given run's alphabet). The
heavy atoms are first counted from the SMILES text (a lower bound of RDKit's count), so a long
file costs a parse only for the molecules small enough to keep; a broken SMILES that looks too
big is counted ``above N atoms``.

* ``moses``: a seeded uniform sample of ``size`` molecules of at most ``max_atoms`` heavy atoms
  of one MOSES split (Polykovskiy et al. 2020), found by reading the split's rows in a seeded
  random order until ``size`` are kept; ``test_smiles`` is a seeded sample of
  ``reference_size`` such molecules of ``test.csv.gz``; ``train_smiles`` is every SMILES of
  ``train.csv.gz`` as written, read when first asked for (:func:`moses_train_smiles`): MOSES's
  SMILES are RDKit's canonical non-isomeric SMILES already (19,995 of a seeded sample of 20,000
  are unchanged by RDKit 2026.09's canonicalisation; 3 of the 5 others are imines written
  ``[H]N=``, and the 221 SMILES with ``[H]`` are canonicalised), which spares 1.58 million
  canonicalisations at the cost of about 1 in 10,000 novel molecules counted wrongly. The
  vocabulary and alphabet are MOSES's whole (:data:`MOSES_ATOM_TYPES`, :data:`MOSES_ALPHABET`,
  counted over ``train.csv.gz``), whatever the split and size, so every MOSES dataset encodes
  alike. The
  encoded split is cached as one ``.npz`` under ``$GANFORGE_CACHE/molecules`` (default
  ``~/.cache/ganforge/molecules``), keyed by the files (path, size, mtime), the options and
  RDKit's version.
* ``smiles``: a user's file (``.smi``/``.txt``: the first token of each line; ``.csv``: one
  column; either gzipped), split into train and test by a seeded permutation
  (``test_fraction``, ``split_seed``); the atom types (by frequency, then name) and the
  alphabet come from the molecules of both splits, so that the two encode alike.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import gzip
import hashlib
import io
import os
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge._io import atomic_write, check_allocation
from ganforge.data.base import ArrayDataset, register_dataset
from ganforge.data.chem import require_rdkit
from ganforge.data.kinds import NPZ, Batch, DataKind, Writer, collate_rows, register_kind
from ganforge.data.mnist import default_root
from ganforge.data.moses_files import download_moses
from ganforge.data.table import split_rows
from ganforge.data.writers import Samples
from ganforge.errors import GanforgeError

BOND_TYPES = ("none", "single", "double", "triple")
#: the node type of an empty slot
EMPTY = 0
#: SMILES token codes; the alphabet's characters follow from FIRST_CHARACTER
PAD, BOS, EOS = 0, 1, 2
FIRST_CHARACTER = 3
#: the metric names (metric registry) that score molecules by default
MOLECULE_METRICS = (
    "validity",
    "uniqueness",
    "novelty",
    "int_div",
    "fcd",
    "snn",
    "frag",
    "scaf",
    "filters",
    "properties",
)
#: skip reasons other than ``above N atoms``
SKIP_REASONS = ("unparsable", "too long", "unknown atom", "unknown character")
MOSES_SPLITS = ("train", "test", "test_scaffolds")
#: the atom types of MOSES's train.csv.gz by frequency (C 24.8M, N 4.7M, O 3.6M, S, F, Cl, Br)
MOSES_ATOM_TYPES = ("C", "N", "O", "S", "F", "Cl", "Br")
#: every character of MOSES's train.csv.gz
MOSES_ALPHABET = "#()-123456=BCFHNOS[]clnors"
MOSES_FIX = ("pass data.root=DIR holding MOSES' train.csv.gz and test.csv.gz, or data.download=true to fetch "
             "them (see docs/molecules.md)")
#: the .png writer draws at most this many molecules, PER_ROW a row, in CELL x CELL pixel cells
PREVIEW_MOLECULES, PER_ROW, CELL = 48, 8, 200
#: bump when what the cache holds (or how it is made) changes
CACHE_FORMAT = 1

#: the heavy atoms a SMILES spells: bracket atoms, two-letter and one-letter organic atoms
_ATOM_TOKEN = re.compile(r"\[[^\]]*\]|Br|Cl|[BCNOPSFI]|[bcnops]")
#: a bracket hydrogen ([H], [2H], [H+]): RDKit usually makes it implicit
_BRACKET_HYDROGEN = re.compile(r"\[\d*H(?![a-z])[^\]]*\]")
_ATOM_TYPE = re.compile(r"([A-Z][a-z]?|\*)((?:\+|-)\d*)?")


# ---------------------------------------------------------------------- the vocabulary
@functools.lru_cache(maxsize=1)
def _rdkit() -> Any:
    """:func:`require_rdkit` once (it silences RDKit's log on every call): for per-molecule loops."""
    return require_rdkit()


def atom_type_name(symbol: str, charge: int) -> str:
    """The atom type of an element and formal charge: ``C``, ``N+``, ``O-``, ``Fe+2``."""
    if charge == 0:
        return symbol
    sign = "+" if charge > 0 else "-"
    return f"{symbol}{sign}{abs(charge) if abs(charge) > 1 else ''}"


def parse_atom_type(name: str) -> tuple[str, int]:
    """(element symbol, formal charge) of an atom type; a one-line error for anything else."""
    match = _ATOM_TYPE.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise GanforgeError(
            f"{name!r} is not an atom type", "write an element and its charge: C, N+, O-, Fe+2"
        )
    sign = match.group(2) or ""
    size = int(sign[1:]) if len(sign) > 1 else 1
    return match.group(1), (0 if not sign else size if sign[0] == "+" else -size)


@functools.lru_cache(maxsize=256)
def max_valence(atom_type: str) -> int:
    """The most bonds (counted by order) an atom of ``atom_type`` may have: the largest of
    RDKit's allowed valences of the element with atomic number Z - charge (N+ 4 like C, O- 1
    like F, C- 3 like N); 8 for an element RDKit puts no bound on (metals)."""
    symbol, charge = parse_atom_type(atom_type)
    chem = require_rdkit()
    table = chem.GetPeriodicTable()
    if symbol == "*":
        return 8
    z = table.GetAtomicNumber(symbol) - charge
    if z < 1:
        return 0
    valences = list(table.GetValenceList(z))
    return 8 if -1 in valences else max(valences)


@dataclass(frozen=True)
class GraphVocabulary:
    """The atom types of a graph's one-hot (index 1 + t is ``atom_types[t]``, 0 is EMPTY) and its
    number of atom slots ``max_atoms`` (N)."""

    atom_types: tuple[str, ...]
    max_atoms: int

    def __post_init__(self) -> None:
        types = tuple(self.atom_types)
        object.__setattr__(self, "atom_types", types)
        if not types or len(set(types)) != len(types):
            raise GanforgeError(
                f"a graph vocabulary needs distinct atom types, got {list(types)[:8]}",
                "give e.g. atom_types=('C', 'N', 'O')",
            )
        for name in types:
            parse_atom_type(name)
        if len(types) > 126:
            raise GanforgeError(
                f"a graph vocabulary holds at most 126 atom types, got {len(types)}", "keep fewer atom types"
            )
        bad = isinstance(self.max_atoms, bool) or not isinstance(self.max_atoms, int | np.integer)
        if bad or self.max_atoms < 1:
            raise GanforgeError(
                f"max_atoms={self.max_atoms!r} is not a whole number >= 1", "set e.g. max_atoms=20"
            )
        object.__setattr__(self, "max_atoms", int(self.max_atoms))

    @property
    def num_node_types(self) -> int:
        """A = len(atom_types) + 1 (the EMPTY slot)."""
        return len(self.atom_types) + 1

    @property
    def width(self) -> int:
        """A + 4N: the length of one atom's row."""
        return self.num_node_types + len(BOND_TYPES) * self.max_atoms

    @functools.cached_property
    def codes(self) -> dict[str, int]:
        """Atom type -> its node code (1..)."""
        return {name: 1 + t for t, name in enumerate(self.atom_types)}

    def to_state(self) -> dict[str, Any]:
        """Plain lists and ints (a checkpoint loads them with ``weights_only=True``)."""
        return {"atom_types": list(self.atom_types), "max_atoms": int(self.max_atoms)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> GraphVocabulary:
        return cls(tuple(str(t) for t in state["atom_types"]), int(state["max_atoms"]))


def graph_shape(vocab: GraphVocabulary) -> tuple[int, int]:
    """(N, A + 4N): the shape of one molecule's tensor."""
    return (vocab.max_atoms, vocab.width)


def vocab_arrays(vocab: GraphVocabulary) -> dict[str, np.ndarray]:
    """``atom_types`` (string array) and ``max_atoms``: what :class:`Samples` carry so the writers
    can decode graphs."""
    return {"atom_types": np.array(vocab.atom_types, dtype=str), "max_atoms": np.array(vocab.max_atoms)}


def vocab_from_arrays(arrays: Mapping[str, Any], x: torch.Tensor | None = None) -> GraphVocabulary:
    """The vocabulary of :func:`vocab_arrays`' arrays (``max_atoms`` defaults to the samples'
    slots); a one-line error when they are missing."""
    if "atom_types" not in arrays:
        raise GanforgeError(
            "these graph samples do not name their atom types",
            "give arrays['atom_types'] (see ganforge.data.molecules.vocab_arrays), or write .npz",
        )
    types = np.asarray(arrays["atom_types"]).reshape(-1)
    names = tuple(str(t.decode() if isinstance(t, bytes) else t) for t in types)
    if "max_atoms" in arrays:
        max_atoms = int(np.asarray(arrays["max_atoms"]).reshape(-1)[0])
    elif x is not None and x.dim() == 3:
        max_atoms = int(x.shape[1])
    else:
        raise GanforgeError("these graph samples do not give max_atoms", "give arrays['max_atoms']")
    return GraphVocabulary(names, max_atoms)


# ---------------------------------------------------------------------- tensors
def split_graph(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(nodes (..., N, A), edges (..., N, N, 4)) of graphs x (..., N, A + 4N)."""
    n = x.shape[-2]
    a = x.shape[-1] - len(BOND_TYPES) * n
    if a < 2:
        raise GanforgeError(
            f"graphs of shape {tuple(x.shape)} have no room for atom types",
            "give tensors of shape (..., N, A + 4N)",
        )
    return x[..., :a], x[..., a:].unflatten(-1, (n, len(BOND_TYPES)))


def join_graph(nodes: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """The graphs (..., N, A + 4N) of nodes (..., N, A) and edges (..., N, N, 4): the inverse
    of :func:`split_graph`."""
    return torch.cat([nodes, edges.flatten(-2)], dim=-1)


def graphs_to_tensor(atoms: Any, bonds: Any, vocab: GraphVocabulary) -> torch.Tensor:
    """The one-hot graphs float32 (M, N, A + 4N) of node codes ``atoms`` (M, N) in 0..A-1 and
    bond codes ``bonds`` (M, N, N) in 0..3 (numpy or torch)."""
    atoms = torch.as_tensor(np.asarray(atoms) if not isinstance(atoms, torch.Tensor) else atoms).long()
    bonds = torch.as_tensor(np.asarray(bonds) if not isinstance(bonds, torch.Tensor) else bonds).long()
    n = vocab.max_atoms
    if atoms.dim() != 2 or atoms.shape[1] != n or tuple(bonds.shape) != (len(atoms), n, n):
        raise GanforgeError(
            f"graph codes of shapes {tuple(atoms.shape)} and {tuple(bonds.shape)} are not "
            f"(M, {n}) and (M, {n}, {n})",
            "give codes of the vocabulary's max_atoms",
        )
    if len(atoms) and (
        int(atoms.min()) < 0
        or int(atoms.max()) >= vocab.num_node_types
        or int(bonds.min()) < 0
        or int(bonds.max()) >= len(BOND_TYPES)
    ):
        raise GanforgeError(
            "graph codes out of range for the vocabulary",
            f"atoms in 0..{vocab.num_node_types - 1}, bonds in 0..{len(BOND_TYPES) - 1}",
        )
    nodes = torch.zeros(*atoms.shape, vocab.num_node_types).scatter_(-1, atoms.unsqueeze(-1), 1.0)
    edges = torch.zeros(*bonds.shape, len(BOND_TYPES)).scatter_(-1, bonds.unsqueeze(-1), 1.0)
    return join_graph(nodes, edges)


# ---------------------------------------------------------------------- decoding
def _check_graphs(x: Any, vocab: GraphVocabulary) -> torch.Tensor:
    x = torch.as_tensor(x).detach().cpu().float()
    if x.dim() != 3 or tuple(x.shape[1:]) != graph_shape(vocab):
        raise GanforgeError(
            f"graph samples have shape {tuple(x.shape)}, not (M, {vocab.max_atoms}, "
            f"{vocab.width}) of {len(vocab.atom_types)} atom types and {vocab.max_atoms} atoms",
            "decode them with the vocabulary they were drawn with",
        )
    return x


def decode_graphs(x: Any, vocab: GraphVocabulary, valency: bool = False) -> list[str | None]:
    """The canonical non-isomeric SMILES of each graph of x (M, N, A + 4N), soft or hard, or None
    (no atom, or not a molecule RDKit can sanitise); ``valency``: drop the bonds that would
    exceed an atom's maximum valence (module docstring)."""
    return [None if d is None else d[0] for d in _decode(x, vocab, valency)]


def decode_molecules(x: Any, vocab: GraphVocabulary, valency: bool = False) -> list[Any]:
    """The RDKit molecule each graph of x decodes to (read back from its canonical SMILES, as
    :func:`ganforge.data.chem.mol_from_smiles` would), or None: :func:`decode_graphs`'s molecules
    without parsing their SMILES again."""
    return [None if d is None else d[1] for d in _decode(x, vocab, valency)]


def _decode(x: Any, vocab: GraphVocabulary, valency: bool) -> list[tuple[str, Any] | None]:
    """(canonical SMILES, the molecule read back from it) of each graph of x, or None."""
    chem = require_rdkit()
    x = _check_graphs(x, vocab)
    nodes, edges = split_graph(x)
    types = nodes.argmax(-1).numpy()
    score, kind = ((edges + edges.transpose(1, 2)) / 2).max(-1)
    upper = np.triu_indices(vocab.max_atoms, 1)
    scores, kinds = score.numpy()[:, upper[0], upper[1]], kind.numpy()[:, upper[0], upper[1]]
    bond = {1: chem.BondType.SINGLE, 2: chem.BondType.DOUBLE, 3: chem.BondType.TRIPLE}
    elements = [parse_atom_type(t) for t in vocab.atom_types]
    capacity = [0] + [max_valence(t) for t in vocab.atom_types]
    out: list[tuple[str, Any] | None] = []
    for m in range(len(x)):
        present = types[m] != EMPTY
        if not present.any():
            out.append(None)
            continue
        pairs = np.flatnonzero((kinds[m] > 0) & present[upper[0]] & present[upper[1]])
        if valency:
            pairs = pairs[np.argsort(-scores[m][pairs], kind="stable")]
        mol = chem.RWMol()
        index = {}
        for slot in np.flatnonzero(present):
            symbol, charge = elements[types[m][slot] - 1]
            atom = chem.Atom(symbol)
            atom.SetFormalCharge(charge)
            index[slot] = mol.AddAtom(atom)
        used = np.zeros(vocab.max_atoms, np.int64)
        for p in pairs:
            i, j, order = upper[0][p], upper[1][p], int(kinds[m][p])
            if valency and (
                used[i] + order > capacity[types[m][i]] or used[j] + order > capacity[types[m][j]]
            ):
                continue
            used[i] += order
            used[j] += order
            mol.AddBond(index[i], index[j], bond[order])
        out.append(_smiles_of_mol(chem, mol))
    return out


def _smiles_of_mol(chem: Any, mol: Any) -> tuple[str, Any] | None:
    """The canonical non-isomeric SMILES of an unsanitised molecule and the molecule read back
    from it, None when RDKit cannot sanitise it or read its SMILES back."""
    try:
        chem.SanitizeMol(mol)
        smiles = chem.MolToSmiles(mol, isomericSmiles=False)
    except Exception:  # noqa: BLE001  RDKit raises several kinds of sanitisation errors
        return None
    back = chem.MolFromSmiles(smiles) if smiles else None
    return None if back is None else (smiles, back)


# ---------------------------------------------------------------------- tokens
def alphabet_of(smiles: Iterable[str]) -> str:
    """The sorted characters of ``smiles``."""
    return "".join(sorted(set().union(*map(set, smiles))))


def _token_codes(alphabet: Sequence[str]) -> dict[str, int]:
    return {c: FIRST_CHARACTER + k for k, c in enumerate(alphabet)}


def tokens_of(smiles: Sequence[str], alphabet: Sequence[str], length: int) -> torch.Tensor:
    """int64 (M, ``length``): each SMILES as [BOS c1 .. ck EOS PAD ..]; a one-line error for a
    SMILES longer than ``length - 2`` or with a character outside ``alphabet``."""
    codes = _token_codes(alphabet)
    out = np.full((len(smiles), length), PAD, np.int64)
    for m, s in enumerate(smiles):
        if len(s) > length - 2:
            raise GanforgeError(
                f"SMILES {s[:40]!r} has {len(s)} characters, more than {length - 2} fit in {length} tokens",
                "give longer token rows or shorter SMILES",
            )
        try:
            out[m, 1 : len(s) + 1] = [codes[c] for c in s]
        except KeyError as err:
            raise GanforgeError(
                f"SMILES {s[:40]!r} has character {err.args[0]!r}, which is not in the "
                f"alphabet {''.join(alphabet)!r}",
                "use the alphabet of the run's data",
            ) from None
        out[m, 0], out[m, len(s) + 1] = BOS, EOS
    return torch.from_numpy(out)


def tokens_to_smiles(tokens: Any, alphabet: Sequence[str]) -> list[str]:
    """The characters of each row of ``tokens`` (M, L) up to its first EOS or PAD; BOS and codes
    outside the alphabet are skipped."""
    rows = tokens.detach().cpu().numpy() if isinstance(tokens, torch.Tensor) else np.asarray(tokens)
    out = []
    for row in rows.reshape(len(rows), -1):
        chars = []
        for code in row.tolist():
            if code in (EOS, PAD):
                break
            k = code - FIRST_CHARACTER
            if 0 <= k < len(alphabet):
                chars.append(alphabet[k])
        out.append("".join(chars))
    return out


# ---------------------------------------------------------------------- reading SMILES
@dataclass(frozen=True, eq=False)
class MoleculeGraph:
    """One molecule read from SMILES: its canonical non-isomeric ``smiles``, the atom ``types``
    of its kekulised atoms in order and its ``bonds``, the symmetric int8 (n, n) matrix of bond
    codes (0 none, 1 single, 2 double, 3 triple)."""

    smiles: str
    types: tuple[str, ...]
    bonds: np.ndarray


def atoms_at_least(smiles: str) -> int:
    """The heavy atoms the text of ``smiles`` spells (a lower bound of RDKit's count: bracket
    hydrogens and ``*`` are not counted)."""
    return len(_ATOM_TOKEN.findall(smiles)) - len(_BRACKET_HYDROGEN.findall(smiles))


def read_molecule(smiles: str, max_atoms: int, max_length: int | None = None) -> MoleculeGraph | str:
    """The :class:`MoleculeGraph` of ``smiles``, or the reason it is skipped: ``above N atoms``
    (more than ``max_atoms`` heavy atoms), ``unparsable``, ``too long`` (a canonical SMILES of
    more than ``max_length`` characters)."""
    chem = _rdkit()
    above = f"above {max_atoms} atoms"
    if atoms_at_least(smiles) > max_atoms:
        return above
    mol = chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return "unparsable"
    if mol.GetNumAtoms() > max_atoms:
        return above
    canonical = chem.MolToSmiles(mol, isomericSmiles=False)
    if max_length is not None and len(canonical) > max_length:
        return "too long"
    try:
        chem.Kekulize(mol, clearAromaticFlags=True)
    except Exception:  # noqa: BLE001  a sanitised molecule kekulises; be safe
        return "unparsable"
    # one call for the bond orders (iterating mol.GetBonds() costs ten times more); a bond of
    # order 0 or 1.5 (not kekulised) is not one of the graph's bond types
    orders = chem.GetAdjacencyMatrix(mol, useBO=True)
    adjacency = orders.astype(np.int8)
    if (
        (adjacency != orders).any()
        or adjacency.max(initial=0) > 3
        or (np.count_nonzero(adjacency) != 2 * mol.GetNumBonds())
    ):
        return "unparsable"
    types = []
    for i in range(mol.GetNumAtoms()):
        atom = mol.GetAtomWithIdx(i)
        charge = atom.GetFormalCharge()
        types.append(atom.GetSymbol() if charge == 0 else atom_type_name(atom.GetSymbol(), charge))
    return MoleculeGraph(canonical, tuple(types), adjacency)


def _vocabulary(graphs: Iterable[MoleculeGraph], max_atoms: int) -> GraphVocabulary:
    counts = Counter(t for g in graphs for t in g.types)
    return GraphVocabulary(tuple(sorted(counts, key=lambda t: (-counts[t], t))), max_atoms)


def vocabulary_of(smiles: Sequence[str], max_atoms: int = 20) -> GraphVocabulary:
    """The atom types of the molecules of ``smiles`` with at most ``max_atoms`` heavy atoms, by
    frequency (most first), ties by name; a one-line error when no SMILES gives one."""
    graphs = [g for g in (read_molecule(s, max_atoms) for s in smiles) if isinstance(g, MoleculeGraph)]
    if not graphs:
        raise GanforgeError(
            f"none of the {len(smiles)} SMILES is a molecule of at most {max_atoms} atoms RDKit can read",
            "give valid SMILES or a larger max_atoms",
        )
    return _vocabulary(graphs, max_atoms)


def _fill(graphs: Sequence[MoleculeGraph], vocab: GraphVocabulary) -> tuple[np.ndarray, np.ndarray]:
    """The node codes int8 (M, N) and the symmetric bond codes int8 (M, N, N) of ``graphs``
    (whose types are all in ``vocab``)."""
    n = vocab.max_atoms
    atoms = np.zeros((len(graphs), n), np.int8)
    bonds = np.zeros((len(graphs), n, n), np.int8)
    codes = vocab.codes
    for m, g in enumerate(graphs):
        k = len(g.types)
        atoms[m, :k] = [codes[t] for t in g.types]
        bonds[m, :k, :k] = g.bonds
    return atoms, bonds


def _unknown(graph: MoleculeGraph, vocab: GraphVocabulary | None, characters: set[str] | None) -> str | None:
    """The skip reason of a read molecule under a given vocabulary and alphabet, or None."""
    if vocab is not None and any(t not in vocab.codes for t in graph.types):
        return "unknown atom"
    if characters is not None and not set(graph.smiles) <= characters:
        return "unknown character"
    return None


def encode_smiles(
    smiles: Sequence[str], vocab: GraphVocabulary
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Counter[str]]:
    """(node codes int8 (M, N), bond codes int8 (M, N, N), the index into ``smiles`` of the M
    molecules kept, the count of each skip reason: ``unparsable``, ``above N atoms``,
    ``unknown atom``)."""
    graphs, kept, skipped = [], [], Counter()
    for k, s in enumerate(smiles):
        g = read_molecule(s, vocab.max_atoms)
        reason = g if isinstance(g, str) else _unknown(g, vocab, None)
        if reason is not None:
            skipped[reason] += 1
            continue
        graphs.append(g)
        kept.append(k)
    atoms, bonds = _fill(graphs, vocab)
    return atoms, bonds, np.array(kept, np.int64), skipped


# ---------------------------------------------------------------------- the dataset
class GraphTensors(dict):
    """The compact codes of a :class:`MoleculeDataset` by name (``atoms``, ``bonds``,
    ``tokens``), with the ``vocab`` that :func:`collate_graphs` needs to one-hot them."""

    def __init__(self, tensors: Mapping[str, torch.Tensor], vocab: GraphVocabulary) -> None:
        super().__init__(tensors)
        self.vocab = vocab


def collate_graphs(tensors: Mapping[str, torch.Tensor], index: torch.Tensor) -> Batch:
    """The batch of rows ``index``: ``x`` the one-hot graphs float32 (B, N, A + 4N) of the
    ``atoms`` and ``bonds`` codes, ``tokens`` int64 (B, L), other tensors' rows as they are.
    Tensors without atoms and bonds are collated row by row."""
    if "atoms" not in tensors or "bonds" not in tensors:
        return collate_rows(tensors, index)
    vocab = getattr(tensors, "vocab", None)
    if vocab is None:
        raise ValueError("graph codes need their vocabulary to be one-hot: pass GraphTensors(tensors, vocab)")
    batch = {"x": graphs_to_tensor(tensors["atoms"][index], tensors["bonds"][index], vocab)}
    for name, tensor in tensors.items():
        if name not in ("atoms", "bonds"):
            batch[name] = tensor[index].long() if name == "tokens" else tensor[index]
    return batch


class MoleculeDataset(ArrayDataset):
    """Molecules as graphs and SMILES tokens (module docstring): ``atoms`` int8 (M, N) node
    codes, ``bonds`` int8 (M, N, N) bond codes, ``tokens`` int16 (M, max_length + 2), ``smiles``
    their canonical non-isomeric SMILES, ``vocab`` (:class:`GraphVocabulary`), ``alphabet``,
    ``train_smiles`` (a frozenset, read when first asked for) and ``test_smiles`` (a list) for
    the metrics, ``skipped`` (a Counter of skip reasons). Batches hold ``x`` (the one-hot
    graphs) and ``tokens``; ``x`` of the whole dataset is built when first read."""

    data_kind = "graph"

    def __init__(
        self,
        atoms: Any,
        bonds: Any,
        tokens: Any,
        smiles: Sequence[str],
        *,
        vocab: GraphVocabulary,
        alphabet: str,
        name: str = "smiles",
        train_smiles: Iterable[str] | Callable[[], Iterable[str]] = (),
        test_smiles: Sequence[str] = (),
        skipped: Mapping[str, int] | None = None,
    ) -> None:
        self.atoms = torch.as_tensor(np.asarray(atoms, np.int8))
        self.bonds = torch.as_tensor(np.asarray(bonds, np.int8))
        self.tokens = torch.as_tensor(np.asarray(tokens, np.int16))
        self.smiles = list(smiles)
        m, n = len(self.atoms), vocab.max_atoms
        if (
            tuple(self.atoms.shape) != (m, n)
            or tuple(self.bonds.shape) != (m, n, n)
            or self.tokens.dim() != 2
            or len(self.tokens) != m
            or len(self.smiles) != m
        ):
            raise ValueError(
                f"atoms {tuple(self.atoms.shape)}, bonds {tuple(self.bonds.shape)}, tokens "
                f"{tuple(self.tokens.shape)} and {len(self.smiles)} SMILES are not M molecules of "
                f"{n} atoms"
            )
        self.vocab = vocab
        self.alphabet = str(alphabet) if isinstance(alphabet, str) else "".join(alphabet)
        self.name = name
        self.test_smiles = list(test_smiles)
        self._train_smiles = train_smiles
        self.skipped = Counter(skipped or {})
        self.y = None
        self.num_classes = None
        self.classes = None
        self.extractor = None
        self.modes = None
        self._x: torch.Tensor | None = None

    @classmethod
    def from_smiles(
        cls,
        smiles: Sequence[str],
        *,
        max_atoms: int | None = None,
        max_length: int = 100,
        test_fraction: float = 0.1,
        split: str = "train",
        split_seed: int = 0,
        vocab: GraphVocabulary | None = None,
        alphabet: str | None = None,
        name: str = "smiles",
        test_smiles: Sequence[str] | None = None,
    ) -> MoleculeDataset:
        """The molecules of ``smiles`` (the Python API's way in; options as the ``smiles``
        dataset's). ``max_atoms`` defaults to ``vocab.max_atoms`` when a run's ``vocab`` is given,
        else 20; with ``vocab``/``alphabet`` given, molecules outside them are skipped (``unknown
        atom``/``unknown character``); ``test_smiles`` replaces the test split as the reference
        set."""
        if isinstance(smiles, str) or not all(isinstance(s, str) for s in smiles):
            raise GanforgeError(
                "from_smiles takes a sequence of SMILES strings", "pass e.g. ['CCO', 'c1ccccc1']"
            )
        if vocab is not None and max_atoms is not None and max_atoms != vocab.max_atoms:
            raise GanforgeError(
                f"max_atoms={max_atoms} but the given vocabulary has {vocab.max_atoms} atoms",
                "leave max_atoms out with a run's vocabulary",
            )
        max_atoms = vocab.max_atoms if vocab is not None else (20 if max_atoms is None else max_atoms)
        opts = _Options.checked(max_atoms, max_length, test_fraction, split, split_seed)
        return _from_list(
            list(smiles),
            opts,
            vocab=vocab,
            alphabet=alphabet,
            name=name,
            test_smiles=test_smiles,
            source=None,
        )

    @property
    def x(self) -> torch.Tensor:  # type: ignore[override]
        """The one-hot graphs of every molecule, float32 (M, N, A + 4N) (built once)."""
        if self._x is None:
            check_allocation(
                len(self),
                self.sample_shape,
                f"the one-hot graphs of {self.name}",
                "read batches through the loader (collate_graphs) instead",
            )
            self._x = graphs_to_tensor(self.atoms, self.bonds, self.vocab)
        return self._x

    @property
    def train_smiles(self) -> frozenset[str]:
        """The canonical SMILES of the train split (the novelty set)."""
        if not isinstance(self._train_smiles, frozenset):
            given = self._train_smiles() if callable(self._train_smiles) else self._train_smiles
            self._train_smiles = frozenset(given)
        return self._train_smiles

    @property
    def max_length(self) -> int:
        return int(self.tokens.shape[1]) - 2

    @property
    def fields(self) -> tuple[str, ...]:
        return ("x", "tokens")

    def tensors(self) -> GraphTensors:
        """The compact codes (``atoms``, ``bonds``, ``tokens``) the kind's collation one-hots."""
        return GraphTensors({"atoms": self.atoms, "bonds": self.bonds, "tokens": self.tokens}, self.vocab)

    def __len__(self) -> int:
        return len(self.atoms)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return graphs_to_tensor(self.atoms[i : i + 1], self.bonds[i : i + 1], self.vocab)[0], -1

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return graph_shape(self.vocab)


# ---------------------------------------------------------------------- building
@dataclass(frozen=True)
class _Options:
    max_atoms: int
    max_length: int
    test_fraction: float
    split: str
    split_seed: int

    @classmethod
    def checked(
        cls, max_atoms: Any, max_length: Any, test_fraction: Any, split: Any, split_seed: Any
    ) -> _Options:
        """The options of a SMILES list or file, each checked (one-line errors)."""
        return cls(
            max_atoms=_whole(max_atoms, "max_atoms", 1, "20"),
            max_length=_whole(max_length, "max_length", 1, "100"),
            test_fraction=_fraction(test_fraction),
            split=_split(split, ("train", "test")),
            split_seed=_whole(split_seed, "split_seed", 0, "0"),
        )


def _whole(value: Any, name: str, least: int, example: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise GanforgeError(
            f"data.{name}={value!r} is not a whole number >= {least}", f"set e.g. data.{name}={example}"
        )
    return int(value)


def _fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise GanforgeError(
            f"data.test_fraction={value!r} is not in [0, 1)", "set e.g. data.test_fraction=0.1"
        )
    return float(value)


def _split(value: Any, splits: Sequence[str]) -> str:
    if value not in splits:
        raise GanforgeError(f"data.split={value!r} is not a split", f"choose {' or '.join(splits)}")
    return value


def _skip_text(reason: str, count: int, max_length: int | None) -> str:
    said = {
        "too long": f"longer than {max_length} characters",
        "unknown atom": "with an unknown atom",
        "unknown character": "with a character outside the alphabet",
    }
    return f"{count:,} {said.get(reason, reason)}"


def skip_line(name: str, kept: int, looked: int, skipped: Mapping[str, int], max_length: int | None) -> str:
    """One line: how many SMILES were kept of those read, and why the others were skipped."""
    reasons = sorted(((r, c) for r, c in skipped.items() if c), key=lambda rc: (-rc[1], rc[0]))
    said = ", ".join(_skip_text(r, c, max_length) for r, c in reasons)
    return f"{name}: kept {kept:,} of {looked:,} SMILES" + (f" (skipped: {said})" if said else "")


def _smallest(smiles: Sequence[str], limit: int = 10_000) -> int | None:
    """The heavy atoms of the smallest molecule RDKit reads among ``smiles`` (the first
    ``limit`` candidates by their text's atom count), or None."""
    chem = require_rdkit()
    for s in sorted(smiles, key=atoms_at_least)[:limit]:
        mol = chem.MolFromSmiles(s)
        if mol is not None and mol.GetNumAtoms():
            return int(mol.GetNumAtoms())
    return None


def _nothing_read(
    smiles: Sequence[str], skipped: Counter[str], opts: _Options, source: str | None
) -> GanforgeError:
    """The one-line error when no SMILES at all gives a molecule."""
    what = f"no line of {source}" if source else f"none of the {len(smiles):,} strings"
    unreadable = GanforgeError(
        f"{what} is a SMILES RDKit can read (e.g. {smiles[0][:40]!r})",
        "give one SMILES per line (e.g. CCO), or the column of a CSV that holds them",
    )
    if skipped.get(f"above {opts.max_atoms} atoms"):
        smallest = _smallest(smiles)
        if smallest is None:
            return unreadable
        return GanforgeError(
            f"every molecule of {source or 'the SMILES'} has more than data.max_atoms="
            f"{opts.max_atoms} heavy atoms (the smallest has {smallest})",
            f"set data.max_atoms to at least {smallest}",
        )
    if skipped.get("too long"):
        return GanforgeError(
            f"every SMILES of {source or 'the list'} RDKit can read is longer than "
            f"data.max_length={opts.max_length} characters",
            "raise data.max_length",
        )
    return unreadable


def _unknown_fix(skipped: Mapping[str, int], vocab: GraphVocabulary, alphabet: str) -> str:
    """The fix when no molecule was kept: the run's atom types and characters, or more SMILES."""
    wanted = []
    if skipped.get("unknown atom"):
        wanted.append(f"of the atom types {', '.join(vocab.atom_types)}")
    if skipped.get("unknown character"):
        wanted.append(f"written with the characters {alphabet!r}")
    return f"give molecules {' and '.join(wanted)}" if wanted else "give more SMILES"


def _from_list(
    smiles: list[str],
    opts: _Options,
    *,
    vocab: GraphVocabulary | None,
    alphabet: str | None,
    name: str,
    test_smiles: Sequence[str] | None,
    source: str | None,
) -> MoleculeDataset:
    """The dataset of one split of ``smiles`` (see :meth:`MoleculeDataset.from_smiles`)."""
    require_rdkit()
    if not smiles:
        raise GanforgeError(f"{source or 'the list of SMILES'} holds no SMILES", "give at least one SMILES")
    train_rows, test_rows = split_rows(len(smiles), opts.test_fraction, opts.split_seed)
    if opts.split == "test" and not len(test_rows):
        raise GanforgeError(
            f"data.test_fraction={opts.test_fraction} leaves no test split of {len(smiles)} SMILES",
            "raise data.test_fraction or use data.split=train",
        )
    read = [read_molecule(s, opts.max_atoms, opts.max_length) for s in smiles]
    skipped_all = Counter(g for g in read if isinstance(g, str))
    if len(skipped_all) and sum(skipped_all.values()) == len(read):
        raise _nothing_read(smiles, skipped_all, opts, source)
    # both splits' molecules: the train and test datasets of one file encode alike
    every = [g for g in read if isinstance(g, MoleculeGraph)]
    vocab = vocab or _vocabulary(every, opts.max_atoms)
    alphabet = alphabet if alphabet is not None else alphabet_of(g.smiles for g in every)
    characters = set(alphabet)

    rows = train_rows if opts.split == "train" else test_rows
    graphs, skipped = [], Counter()
    for k in rows:
        g = read[k]
        reason = g if isinstance(g, str) else _unknown(g, vocab, characters)
        if reason is None:
            graphs.append(g)
        else:
            skipped[reason] += 1

    def known(rows: np.ndarray) -> list[str]:  # the metrics' sets need the atom types, not the alphabet
        return [
            g.smiles for k in rows if isinstance(g := read[k], MoleculeGraph) and not _unknown(g, vocab, None)
        ]

    label = f"{name} {opts.split}"
    if not graphs:
        reasons = ", ".join(_skip_text(r, c, opts.max_length) for r, c in skipped.most_common())
        raise GanforgeError(
            f"none of the {len(rows):,} SMILES of {label} was kept ({reasons})",
            _unknown_fix(skipped, vocab, alphabet),
        )
    if skipped:
        print(skip_line(label, len(graphs), len(rows), skipped, opts.max_length))
    if test_smiles is not None:
        reference = [
            g.smiles for g in (read_molecule(s, 10**6) for s in test_smiles) if isinstance(g, MoleculeGraph)
        ]
    else:
        reference = known(test_rows)
    return _dataset(
        graphs,
        vocab,
        alphabet,
        opts.max_length,
        name=name,
        skipped=skipped,
        train_smiles=frozenset(known(train_rows)),
        test_smiles=reference,
    )


def _dataset(
    graphs: Sequence[MoleculeGraph],
    vocab: GraphVocabulary,
    alphabet: str,
    max_length: int,
    *,
    name: str,
    skipped: Mapping[str, int],
    train_smiles: Any,
    test_smiles: Sequence[str],
) -> MoleculeDataset:
    atoms, bonds = _fill(graphs, vocab)
    smiles = [g.smiles for g in graphs]
    tokens = tokens_of(smiles, alphabet, max_length + 2).to(torch.int16)
    return MoleculeDataset(
        atoms,
        bonds,
        tokens,
        smiles,
        vocab=vocab,
        alphabet=alphabet,
        name=name,
        train_smiles=train_smiles,
        test_smiles=test_smiles,
        skipped=skipped,
    )


# ---------------------------------------------------------------------- a user's file
def _file_bytes(path: Path) -> bytes:
    """The bytes of ``path``, gunzipped when it is gzip; one-line errors for a missing, empty,
    broken gzip or binary file."""
    if not path.is_file():
        raise GanforgeError(
            f"SMILES file {path} does not exist",
            "pass a .smi, .txt or .csv file (or one gzipped): --set data.path=FILE",
        )
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b" or path.suffix.lower() == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            raise GanforgeError(
                f"SMILES file {path} is not a valid gzip file", "gunzip it to check, or give it uncompressed"
            ) from None
    if not data.strip():
        raise GanforgeError(f"SMILES file {path} is empty", "give one SMILES per line (e.g. CCO)")
    if b"\0" in data:
        raise GanforgeError(
            f"SMILES file {path} is not text (it holds NUL bytes)", "give a text file of SMILES, one per line"
        )
    return data


def read_smiles_file(path: str | os.PathLike[str], column: str | None = None) -> list[str]:
    """The SMILES of a file: ``.csv`` (``column``, default the one named smiles in any case, else
    the first), else one per line (its first whitespace-separated token; a first line ``smiles``
    is a header); gzipped or not. Bad files are one-line errors."""
    path = Path(path).expanduser()
    data = _file_bytes(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise GanforgeError(
            f"SMILES file {path} is not UTF-8 text (byte {err.start})",
            "give a text file of SMILES (re-save it as UTF-8)",
        ) from None
    stem = path.name[:-3] if path.name.lower().endswith(".gz") else path.name
    if stem.lower().endswith(".csv"):
        out = _csv_column(text, path, column)
    else:
        if column is not None:
            raise GanforgeError(
                f"data.column={column!r} names a CSV column, but {path} is not a .csv file",
                "leave data.column out, or give a .csv file",
            )
        out = [line.split()[0] for line in text.splitlines() if line.strip()]
        if out and out[0].lower() == "smiles":
            out = out[1:]
    if not out:
        raise GanforgeError(f"SMILES file {path} holds no SMILES", "give one SMILES per line (e.g. CCO)")
    return out


def _csv_column(text: str, path: Path, column: str | None) -> list[str]:
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as err:
        raise GanforgeError(f"SMILES file {path} is not a valid CSV ({err})", "fix its quoting") from None
    header = [h.strip() for h in rows[0]] if rows else []
    if column is not None and column not in header:
        raise GanforgeError(
            f"SMILES file {path} has no column {column!r}", f"the columns are: {', '.join(header)}"
        )
    named = [k for k, h in enumerate(header) if h.lower() == "smiles"]
    k = header.index(column) if column is not None else (named[0] if named else 0)
    return [row[k].strip() for row in rows[1:] if len(row) > k and row[k].strip()]


@register_dataset("smiles")
def smiles_file(
    path: str,
    column: str | None = None,
    max_atoms: int = 20,
    max_length: int = 100,
    test_fraction: float = 0.1,
    split: str = "train",
    split_seed: int = 0,
) -> MoleculeDataset:
    """The molecules of a SMILES file (``.smi``/``.txt``: the first token of each line; ``.csv``:
    ``column``; either gzipped) with at most ``max_atoms`` heavy atoms and canonical SMILES of
    at most ``max_length`` characters; ``split`` train | test of a seeded permutation
    (``test_fraction``, ``split_seed``). See the module docstring."""
    if not isinstance(path, str | os.PathLike):
        raise GanforgeError(f"data.path={path!r} is not a path", "set data.path to a file of SMILES")
    opts = _Options.checked(max_atoms, max_length, test_fraction, split, split_seed)
    require_rdkit()
    file = Path(path).expanduser()
    smiles = read_smiles_file(file, column)
    return _from_list(
        smiles,
        opts,
        vocab=None,
        alphabet=None,
        name=file.name.split(".")[0] or "smiles",
        test_smiles=None,
        source=str(file),
    )


# ---------------------------------------------------------------------- MOSES
def molecule_cache_dir() -> Path:
    """``$GANFORGE_CACHE/molecules`` when that variable is set, else ``~/.cache/ganforge/molecules``."""
    root = os.environ.get("GANFORGE_CACHE")
    return Path(root).expanduser() / "molecules" if root else default_root("molecules")


def moses_file(root: Path, split: str) -> Path:
    """``root/<split>.csv.gz`` (or ``.csv``); a one-line error naming the root when neither exists."""
    for candidate in (root / f"{split}.csv.gz", root / f"{split}.csv"):
        if candidate.is_file():
            return candidate
    raise GanforgeError(f"MOSES file {split}.csv.gz not found in {root}", MOSES_FIX)


def read_moses_smiles(path: Path) -> list[str]:
    """The SMILES of a MOSES CSV (one column ``SMILES`` after a header line), as written."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            lines = fh.read().split("\n")
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as err:
        raise GanforgeError(
            f"cannot read MOSES file {path}: {' '.join(str(err).split())[:120]}", MOSES_FIX
        ) from None
    if not lines or lines[0].strip().split(",")[0].upper() != "SMILES":
        raise GanforgeError(f"MOSES file {path} does not start with the header line SMILES", MOSES_FIX)
    return [line.split(",")[0].strip() for line in lines[1:] if line.strip()]


def moses_train_smiles(path: Path) -> list[str]:
    """The SMILES of MOSES's train file as written (canonical already, see the module docstring),
    those with an explicit ``[H]`` canonicalised."""
    chem = _rdkit()
    out = read_moses_smiles(path)
    for k, s in enumerate(out):
        if "[H]" in s:
            mol = chem.MolFromSmiles(s)
            out[k] = chem.MolToSmiles(mol, isomericSmiles=False) if mol is not None else s
    return out


def _sample(
    smiles: Sequence[str],
    count: int,
    seed: int,
    max_atoms: int,
    max_length: int | None,
    vocab: GraphVocabulary | None,
    characters: set[str] | None,
) -> tuple[list[MoleculeGraph], Counter[str], int]:
    """Up to ``count`` molecules kept from ``smiles`` read in a seeded random order, the skip
    counts and how many SMILES were read."""
    graphs, skipped, looked = [], Counter(), 0
    for k in np.random.default_rng(seed).permutation(len(smiles)):
        if len(graphs) >= count:
            break
        looked += 1
        g = read_molecule(smiles[k], max_atoms, max_length)
        reason = g if isinstance(g, str) else _unknown(g, vocab, characters)
        if reason is None:
            graphs.append(g)
        else:
            skipped[reason] += 1
    return graphs, skipped, looked


def _cache_key(files: Sequence[Path], options: Mapping[str, Any]) -> str:
    from rdkit import rdBase

    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    digest.update(repr(sorted(options.items())).encode())
    digest.update(f"{rdBase.rdkitVersion} {MOSES_ATOM_TYPES} {MOSES_ALPHABET} {CACHE_FORMAT}".encode())
    return digest.hexdigest()


def _strings(values: Sequence[str]) -> np.ndarray:
    return np.array(list(values), dtype=str) if len(values) else np.zeros(0, dtype="<U1")


def _save_cache(path: Path, data: MoleculeDataset, looked: int) -> None:
    arrays = {
        "atoms": data.atoms.numpy(),
        "bonds": data.bonds.numpy(),
        "tokens": data.tokens.numpy(),
        "smiles": _strings(data.smiles),
        "test_smiles": _strings(data.test_smiles),
        "atom_types": _strings(data.vocab.atom_types),
        "max_atoms": np.array(data.vocab.max_atoms),
        "alphabet": np.array(data.alphabet),
        "skip_reasons": _strings(list(data.skipped)),
        "skip_counts": np.array(list(data.skipped.values()), np.int64),
        "looked": np.array(looked),
    }
    atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays))


def _load_cache(
    path: Path, name: str, train_smiles: Callable[[], Iterable[str]]
) -> tuple[MoleculeDataset, int]:
    with np.load(path, allow_pickle=False) as f:
        vocab = GraphVocabulary(tuple(f["atom_types"].tolist()), int(f["max_atoms"]))
        skipped = dict(zip(f["skip_reasons"].tolist(), f["skip_counts"].tolist(), strict=True))
        data = MoleculeDataset(
            f["atoms"],
            f["bonds"],
            f["tokens"],
            f["smiles"].tolist(),
            vocab=vocab,
            alphabet=str(f["alphabet"]),
            name=name,
            train_smiles=train_smiles,
            test_smiles=f["test_smiles"].tolist(),
            skipped=skipped,
        )
        return data, int(f["looked"])


@register_dataset("moses")
def moses(
    root: str | None = None,
    split: str = "train",
    max_atoms: int = 20,
    size: int = 100_000,
    reference_size: int = 10_000,
    max_length: int = 100,
    seed: int = 0,
    download: bool = False,
) -> MoleculeDataset:
    """A seeded sample of ``size`` molecules of at most ``max_atoms`` heavy atoms of the MOSES
    ``split`` (train | test | test_scaffolds) in ``root`` (default ``~/.cache/ganforge/moses``),
    with ``reference_size`` test molecules as the metrics' reference set and the train file as
    their novelty set; cached. ``download``: fetch missing files first
    (:func:`ganforge.data.moses_files.download_moses`). See the module docstring."""
    if root is not None and not isinstance(root, str | os.PathLike):
        raise GanforgeError(f"data.root={root!r} is not a path", MOSES_FIX)
    split = _split(split, MOSES_SPLITS)
    max_atoms = _whole(max_atoms, "max_atoms", 1, "20")
    size = _whole(size, "size", 1, "100000")
    reference_size = _whole(reference_size, "reference_size", 1, "10000")
    max_length = _whole(max_length, "max_length", 1, "100")
    seed = _whole(seed, "seed", 0, "0")
    require_rdkit()
    folder = default_root("moses") if root is None else Path(root).expanduser()
    if not isinstance(download, bool):
        raise GanforgeError(f"data.download={download!r} is not true or false", "set data.download=true")
    if download:
        download_moses(folder)
    train_file, test_file = moses_file(folder, "train"), moses_file(folder, "test")
    split_file = moses_file(folder, split)
    name = f"moses {split}" if split != "train" else "moses"

    def train_smiles() -> list[str]:
        return moses_train_smiles(train_file)

    options = {
        "split": split,
        "max_atoms": max_atoms,
        "size": size,
        "reference_size": reference_size,
        "max_length": max_length,
        "seed": seed,
    }
    cache = molecule_cache_dir() / f"moses-{_cache_key([split_file, test_file], options)[:24]}.npz"
    label = f"moses {split}"
    if cache.is_file():
        with contextlib.suppress(OSError, ValueError, KeyError, EOFError, zlib.error):
            data, looked = _load_cache(cache, name, train_smiles)
            if data.skipped:
                print(skip_line(label, len(data), looked, data.skipped, max_length))
            return data
    vocab = GraphVocabulary(MOSES_ATOM_TYPES, max_atoms)
    characters = set(MOSES_ALPHABET)
    rows = read_moses_smiles(split_file)
    graphs, skipped, looked = _sample(rows, size, seed, max_atoms, max_length, vocab, characters)
    if not graphs:
        raise _nothing_read(rows, skipped, _Options(max_atoms, max_length, 0.0, split, seed), str(split_file))
    reference, _, _ = _sample(
        read_moses_smiles(test_file), reference_size, seed + 1, max_atoms, None, None, None
    )
    data = _dataset(
        graphs,
        vocab,
        MOSES_ALPHABET,
        max_length,
        name=name,
        skipped=skipped,
        train_smiles=train_smiles,
        test_smiles=[g.smiles for g in reference],
    )
    if skipped:
        print(skip_line(label, len(data), looked, skipped, max_length))
    with contextlib.suppress(OSError):
        _save_cache(cache, data, looked)
    return data


# ---------------------------------------------------------------------- the kind's writers
def smiles_of(samples: Samples) -> list[str | None]:
    """The SMILES of each sample, None for an invalid one: ``arrays["smiles"]`` when given ("" is
    invalid), else the graphs ``x`` decoded with ``arrays["atom_types"]``, ``arrays["max_atoms"]``
    and ``arrays.get("valency", False)``."""
    if "smiles" in samples.arrays:
        values = np.asarray(samples.arrays["smiles"]).reshape(-1).tolist()
        return [(v.decode() if isinstance(v, bytes) else str(v)) or None for v in values]
    vocab = vocab_from_arrays(samples.arrays, samples.x)
    valency = bool(np.asarray(samples.arrays.get("valency", False)).reshape(-1)[0])
    return decode_graphs(samples.x, vocab, valency=valency)


def write_smi(samples: Samples, path: Path) -> Path:
    """The ``.smi`` writer: the valid molecules' SMILES, one a line (the invalid ones are left
    out); a one-line error when none is valid."""
    smiles = smiles_of(samples)
    valid = [s for s in smiles if s]
    if not valid:
        raise GanforgeError(
            f"none of the {len(smiles)} samples is a valid molecule",
            "train longer, or write .npz to keep the raw graphs",
        )
    text = "\n".join(valid) + "\n"
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def write_molecules_png(samples: Samples, path: Path) -> Path:
    """The ``.png`` writer: RDKit drawings of the first :data:`PREVIEW_MOLECULES` samples,
    :data:`PER_ROW` a row, each under its SMILES; an invalid one is a blank cell marked
    ``invalid``."""
    chem = require_rdkit()
    from rdkit.Chem import Draw

    smiles = smiles_of(samples)[:PREVIEW_MOLECULES]
    if not smiles:
        raise GanforgeError("there are no samples to draw", "draw at least one sample")
    mols = [chem.MolFromSmiles(s) if s else None for s in smiles]
    legends = [
        s if m is not None and len(s) <= 32 else s[:29] + "..." if m is not None else "invalid"
        for s, m in zip(smiles, mols, strict=True)
    ]
    image = Draw.MolsToGridImage(
        mols, molsPerRow=min(PER_ROW, len(mols)), subImgSize=(CELL, CELL), legends=legends
    )
    if isinstance(image, bytes | bytearray):
        data = bytes(image)
    else:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        data = buffer.getvalue()
    return atomic_write(path, lambda fh: fh.write(data))


MOLECULE_PNG = Writer(write_molecules_png)
register_kind(
    DataKind(
        "graph",
        {".smi": Writer(write_smi), ".png": MOLECULE_PNG, ".npz": NPZ},
        collate=collate_graphs,
        metrics=MOLECULE_METRICS,
        preview_writer=MOLECULE_PNG,
        suggested=".smi",
        description="molecular graphs (N atoms, A atom types + 4N bond one-hots), and their SMILES tokens",
    )
)
