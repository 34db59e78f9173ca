"""Latent-space optimization: find the generator input that reproduces an image.

The assignment's procedure: start from a random generator input, minimise the mean
squared error between G(z) and the target by gradient steps on z only (the
network's weights are closed over as constants), SGD with learning rate 0.01
and momentum 0.9, 100 steps. Here, many targets and many random restarts run
in one compiled call (a batch of T * R codes; each code's loss depends only on
its own image, so one gradient of the summed loss is every code's gradient),
and the best restart per target is kept.

The generator is the family's `GeneratorView` of a trained run: `images = apply(z)`,
in [0, 1], with how to draw z (`noise`), and optionally an encoder (AE / VAE: start from
the code of the target) and discriminator features (feature-matching loss).
"""

from typing import Callable, Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gm.backend import runtime
from gm.errors import UserError
from gm.families.base import GeneratorView


def generator_of(family, state) -> GeneratorView:
  """A run state's generator (`Family.generator`, weights captured), checked to be one
  inversion can drive: unconditional."""
  view = family.generator(state)
  if view.conditional:
    raise UserError(f"inversion of a conditional {family.config.family.upper()} run needs a "
                    "condition; not supported, use an unconditional run")
  return view


LOSSES = ("mse", "sse", "mse+prior", "features")


def make_optimizer(name: str, lr: float, momentum: float) -> optax.GradientTransformation:
  if name == "sgd":
    return optax.sgd(lr, momentum=momentum or None)
  if name == "adam":
    return optax.adam(lr)
  raise UserError(f"unknown inversion optimizer {name!r}; valid: sgd, adam")


def per_code_loss(gen: GeneratorView, z: jnp.ndarray, targets: jnp.ndarray, loss: str,
                  prior_weight: float, target_features=None) -> jnp.ndarray:
  """Loss of each code [N] against its target [N, H, W, C].

  'mse': mean squared error of images in [0, 1] (the 64x64 assignment).
  'sse': sum of squared errors in the generator's output range (the 32x32
  report: `((G(z) - x) ** 2).sum()` on tanh outputs); for a 32x32 RGB tanh
  generator that is 4 * 3,072 = 12,288 times the 'mse', so the same learning
  rate moves z that much faster.
  """
  images = gen.apply(z)
  mse = jnp.mean((images - targets) ** 2, axis=(1, 2, 3))
  if loss == "mse":
    return mse
  if loss == "sse":
    return gen.output_scale ** 2 * jnp.sum((images - targets) ** 2, axis=(1, 2, 3))
  if loss == "mse+prior":
    return mse + prior_weight * jnp.mean(z ** 2, axis=1)
  if loss == "features":
    return mse + jnp.mean((gen.features(images) - target_features) ** 2, axis=1)
  raise UserError(f"unknown inversion loss {loss!r}; valid: {', '.join(LOSSES)}")


def invert(gen: GeneratorView, targets: np.ndarray, key: jax.Array, steps: int = 100,
           restarts: int = 1, lr: float = 0.01, momentum: float = 0.9, optimizer: str = "sgd",
           loss: str = "mse", prior_weight: float = 0.01, init: str = "random",
           snapshots: int = 10, driver: str = "auto") -> Dict[str, np.ndarray]:
  """Optimises T * R codes at once; returns the best restart per target and the history.

  Args:
    targets: [T, H, W, C] in [0, 1].
    init: 'random' (z from the generator's noise) or 'encoder' (AE / VAE: the
      target's code, plus noise for restarts after the first).
    snapshots: images of the best restart kept at this many evenly spaced steps.
    driver: 'scan' (one `lax.scan`), 'loop' (a jitted step per iteration) or
      'auto' (as the training loop: 'loop' on CPU, 'scan' elsewhere); same results.

  Returns:
    z [T, D], images [T, H, W, C], loss [T] (final, best restart), losses
    [steps + 1, T, R] (before each step and at the end), best [T] (restart
    index), z_all [T, R, D], evolution [S, T, H, W, C] with snapshot_steps [S].
  """
  if steps < 1 or restarts < 1:
    raise UserError("--steps and --restarts must be >= 1")
  if loss == "features" and gen.features is None:
    raise UserError("the 'features' loss needs a discriminator (GAN runs only)")
  t = len(targets)
  targets = jnp.asarray(targets, jnp.float32)
  rep = jnp.repeat(targets, restarts, axis=0)  # [T*R, H, W, C]
  z0 = gen.noise(key, t * restarts)
  if init == "encoder":
    if gen.encode is None:
      raise UserError("--init encoder needs an AE or VAE run")
    code = jnp.repeat(gen.encode(targets), restarts, axis=0)
    first = (jnp.arange(t * restarts) % restarts == 0)[:, None]
    z0 = jnp.where(first, code, code + 0.5 * z0)
  elif init != "random":
    raise UserError(f"--init {init!r}; valid: random, encoder")
  feats = gen.features(rep) if loss == "features" else None
  tx = make_optimizer(optimizer, lr, momentum)
  snap_steps = np.unique(np.linspace(0, steps, min(snapshots, steps + 1)).round().astype(int))

  # Targets and features are arguments, not constants: one compile serves every call with the
  # same settings and shapes (jit retraces for new shapes itself).
  def total(z, rep, feats):
    per = per_code_loss(gen, z, rep, loss, prior_weight, feats)
    return per.sum(), per

  def step(z, opt, rep, feats):
    (_, per), g = jax.value_and_grad(total, has_aux=True)(z, rep, feats)
    upd, opt = tx.update(g, opt, z)
    return optax.apply_updates(z, upd), opt, per

  def final(z, rep, feats):
    return total(z, rep, feats)[1]

  settings = (optimizer, lr, momentum, loss, prior_weight)
  if runtime.epoch_driver(driver) == "scan":  # GPU / TPU: the whole optimization is one program.
    def run(z, rep, feats):
      def body(carry, _):
        z, opt, per = step(*carry, rep, feats)
        return (z, opt), (per, carry[0])
      (z, _), (per, zs) = jax.lax.scan(body, (z, tx.init(z)), None, length=steps)
      return z, jnp.concatenate([per, final(z, rep, feats)[None]]), jnp.concatenate([zs, z[None]])

    run_jit = gen.cached(("scan", steps, *settings), lambda: runtime.jit(run))
    z, losses, zs = run_jit(z0, rep, feats)
    zs = zs[snap_steps]
  else:  # XLA:CPU runs a scanned body ~3x slower: dispatch one jitted step per iteration.
    step_jit = gen.cached(("step", *settings), lambda: runtime.jit(step))
    final_jit = gen.cached(("final", *settings), lambda: runtime.jit(final))
    z, opt, per_step, zs, snap = z0, tx.init(z0), [], [], set(snap_steps.tolist())
    for i in range(steps):
      if i in snap:
        zs.append(z)
      z, opt, per = step_jit(z, opt, rep, feats)
      per_step.append(per)
    losses = jnp.stack(per_step + [final_jit(z, rep, feats)])
    zs = jnp.stack(zs + ([z] if steps in snap else []))
  losses = np.asarray(losses).reshape(steps + 1, t, restarts)
  best = losses[-1].argmin(axis=1)  # [T]
  z_all = np.asarray(z).reshape(t, restarts, -1)
  z_best = z_all[np.arange(t), best]
  zs = np.asarray(zs).reshape(len(snap_steps), t, restarts, -1)[:, np.arange(t), best]
  gen_jit = gen.apply_jit()
  evolution = np.stack([np.asarray(gen_jit(zs[i])) for i in range(len(snap_steps))])
  images = np.asarray(gen_jit(jnp.asarray(z_best)))
  return {"z": z_best, "images": images, "loss": losses[-1][np.arange(t), best],
          "losses": losses, "best": best, "z_all": z_all, "evolution": evolution,
          "snapshot_steps": snap_steps}


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
  """Spherical interpolation between a [D] and b [D] at fractions t [K] -> [K, D]."""
  na, nb = np.linalg.norm(a), np.linalg.norm(b)
  omega = np.arccos(np.clip(np.dot(a / na, b / nb), -1.0, 1.0))
  if omega < 1e-6:
    return (1 - t)[:, None] * a + t[:, None] * b
  so = np.sin(omega)
  return (np.sin((1 - t) * omega) / so)[:, None] * a + (np.sin(t * omega) / so)[:, None] * b


def lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
  return (1 - t)[:, None] * a + t[:, None] * b


# --- reconstruction quality ---------------------------------------------------------------


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Peak signal-to-noise ratio in dB of images in [0, 1], per image [N]."""
  mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2, axis=(1, 2, 3))
  return 10 * np.log10(1.0 / np.maximum(mse, 1e-12))


def _gaussian_filter(x: np.ndarray, sigma: float = 1.5, truncate: float = 3.5) -> np.ndarray:
  from scipy import ndimage  # pylint: disable=g-import-not-at-top
  return ndimage.gaussian_filter(x, sigma, truncate=truncate, mode="reflect")


def ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """SSIM (Wang et al. 2004: Gaussian window sigma 1.5, K1 0.01, K2 0.03) per image [N].

  Images [N, H, W, C] in [0, 1]; the mean over pixels and channels.
  """
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  c1, c2 = 0.01 ** 2, 0.03 ** 2
  out = []
  for x, y in zip(a, b):
    vals = []
    for c in range(x.shape[-1]):
      u, v = x[..., c], y[..., c]
      mu_u, mu_v = _gaussian_filter(u), _gaussian_filter(v)
      s_uu = _gaussian_filter(u * u) - mu_u ** 2
      s_vv = _gaussian_filter(v * v) - mu_v ** 2
      s_uv = _gaussian_filter(u * v) - mu_u * mu_v
      m = ((2 * mu_u * mu_v + c1) * (2 * s_uv + c2)) / ((mu_u ** 2 + mu_v ** 2 + c1) * (s_uu + s_vv + c2))
      r = int(3.5 * 1.5 + 0.5)  # crop the border as skimage does
      vals.append(m[r:-r, r:-r].mean())
    out.append(np.mean(vals))
  return np.asarray(out)
