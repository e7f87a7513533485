"""The variational autoencoder's equations (Kingma & Welling, 2014; Burda et al., 2016), as pure
functions on torch tensors. Each docstring states the equation it implements.

Conventions: latent codes and Gaussian parameters have their features on the last dimension,
(..., D); data likelihoods take a batch x (N, ...) and sum over every non-batch dimension, and
broadcast over leading sample dimensions of the decoder's parameters, e.g. (k, N, ...) for k
importance samples per datum, to return (k, N). Log-densities include all normalising constants,
so the bounds below are bounds on log p(x) itself.

The evidence lower bound of one datum, with q = q(z|x) = N(mu, diag exp(logvar))::

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || N(0, I))  <=  log p(x)
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.errors import GanforgeError

LOG_2PI = math.log(2.0 * math.pi)


def _is_count(value: object) -> bool:
    """A non-negative integer (Python or numpy; bools excluded)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0


def _same_shape(a: Tensor, b: Tensor, names: str) -> None:
    if a.shape != b.shape:
        raise GanforgeError(f"{names} differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}",
                            "give the Gaussian's mean and log-variance with the same shape")


def _sum_non_batch(terms: Tensor, param: Tensor, x: Tensor) -> Tensor:
    """Sum ``terms`` over the non-batch dimensions of x (N, ...), after checking that the decoder
    parameter ``param`` is (N, ...) or (k, N, ...) for this x (not merely broadcastable to it)."""
    if param.dim() < x.dim() or param.shape[param.dim() - x.dim():] != x.shape:
        raise GanforgeError(f"decoder parameters of shape {tuple(param.shape)} do not match data of "
                            f"shape {tuple(x.shape)}",
                            "give parameters shaped (N, ...) or (k, N, ...) for data (N, ...)")
    dims = tuple(range(terms.dim() - x.dim() + 1, terms.dim()))
    return terms.sum(dim=dims) if dims else terms


def reparameterise(mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None,
                   samples: int | None = None) -> Tensor:
    """The reparameterisation trick (Kingma & Welling 2014, sec. 2.4): a differentiable sample
    of z ~ N(mu, diag exp(logvar))::

        z = mu + exp(logvar / 2) * eps,   eps ~ N(0, I)

    eps is drawn on CPU from ``generator`` (or the global RNG), in float32 (float64 for float64
    inputs), then moved to ``mu``'s device and dtype, so a seed gives the same z on every device.
    ``mu`` and ``logvar`` are (N, D); with ``samples=k`` the result is (k, N, D), k independent
    draws per row, otherwise (N, D).
    """
    _same_shape(mu, logvar, "mu and logvar")
    if samples is not None and (not _is_count(samples) or samples < 1):
        raise GanforgeError(f"samples={samples!r} is not a positive integer",
                            "draw e.g. samples=1, or leave it None for one draw without a sample axis")
    shape = tuple(mu.shape) if samples is None else (int(samples), *mu.shape)
    draw_dtype = torch.float64 if mu.dtype == torch.float64 else torch.float32
    eps = torch.randn(shape, generator=generator, dtype=draw_dtype).to(device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def kl_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """The analytic KL divergence of a diagonal Gaussian from the standard normal prior
    (Kingma & Welling 2014, appendix B), summed over the last dimension D::

        KL(N(mu, diag exp(logvar)) || N(0, I)) = 1/2 sum_d (mu_d^2 + exp(logvar_d) - 1 - logvar_d)

    ``mu`` and ``logvar`` are (..., D); returns (...), e.g. (N,).
    """
    _same_shape(mu, logvar, "mu and logvar")
    return 0.5 * (mu.pow(2) + torch.exp(logvar) - 1.0 - logvar).sum(-1)


def log_normal_standard(z: Tensor) -> Tensor:
    """log N(z; 0, I) of codes z (..., D), summed over the last dimension::

        log N(z; 0, I) = -1/2 sum_d z_d^2 - D/2 log(2 pi)
    """
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


def log_normal_diag(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, diag exp(logvar)) of codes z (..., D), summed over the last dimension::

        log N(z; mu, diag sigma^2) = -1/2 sum_d [(z_d - mu_d)^2 / sigma_d^2 + logvar_d] - D/2 log(2 pi)

    ``mu`` and ``logvar`` broadcast against ``z``: z (k, N, D) with mu, logvar (N, D) gives (k, N).
    """
    _same_shape(mu, logvar, "mu and logvar")
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)


def bernoulli_log_likelihood(logits: Tensor, x: Tensor) -> Tensor:
    """log p(x|z) for independent Bernoulli pixels with p = sigmoid(l), summed over the non-batch
    dimensions of x (N, ...)::

        log p(x|z) = sum_j x_j log sigmoid(l_j) + (1 - x_j) log(1 - sigmoid(l_j))
                   = sum_j x_j l_j - softplus(l_j)

    i.e. minus the binary cross-entropy with logits, in the form that is stable for any logit.
    ``x`` holds values in {0, 1} (values in [0, 1] give the cross-entropy, as is common practice);
    ``logits`` are (N, ...) or (k, N, ...), giving (N,) or (k, N).
    """
    if x.numel() and bool(((x < 0) | (x > 1)).any()):
        raise GanforgeError("the Bernoulli likelihood needs data x in [0, 1], but x has values outside it",
                            "map images in [-1, 1] to x = (x + 1) / 2, binarised")
    return _sum_non_batch(x * logits - F.softplus(logits), logits, x)


def gaussian_log_likelihood(x: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    """log p(x|z) for independent Gaussian pixels N(mean, exp(logvar)), summed over the non-batch
    dimensions of x (N, ...)::

        log p(x|z) = -1/2 sum_j [(x_j - mean_j)^2 / exp(logvar_j) + logvar_j + log(2 pi)]

    ``mean`` is (N, ...) or (k, N, ...), giving (N,) or (k, N); ``logvar`` broadcasts against it,
    e.g. one learned log-variance per pixel, of shape x.shape[1:].
    """
    terms = -0.5 * ((x - mean).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI)
    return _sum_non_batch(terms, mean, x)


def iwae_bound(log_weights: Tensor) -> Tensor:
    """The importance-weighted bound of Burda et al. (2016, eq. 8) from k samples z_i ~ q(z|x)::

        L_k(x) = log (1/k) sum_i w_i = logsumexp_i(log w_i) - log k,
        log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x)

    ``log_weights`` is (k, N); returns (N,). L_1 is the single-sample ELBO estimate, and
    E[L_k] increases with k towards log p(x).
    """
    if log_weights.dim() < 1 or log_weights.shape[0] < 1:
        raise GanforgeError(f"log_weights of shape {tuple(log_weights.shape)} has no sample axis",
                            "give the log weights as (k, N) with k >= 1")
    return torch.logsumexp(log_weights, dim=0) - math.log(log_weights.shape[0])


def kl_warmup_weight(step: int, warmup_steps: int) -> float:
    """The weight beta_t of the KL term in ELBO_beta = E_q[log p(x|z)] - beta_t KL, rising
    linearly from 0 ("KL warm-up", Sonderby et al. 2016; Bowman et al. 2016)::

        beta_t = min(1, t / warmup_steps),   beta_t = 1 when warmup_steps = 0

    ``step`` t counts from 0.
    """
    if not _is_count(step):
        raise GanforgeError(f"training step {step!r} is not a non-negative integer", "count steps from 0")
    if not _is_count(warmup_steps):
        raise GanforgeError(f"KL warm-up steps {warmup_steps!r} is not an integer >= 0",
                            "give the number of steps over which the KL weight rises to 1, or 0")
    if warmup_steps == 0:
        return 1.0
    return min(1.0, int(step) / int(warmup_steps))
