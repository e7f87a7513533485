"""MolGAN's networks: the generator's outputs are symmetric bond distributions without self-bonds,
the relaxations, the critic's and reward network's invariance to the atom order, the gradient
penalty's double backward, option checks, and two small learning checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganforge.data.molecules import join_graph, split_graph
from ganforge.errors import GanforgeError
from ganforge.models import build
from ganforge.models.base import MODELS
from ganforge.models.molgan import RewardNetwork, build_reward_network

ATOMS, TYPES = 6, 4  # empty, C, N, O
SHAPE = (ATOMS, TYPES + 4 * ATOMS)
SMALL = {"z_dim": 8, "g_hidden": [32], "gcn_hidden": [16, 8], "aggregate": 16, "d_hidden": [16]}
TRUNK = {k: SMALL[k] for k in ("gcn_hidden", "aggregate", "d_hidden")}


def _molgan(**options):
    return MODELS.build({"name": "molgan", **SMALL, **options}, SHAPE, None)


def _graphs(atom_types: torch.Tensor, bonds: torch.Tensor) -> torch.Tensor:
    """One-hot graphs of atom types (B, N) and symmetric bond types (B, N, N)."""
    return join_graph(F.one_hot(atom_types, TYPES).float(), F.one_hot(bonds, 4).float())


def _random_graphs(b: int, g: torch.Generator) -> torch.Tensor:
    upper = torch.randint(0, 4, (b, ATOMS, ATOMS), generator=g).triu(1)
    return _graphs(torch.randint(0, TYPES, (b, ATOMS), generator=g), upper + upper.transpose(1, 2))


def _permuted(x: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    nodes, edges = split_graph(x)
    return join_graph(nodes[:, perm], edges[:, perm][:, :, perm])


def _check_distributions(x: torch.Tensor) -> None:
    nodes, edges = split_graph(x)
    assert x.shape[1:] == SHAPE and (x >= 0).all()
    assert torch.allclose(nodes.sum(-1), torch.ones(nodes.shape[:-1]), atol=1e-6)
    assert torch.allclose(edges.sum(-1), torch.ones(edges.shape[:-1]), atol=1e-6)
    assert torch.equal(edges, edges.transpose(1, 2))
    diagonal = edges.diagonal(dim1=1, dim2=2)  # (B, 4, N)
    assert (diagonal[:, 0] == 1).all() and (diagonal[:, 1:] == 0).all()


@pytest.mark.parametrize("output", ["softmax", "gumbel", "hard-gumbel"])
def test_generator_outputs_symmetric_distributions_without_self_bonds(one_thread, output):
    G, _ = _molgan(output=output, temperature=0.7)
    z = G.sample_z(5, torch.Generator().manual_seed(0), "cpu")
    nodes, edges = G.logits(z)
    assert nodes.shape == (5, ATOMS, TYPES) and edges.shape == (5, ATOMS, ATOMS, 4)
    assert torch.equal(edges, edges.transpose(1, 2))
    _check_distributions(G.train()(z))
    G.eval()
    x = G(z)
    _check_distributions(x)
    assert torch.equal(x, G(z))  # eval: plain softmax, deterministic given z
    assert torch.allclose(split_graph(x)[0], torch.softmax(nodes / 0.7, -1))
    assert G.sample(7, torch.Generator().manual_seed(1)).shape == (7, *SHAPE)


def test_gumbel_draws_from_the_global_rng_in_training(one_thread):
    G, _ = _molgan(output="gumbel")
    z = G.sample_z(4, torch.Generator().manual_seed(0), "cpu")
    torch.manual_seed(3)
    a = G(z)
    torch.manual_seed(3)
    assert torch.equal(a, G(z)) and not torch.equal(a, G(z))


def test_hard_gumbel_is_one_hot_forward_with_gradients_to_the_logits(one_thread):
    G, _ = _molgan(output="hard-gumbel")
    x = G(G.sample_z(8, torch.Generator().manual_seed(0), "cpu"))
    assert ((x == 0) | (x == 1)).all()
    _check_distributions(x)
    (x * torch.randn(x.shape)).sum().backward()
    for layer in (G.node_logits, G.edge_logits, G.mlp[0]):
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("network", ["critic", "reward"])
def test_critic_and_reward_network_ignore_the_atom_order(one_thread, network):
    net = _molgan()[1] if network == "critic" else build_reward_network(SHAPE, **TRUNK)
    net.eval()
    g = torch.Generator().manual_seed(0)
    x = _random_graphs(8, g)
    soft = torch.softmax(torch.randn(8, *SHAPE, generator=g), -1)  # non-one-hot inputs too
    for graphs in (x, soft):
        perm = torch.randperm(ATOMS, generator=g)
        assert not torch.equal(_permuted(graphs, perm), graphs)
        assert torch.allclose(net(graphs), net(_permuted(graphs, perm)), atol=1e-5)
    out = net(x)
    assert out.shape == (8,)
    if network == "reward":
        assert ((out > 0) & (out < 1)).all()


def test_gradient_penalty_double_backward_is_finite(one_thread):
    G, D = _molgan(dropout=0.1)
    g = torch.Generator().manual_seed(0)
    real, fake = _random_graphs(6, g), G(G.sample_z(6, g, "cpu"))
    alpha = torch.rand(6, 1, 1, generator=g)
    mixed = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(mixed).sum(), mixed, create_graph=True)
    penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    penalty.backward()
    grads = [
        p.grad for name, p in D.named_parameters() if name != "head.bias"
    ]  # the bias has no say in dD/dx
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert sum(gr.abs().sum() for gr in grads) > 0


def test_generic_discriminator_options_wrap_the_critic(one_thread):
    from ganforge.models.compose import DiscriminatorExtras

    extras = DiscriminatorExtras(spectral_norm=True, minibatch_std=True)
    G, D = build({"name": "molgan", **SMALL}, SHAPE, None, extras)
    assert D(G(G.sample_z(4, None, "cpu"))).shape == (4,)


@pytest.mark.parametrize(
    "shape, options, message",
    [
        ((1, 28, 28), {}, "generates molecular graphs"),
        ((6, 25), {}, "generates molecular graphs"),  # A = 1: no atom type
        (SHAPE, {"output": "argmax"}, "output"),
        (SHAPE, {"temperature": 0}, "temperature"),
        (SHAPE, {"g_hidden": "big"}, "g_hidden"),
        (SHAPE, {"gcn_hidden": [16, 0]}, "gcn_hidden"),
        (SHAPE, {"aggregate": 0}, "aggregate"),
        (SHAPE, {"dropout": 1.0}, "dropout"),
        (SHAPE, {"z_dim": True}, "z_dim"),
    ],
)
def test_molgan_refuses_bad_shapes_and_options(shape, options, message):
    with pytest.raises(GanforgeError, match=message) as err:
        MODELS.build({"name": "molgan", **options}, shape, None)
    assert "\n" not in str(err.value)


def test_molgan_and_reward_network_refuse_what_they_cannot_build():
    with pytest.raises(GanforgeError, match="molecule dataset"):
        MODELS.build({"name": "molgan"}, (2, 3), None)
    with pytest.raises(GanforgeError, match="not class-conditional"):
        MODELS.build({"name": "molgan"}, SHAPE, 10)
    with pytest.raises(GanforgeError, match="d_hidden"):
        build_reward_network(SHAPE, d_hidden=[-1])
    with pytest.raises(GanforgeError, match="generates molecular graphs"):
        build_reward_network((3,))


def _chains_and_rings(b: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Six random heavy atoms (C, N or O) in a chain (label 0) or a ring (label 1), single bonds,
    the atom order shuffled."""
    labels = torch.randint(0, 2, (b,), generator=g)
    bonds = torch.zeros(b, ATOMS, ATOMS, dtype=torch.long)
    i = torch.arange(ATOMS - 1)
    bonds[:, i, i + 1] = 1
    bonds[:, 0, ATOMS - 1] = labels
    bonds = bonds + bonds.transpose(1, 2)
    perm = torch.stack([torch.randperm(ATOMS, generator=g) for _ in range(b)])
    bonds = bonds.gather(1, perm[:, :, None].expand(-1, -1, ATOMS)).gather(
        2, perm[:, None, :].expand(-1, ATOMS, -1)
    )
    return _graphs(torch.randint(1, TYPES, (b, ATOMS), generator=g), bonds), labels


def test_critic_learns_to_tell_chains_from_rings(one_thread):
    _, D = _molgan()
    opt = torch.optim.Adam(D.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        x, y = _chains_and_rings(32, g)
        loss = F.binary_cross_entropy_with_logits(D(x), y.float())
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = _chains_and_rings(256, g)
    assert ((D(x) > 0).long() == y).float().mean() > 0.95


def test_reward_network_regresses_the_share_of_double_bonds(one_thread):
    R: RewardNetwork = build_reward_network(SHAPE, **TRUNK)
    opt = torch.optim.Adam(R.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)

    def batch(b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Chains of six carbons, each bond single or double; the target: the double bonds' share."""
        kinds = torch.randint(1, 3, (b, ATOMS - 1), generator=g)
        bonds = torch.zeros(b, ATOMS, ATOMS, dtype=torch.long)
        i = torch.arange(ATOMS - 1)
        bonds[:, i, i + 1] = kinds
        x = _graphs(torch.ones(b, ATOMS, dtype=torch.long), bonds + bonds.transpose(1, 2))
        return x, (kinds == 2).float().mean(1)

    for _ in range(250):
        x, y = batch(32)
        loss = F.mse_loss(R(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = batch(256)
    assert F.mse_loss(R(x), y) < 0.005  # the targets' variance is 0.05
    assert isinstance(R, RewardNetwork)
