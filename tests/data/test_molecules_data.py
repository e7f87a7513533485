"""The ``graph`` data kind: molecules as one-hot graphs and SMILES tokens, the ``moses`` and
``smiles`` datasets, the loader's collation and the .smi/.png writers."""

from __future__ import annotations

import gzip
import itertools
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("rdkit")

from rdkit import Chem  # noqa: E402

from ganforge.data import build_dataset, datasets_of_kind  # noqa: E402
from ganforge.data.kinds import collate_for, get_kind  # noqa: E402
from ganforge.data.molecules import (  # noqa: E402
    BOND_TYPES,
    BOS,
    EMPTY,
    EOS,
    MOLECULE_METRICS,
    PAD,
    GraphVocabulary,
    MoleculeDataset,
    decode_graphs,
    decode_molecules,
    encode_smiles,
    graph_shape,
    graphs_to_tensor,
    join_graph,
    max_valence,
    moses,
    read_molecule,
    smiles_of,
    split_graph,
    tokens_of,
    tokens_to_smiles,
    vocab_arrays,
    vocabulary_of,
)
from ganforge.data.writers import Samples  # noqa: E402
from ganforge.errors import GanforgeError  # noqa: E402
from ganforge.train.batches import batches_for  # noqa: E402

MOSES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "molecules"
needs_moses = pytest.mark.skipif(
    not (MOSES / "train.csv.gz").is_file() or not (MOSES / "test.csv.gz").is_file(),
    reason="MOSES data not found beside the repo (../shared/data/molecules)",
)
VOCAB = GraphVocabulary(("C", "N", "O", "F"), 9)
SMALL = [
    "CCO",
    "c1ccccc1",
    "CC#N",
    "CC(=O)O",
    "CN",
    "OCCO",
    "FC(F)F",
    "C1CC1",
    "CC(C)O",
    "NCC(=O)O",
    "c1ccncc1",
    "COC",
    "CCN",
    "O=CO",
    "CCCC",
    "C=C",
    "CC=O",
    "NC=O",
    "CCF",
    "OC1CCCC1",
]


def canonical(smiles: str) -> str:
    return Chem.MolToSmiles(Chem.MolFromSmiles(smiles), isomericSmiles=False)


def moses_head(count: int, max_atoms: int = 20) -> list[str]:
    """The first ``count`` molecules of MOSES's train.csv.gz with at most ``max_atoms`` atoms."""
    out = []
    with gzip.open(MOSES / "train.csv.gz", "rt") as fh:
        next(fh)
        for line in fh:
            graph = read_molecule(line.strip(), max_atoms)
            if not isinstance(graph, str):
                out.append(line.strip())
                if len(out) == count:
                    break
    return out


# ---------------------------------------------------------------------- encoding and decoding
@needs_moses
def test_real_moses_molecules_round_trip_through_the_graph() -> None:
    smiles = moses_head(500)
    vocab = vocabulary_of(smiles)
    atoms, bonds, kept, skipped = encode_smiles(smiles, vocab)
    assert len(kept) == 500 and not skipped
    decoded = decode_graphs(graphs_to_tensor(atoms, bonds, vocab), vocab)
    same = sum(d == canonical(s) for d, s in zip(decoded, smiles, strict=True))
    # all 500 come back (RDKit 2026.09): MOSES has no charges, stereo or radicals, which the graph
    # drops; a failure would be such an atom, e.g. an explicit [H] count RDKit's valence model
    # does not give back
    assert same >= 495, [(s, d) for s, d in zip(smiles, decoded, strict=True) if d != canonical(s)][:5]


@pytest.mark.parametrize(
    "smiles, types, orders",
    [
        ("c1ccccc1", ["C"] * 6, Counter({1: 3, 2: 3})),  # kekulised: no aromatic bond
        ("CCO", ["C", "C", "O"], Counter({1: 2})),
        ("CC#N", ["C", "C", "N"], Counter({1: 1, 3: 1})),
        ("C[N+](=O)[O-]", ["C", "N+", "O", "O-"], Counter({1: 2, 2: 1})),
    ],
)
def test_hand_made_molecules_encode_and_decode(smiles: str, types: list[str], orders: Counter) -> None:
    vocab = GraphVocabulary(("C", "N", "O", "N+", "O-"), 6)
    atoms, bonds, kept, skipped = encode_smiles([smiles], vocab)
    assert kept.tolist() == [0] and not skipped
    assert [vocab.atom_types[c - 1] for c in atoms[0] if c != EMPTY] == types
    assert (atoms[0, len(types) :] == EMPTY).all()  # empty slots at the end
    upper = bonds[0][np.triu_indices(6, 1)]
    assert Counter(upper[upper > 0].tolist()) == orders
    assert (bonds[0] == bonds[0].T).all() and (np.diag(bonds[0]) == 0).all()
    x = graphs_to_tensor(atoms, bonds, vocab)
    assert decode_graphs(x, vocab) == [canonical(smiles)]
    assert decode_graphs(x, vocab, valency=True) == [canonical(smiles)]


def test_charged_atom_types_have_the_valence_of_their_isoelectronic_element() -> None:
    assert [max_valence(t) for t in ("C", "N", "O", "F", "S", "N+", "O-", "C-")] == [4, 3, 2, 1, 6, 4, 1, 3]


def test_one_hot_graphs_have_the_declared_layout() -> None:
    atoms, bonds, _, _ = encode_smiles(SMALL, VOCAB)
    x = graphs_to_tensor(atoms, bonds, VOCAB)
    assert x.dtype == torch.float32 and tuple(x.shape) == (len(SMALL), *graph_shape(VOCAB)) == (20, 9, 5 + 36)
    nodes, edges = split_graph(x)
    assert tuple(nodes.shape) == (20, 9, 5) and tuple(edges.shape) == (20, 9, 9, len(BOND_TYPES))
    assert (nodes.sum(-1) == 1).all() and (edges.sum(-1) == 1).all()
    assert torch.equal(edges, edges.transpose(1, 2))
    assert (edges.diagonal(dim1=1, dim2=2)[:, 0] == 1).all()  # the diagonal is "none"
    empty = nodes[..., EMPTY] == 1
    assert (edges[..., 0][empty] == 1).all()  # an empty slot has no bond
    assert torch.equal(join_graph(nodes, edges), x)
    soft = torch.rand(3, 4, 7, 9, 5 + 36)  # any leading dims
    assert torch.equal(join_graph(*split_graph(soft)), soft)


def test_valency_aware_decoding_drops_the_bond_that_overfills_an_atom() -> None:
    vocab = GraphVocabulary(("C",), 6)
    atoms = np.array([[1, 1, 1, 1, 1, 1]], np.int8)
    bonds = np.zeros((1, 6, 6), np.int8)
    bonds[0, 0, 1:] = bonds[0, 1:, 0] = 1  # a carbon with five single bonds
    x = graphs_to_tensor(atoms, bonds, vocab)
    _, edges = split_graph(x)
    edges[0, 0, 5] = edges[0, 5, 0] = torch.tensor([0.4, 0.6, 0.0, 0.0])  # the least sure bond
    assert decode_graphs(x, vocab) == [None]
    assert decode_graphs(x, vocab, valency=True) == ["C.CC(C)(C)C"]


def test_random_soft_graphs_decode_with_valency_to_valid_molecules() -> None:
    vocab = GraphVocabulary(("C", "N", "O", "S", "F", "Cl", "N+", "O-"), 9)
    g = torch.Generator().manual_seed(0)
    nodes = torch.softmax(3 * torch.randn(300, 9, vocab.num_node_types, generator=g), -1)
    nodes[:5, :, EMPTY] = 10.0  # five empty graphs
    edges = torch.softmax(3 * torch.randn(300, 9, 9, 4, generator=g), -1)
    decoded = decode_graphs(join_graph(nodes, edges), vocab, valency=True)
    assert decoded[:5] == [None] * 5
    assert all(s is not None and Chem.MolFromSmiles(s) is not None for s in decoded[5:])
    assert sum(s is None for s in decode_graphs(join_graph(nodes, edges), vocab)) > 250  # plain: mostly not
    # the molecules decode_molecules hands out are those of the SMILES, without a second parse
    mols = decode_molecules(join_graph(nodes, edges), vocab, valency=True)
    assert [m is None for m in mols] == [s is None for s in decoded]
    assert [Chem.MolToSmiles(m, isomericSmiles=False) for m in mols[5:]] == decoded[5:]


def test_tokens_round_trip() -> None:
    alphabet = "".join(sorted(set("".join(SMALL))))
    tokens = tokens_of(SMALL, alphabet, 12)
    assert tokens.dtype == torch.int64 and tuple(tokens.shape) == (20, 12)
    assert (tokens[:, 0] == BOS).all() and tokens[0, 4].item() == EOS and (tokens[0, 5:] == PAD).all()
    assert tokens_to_smiles(tokens, alphabet) == SMALL
    with pytest.raises(GanforgeError, match="more than 2 fit"):
        tokens_of(["CCO"], alphabet, 4)
    with pytest.raises(GanforgeError, match="not in the alphabet"):
        tokens_of(["CBr"], alphabet, 8)


def test_vocabulary_is_by_frequency_then_name_and_loads_with_weights_only(tmp_path: Path) -> None:
    vocab = vocabulary_of(["CCO", "CN", "CF", "OO"], max_atoms=5)
    assert vocab == GraphVocabulary(("C", "O", "F", "N"), 5)
    assert (vocab.num_node_types, vocab.width) == (5, 25)
    torch.save(vocab.to_state(), tmp_path / "v.pt")
    assert GraphVocabulary.from_state(torch.load(tmp_path / "v.pt", weights_only=True)) == vocab


# ---------------------------------------------------------------------- the dataset and its batches
def test_dataset_declares_the_graph_kind_and_collates_one_hot_batches(one_thread) -> None:
    data = MoleculeDataset.from_smiles(SMALL + ["C.CC"], max_atoms=9, max_length=10, test_fraction=0.2)
    assert (
        data.kind == "graph"
        and data.fields == ("x", "tokens")
        and data.sample_shape == graph_shape(data.vocab)
    )
    assert (data.num_classes, data.y, data.extractor, data.modes) == (None, None, None, None)
    assert data.atoms.dtype == torch.int8 and data.bonds.dtype == torch.int8 and data.tokens.shape[1] == 12
    assert len(data) == len(data.smiles) == 17 and len(data.test_smiles) == 4  # 21 SMILES, 4 held out
    assert "c1ccncc1" in data.test_smiles and "n" in data.alphabet  # both splits' characters
    assert set(data.smiles) == set(data.train_smiles) and not set(data.test_smiles) & set(data.train_smiles)
    assert "C.CC" in data.smiles + data.test_smiles  # fragments are kept
    assert tokens_to_smiles(data.tokens, data.alphabet) == data.smiles
    batch = batches_for(data, 8, seed=0).next()  # the Trainer's loader
    assert set(batch) == {"x", "tokens"}
    assert batch["x"].dtype == torch.float32 and tuple(batch["x"].shape) == (8, 9, data.vocab.width)
    assert batch["tokens"].dtype == torch.int64 and tuple(batch["tokens"].shape) == (8, 12)
    codes = tokens_to_smiles(batch["tokens"], data.alphabet)
    assert decode_graphs(batch["x"], data.vocab) == codes  # graphs and tokens of the same rows
    assert torch.equal(data.x[:3], torch.stack([data[i][0] for i in range(3)]))
    plain = collate_for("graph")({"x": torch.arange(6).view(3, 2)}, torch.tensor([2, 0]))
    assert plain["x"].tolist() == [[4, 5], [0, 1]]
    assert (
        data.name in ("smiles",)
        and "moses" in datasets_of_kind("graph")
        and "smiles" in datasets_of_kind("graph")
    )


def test_a_runs_vocabulary_skips_unknown_atoms_with_a_count(capsys) -> None:
    data = MoleculeDataset.from_smiles(
        ["CCO", "CCS", "CCCl", "CN", "CC"],
        vocab=GraphVocabulary(("C", "O"), 9),
        alphabet="()=CO",
        test_fraction=0.0,
    )
    assert data.smiles == ["CCO", "CC"] and data.skipped == Counter({"unknown atom": 3})
    assert (
        capsys.readouterr().out.strip()
        == "smiles train: kept 2 of 5 SMILES (skipped: 3 with an unknown atom)"
    )
    with pytest.raises(
        GanforgeError,
        match=r"none of the 2 SMILES .*\(2 with an unknown atom\); give molecules of the atom types C, O$",
    ):
        MoleculeDataset.from_smiles(["CCS", "CN"], vocab=GraphVocabulary(("C", "O"), 9), test_fraction=0.0)


# ---------------------------------------------------------------------- the `smiles` dataset and bad input
def write(path: Path, data: bytes | str) -> Path:
    raw = data.encode() if isinstance(data, str) else data
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def test_smiles_files_of_every_format_give_the_same_molecules(tmp_path: Path, capsys) -> None:
    lines = ["SMILES"] + [f"{s} mol{k}" for k, s in enumerate(SMALL)] + ["", "not_a_smiles x", "CCCCCCCCCCC"]
    smi = write(tmp_path / "a.smi", "\n".join(lines))
    rows = [f"m{k},{s}" for k, s in enumerate(SMALL)] + ['"x, y",not_a_smiles', "z,CCCCCCCCCCC"]
    csv = write(tmp_path / "b.csv.gz", "name,Smiles\n" + "\n".join(rows))
    got = [
        build_dataset({"name": "smiles", "path": str(p), "max_atoms": 9, "test_fraction": 0.25})
        for p in (smi, csv)
    ]
    assert "skipped: 1 above 9 atoms, 1 unparsable" in capsys.readouterr().out
    assert got[0].smiles == got[1].smiles and got[0].test_smiles == got[1].test_smiles
    assert len(got[0]) + len(got[0].test_smiles) == len(SMALL)  # every valid one in one split
    test = build_dataset(
        {"name": "smiles", "path": str(csv), "max_atoms": 9, "test_fraction": 0.25, "split": "test"}
    )
    assert test.smiles == got[1].test_smiles and test.vocab == got[1].vocab
    first = write(tmp_path / "c.csv", "a,b\nCCO,x\nCCN,y\n")
    assert build_dataset({"name": "smiles", "path": str(first), "test_fraction": 0.0}).smiles == [
        "CCO",
        "CCN",
    ]


@pytest.mark.parametrize(
    "name, content, options, words",
    [
        ("missing.smi", None, {}, "does not exist"),
        ("empty.smi", "\n  \n", {}, "is empty"),
        ("binary.smi", b"CCO\x00\x01\x02", {}, "not text"),
        ("latin.smi", "CCO caf\xe9\n".encode("latin-1"), {}, "not UTF-8"),
        ("words.smi", "hello\nworld 1\n", {}, "no line of .* is a SMILES RDKit can read"),
        (
            "big.smi",
            "CCCCCCC\nCCCCCC\n",
            {"max_atoms": 4},
            "more than data.max_atoms=4 .*smallest has 6.* at least 6",
        ),
        ("header.csv", "smiles\n", {}, "holds no SMILES"),
        ("col.csv", "smiles\nCCO\n", {"column": "mol"}, "no column 'mol'"),
        ("ok.smi", "CCO\n", {"max_atoms": 0}, "data.max_atoms=0 is not a whole number >= 1"),
        ("ok.smi", "CCO\n", {"test_fraction": 1.0}, r"data.test_fraction=1.0 is not in \[0, 1\)"),
        ("ok.smi", "CCO\n", {"split": "valid"}, "data.split='valid' is not a split"),
        ("ok.smi", "CCO\nCC\n", {"split": "test", "test_fraction": 0.0}, "leaves no test split"),
        ("bad.smi.gz", None, {}, "not a valid gzip file"),
    ],
)
def test_bad_smiles_input_is_one_line_error_and_writes_nothing(
    tmp_path: Path, name: str, content, options: dict, words: str
) -> None:
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(b"\x1f\x8b not gzip")
    elif content is not None:
        write(path, content)
    before = sorted(tmp_path.iterdir())
    with pytest.raises(GanforgeError, match=words) as err:
        build_dataset({"name": "smiles", "path": str(path), **options})
    assert "\n" not in str(err.value) and ";" in str(err.value)  # one line: problem; fix
    assert sorted(tmp_path.iterdir()) == before


def test_missing_rdkit_is_one_line_error(tmp_path: Path, monkeypatch) -> None:
    path = write(tmp_path / "a.smi", "CCO\n")
    monkeypatch.setitem(sys.modules, "rdkit", None)
    with pytest.raises(GanforgeError, match="molecules need RDKit; pip install 'ganforge\\[chem\\]'"):
        build_dataset({"name": "smiles", "path": str(path)})
    with pytest.raises(GanforgeError, match="molecules need RDKit"):
        moses(root=str(tmp_path))


# ---------------------------------------------------------------------- the writers
def graph_samples(smiles: list[str], valency: bool = False) -> Samples:
    atoms, bonds, _, _ = encode_smiles(smiles, VOCAB)
    return Samples(
        graphs_to_tensor(atoms, bonds, VOCAB), arrays={**vocab_arrays(VOCAB), "valency": np.array(valency)}
    )


def test_smi_writer_writes_the_valid_molecules_only(tmp_path: Path) -> None:
    samples = graph_samples(["CCO", "c1ccccc1", "CC#N"])
    samples.x[1, :, :5] = torch.tensor([1.0, 0, 0, 0, 0])  # the second graph: every slot empty
    assert smiles_of(samples) == ["CCO", None, "CC#N"]
    kind = get_kind("graph")
    assert (
        kind.suggested == ".smi"
        and kind.metrics == MOLECULE_METRICS
        and set(kind.writers) == {".smi", ".png", ".npz"}
    )
    path = kind.writer("out.smi").write(samples, tmp_path / "out.smi")
    lines = path.read_text().splitlines()
    assert lines == ["CCO", "CC#N"] and all(Chem.MolFromSmiles(s) is not None for s in lines)
    given = Samples(torch.zeros(3, 1), arrays={"smiles": np.array(["CCO", "", "C1CC1"])})  # a CharRNN's
    assert kind.writer("g.smi").write(given, tmp_path / "g.smi").read_text() == "CCO\nC1CC1\n"
    with pytest.raises(
        GanforgeError, match="none of the 3 samples is a valid molecule; train longer, or write .npz"
    ):
        kind.writer("x.smi").write(
            Samples(torch.zeros(3, 1), arrays={"smiles": np.array(["", "", ""])}), tmp_path / "none.smi"
        )
    assert not (tmp_path / "none.smi").exists() and sorted(p.name for p in tmp_path.iterdir()) == [
        "g.smi",
        "out.smi",
    ]


def test_png_writer_draws_a_grid_with_invalid_cells(tmp_path: Path) -> None:
    from PIL import Image

    smiles = list(itertools.islice(itertools.cycle(SMALL), 10))
    samples = graph_samples(smiles)
    samples.x[3, :, :5] = torch.tensor([1.0, 0, 0, 0, 0])  # invalid: no atom
    path = get_kind("graph").preview(samples, tmp_path / "mols.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (8 * 200, 2 * 200)
    assert [p.name for p in tmp_path.iterdir()] == ["mols.png"]
    get_kind("graph").writer("a.npz").write(samples, tmp_path / "a.npz")
    with np.load(tmp_path / "a.npz") as f:
        assert f["x"].shape == tuple(samples.x.shape) and f["atom_types"].tolist() == list(VOCAB.atom_types)


# ---------------------------------------------------------------------- MOSES
@needs_moses
def test_moses_sample_is_small_molecules_with_a_reference_set_and_a_cache(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path))
    start = time.perf_counter()
    data = build_dataset({"name": "moses", "root": str(MOSES), "size": 2000, "reference_size": 300})
    first = time.perf_counter() - start
    assert len(data) == 2000 and data.atoms.shape == (2000, 20)
    assert all(Chem.MolFromSmiles(s).GetNumAtoms() <= 20 for s in data.smiles[:200])
    assert len(data.test_smiles) == 300 and all(
        Chem.MolFromSmiles(s).GetNumAtoms() <= 20 for s in data.test_smiles
    )
    assert data.vocab.atom_types == ("C", "N", "O", "S", "F", "Cl", "Br")
    assert "moses train: kept 2,000 of" in capsys.readouterr().out
    assert len(list((tmp_path / "molecules").glob("moses-*.npz"))) == 1
    start = time.perf_counter()
    again = moses(root=str(MOSES), size=2000, reference_size=300)
    assert time.perf_counter() - start < max(0.5, first / 3)
    assert (
        again.smiles == data.smiles
        and again.test_smiles == data.test_smiles
        and again.skipped == data.skipped
    )
    for name in ("atoms", "bonds", "tokens"):
        assert torch.equal(getattr(again, name), getattr(data, name))
    assert (again.vocab, again.alphabet) == (data.vocab, data.alphabet)
    assert moses(root=str(MOSES), size=50, reference_size=10, seed=1).smiles[:5] != data.smiles[:5]
    assert sum(s in data.train_smiles for s in data.smiles) >= 0.99 * len(data)  # the novelty set


def test_moses_without_its_files_names_the_root_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(GanforgeError, match=f"train.csv.gz not found in {tmp_path}; pass data.root=DIR"):
        moses(root=str(tmp_path))
    with pytest.raises(GanforgeError, match="data.split='valid'"):
        moses(root=str(tmp_path), split="valid")
    assert not any(tmp_path.iterdir())
