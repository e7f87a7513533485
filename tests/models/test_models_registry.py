"""The models package: registration, re-exports and config validation through ``build``."""

from __future__ import annotations

import pytest
import torch

import ganforge.models as models
from ganforge.errors import GanforgeError
from ganforge.models import base, compose


def test_reexports_and_registered_families() -> None:
    assert models.build is compose.build and models.MODELS is base.MODELS
    assert models.Generator is base.Generator and models.Discriminator is base.Discriminator
    assert models.register_model is base.register_model
    assert {"dcgan", "mlp"} <= set(models.MODELS.names())


@pytest.mark.parametrize(
    ("name", "shape"), [("mlp", (2,)), ("mlp", (3, 8, 8)), ("dcgan", (3, 8, 8))]
)
def test_every_family_meets_the_contract(name: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    G, D = models.build(name, shape)
    assert isinstance(G, models.Generator) and isinstance(D, models.Discriminator)
    assert G.out_shape == shape and D.in_shape == shape
    z = G.sample_z(5, generator=torch.Generator().manual_seed(1))
    assert z.shape == (5, G.z_dim)
    x = G(z)
    assert x.shape == (5, *shape) and x.dtype == torch.float32
    assert D(x).shape == (5,)


def test_keyword_overrides_merge_into_the_section() -> None:
    G, _ = models.build({"name": "dcgan", "z_dim": 8}, (1, 8, 8), width=4)
    assert G.z_dim == 8 and G.net.up2[0].out_channels == 4


def test_unknown_family_lists_the_choices() -> None:
    with pytest.raises(GanforgeError, match="dcgan, .*mlp"):
        models.build("no-such-gan", (1, 8, 8))


@pytest.mark.parametrize("name", ["mlp", "dcgan"])
def test_unknown_key_lists_accepted_keys(name: str) -> None:
    with pytest.raises(GanforgeError) as err:
        models.build({"name": name, "zdim": 8}, (1, 8, 8))
    message = str(err.value)
    assert "'zdim'" in message and "z_dim" in message
    assert "sample_shape" not in message and "num_classes" not in message
