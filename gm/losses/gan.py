"""GAN losses and weighted terms: small pure functions of D's outputs, looked up by name.

A loss is a `GANLoss` of two functions of one record, `DOut`: D's outputs on the step's
real and fake batches (logits for probability losses, critic scores otherwise, one per
example [B]), the targets where they apply and, for the losses that ask, D's features.
Formulas, with D = sigmoid(logit), C = the raw output, and E_r / E_f the means over the
real / fake batch:

  ns       D: -E log D(x) - E log(1 - D(G(z)))      G: -E log D(G(z))  (non-saturating)
  minimax  D: as ns                                 G:  E log(1 - D(G(z)))  (saturating)
  lsgan    D: 1/2 E (D(x) - 1)^2 + 1/2 E D(G(z))^2  G: 1/2 E (D(G(z)) - 1)^2 (scores)
  hinge    D: E relu(1 - D(x)) + E relu(1 + D(G(z)))  G: -E D(G(z))
  wgan-gp  D: E D(G(z)) - E D(x) (+ the term gp)    G: -E D(G(z))
  ragan    D: -E_r log s(C(x) - E_f C) - E_f log(1 - s(C(G(z)) - E_r C))
           G: -E_f log s(C(G(z)) - E_r C) - E_r log(1 - s(C(x) - E_f C))   (s: sigmoid)
  ralsgan  D: E_r (C(x) - E_f C - 1)^2 + E_f (C(G(z)) - E_r C + 1)^2
           G: E_f (C(G(z)) - E_r C - 1)^2 + E_r (C(x) - E_f C + 1)^2

(ragan / ralsgan: Jolicoeur-Martineau 2018, "The relativistic discriminator", the
relativistic average losses as written there.) ns, minimax and lsgan take targets (1 for
real, 0 for fake by default) so that one-sided label smoothing and label noise apply.

Batch statistics. A plain mean over the batch (`.mean()`) is this device's mean; under data
parallelism the family averages the gradients over devices, which equals the gradient of
the global mean for losses that are means of per-example terms. A statistic inside a
nonlinearity (the relativistic losses' E_f C, feature matching's mean features) must be
the global batch's: take it with `DOut.batch_mean`, which averages over every device.

A weighted term (a penalty on D, an extra term on G's loss) is a `Term` in `TERMS`: the
player whose loss it joins, the config key of its weight under `loss`, and a function of
`TermInputs`. A term is on when the loss lists it in `GANLoss.terms` (wgan-gp's gradient
penalty), or when its weight is non-zero (unless it declares `by_weight=False`); the family adds weight * term to the
player's loss and logs the term as train/<name>.
"""

from typing import Callable, NamedTuple, Optional, Tuple, Union

import jax
import jax.numpy as jnp
import optax

from gm.registry import Registry

Target = Union[float, jnp.ndarray]


class DOut(NamedTuple):
  """D's outputs on a step's batches, as the losses and terms see them.

  In D's step every field is set (features when the loss or a term asks); in G's step
  `real` and `real_features` are None unless the loss or an active G term declares
  `needs_real` (G's step then runs D on the real batch too).
  """
  fake: jnp.ndarray                            # [B] D(G(z)): logits or critic scores
  real: Optional[jnp.ndarray] = None           # [B] D(x)
  fake_features: Optional[jnp.ndarray] = None  # [B, F] the features D sows ("features")
  real_features: Optional[jnp.ndarray] = None  # [B, F]
  real_target: Target = 1.0                    # [B] or scalar (label smoothing / noise)
  fake_target: Target = 0.0
  axis_name: Optional[str] = None              # The data-parallel axis, if any.

  def batch_mean(self, x: jnp.ndarray) -> jnp.ndarray:
    """The mean of x [B, ...] over the global batch (every device's examples): [...]."""
    m = jnp.mean(x, axis=0)
    return m if self.axis_name is None else jax.lax.pmean(m, self.axis_name)


class GANLoss(NamedTuple):
  """A discriminator loss, a generator loss (each DOut -> scalar), and how to read D's output."""
  d: Callable[[DOut], jnp.ndarray]
  g: Callable[[DOut], jnp.ndarray]
  uses_targets: bool              # Label smoothing / noise apply.
  probability: bool               # Outputs are logits of P(real) (else critic scores).
  needs_real: bool = False        # G's loss reads D(x): G's step runs D on the real batch.
  needs_features: bool = False    # The losses read D's features.
  terms: Tuple[str, ...] = ()     # `TERMS` always on with this loss.


class TermInputs(NamedTuple):
  """What a weighted term sees in its player's step.

  d_fn: images [B, H, W, C] -> D's outputs [B] (in D's step, at the parameters being
    differentiated; in G's step, D's fixed parameters).
  real, fake: the batches [B, H, W, C] as D sees them (augmented); `real` is None in G's
    step unless the term `needs_real`.
  out: D's outputs on them (`DOut`).
  key: a key of the term's own.
  draw: (sample(key, shape), key, shape) -> this device's slice of a draw over the global
    batch (so that a run's numbers do not depend on the device count).
  """
  d_fn: Callable[[jnp.ndarray], jnp.ndarray]
  real: Optional[jnp.ndarray]
  fake: jnp.ndarray
  out: DOut
  key: jax.Array
  draw: Callable


class Term(NamedTuple):
  """A weighted term of one player's loss: `config.loss[weight] * scale * fn(TermInputs)`."""
  player: str                     # "d" or "g"
  weight: str                     # Its weight's key under `loss` (0 = off unless a loss lists it).
  fn: Callable[[TermInputs], jnp.ndarray]
  scale: float = 1.0              # A constant factor of the weight (R1's gamma / 2).
  needs_real: bool = False        # (G terms) G's step runs D on the real batch.
  needs_features: bool = False    # `TermInputs.out` carries D's features.
  by_weight: bool = True          # On when its weight is non-zero; False: only with a loss that
                                  # lists it in `GANLoss.terms` (gp, whose weight defaults to 10).
  every: str = ""                 # (D terms) Its interval's key under `loss`: k > 1 computes it on
                                  # every k-th D step only, at k x its weight (lazy regularization,
                                  # Karras et al. 2020): the same mean weight, 1/k of the cost.


GAN_LOSSES = Registry("GAN loss")
TERMS = Registry("GAN loss term")


def bce(logits: jnp.ndarray, targets: Target) -> jnp.ndarray:
  """Per-example binary cross-entropy of logits against (possibly soft) targets."""
  return optax.sigmoid_binary_cross_entropy(logits, jnp.broadcast_to(targets, logits.shape))


def ns_d(o: DOut):
  return bce(o.real, o.real_target).mean() + bce(o.fake, o.fake_target).mean()


def ns_g(o: DOut):
  return bce(o.fake, 1.0).mean()


def minimax_g(o: DOut):
  return -bce(o.fake, 0.0).mean()  # E log(1 - D(G(z))), minimised by G.


def ls_d(o: DOut):
  return 0.5 * jnp.mean((o.real - o.real_target) ** 2) + 0.5 * jnp.mean((o.fake - o.fake_target) ** 2)


def ls_g(o: DOut):
  return 0.5 * jnp.mean((o.fake - 1.0) ** 2)


def hinge_d(o: DOut):
  return jnp.mean(jax.nn.relu(1.0 - o.real)) + jnp.mean(jax.nn.relu(1.0 + o.fake))


def wasserstein_d(o: DOut):
  return jnp.mean(o.fake) - jnp.mean(o.real)


def critic_g(o: DOut):
  return -jnp.mean(o.fake)


def _relative(o: DOut):
  """(C(x) - E_f C, C(G(z)) - E_r C): each output against the other batch's global mean."""
  return o.real - o.batch_mean(o.fake), o.fake - o.batch_mean(o.real)


def ragan_d(o: DOut):
  real, fake = _relative(o)
  return bce(real, 1.0).mean() + bce(fake, 0.0).mean()


def ragan_g(o: DOut):
  real, fake = _relative(o)
  return bce(fake, 1.0).mean() + bce(real, 0.0).mean()


def ralsgan_d(o: DOut):
  real, fake = _relative(o)
  return jnp.mean((real - 1.0) ** 2) + jnp.mean((fake + 1.0) ** 2)


def ralsgan_g(o: DOut):
  real, fake = _relative(o)
  return jnp.mean((fake - 1.0) ** 2) + jnp.mean((real + 1.0) ** 2)


GAN_LOSSES.register("ns")(GANLoss(ns_d, ns_g, uses_targets=True, probability=True))
GAN_LOSSES.register("minimax")(GANLoss(ns_d, minimax_g, uses_targets=True, probability=True))
GAN_LOSSES.register("lsgan")(GANLoss(ls_d, ls_g, uses_targets=True, probability=False))
GAN_LOSSES.register("hinge")(GANLoss(hinge_d, critic_g, uses_targets=False, probability=False))
GAN_LOSSES.register("wgan-gp")(GANLoss(wasserstein_d, critic_g, uses_targets=False,
                                       probability=False, terms=("gp",)))
GAN_LOSSES.register("ragan")(GANLoss(ragan_d, ragan_g, uses_targets=False, probability=False,
                                     needs_real=True))
GAN_LOSSES.register("ralsgan")(GANLoss(ralsgan_d, ralsgan_g, uses_targets=False,
                                       probability=False, needs_real=True))


def loss_names(where: Callable[[GANLoss], bool] = lambda loss: True):
  """Registered loss names (those for which `where(loss)` holds), for docs and errors."""
  return [n for n in GAN_LOSSES.names() if where(GAN_LOSSES.get(n))]


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


def feature_matching(features_real: jnp.ndarray, features_fake: jnp.ndarray,
                     batch_mean: Callable = lambda x: jnp.mean(x, axis=0)) -> jnp.ndarray:
  """Salimans et al. (2016): |E_x f(x) - E_z f(G(z))|_2^2 over D's features f [B, F]."""
  return jnp.sum((batch_mean(features_real) - batch_mean(features_fake)) ** 2)


def _gp_term(t: TermInputs) -> jnp.ndarray:
  eps = t.draw(jax.random.uniform, t.key, (t.fake.shape[0],))
  return gradient_penalty(t.d_fn, t.real, t.fake, eps)


def _r1_term(t: TermInputs) -> jnp.ndarray:
  return r1_penalty(t.d_fn, t.real)


def _feature_matching_term(t: TermInputs) -> jnp.ndarray:
  return feature_matching(t.out.real_features, t.out.fake_features, t.out.batch_mean)


TERMS.register("gp")(Term("d", "gp_weight", _gp_term, by_weight=False))  # WGAN-GP's lambda
TERMS.register("r1")(Term("d", "r1_weight", _r1_term, scale=0.5,      # gamma / 2 * R1
                          every="r1_every"))
TERMS.register("feature_matching")(Term("g", "fm_weight", _feature_matching_term,
                                        needs_real=True, needs_features=True))
