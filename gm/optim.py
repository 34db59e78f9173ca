"""Optax optimizers and learning-rate schedules built from a config group."""

import jax
import jax.numpy as jnp
import ml_collections
import optax

from gm.errors import ConfigError
from gm.registry import Registry

OPTIMIZERS = Registry("optimizer")
OPTIMIZERS.register("adam")(lambda lr, c: optax.adam(lr, b1=c.b1, b2=c.b2))
OPTIMIZERS.register("adamw")(lambda lr, c: optax.adamw(
    lr, b1=c.b1, b2=c.b2, weight_decay=c.weight_decay))
OPTIMIZERS.register("sgd")(lambda lr, c: optax.sgd(lr, momentum=c.momentum or None))
OPTIMIZERS.register("rmsprop")(lambda lr, c: optax.rmsprop(lr))


def make_schedule(cfg: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """Learning rate per step: 'constant', 'cosine' or 'warmup_cosine'."""
  name = cfg.schedule
  if name == "constant":
    return optax.constant_schedule(cfg.lr)
  if name == "cosine":
    return optax.cosine_decay_schedule(cfg.lr, max(total_steps, 1))
  if name == "warmup_cosine":
    warmup = cfg.warmup_steps
    return optax.warmup_cosine_decay_schedule(0.0, cfg.lr, warmup, max(total_steps, warmup + 1))
  raise ConfigError(f"unknown schedule {name!r}; valid names: constant, cosine, warmup_cosine")


def make_optimizer(cfg: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
  """An Optax transform from `cfg.name`, `cfg.lr`, `cfg.schedule` and extras."""
  tx = OPTIMIZERS.get(cfg.name)(make_schedule(cfg, total_steps), cfg)
  if cfg.grad_clip:
    tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip), tx)
  return tx


def global_norm(tree) -> jnp.ndarray:
  """L2 norm of all leaves of a pytree (gradient / parameter / update norms)."""
  return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree.leaves(tree)))


def scale_learning_rates(config: ml_collections.ConfigDict, scale: float) -> ml_collections.ConfigDict:
  """A copy of `config` with `lr` of every optimizer group (`optim`, `optim_g`, `optim_d`, ...) x scale.

  Used by the divergence rollback (`train.on_nonfinite='rollback'`); the
  optimizer states keep their structure, so checkpoints restore into it.
  """
  config = ml_collections.ConfigDict(config.to_dict())
  for name in list(config.keys()):
    group = config[name]
    if name.startswith("optim") and isinstance(group, ml_collections.ConfigDict) and "lr" in group:
      group.lr = group.lr * scale
  return config
