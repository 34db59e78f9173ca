"""GAN losses: small pure functions of discriminator outputs, looked up by name.

Discriminator outputs are logits (probability losses) or critic scores
(hinge, Wasserstein), one per example [B]. Formulas, with D = sigmoid(logit):

  ns       D: -E log D(x) - E log(1 - D(G(z)))      G: -E log D(G(z))  (non-saturating)
  minimax  D: as ns                                 G:  E log(1 - D(G(z)))  (saturating)
  lsgan    D: 1/2 E (D(x) - 1)^2 + 1/2 E D(G(z))^2  G: 1/2 E (D(G(z)) - 1)^2 (scores)
  hinge    D: E relu(1 - D(x)) + E relu(1 + D(G(z)))  G: -E D(G(z))
  wgan-gp  D: E D(G(z)) - E D(x) + lambda E (|grad D(x_hat)| - 1)^2   G: -E D(G(z))

ns, minimax and lsgan take targets (1 for real, 0 for fake by default) so that
one-sided label smoothing and uniform label noise apply to them.

A loss with a weighted term of its own (a penalty on D) declares it in its
`GANLoss`: `penalty(d_fn, real, fake, key) -> scalar` and the config key of its
weight under `loss` (docs/extending.md).
"""

from typing import Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import optax

from gm.registry import Registry

Target = Union[float, jnp.ndarray]


class GANLoss(NamedTuple):
  """A discriminator loss, a generator loss, and how to read D's output."""
  d: Callable[..., jnp.ndarray]   # (real [B], fake [B], real_target, fake_target) -> scalar
  g: Callable[[jnp.ndarray], jnp.ndarray]  # (fake [B]) -> scalar
  uses_targets: bool              # Label smoothing / noise apply.
  probability: bool               # Outputs are logits of P(real) (else critic scores).
  gradient_penalty: bool = False  # WGAN-GP's penalty is part of the loss.
  # A term added to D's loss: (d_fn: images -> outputs [B], real, fake, key) -> scalar, times
  # config.loss[weight]; logged as train/<weight without '_weight'>.
  penalty: Optional[Callable[..., jnp.ndarray]] = None
  weight: str = ""


GAN_LOSSES = Registry("GAN loss")


def bce(logits: jnp.ndarray, targets: Target) -> jnp.ndarray:
  """Per-example binary cross-entropy of logits against (possibly soft) targets."""
  return optax.sigmoid_binary_cross_entropy(logits, jnp.broadcast_to(targets, logits.shape))


def ns_d(real, fake, real_target: Target = 1.0, fake_target: Target = 0.0):
  return bce(real, real_target).mean() + bce(fake, fake_target).mean()


def ns_g(fake):
  return bce(fake, 1.0).mean()


def minimax_g(fake):
  return -bce(fake, 0.0).mean()  # E log(1 - D(G(z))), minimised by G.


def ls_d(real, fake, real_target: Target = 1.0, fake_target: Target = 0.0):
  return 0.5 * jnp.mean((real - real_target) ** 2) + 0.5 * jnp.mean((fake - fake_target) ** 2)


def ls_g(fake):
  return 0.5 * jnp.mean((fake - 1.0) ** 2)


def hinge_d(real, fake, real_target=None, fake_target=None):
  del real_target, fake_target
  return jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake))


def wasserstein_d(real, fake, real_target=None, fake_target=None):
  del real_target, fake_target
  return jnp.mean(fake) - jnp.mean(real)


def critic_g(fake):
  return -jnp.mean(fake)


GAN_LOSSES.register("ns")(GANLoss(ns_d, ns_g, uses_targets=True, probability=True))
GAN_LOSSES.register("minimax")(GANLoss(ns_d, minimax_g, uses_targets=True, probability=True))
GAN_LOSSES.register("lsgan")(GANLoss(ls_d, ls_g, uses_targets=True, probability=False))
GAN_LOSSES.register("hinge")(GANLoss(hinge_d, critic_g, uses_targets=False, probability=False))
GAN_LOSSES.register("wgan-gp")(GANLoss(wasserstein_d, critic_g, uses_targets=False,
                                       probability=False, gradient_penalty=True))


def targets(key: jax.Array, n: int, value: float, noise: float) -> jnp.ndarray:
  """Targets [n]: `value` plus uniform noise in [-noise, noise] (none if noise == 0)."""
  t = jnp.full((n,), value, jnp.float32)
  if noise:
    t = t + jax.random.uniform(key, (n,), minval=-noise, maxval=noise)
  return t


def _input_grads(d_fn: Callable[[jnp.ndarray], jnp.ndarray], x: jnp.ndarray) -> jnp.ndarray:
  """Per-example gradients of D's output w.r.t. its input, flattened [B, H*W*C]."""
  grads = jax.grad(lambda x: d_fn(x).sum())(x)  # Examples are independent: sum is safe.
  return grads.reshape(x.shape[0], -1)


def gradient_penalty(d_fn: Callable, real: jnp.ndarray, fake: jnp.ndarray,
                     eps: jnp.ndarray) -> jnp.ndarray:
  """WGAN-GP: E (|grad D(x_hat)|_2 - 1)^2 at x_hat = eps * real + (1 - eps) * fake.

  Args:
    d_fn: images [B, ...] -> outputs [B].
    real, fake: [B, H, W, C].
    eps: [B] uniform in [0, 1].
  """
  e = eps.reshape(-1, *([1] * (real.ndim - 1)))
  g = _input_grads(d_fn, e * real + (1.0 - e) * fake)
  return jnp.mean((jnp.sqrt(jnp.sum(g ** 2, -1) + 1e-12) - 1.0) ** 2)


def r1_penalty(d_fn: Callable, real: jnp.ndarray) -> jnp.ndarray:
  """R1: E |grad D(x)|_2^2 on real images (weighted by gamma / 2 by the caller)."""
  return jnp.mean(jnp.sum(_input_grads(d_fn, real) ** 2, -1))
