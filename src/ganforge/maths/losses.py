"""The GAN objective and its losses, written from discriminator *logits*.

The discriminator outputs a logit ``l`` and ``D(x) = sigmoid(l)``. Every log-probability is taken
with ``logsigmoid`` rather than ``log(sigmoid(.))``, using

    log D(x)       = log sigmoid(l)  = logsigmoid(l)
    log(1 - D(x))  = log sigmoid(-l) = logsigmoid(-l)

so the losses stay finite, with finite gradients, for saturated logits such as +-100.
Expectations are means over the batch. All functions return differentiable scalar tensors.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.errors import GanforgeError


def value_function(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """The minimax value V(D, G) (Goodfellow et al., 2014, eq. 1).

    V(D, G) = E_{x ~ p_data}[log D(x)] + E_{z ~ p_z}[log(1 - D(G(z)))]

    ``real_logits`` are D's logits on data samples x, ``fake_logits`` on generated samples G(z);
    each expectation is the mean over its own batch. D maximises V, G minimises it. With
    D = 1/2 everywhere (all logits 0), V = -log 4.
    """
    return F.logsigmoid(real_logits).mean() + F.logsigmoid(-fake_logits).mean()


def binary_cross_entropy(logits: Tensor, target: Tensor | float) -> Tensor:
    """Mean binary cross-entropy between targets y and predictions y_hat = sigmoid(logits).

    H(y, y_hat) = -[y log y_hat + (1 - y) log(1 - y_hat)],  averaged over all elements

    ``target`` is a tensor broadcastable to ``logits.shape``, or a float applied to every element.
    Equal to ``torch.nn.functional.binary_cross_entropy_with_logits(logits, target)``.
    """
    y = torch.as_tensor(target, dtype=logits.dtype, device=logits.device)
    y = torch.broadcast_to(y, logits.shape)
    return -(y * F.logsigmoid(logits) + (1 - y) * F.logsigmoid(-logits)).mean()


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """The discriminator's loss: minus the value function.

    L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))] = -V(D, G) = H(1, D(x)) + H(0, D(G(z)))

    i.e. binary cross-entropy with label 1 on real samples plus label 0 on generated samples.
    Minimising L_D is maximising V.
    """
    return binary_cross_entropy(real_logits, 1.0) + binary_cross_entropy(fake_logits, 0.0)


def generator_loss_saturating(fake_logits: Tensor) -> Tensor:
    """The original minimax generator loss: G minimises the value function's second term.

    L_G = E_z[log(1 - D(G(z)))]

    Its gradient vanishes when D confidently rejects fakes (D(G(z)) -> 0): per sample,
    dL_G/dl = -sigmoid(l) -> 0, which is why it "saturates" early in training.
    """
    return F.logsigmoid(-fake_logits).mean()


def generator_loss_non_saturating(fake_logits: Tensor) -> Tensor:
    """The non-saturating generator loss (the "-log D trick").

    L_G = -E_z[log D(G(z))] = H(1, D(G(z)))

    Same fixed point as the minimax loss but strong gradients where D rejects fakes: per sample,
    dL_G/dl = -(1 - sigmoid(l)) -> -1 as D(G(z)) -> 0.
    """
    return -F.logsigmoid(fake_logits).mean()


GENERATOR_LOSSES: dict[str, Callable[[Tensor], Tensor]] = {
    "saturating": generator_loss_saturating,
    "minimax": generator_loss_saturating,
    "non-saturating": generator_loss_non_saturating,
}


def generator_loss(name: str, fake_logits: Tensor) -> Tensor:
    """The generator loss named ``name`` (a key of :data:`GENERATOR_LOSSES`) on ``fake_logits``."""
    try:
        loss = GENERATOR_LOSSES[name]
    except KeyError:
        raise GanforgeError(
            f"unknown generator loss {name!r}",
            f"choose one of: {', '.join(sorted(GENERATOR_LOSSES))}",
        ) from None
    return loss(fake_logits)


# --------------------------------------------------------------------------- the loss family
#
# The losses below read the discriminator's output ``l`` as a real-valued score ("logit" / critic
# value) and apply no sigmoid: LSGAN, hinge and Wasserstein losses are defined on raw outputs.


def lsgan_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Least-squares GAN discriminator loss (Mao et al., 2017, eq. 2) with a = 0, b = 1, c = 1.

    L_D = 1/2 E_x[(D(x) - b)^2] + 1/2 E_z[(D(G(z)) - a)^2]
        = 1/2 E_x[(l_real - 1)^2] + 1/2 E_z[l_fake^2]

    on the raw outputs l (no sigmoid): a = 0 is the label of fakes, b = 1 of real data.
    """
    return 0.5 * (real_logits - 1).pow(2).mean() + 0.5 * fake_logits.pow(2).mean()


def lsgan_generator_loss(fake_logits: Tensor) -> Tensor:
    """Least-squares GAN generator loss (Mao et al., 2017, eq. 2) with c = 1.

    L_G = 1/2 E_z[(D(G(z)) - c)^2] = 1/2 E_z[(l_fake - 1)^2]

    G wants D to output c = 1 (the real label b) on its samples; dL_G/dl = (l - 1) / N per sample.
    """
    return 0.5 * (fake_logits - 1).pow(2).mean()


def hinge_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Hinge discriminator loss (Lim & Ye, 2017; Miyato et al., 2018).

    L_D = E_x[max(0, 1 - l_real)] + E_z[max(0, 1 + l_fake)]

    Zero (and gradient-free) once real outputs exceed 1 and fake outputs are below -1.
    """
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def hinge_generator_loss(fake_logits: Tensor) -> Tensor:
    """Hinge generator loss: L_G = -E_z[l_fake] (the same as the Wasserstein generator loss)."""
    return -fake_logits.mean()


def wasserstein_critic_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Wasserstein GAN critic loss (Arjovsky et al., 2017): minus the Kantorovich-Rubinstein dual.

    L_C = E_z[f(G(z))] - E_x[f(x)]

    For a 1-Lipschitz critic f, -min L_C = max_f E_x[f(x)] - E_z[f(G(z))] = W1(p_data, p_g).
    The Lipschitz constraint is not part of this loss: clip weights or add a gradient penalty.
    """
    return fake_logits.mean() - real_logits.mean()


def wasserstein_generator_loss(fake_logits: Tensor) -> Tensor:
    """Wasserstein GAN generator loss: L_G = -E_z[f(G(z))] (the only term of the dual G affects)."""
    return -fake_logits.mean()
