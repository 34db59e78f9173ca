"""Reconstruction losses and (importance-weighted) evidence lower bounds.

All log-densities are summed over the event axes and returned per example, so
callers choose how to reduce over the batch.
"""

import math

import jax
import jax.numpy as jnp
import optax

from gm.registry import Registry
from gm.errors import ConfigError

LOG2PI = math.log(2.0 * math.pi)

RECON_LOSSES = Registry("reconstruction loss")


def _sum_event(x: jnp.ndarray) -> jnp.ndarray:
  """Sums all axes but the first (batch) one: [B, ...] -> [B]."""
  return x.reshape(x.shape[0], -1).sum(axis=-1)


@RECON_LOSSES.register("mse")
def mse(*, logits: jnp.ndarray, targets: jnp.ndarray) -> jnp.ndarray:
  """Mean squared error between sigmoid(logits) and targets in [0, 1] -> [B]."""
  diff = jax.nn.sigmoid(logits) - targets
  return jnp.mean(diff.reshape(diff.shape[0], -1) ** 2, axis=-1)


@RECON_LOSSES.register("bce")
def bce(*, logits: jnp.ndarray, targets: jnp.ndarray) -> jnp.ndarray:
  """Binary cross-entropy of sigmoid(logits) against targets, mean per pixel -> [B]."""
  ce = optax.sigmoid_binary_cross_entropy(logits, targets)
  return jnp.mean(ce.reshape(ce.shape[0], -1), axis=-1)


def bernoulli_log_likelihood(logits: jnp.ndarray, x: jnp.ndarray) -> jnp.ndarray:
  """log p(x | z) of Bernoulli pixels with the given logits: [B, ...] -> [B]."""
  return -_sum_event(optax.sigmoid_binary_cross_entropy(logits, x))


def log_normal_pdf(x: jnp.ndarray, mean: jnp.ndarray,
                   logvar: jnp.ndarray) -> jnp.ndarray:
  """log N(x; mean, diag(exp(logvar))) summed over the last axis: [..., D] -> [...]."""
  return jnp.sum(-0.5 * ((x - mean) ** 2 * jnp.exp(-logvar) + logvar + LOG2PI),
                 axis=-1)


def kl_normal(mean: jnp.ndarray, logvar: jnp.ndarray) -> jnp.ndarray:
  """KL(N(mean, diag(exp(logvar))) || N(0, I)) in closed form: [B, D] -> [B]."""
  return 0.5 * jnp.sum(jnp.exp(logvar) + mean ** 2 - 1.0 - logvar, axis=-1)


def elbo(*, x: jnp.ndarray, logits: jnp.ndarray, z: jnp.ndarray,
         mean: jnp.ndarray, logvar: jnp.ndarray, kl: str = "analytic",
         beta: float = 1.0):
  """Per-example evidence lower bound and its terms.

  Args:
    x: data in [0, 1], [B, H, W, C].
    logits: decoder Bernoulli logits for x given z, [B, H, W, C].
    z: the sample drawn from q(z|x), [B, D].
    mean, logvar: parameters of q(z|x), [B, D].
    kl: "mc" for the single-sample estimate log p(z) - log q(z|x) (as in the
      TensorFlow CVAE tutorial) or "analytic" for the closed-form KL.
    beta: weight of the KL term (1 gives the ELBO; other values a beta-VAE
      objective).

  Returns:
    (objective, log_px_z, kl_term), each [B]; objective = log_px_z - beta*kl_term.
  """
  log_px_z = bernoulli_log_likelihood(logits, x)
  if kl == "mc":
    kl_term = log_normal_pdf(z, mean, logvar) - log_normal_pdf(
        z, jnp.zeros_like(z), jnp.zeros_like(z))
  elif kl == "analytic":
    kl_term = kl_normal(mean, logvar)
  else:
    raise ConfigError(f"unknown ELBO kl estimator {kl!r}; valid names: analytic, mc")
  return log_px_z - beta * kl_term, log_px_z, kl_term


def iwae_bound(log_weights: jnp.ndarray) -> jnp.ndarray:
  """Importance-weighted bound log (1/k) sum_i w_i from log w_i: [k, B] -> [B]."""
  k = log_weights.shape[0]
  return jax.scipy.special.logsumexp(log_weights, axis=0) - jnp.log(k)
