"""MolGAN (De Cao and Kipf 2018, "MolGAN: An implicit generative model for small molecular graphs").

Molecules are graph tensors x (N, A + 4N) in the layout of :mod:`ganforge.data.molecules`:
``split_graph`` gives node types (N, A) (type 0 an empty slot) and bonds (N, N, 4) (bond type 0
"none", then single, double, triple).

* :class:`MolGANGenerator`: z ~ N(0, I) -> MLP (tanh) -> node logits (N, A) and edge logits
  (N, N, 4), the edge logits symmetrised (e + e^T) / 2; the output is a probability per atom and
  per atom pair: softmax(logits / T), or in training Gumbel-softmax samples (``gumbel``) or
  straight-through one-hot Gumbel samples (``hard-gumbel``). Self-bonds are always "none".
* :class:`RelationalCritic`: relational graph convolutions (one weight matrix per bond type, as
  Schlichtkrull et al.'s R-GCN in the paper's form)

      h' = tanh( f_s([h, x0]) + sum_b A_b f_b([h, x0]) ),   b in {single, double, triple}

  where x0 are the input node types and A_b = edges[..., b]; then the gated sum over the atoms

      h_G = tanh( sum_v sigmoid(i([h_v, x0_v])) * tanh(j([h_v, x0_v])) )

  then an MLP (tanh) to the features, and a linear head. Sums over atoms make it invariant to
  the order of the atoms.
* :class:`RewardNetwork`: the same trunk with its own weights and a sigmoid output: the paper's
  reward network, which regresses a property in [0, 1] of the decoded molecule.

The paper's minibatch-discrimination branch of D is not built in: the generic
``algorithm.stabilisers.minibatch_discrimination`` option adds one to any critic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.data.molecules import BOND_TYPES, join_graph, split_graph
from ganforge.errors import GanforgeError
from ganforge.models._checks import positive_int, positive_ints, probability
from ganforge.models.base import Discriminator, Generator, register_model

#: the generator's output modes (the relaxations of the paper's categorical samples)
OUTPUTS = ("softmax", "gumbel", "hard-gumbel")
BONDS = len(BOND_TYPES)


def graph_dims(sample_shape: tuple[int, ...], model: str = "molgan") -> tuple[int, int]:
    """(N atoms, A node types) of a graph shape (N, A + 4N) with A >= 2; else a one-line error."""
    shape = tuple(sample_shape)
    if len(shape) != 2 or shape[0] < 1 or shape[1] - BONDS * shape[0] < 2:
        raise GanforgeError(
            f"model {model!r} generates molecular graphs (atoms, node types + 4 x atoms), got shape {shape}",
            "use a molecule dataset (data.name=moses or smiles)",
        )
    return shape[0], shape[1] - BONDS * shape[0]


def _positive_number(value: object, key: str, model: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise GanforgeError(
            f"model {model!r}: {key}={value!r} is not a number > 0",
            f"set model.{key} to a positive number, e.g. 1.0",
        )
    return float(value)


def _dense_stack(in_dim: int, widths: Sequence[int], dropout: float) -> tuple[nn.Sequential, int]:
    """``[Linear -> tanh -> (Dropout)]`` per width; returns (stack, output dim)."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(in_dim, width), nn.Tanh()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_dim = width
    return nn.Sequential(*layers), in_dim


# --------------------------------------------------------------------------- generator
def gumbel_like(logits: torch.Tensor) -> torch.Tensor:
    """Standard Gumbel noise -log(E), E ~ Exp(1), of ``logits``' shape, from torch's global RNG."""
    return -torch.empty_like(logits).exponential_().log()


def symmetric_gumbel_like(edge_logits: torch.Tensor) -> torch.Tensor:
    """Gumbel noise (B, N, N, K) with g[:, i, j] = g[:, j, i]: one draw per atom pair, so a
    sampled bond is the same read from either end (the diagonal is zero)."""
    upper = gumbel_like(edge_logits).movedim(-1, 1).triu(1)  # (B, K, N, N), i < j
    return (upper + upper.transpose(-1, -2)).movedim(1, -1)


def relax(logits: torch.Tensor, noise: torch.Tensor | None, temperature: float, hard: bool) -> torch.Tensor:
    """softmax((logits + noise) / T) over the last axis; ``hard``: its one-hot argmax forward with
    the softmax's gradient backward (the straight-through estimator)."""
    soft = torch.softmax((logits if noise is None else logits + noise) / temperature, dim=-1)
    if not hard:
        return soft
    index = soft.argmax(dim=-1, keepdim=True)
    return torch.zeros_like(soft).scatter_(-1, index, 1.0) + (soft - soft.detach())  # exactly one-hot


class MolGANGenerator(Generator):
    """z (B, z_dim) -> graphs (B, N, A + 4N): node-type and bond-type distributions per atom and
    atom pair (see the module docstring). ``output`` picks the training-time relaxation; in eval
    mode the output is always softmax(logits / ``temperature``), deterministic given z."""

    def __init__(
        self,
        out_shape: tuple[int, int],
        z_dim: int = 32,
        hidden: Sequence[int] = (128, 256, 512),
        dropout: float = 0.0,
        output: str = "softmax",
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        self.atoms, self.node_types = graph_dims(out_shape)
        self.out_shape, self.z_dim = tuple(out_shape), z_dim
        self.output, self.temperature = output, temperature
        self.mlp, width = _dense_stack(z_dim, hidden, dropout)
        self.node_logits = nn.Linear(width, self.atoms * self.node_types)
        self.edge_logits = nn.Linear(width, self.atoms * self.atoms * BONDS)

    def logits(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(node logits (B, N, A), symmetric edge logits (B, N, N, 4)); the diagonal of the edge
        logits is left as computed (:meth:`forward` overrides it with "none")."""
        h, n = self.mlp(z), self.atoms
        nodes = self.node_logits(h).view(-1, n, self.node_types)
        edges = self.edge_logits(h).view(-1, n, n, BONDS)
        return nodes, (edges + edges.transpose(1, 2)) / 2

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        nodes, edges = self.logits(z)
        mode = self.output if self.training else "softmax"
        gumbel, hard = mode != "softmax", mode == "hard-gumbel"
        p_nodes = relax(nodes, gumbel_like(nodes) if gumbel else None, self.temperature, hard)
        p_edges = relax(edges, symmetric_gumbel_like(edges) if gumbel else None, self.temperature, hard)
        diagonal = torch.eye(self.atoms, dtype=torch.bool, device=z.device).unsqueeze(-1)
        none = F.one_hot(torch.zeros((), dtype=torch.long, device=z.device), BONDS).to(p_edges.dtype)
        return join_graph(p_nodes, torch.where(diagonal, none, p_edges))


# --------------------------------------------------------------------------- critic and reward
class RelationalGraphConvolution(nn.Module):
    """h' = dropout(tanh( f_s(a) + sum_b A_b f_b(a) )) for annotations a (B, N, F) and adjacency
    (B, N, N, R): one linear map per relation b (bond type) and one for the atom itself."""

    def __init__(
        self, in_features: int, out_features: int, relations: int = BONDS - 1, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.relations, self.out_features = relations, out_features
        self.self_loop = nn.Linear(in_features, out_features)
        self.messages = nn.Linear(in_features, relations * out_features)
        self.dropout = nn.Dropout(dropout)

    def forward(self, annotations: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        b, n, _ = annotations.shape
        messages = self.messages(annotations).view(b, n * self.relations, self.out_features)
        # sum_j sum_r A[i, j, r] f_r(a_j): one batched matmul over the (j, r) pairs
        incoming = torch.bmm(adjacency.reshape(b, n, n * self.relations), messages)
        return self.dropout(torch.tanh(self.self_loop(annotations) + incoming))


class GraphAggregation(nn.Module):
    """h_G = dropout(tanh( sum_v sigmoid(i(a_v)) * tanh(j(a_v)) )) over the atoms v of
    annotations a (B, N, F) -> (B, out_features): a soft-attention sum, order-invariant."""

    def __init__(self, in_features: int, out_features: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.gate = nn.Linear(in_features, out_features)
        self.value = nn.Linear(in_features, out_features)
        self.dropout = nn.Dropout(dropout)

    def forward(self, annotations: torch.Tensor) -> torch.Tensor:
        summed = (torch.sigmoid(self.gate(annotations)) * torch.tanh(self.value(annotations))).sum(dim=1)
        return self.dropout(torch.tanh(summed))


class GraphTrunk(nn.Module):
    """Graphs (B, N, A + 4N) -> features (B, feature_dim): relational graph convolutions, each
    reading [h, x0] (the first reads x0, the node types, alone), the gated aggregation of
    [h, x0], then ``[Linear -> tanh -> (Dropout)]`` per ``d_hidden`` width."""

    def __init__(
        self,
        in_shape: tuple[int, int],
        gcn_hidden: Sequence[int] = (128, 64),
        aggregate: int = 128,
        d_hidden: Sequence[int] = (128, 64),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _, node_types = graph_dims(in_shape)
        width, layers = 0, []
        for units in gcn_hidden:
            layers.append(RelationalGraphConvolution(width + node_types, units, BONDS - 1, dropout))
            width = units
        self.convolutions = nn.ModuleList(layers)
        self.aggregation = GraphAggregation(width + node_types, aggregate, dropout)
        self.mlp, self.feature_dim = _dense_stack(aggregate, d_hidden, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes, edges = split_graph(x)
        adjacency = edges[..., 1:]  # single, double, triple ("none" is no message)
        h = nodes.new_zeros(*nodes.shape[:-1], 0)
        for convolution in self.convolutions:
            h = convolution(torch.cat([h, nodes], dim=-1), adjacency)
        return self.mlp(self.aggregation(torch.cat([h, nodes], dim=-1)))


class RelationalCritic(Discriminator):
    """MolGAN's D: :class:`GraphTrunk` features and a linear head to one logit per graph."""

    def __init__(
        self,
        in_shape: tuple[int, int],
        gcn_hidden: Sequence[int] = (128, 64),
        aggregate: int = 128,
        d_hidden: Sequence[int] = (128, 64),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.trunk = GraphTrunk(in_shape, gcn_hidden, aggregate, d_hidden, dropout)
        self.feature_dim = self.trunk.feature_dim
        self.head = nn.Linear(self.feature_dim, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)


class RewardNetwork(RelationalCritic):
    """MolGAN's reward network: the critic's architecture (its own weights) read through a
    sigmoid: graphs (B, N, A + 4N) -> predicted property (B,) in (0, 1)."""

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return torch.sigmoid(self.head(self.features(x))).squeeze(1)


# --------------------------------------------------------------------------- builders
def _trunk_options(
    gcn_hidden: object, aggregate: object, d_hidden: object, dropout: object
) -> tuple[tuple[int, ...], int, tuple[int, ...], float]:
    return (
        positive_ints(gcn_hidden, "gcn_hidden", "molgan"),
        positive_int(aggregate, "aggregate", "molgan"),
        positive_ints(d_hidden, "d_hidden", "molgan"),
        probability(dropout, "dropout", "molgan"),
    )


@register_model("molgan")
def build_molgan(
    sample_shape: tuple[int, ...],
    num_classes: int | None = None,
    *,
    z_dim: int = 32,
    g_hidden: Sequence[int] = (128, 256, 512),
    gcn_hidden: Sequence[int] = (128, 64),
    aggregate: int = 128,
    d_hidden: Sequence[int] = (128, 64),
    dropout: float = 0.0,
    output: str = "softmax",
    temperature: float = 1.0,
) -> tuple[MolGANGenerator, RelationalCritic]:
    """MolGAN's generator and relational critic for graphs ``sample_shape`` (N, A + 4N)."""
    graph_dims(sample_shape)
    if num_classes is not None:
        raise GanforgeError("model 'molgan' is not class-conditional", "drop model.conditional")
    if output not in OUTPUTS:
        raise GanforgeError(
            f"model 'molgan': unknown output {output!r}", f"set model.output to one of: {', '.join(OUTPUTS)}"
        )
    z_dim = positive_int(z_dim, "z_dim", "molgan")
    g_hidden = positive_ints(g_hidden, "g_hidden", "molgan")
    temperature = _positive_number(temperature, "temperature", "molgan")
    gcn_hidden, aggregate, d_hidden, dropout = _trunk_options(gcn_hidden, aggregate, d_hidden, dropout)
    shape = tuple(sample_shape)
    G = MolGANGenerator(shape, z_dim, g_hidden, dropout, output, temperature)
    return G, RelationalCritic(shape, gcn_hidden, aggregate, d_hidden, dropout)


def build_reward_network(
    sample_shape: tuple[int, ...],
    *,
    gcn_hidden: Sequence[int] = (128, 64),
    aggregate: int = 128,
    d_hidden: Sequence[int] = (128, 64),
    dropout: float = 0.0,
) -> RewardNetwork:
    """MolGAN's reward network for graphs ``sample_shape`` (N, A + 4N), with the critic's options."""
    graph_dims(sample_shape)
    return RewardNetwork(tuple(sample_shape), *_trunk_options(gcn_hidden, aggregate, d_hidden, dropout))
