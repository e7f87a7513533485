"""The molecule algorithms: MolGAN (its reward network's target is RDKit's score of the decoded
molecule, its loss mixes the WGAN and reward terms, its vocabulary travels in the checkpoint) and
the CharRNN baseline (``smiles-lm``), trained a few steps on real drug-like SMILES."""

from __future__ import annotations

import pytest
import torch

from ganforge.config import ExperimentConfig
from ganforge.errors import GanforgeError
from ganforge.train import Trainer
from ganforge.train.algorithms.base import DesignsMolecules, LatentSpace
from ganforge.train.run import load_run
from tests.train._image_to_image import assert_same_networks, resumed_checkpoints

pytest.importorskip("rdkit")

from ganforge.data.chem import mol_from_smiles, qed  # noqa: E402
from ganforge.data.molecules import MoleculeDataset, decode_graphs, graphs_to_tensor, join_graph  # noqa: E402

#: small drug-like molecules (aspirin, paracetamol, caffeine, ibuprofen...), each <= 15 heavy atoms
SMILES = [
    "CC(=O)Oc1ccccc1C(=O)O",
    "CC(=O)Nc1ccc(O)cc1",
    "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
    "CC(C)Cc1ccc(C(C)C(=O)O)cc1",
    "c1ccccc1",
    "CCO",
    "CC(=O)O",
    "CCN(CC)CC",
    "c1ccncc1",
    "OC1CCCCC1",
    "CC(C)O",
    "NC(=O)c1ccccc1",
    "Clc1ccccc1",
    "Fc1ccc(F)cc1",
    "CCOC(=O)C",
    "CC#N",
    "C1CCOC1",
    "CSc1ccccc1",
    "Brc1ccccc1",
    "CC(N)C(=O)O",
    "NCCc1ccccc1",
    "O=C1CCCC1",
    "c1ccc2ccccc2c1",
    "CN1CCCC1",
    "OCCO",
    "CC(C)(C)O",
    "c1ccsc1",
    "c1ccoc1",
    "CC(=O)c1ccccc1",
    "COc1ccccc1",
    "NC(N)=O",
    "CCCCCC",
    "C1CCNCC1",
    "O=S(=O)(N)c1ccccc1",
    "CC(O)CO",
    "N#Cc1ccccc1",
    "CCOCC",
    "OC(=O)CCC(=O)O",
    "Cc1ccccc1",
    "c1ccc(cc1)O",
]
TINY_MOLGAN = {
    "name": "molgan",
    "z_dim": 8,
    "g_hidden": [32, 64],
    "gcn_hidden": [16, 8],
    "aggregate": 16,
    "d_hidden": [16],
}


@pytest.fixture(autouse=True)
def _threads(one_thread):
    yield


@pytest.fixture(scope="module")
def molecules() -> MoleculeDataset:
    return MoleculeDataset.from_smiles(SMILES, max_atoms=15, test_fraction=0.2, split_seed=0)


def _config(
    algorithm: dict, model: dict, steps: int = 4, optim: dict | None = None, **train
) -> ExperimentConfig:
    return ExperimentConfig.from_dict(
        {
            "optim": optim or {},
            "seed": 0,
            "algorithm": algorithm,
            "data": {"name": "smiles", "path": "unused.smi", "max_atoms": 15},
            "model": model,
            "phases": {"D": {"repeat": 2}} if algorithm["name"] == "molgan" else {},
            "train": {
                "steps": steps,
                "batch_size": 8,
                "log_every": 1,
                "sample_every": 10**6,
                "checkpoint_every": 10**6,
                "threads": 1,
                **train,
            },
        }
    )


def _molgan(**options) -> dict:
    return {"name": "molgan", "loss": {"name": "wgan-gp", "gp_weight": 10}, **options}


def test_molgan_reward_target_is_rdkits_qed_and_zero_for_invalid(molecules, tmp_path):
    trainer = Trainer(
        _config(_molgan(reward={"qed": 1.0}, adversarial_weight=0.5), TINY_MOLGAN),
        tmp_path / "r",
        dataset=molecules,
        progress=False,
    )
    algorithm = trainer.algorithm
    real = graphs_to_tensor(molecules.atoms[:6], molecules.bonds[:6], molecules.vocab)
    scores, valid = algorithm.rewards(real)
    expected = [qed(mol_from_smiles(s)) for s in molecules.smiles[:6]]
    assert valid == 1.0 and torch.allclose(scores, torch.tensor(expected, dtype=torch.float32), atol=1e-6)
    # a graph whose carbon has five single bonds: invalid, so 0 when decoded plainly
    bad = real[:1].clone()
    n, a = molecules.vocab.max_atoms, molecules.vocab.num_node_types
    bad.zero_()
    bad[0, :6, 1] = 1.0  # six carbons (type 1 = the commonest atom type, C)
    bad[0, 6:, 0] = 1.0
    bad[0, :, a] = 1.0  # every pair: no bond...
    for j in range(1, 6):  # ...but carbon 0 bonded to the five others
        for i, k in ((0, j), (j, 0)):
            bad[0, i, a + 4 * k] = 0.0
            bad[0, i, a + 4 * k + 1] = 1.0
    assert molecules.vocab.atom_types[0] == "C" and n >= 6
    algorithm.options.decoding = "plain"
    assert algorithm.rewards(bad)[0].tolist() == [0.0]
    algorithm.options.decoding = "valency"  # the surplus bond is dropped: neopentane and a methane
    assert decode_graphs(bad, molecules.vocab, valency=True) == ["C.CC(C)(C)C"]
    assert algorithm.rewards(bad)[0].item() == pytest.approx(qed(mol_from_smiles("C.CC(C)(C)C")), abs=1e-6)


def test_molgan_generator_loss_mixes_wgan_and_reward_terms(molecules, tmp_path):
    cfg = _config(_molgan(reward={"qed": 1.0}, adversarial_weight=0.25, reward_from=2), TINY_MOLGAN)
    algorithm = Trainer(cfg, tmp_path / "m", dataset=molecules, progress=False).algorithm
    assert [p.name for p in algorithm.phases()] == ["D", "R", "G"]
    state = algorithm.noise.get_state()
    before, _ = algorithm.g_loss(None, step=0)  # before reward_from: the WGAN term alone
    algorithm.noise.set_state(state)
    wgan, _ = super(type(algorithm), algorithm).g_loss(None, step=2)
    fake = algorithm.G(algorithm.G.sample_z(8, algorithm.noise, algorithm.device))
    expected = 0.25 * wgan - 0.75 * algorithm.R(fake).mean()
    algorithm.noise.set_state(state)
    mixed, _ = algorithm.g_loss(None, step=2)
    assert torch.allclose(before, wgan) and torch.allclose(mixed, expected)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"reward": {"mw": 1.0}}, "algorithm.reward names 'mw'"),
        ({"reward": {"qed": -1.0}, "adversarial_weight": 0.5}, "algorithm.reward.qed=-1.0 is not a weight"),
        ({"reward": {"qed": 1.0}}, "adversarial_weight=1 ignores it"),
        ({"adversarial_weight": 0.5}, "needs a reward to mix in"),
        ({"reward": {"qed": 1.0}, "adversarial_weight": 1.5}, "adversarial_weight=1.5 is not in [0, 1]"),
        ({"decoding": "greedy"}, "algorithm.decoding='greedy' is not a decoding"),
        ({"reward_from": -3}, "algorithm.reward_from=-3 is not a step"),
        ({"read": "mode"}, "algorithm.read='mode' is not a way to read graphs"),
    ],
)
def test_molgan_bad_options_are_one_line_errors(molecules, tmp_path, options, words):
    with pytest.raises(GanforgeError) as err:
        Trainer(_config(_molgan(**options), TINY_MOLGAN), tmp_path / "bad", dataset=molecules, progress=False)
    assert words in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "bad").exists()


def test_molgan_with_reward_resumes_exactly(molecules, tmp_path):
    cfg = _molgan(reward={"qed": 1.0}, adversarial_weight=0.5)
    full, split = resumed_checkpoints(
        lambda train: _config(cfg, TINY_MOLGAN, **{"steps": 4, **train}), tmp_path, molecules, 2
    )
    assert_same_networks(full, split, ("G", "D", "R"))


def test_molgan_trains_saves_its_vocabulary_and_samples_molecules(molecules, tmp_path):
    run_dir = tmp_path / "run"
    cfg = _config(_molgan(reward={"qed": 1.0, "logp": 1.0}, adversarial_weight=0.5), TINY_MOLGAN, steps=3)
    Trainer(cfg, run_dir, dataset=molecules, progress=False).fit()
    run = load_run(run_dir)  # no data: the vocabulary comes from the checkpoint
    assert isinstance(run.algorithm, DesignsMolecules) and isinstance(run.algorithm, LatentSpace)
    assert run.algorithm.vocab == molecules.vocab
    samples = run.draw(20, seed=3)
    assert samples.x.shape == (20, *molecules.sample_shape)
    assert samples.arrays["atom_types"].tolist() == list(molecules.vocab.atom_types)
    smiles = [s for s in samples.arrays["smiles"].tolist() if s]
    assert smiles and all(mol_from_smiles(s) is not None for s in smiles)  # valency decoding: all valid
    assert run.draw(20, seed=3).arrays["smiles"].tolist() == samples.arrays["smiles"].tolist()


def test_smiles_lm_trains_and_resumes_exactly(molecules, tmp_path):
    model = {"name": "charrnn", "embed": 8, "hidden": 32, "layers": 1, "dropout": 0.0}
    full, split = resumed_checkpoints(
        lambda train: _config({"name": "smiles-lm"}, model, **{"steps": 6, **train}), tmp_path, molecules, 3
    )
    assert_same_networks(full, split, ("G",))
    run = load_run(tmp_path / "full")
    assert run.algorithm.alphabet == tuple(molecules.alphabet)
    assert not isinstance(run.algorithm, LatentSpace)  # no latent codes: the latent tools refuse it
    tokens, smiles = run.algorithm.draw_molecules(10, torch.Generator().manual_seed(0))
    assert tokens.shape == (10, molecules.tensors()["tokens"].shape[1]) and len(smiles) == 10


def _valid_before_and_after(trainer: Trainer, n: int) -> tuple[float, float]:
    """The share of valid molecules among ``n`` drawn (seed 0) before and after ``trainer.fit()``."""

    def valid() -> float:
        _, smiles = trainer.algorithm.draw_molecules(n, torch.Generator().manual_seed(0))
        return sum(s is not None for s in smiles) / n

    before = valid()
    trainer.fit()
    return before, valid()


def test_smiles_lm_learns_the_training_smiles(molecules, tmp_path):
    """A small learning check: after 600 steps most samples are valid molecules (at start: almost none)."""
    model = {"name": "charrnn", "embed": 16, "hidden": 64, "layers": 1, "dropout": 0.0}
    trainer = Trainer(
        _config({"name": "smiles-lm"}, model, steps=600, batch_size=32),
        tmp_path / "lm",
        dataset=molecules,
        progress=False,
    )
    valid_before, valid_after = _valid_before_and_after(trainer, 100)
    assert valid_before < 0.1 and valid_after > 0.5, (valid_before, valid_after)


def test_molgan_validity_rises_with_plain_decoding(molecules, tmp_path):
    """A small learning check: plainly decoded (no valence repair), an untrained MolGAN's graphs
    are almost never molecules; after 200 steps on the small set a clear share is."""
    adam = {"name": "adam", "lr": 1e-3, "betas": [0.5, 0.9]}
    cfg = _config(
        _molgan(decoding="plain"),
        {**TINY_MOLGAN, "g_hidden": [64, 128]},
        steps=200,
        batch_size=16,
        optim={"G": adam, "D": adam},
    )
    trainer = Trainer(cfg, tmp_path / "g", dataset=molecules, progress=False)
    valid_before, valid_after = _valid_before_and_after(trainer, 200)
    assert valid_before < 0.05 and valid_after > 0.3, (valid_before, valid_after)


def test_draw_graphs_reads_one_hot_graphs_from_gs_probabilities(molecules):
    from ganforge.data.molecules import split_graph
    from ganforge.train.algorithms.molecules import draw_graphs

    real = graphs_to_tensor(molecules.atoms[:5], molecules.bonds[:5], molecules.vocab)
    assert torch.equal(draw_graphs(real, torch.Generator().manual_seed(0)), real)  # one-hot: itself
    n, a = molecules.vocab.max_atoms, molecules.vocab.num_node_types
    nodes = torch.full((4000, n, a), 1.0 / a)
    edges = torch.tensor([0.7, 0.2, 0.1, 0.0]).expand(4000, n, n, 4)
    drawn_nodes, drawn_edges = split_graph(
        draw_graphs(join_graph(nodes, edges), torch.Generator().manual_seed(1))
    )
    assert torch.equal(drawn_edges, drawn_edges.transpose(1, 2))  # one draw per pair, mirrored
    assert (drawn_edges.diagonal(dim1=1, dim2=2)[:, 0] == 1).all()  # no self-bonds
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    share = drawn_edges[:, upper].mean(dim=(0, 1))
    assert torch.allclose(share, torch.tensor([0.7, 0.2, 0.1, 0.0]), atol=0.01)
    assert torch.allclose(drawn_nodes.mean(dim=(0, 1)), torch.full((a,), 1.0 / a), atol=0.01)
