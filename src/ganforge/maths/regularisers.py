"""Stabilisers for GAN training (Salimans et al. 2016, "Improved Techniques for Training GANs";
Sonderby et al. 2017; Arjovsky & Bottou 2017), written as pure functions and one small stateful
helper. Each docstring states the equation it implements.

Losses return differentiable scalar tensors; schedules (:func:`instance_noise_std`,
:func:`ema_decay_at`) return plain floats for a given training step.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ganforge.errors import GanforgeError


def _is_real(value: object) -> bool:
    """A finite real number (Python or numpy int/float; bools excluded)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: object) -> bool:
    """A non-negative integer (Python or numpy; bools excluded)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0


def _check_step(step: int) -> None:
    if not _is_count(step):
        raise GanforgeError(f"training step {step!r} is not a non-negative integer",
                            "count steps from 0")


def feature_matching_loss(real_features: Tensor, fake_features: Tensor) -> Tensor:
    """Feature matching (Salimans et al. 2016, sec. 3.1).

    L_FM = || E_{x ~ p_data} f(x) - E_{z ~ p_z} f(G(z)) ||_2^2

    where f(.) are the activations of an intermediate discriminator layer, shape (N, F) (more
    dimensions are flattened to features), and each expectation is the mean over its own batch
    (dim 0), so the two batches may differ in size. ``real_features`` are detached: the loss is
    the generator's and its gradient flows only into ``fake_features``,
    dL/df(G(z_i)) = -2 (mean_real - mean_fake) / N_fake.
    """
    if real_features.dim() < 2 or fake_features.dim() < 2:
        raise GanforgeError(f"feature matching needs batches of features (N, F); got real "
                            f"{tuple(real_features.shape)} and fake {tuple(fake_features.shape)}",
                            "pass the discriminator's intermediate activations with the batch on dim 0")
    if real_features.shape[1:] != fake_features.shape[1:]:
        raise GanforgeError(f"real features {tuple(real_features.shape)} and fake features "
                            f"{tuple(fake_features.shape)} differ in shape",
                            "take both from the same discriminator layer")
    real_mean = real_features.detach().flatten(1).mean(dim=0)
    fake_mean = fake_features.flatten(1).mean(dim=0)
    return (real_mean - fake_mean).pow(2).sum()


def historical_averaging_penalty(params: Iterable[Tensor], averages: Iterable[Tensor]) -> Tensor:
    """Historical averaging (Salimans et al. 2016, sec. 3.3), without its weight.

    P = sum_k || theta_k - mean_k ||_2^2,   mean_k = (1/t) sum_{i=1}^{t} theta_k[i]

    summed over the parameter tensors theta_k and all their elements. ``averages`` are the
    historical means (constants: they are detached), so dP/dtheta_k = 2 (theta_k - mean_k).
    With no tensors at all P = 0.
    """
    params, averages = list(params), list(averages)
    if len(params) != len(averages):
        raise GanforgeError(f"historical averaging got {len(params)} parameter tensors but "
                            f"{len(averages)} averages", "pass one average per parameter tensor")
    total: Tensor | None = None
    for k, (theta, mean) in enumerate(zip(params, averages, strict=True)):
        if theta.shape != mean.shape:
            raise GanforgeError(f"historical averaging: parameter {k} has shape {tuple(theta.shape)} "
                                f"but its average {tuple(mean.shape)}",
                                "keep the averages of the same module, in the same order")
        term = (theta - mean.detach().to(theta.device, theta.dtype)).pow(2).sum()
        total = term if total is None else total + term
    return torch.zeros(()) if total is None else total


class HistoricalAverage:
    """The running mean of a module's past parameter values, for historical averaging.

    After the t-th :meth:`update` the average of each parameter tensor is the cumulative mean

        mean[t] = (1/t) sum_{i=1}^{t} theta[i] = mean[t-1] + (theta[t] - mean[t-1]) / t

    computed in place with the update on the right (no float64 copies; the averages keep the
    parameters' device and dtype). Call :meth:`update` after each optimiser step and add
    ``weight * penalty(module)`` to that module's loss. Tracks ``module.parameters()`` in order.
    """

    def __init__(self, module: nn.Module) -> None:
        self.names = [name for name, _ in module.named_parameters()]
        self.averages = [p.detach().clone().zero_() for p in module.parameters()]
        self.count = 0

    def _params(self, module: nn.Module) -> list[Tensor]:
        params = list(module.parameters())
        shapes = [tuple(p.shape) for p in params]
        if shapes != [tuple(a.shape) for a in self.averages]:
            raise GanforgeError(f"the module's {len(params)} parameter tensors do not match the "
                                f"{len(self.averages)} this historical average tracks (count or shapes)",
                                "use the module the HistoricalAverage was created for")
        for k, (p, a) in enumerate(zip(params, self.averages, strict=True)):
            if a.device != p.device or a.dtype != p.dtype:  # the module moved (.to(device)) since
                self.averages[k] = a.to(p.device, p.dtype)
        return params

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """Fold the module's current parameter values into the running means."""
        params = self._params(module)
        self.count += 1
        for p, a in zip(params, self.averages, strict=True):
            a.lerp_(p.detach(), 1.0 / self.count)

    def penalty(self, module: nn.Module) -> Tensor:
        """:func:`historical_averaging_penalty` of the module against the running means; a zero
        scalar (on the parameters' device) before the first :meth:`update`."""
        params = self._params(module)
        if self.count == 0:
            like = params[0] if params else torch.zeros(())
            return torch.zeros((), device=like.device, dtype=like.dtype)
        return historical_averaging_penalty(params, self.averages)

    def state_dict(self) -> dict:
        """Plain tensors and an int, loadable with ``torch.load(weights_only=True)``."""
        return {"averages": {name: a.detach().clone() for name, a in zip(self.names, self.averages,
                                                                          strict=True)},
                "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`; validates everything before changing anything."""
        averages, count = state["averages"], int(state["count"])
        if sorted(averages) != sorted(self.names) or count < 0:
            raise GanforgeError("the historical-average state does not match this module's parameters",
                                "resume with the same model configuration")
        for name, a in zip(self.names, self.averages, strict=True):
            if tuple(averages[name].shape) != tuple(a.shape):
                raise GanforgeError(f"historical-average state for {name!r} has shape "
                                    f"{tuple(averages[name].shape)}, the module {tuple(a.shape)}",
                                    "resume with the same model configuration")
        self.averages = [averages[name].detach().to(a.device, a.dtype).clone()
                         for name, a in zip(self.names, self.averages, strict=True)]
        self.count = count


def label_smoothing_term(real_logits: Tensor, smoothing: float) -> Tensor:
    """One-sided label smoothing (Salimans et al. 2016, sec. 3.4) as a term for BCE-type D losses.

    Smoothing replaces D's target on real data, 1, by 1 - s (fakes keep target 0). With
    BCE(l, y) = -[y log sigmoid(l) + (1 - y) log(1 - sigmoid(l))],

        BCE(l, 1 - s) = -log sigmoid(l) + s [log sigmoid(l) - log(1 - sigmoid(l))]
                      = BCE(l, 1) + s l,

    since log sigmoid(l) - log(1 - sigmoid(l)) = log(sigmoid(l) / sigmoid(-l)) = log e^l = l.
    Averaged over the batch, the smoothed loss is the standard discriminator loss plus

        s * E_x[l_real] = s * mean(real_logits),

    the value returned (differentiable; s = 0 gives 0). ``smoothing`` is s, in [0, 1).
    """
    if not _is_real(smoothing) or not 0.0 <= smoothing < 1.0:
        raise GanforgeError(f"label smoothing {smoothing!r} is not a number in [0, 1)",
                            "use e.g. 0.1 (real targets 0.9), or 0 to switch it off")
    return float(smoothing) * real_logits.mean()


def instance_noise_std(step: int, initial_std: float, anneal_steps: int) -> float:
    """Linearly annealed standard deviation of instance noise (Sonderby et al. 2017;
    Arjovsky & Bottou 2017): Gaussian noise N(0, sigma_t^2) added to D's real and fake inputs.

    sigma_t = initial_std * max(0, 1 - t / anneal_steps)

    i.e. ``initial_std`` at step 0, falling linearly to 0 at ``anneal_steps`` and 0 afterwards.
    ``anneal_steps = 0`` switches the noise off (sigma_t = 0 for every t).
    """
    _check_step(step)
    if not _is_real(initial_std) or initial_std < 0:
        raise GanforgeError(f"instance noise std {initial_std!r} is not a finite number >= 0",
                            "use e.g. 0.1, or 0 to switch instance noise off")
    if not _is_count(anneal_steps):
        raise GanforgeError(f"instance noise anneal_steps {anneal_steps!r} is not an integer >= 0",
                            "give the number of steps over which the noise falls to 0")
    if anneal_steps == 0:
        return 0.0
    return float(initial_std) * max(0.0, 1.0 - int(step) / int(anneal_steps))


def ema_decay_at(step: int, decay: float, warmup: bool) -> float:
    """The decay of an exponential moving average of weights at update t (counted from 0).

    beta_t = min(decay, (1 + t) / (10 + t))   if warmup,   else   beta_t = decay

    the num_updates rule of TensorFlow's ExponentialMovingAverage (and of
    :class:`ganforge.train.ema.EMA`), applied as theta_ema <- beta_t theta_ema + (1 - beta_t) theta.
    ``decay`` is in [0, 1].
    """
    _check_step(step)
    if not _is_real(decay) or not 0.0 <= decay <= 1.0:
        raise GanforgeError(f"EMA decay {decay!r} is not a number in [0, 1]", "use e.g. 0.999")
    if warmup:
        return min(float(decay), (1 + int(step)) / (10 + int(step)))
    return float(decay)


def orthogonal_regularisation(weights: Iterable[Tensor], beta: float = 1e-4) -> Tensor:
    """BigGAN's off-diagonal orthogonal regularisation (Brock et al. 2019, sec. 3.1, eq. 3).

        R_beta = beta * sum_W || W W^T ⊙ (1 - I) ||_F^2 = beta * sum_W sum_{a != b} (w_a . w_b)^2

    with each weight tensor flattened to W of shape (out, in · kh · kw), rows w_a the filters,
    the orientation of the authors' code (the paper writes W^T W with filters as columns). Only
    the filters' pairwise inner products are penalised, not their norms. The gradient is

        dR/dW = 4 beta (W W^T ⊙ (1 - I)) W

    (the authors' code adds 2 beta (W W^T ⊙ (1 - I)) W to the gradient directly, which is this
    R with beta / 2). Tensors with fewer than 2 dimensions (biases, gains) must be left out by the
    caller. With no tensors R = 0.
    """
    if not _is_real(beta) or beta < 0:
        raise GanforgeError(f"orthogonal regularisation beta {beta!r} is not a finite number >= 0",
                            "use e.g. 1e-4 (BigGAN's), or 0 to switch it off")
    total: Tensor | None = None
    for k, weight in enumerate(weights):
        if weight.dim() < 2:
            raise GanforgeError(f"orthogonal regularisation: weight {k} has shape {tuple(weight.shape)}",
                                "pass matrices or conv kernels only (dim >= 2), not biases")
        w = weight.flatten(1)
        gram = w @ w.T
        term = (gram - torch.diag_embed(torch.diagonal(gram))).pow(2).sum()
        total = term if total is None else total + term
    return torch.zeros(()) if total is None else float(beta) * total
