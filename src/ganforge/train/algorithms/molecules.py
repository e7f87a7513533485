"""Molecules: graphs and SMILES of the ``graph`` data kind (:mod:`ganforge.data.molecules`).

``molgan`` (De Cao and Kipf 2018): the GAN algorithm (every loss and stabiliser of :mod:`.gan`; the
presets use WGAN-GP with 5 critic steps a G step) on molecular graphs, with MolGAN's reward
network R trained to predict an RDKit property r(x) in [0, 1] of the molecule a graph decodes to
(:func:`ganforge.data.chem.reward`: QED, logP, SA or a weighted mix; 0 for an invalid graph)::

    L_R = E_x[(R(x) - r(x))^2] + E_z[(R(G(z)) - r(G(z)))^2]        (real and generated graphs)
    L_G = lambda * L_WGAN(G) + (1 - lambda) * L_RL,   L_RL = -E_z[R(G(z))]

``algorithm.reward`` names the property weights ({} : no reward network, lambda = 1);
``algorithm.adversarial_weight`` is lambda; the reward term joins G's loss from
``algorithm.reward_from`` (MolGAN trains the plain GAN first). Generated graphs are decoded by
argmax (``algorithm.read: argmax``, MolGAN's) or drawn from G's probabilities (``read: sample``),
then decoded with ``algorithm.decoding: valency`` dropping bonds that would break an atom's valence
(as later graph generators do) or ``plain`` keeping every bond (an over-bonded graph is invalid).

``smiles-lm`` (``model: {name: charrnn}``): the non-adversarial baseline of MOSES, an LSTM over
SMILES characters trained by maximum likelihood (teacher forcing) on

    L = - mean_t log p(c_t | c_<t)

and sampled character by character.

Both keep the vocabulary of the data (atom types; SMILES characters) in their checkpoint state,
so a loaded run decodes its samples without the data (:class:`DesignsMolecules`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.config import ExperimentConfig
from ganforge.data.base import AnyDataset
from ganforge.data.chem import PROPERTIES, reward
from ganforge.data.kinds import Samples
from ganforge.data.molecules import (
    GraphVocabulary,
    MoleculeDataset,
    decode_graphs,
    decode_molecules,
    join_graph,
    split_graph,
    tokens_to_smiles,
)
from ganforge.errors import GanforgeError
from ganforge.models.base import MODELS, evaluating
from ganforge.models.charrnn import SmilesLanguageModel
from ganforge.models.molgan import build_reward_network
from ganforge.train.algorithms.base import (
    Algorithm,
    DesignsMolecules,
    OptimizerSpec,
    Phase,
    register_algorithm,
)
from ganforge.train.algorithms.gan import ADAM_GAN, GAN

DECODINGS = ("valency", "plain")
#: how a graph is read from G's probabilities: the most likely type of every atom and bond, or a
#: draw from them (what a generator trained on Gumbel samples was trained to put out)
READS = ("argmax", "sample")
#: element symbols a run built without data names its atom types by, until its state is loaded
STAND_IN_ATOMS = (
    "C",
    "N",
    "O",
    "S",
    "F",
    "Cl",
    "Br",
    "P",
    "I",
    "B",
    "Si",
    "Se",
    "Na",
    "K",
    "Li",
    "Mg",
    "Ca",
    "Zn",
    "Fe",
    "Cu",
    "Al",
    "Sn",
    "As",
    "Te",
    "Hg",
    "Ag",
)
ADAM_LM = {"name": "adam", "lr": 1e-3, "betas": (0.9, 0.999)}
#: molecules a training snapshot draws
SNAPSHOT_MOLECULES = 16
#: the properties MolGAN's reward may mix (molecular weight has no [0, 1] score)
REWARDED = tuple(p for p in PROPERTIES if p != "weight")


def _molecules(name: str, dataset: AnyDataset | None) -> None:
    """A one-line error unless the data are molecules (the graph kind)."""
    kind = None if dataset is None else dataset.kind
    if kind not in (None, "graph"):
        raise GanforgeError(
            f"algorithm {name!r} trains on molecules, and the data hold {kind} samples",
            "use a molecule dataset (data.name=moses or smiles)",
        )


def draw_graphs(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One-hot graphs drawn from the probabilities ``x`` (M, N, A + 4N): every atom's type from its
    row, every bond (i < j) from its row, mirrored; the diagonal stays "none"."""
    nodes, edges = split_graph(x.float().cpu())
    m, n, a = nodes.shape
    atom = torch.multinomial(nodes.reshape(-1, a).clamp_min(0) + 1e-12, 1, generator=generator).view(m, n)
    bond = torch.multinomial(edges.reshape(-1, 4).clamp_min(0) + 1e-12, 1, generator=generator).view(m, n, n)
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    bond = torch.where(upper, bond, bond.transpose(1, 2)) * (~torch.eye(n, dtype=torch.bool))
    return join_graph(F.one_hot(atom, a).float(), F.one_hot(bond, 4).float())


def _smiles_or_none(smiles: list[str]) -> list[str | None]:
    from ganforge.data.chem import canonical

    return [canonical(s) if s else None for s in smiles]


@register_algorithm("molgan")
class MolGAN(GAN, DesignsMolecules):
    """MolGAN: a graph generator, a relational critic and a reward network; see the module
    docstring."""

    name = "molgan"
    data_kind = "graph"

    @dataclass
    class Options(GAN.Options):
        reward: dict[str, float] = field(default_factory=dict)
        adversarial_weight: float = 1.0
        reward_from: int = 0
        decoding: str = "valency"
        read: str = "argmax"

        def __post_init__(self) -> None:
            super().__post_init__()
            for key, weight in self.reward.items():
                if key not in REWARDED:
                    raise GanforgeError(
                        f"algorithm.reward names {key!r}, not a property MolGAN rewards",
                        f"use weights of {', '.join(REWARDED)}, e.g. reward: {{qed: 1}}",
                    )
                if (
                    isinstance(weight, bool)
                    or not isinstance(weight, (int, float))
                    or not (math.isfinite(weight) and weight >= 0)
                ):
                    raise GanforgeError(
                        f"algorithm.reward.{key}={weight!r} is not a weight >= 0", "give a number such as 1"
                    )
            if self.reward and not sum(self.reward.values()) > 0:
                raise GanforgeError("algorithm.reward's weights are all 0", "give one a positive weight")
            w = self.adversarial_weight
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0.0 <= w <= 1.0:
                raise GanforgeError(
                    f"algorithm.adversarial_weight={w!r} is not in [0, 1]",
                    "set lambda of L_G = lambda L_WGAN + (1 - lambda) L_RL, e.g. 0.5",
                )
            if self.reward and w == 1.0:
                raise GanforgeError(
                    "algorithm.reward is set and adversarial_weight=1 ignores it",
                    "set algorithm.adversarial_weight below 1 (e.g. 0.5), or drop reward",
                )
            if not self.reward and w != 1.0:
                raise GanforgeError(
                    f"algorithm.adversarial_weight={w} needs a reward to mix in",
                    "set algorithm.reward (e.g. {qed: 1}), or adversarial_weight=1",
                )
            if (
                isinstance(self.reward_from, bool)
                or not isinstance(self.reward_from, int)
                or self.reward_from < 0
            ):
                raise GanforgeError(
                    f"algorithm.reward_from={self.reward_from!r} is not a step >= 0",
                    "set the step from which the reward enters G's loss, e.g. 0",
                )
            if self.decoding not in DECODINGS:
                raise GanforgeError(
                    f"algorithm.decoding={self.decoding!r} is not a decoding",
                    f"choose {' or '.join(DECODINGS)}",
                )
            if self.read not in READS:
                raise GanforgeError(
                    f"algorithm.read={self.read!r} is not a way to read graphs",
                    f"choose {' or '.join(READS)}",
                )

    options: MolGAN.Options

    def __init__(
        self,
        cfg: ExperimentConfig,
        dataset: AnyDataset | None,
        *,
        sample_shape: tuple[int, ...],
        num_classes: int | None,
        device: torch.device,
        restoring: bool = False,
    ) -> None:
        _molecules(self.name, dataset)
        super().__init__(
            cfg,
            dataset,
            sample_shape=sample_shape,
            num_classes=num_classes,
            device=device,
            restoring=restoring,
        )
        atoms, width = self.sample_shape
        # without data, stand-in atom types until the checkpoint's vocabulary is loaded
        self.vocab = (
            dataset.vocab
            if isinstance(dataset, MoleculeDataset)
            else GraphVocabulary(STAND_IN_ATOMS[: width - 4 * atoms - 1], atoms)
        )
        self.R: nn.Module | None = None
        if self.options.reward:
            options = {
                k: v for k, v in cfg.model.items() if k in ("gcn_hidden", "aggregate", "d_hidden", "dropout")
            }
            self.R = build_reward_network(self.sample_shape, **options).to(device)
            self.networks["R"] = self.R
            self.columns = (*self.columns, "loss_R", "reward_real", "reward_fake", "valid_fake")

    # ------------------------------------------------------------------ training
    def optimizers(self) -> dict[str, OptimizerSpec]:
        specs = super().optimizers()
        if self.R is not None:
            specs["R"] = OptimizerSpec(self.R, dict(ADAM_GAN))
        return specs

    def phases(self) -> list[Phase]:
        d, g = super().phases()
        return [d, Phase("R", ("R",), loss=self.r_loss), g] if self.R is not None else [d, g]

    def rewards(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        """r(x) of graphs ``x`` (the scores of the molecules they decode to, read and decoded as
        the run's samples are; 0 when invalid) on the run's device, and the share of valid
        molecules."""
        x = x.detach().cpu()
        if self.options.read == "sample":  # the molecules the run draws: E[r] over G's draws
            x = draw_graphs(x, self.noise)
        mols = decode_molecules(x, self.vocab, valency=self.options.decoding == "valency")
        scores = reward(mols, self.options.reward)
        valid = sum(m is not None for m in mols) / max(1, len(mols))
        return torch.as_tensor(scores, dtype=torch.float32, device=self.device), valid

    def r_loss(self, batch: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """L_R: R regresses the reward of real graphs and of G's (detached) graphs."""
        assert self.R is not None
        real = batch["x"].to(self.device)
        with torch.no_grad():
            fake = self.G(self.G.sample_z(len(real), self.noise, self.device))
        r_real, _ = self.rewards(real)
        r_fake, valid = self.rewards(fake)
        loss = F.mse_loss(self.R(real), r_real) + F.mse_loss(self.R(fake), r_fake)
        return loss, {
            "reward_real": r_real.mean().item(),
            "reward_fake": r_fake.mean().item(),
            "valid_fake": valid,
        }

    def g_loss(
        self, batch: dict[str, torch.Tensor] | None, step: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """lambda L_WGAN + (1 - lambda) L_RL (the reward term from ``reward_from`` on)."""
        loss, stats = super().g_loss(batch, step)
        if self.R is None or step < self.options.reward_from:
            return loss, stats
        fake = self.G(self.G.sample_z(self.cfg.train.batch_size, self.noise, self.device))
        lam = self.options.adversarial_weight
        return lam * loss - (1.0 - lam) * self.R(fake).mean(), stats

    # ------------------------------------------------------------------ molecules
    def sample_arrays(self) -> dict[str, Any]:
        return {
            "atom_types": np.array(self.vocab.atom_types),
            "max_atoms": np.int64(self.vocab.max_atoms),
            "valency": np.bool_(self.options.decoding == "valency"),
        }

    def draw_molecules(
        self,
        n: int,
        generator: torch.Generator | None = None,
        network: nn.Module | None = None,
        decoding: str | None = None,
        read: str | None = None,
    ) -> tuple[torch.Tensor, list[str | None]]:
        """``n`` graphs and their molecules: G's node and bond probabilities, or (``read``
        ``sample``) one-hot graphs drawn from them with ``generator``, decoded with ``decoding``
        (both default to the run's options)."""
        decoding = self.options.decoding if decoding is None else decoding
        read = self.options.read if read is None else read
        if decoding not in DECODINGS or read not in READS:
            raise GanforgeError(
                f"decoding {decoding!r} / read {read!r} is not a way to decode graphs",
                f"choose a decoding of {', '.join(DECODINGS)} and a read of {', '.join(READS)}",
            )
        with evaluating(self.generator if network is None else network) as net:
            x = self.sample(n, generator, network=net)
        if read == "sample":
            x = draw_graphs(x, generator)
        return x, decode_graphs(x, self.vocab, valency=decoding == "valency")

    def snapshot(self, path: Path, generator: nn.Module, step: int) -> Path:
        with evaluating(generator), torch.no_grad():
            x = generator(self.fixed_z[:SNAPSHOT_MOLECULES]).cpu()
        return self.kind.preview(Samples(x, self.sample_arrays(), title=f"step {step}"), path)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "vocab": self.vocab.to_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.vocab = GraphVocabulary.from_state(state["vocab"])

    def load_sampling_state(self, state: dict[str, Any]) -> None:
        super().load_sampling_state(state)
        self.vocab = GraphVocabulary.from_state(state["vocab"])


@register_algorithm("smiles-lm")
class SmilesLM(Algorithm, DesignsMolecules):
    """Maximum likelihood on SMILES strings with a character LSTM; see the module docstring."""

    name = "smiles-lm"
    data_kind = "graph"
    required_fields = ("tokens",)
    generator_name = "G"
    ema_networks = ("G",)
    columns = ("nll", "accuracy")

    @dataclass
    class Options:
        """``alphabet`` (the SMILES characters) and ``token_length`` come from the data (a loaded
        run: from its checkpoint); never set by hand. ``temperature`` of sampling."""

        alphabet: list | None = None
        token_length: int | None = None
        temperature: float = 1.0

        def __post_init__(self) -> None:
            t = self.temperature
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not (math.isfinite(t) and t > 0):
                raise GanforgeError(
                    f"algorithm.temperature={t!r} is not a number > 0",
                    "set the sampling temperature, e.g. 1.0",
                )

    options: SmilesLM.Options

    def __init__(
        self,
        cfg: ExperimentConfig,
        dataset: AnyDataset | None,
        *,
        sample_shape: tuple[int, ...],
        num_classes: int | None,
        device: torch.device,
        restoring: bool = False,
    ) -> None:
        super().__init__(cfg, dataset, sample_shape=sample_shape, num_classes=num_classes, device=device)
        _molecules(self.name, dataset)
        alphabet, length = self.options.alphabet, self.options.token_length
        if isinstance(dataset, MoleculeDataset):
            read = (list(dataset.alphabet), int(dataset.tensors()["tokens"].shape[1]))
            if (alphabet is not None and list(alphabet) != read[0]) or (
                length is not None and length != read[1]
            ):
                raise GanforgeError(
                    "algorithm.alphabet / token_length do not match the data's",
                    "drop them (they are read from the data)",
                )
            alphabet, length = read
        if alphabet is None or length is None:
            raise GanforgeError(
                "algorithm smiles-lm has no SMILES alphabet",
                "train it on a molecule dataset (data.name=moses or smiles)",
            )
        self.alphabet, self.token_length = tuple(alphabet), int(length)
        model = {**cfg.model, "vocab_size": len(self.alphabet) + 3, "max_length": self.token_length}
        built = MODELS.build(model, self.sample_shape, num_classes)
        if len(built) != 1 or not isinstance(built[0], SmilesLanguageModel):
            raise GanforgeError(
                f"model {cfg.model['name']!r} is not a language model over SMILES",
                "use model.name=charrnn with algorithm smiles-lm",
            )
        self.G = built[0].to(device)
        self.networks = {"G": self.G}

    @classmethod
    def restored_options(cls, state: dict[str, Any]) -> dict[str, Any]:
        return {"alphabet": list(state["alphabet"]), "token_length": int(state["token_length"])}

    def optimizers(self) -> dict[str, OptimizerSpec]:
        return {"G": OptimizerSpec(self.G, dict(ADAM_LM))}

    def phases(self) -> list[Phase]:
        return [Phase("G", ("G",), loss=self.nll)]

    def nll(self, batch: dict[str, torch.Tensor], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        loss, accuracy = self.G.nll(batch["tokens"].to(self.device))
        return loss, {"nll": loss.item(), "accuracy": accuracy.item()}

    def progress_text(self, row: Any) -> str:
        return f"nll {row['nll']:.3f}  accuracy {row['accuracy']:.3f}"

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | None = None,
        network: nn.Module | None = None,
        batch_size: int = 1000,
        psi: float = 1.0,
    ) -> torch.Tensor:
        net = self.generator if network is None else network
        return net.sample(n, generator, batch_size=batch_size, temperature=self.options.temperature)

    def draw_molecules(
        self, n: int, generator: torch.Generator | None = None, network: nn.Module | None = None
    ) -> tuple[torch.Tensor, list[str | None]]:
        """``n`` token rows (BOS ... EOS PAD...) and their canonical SMILES (None: invalid)."""
        with evaluating(self.generator if network is None else network) as net:
            tokens = self.sample(n, generator, network=net)
        return tokens, _smiles_or_none(tokens_to_smiles(tokens, self.alphabet))

    def sample_arrays(self) -> dict[str, Any]:
        return {"alphabet": np.array(self.alphabet)}

    def snapshot(self, path: Path, generator: nn.Module, step: int) -> Path:
        tokens, smiles = self.draw_molecules(SNAPSHOT_MOLECULES, torch.Generator().manual_seed(0), generator)
        arrays = {"smiles": np.array([s or "" for s in smiles])}
        return self.kind.preview(Samples(tokens.float(), arrays, title=f"step {step}"), path)

    def state_dict(self) -> dict[str, Any]:
        return {"alphabet": list(self.alphabet), "token_length": self.token_length}
