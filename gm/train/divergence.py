"""Divergence: non-finite metrics or parameters at an epoch's end, and what to do about it.

`train.on_nonfinite='stop'` ends the run with an error naming the epoch and the
quantity (earlier checkpoints untouched); 'rollback' restores the last
checkpoint, multiplies every learning rate by `train.rollback_lr_factor` and goes
on (at most `train.max_rollbacks` times). The lowered rate is stored in the
checkpoints, so a resume keeps it.
"""

from typing import Any, Dict, List, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gm.errors import UserError

POLICIES = ("stop", "rollback")


class Rollback:
  """The learning-rate scale and rollback count of a run, and the decision on divergence.

  Attributes:
    lr_scale: learning rates are the config's times this.
    rollbacks: rollbacks so far.
  """

  def __init__(self, train_config: ml_collections.ConfigDict):
    self.policy = train_config.on_nonfinite
    if self.policy not in POLICIES:
      raise UserError(f"train.on_nonfinite={self.policy!r}; valid: {', '.join(POLICIES)}")
    self.max_rollbacks = train_config.max_rollbacks
    self.factor = train_config.rollback_lr_factor
    self.lr_scale, self.rollbacks = 1.0, 0

  def meta(self) -> Dict[str, Any]:
    """What checkpoints record of it."""
    return {"lr_scale": self.lr_scale, "rollbacks": self.rollbacks}

  def adopt(self, meta: Dict[str, Any]) -> bool:
    """Takes a checkpoint's scale and count; True if the scale changed (rebuild the optimizers)."""
    if meta.get("lr_scale", 1.0) == self.lr_scale:
      return False
    self.lr_scale, self.rollbacks = meta["lr_scale"], meta.get("rollbacks", 0)
    return True

  def diverged(self, bad: List[str], epoch: int, last_step: Optional[int]) -> str:
    """Lowers the learning rates for a rollback and returns what went wrong, or raises the
    UserError that stops the run (policy 'stop', or no rollbacks left)."""
    where = f"non-finite {', '.join(bad)} at epoch {epoch}"
    if self.policy != "rollback" or self.rollbacks >= self.max_rollbacks:
      raise UserError(
          f"{where}; the last finite checkpoint is step {last_step}; lower the learning rate "
          "(--config.optim.lr, or optim_g/optim_d for GANs) and resume, or set "
          "--config.train.on_nonfinite=rollback" +
          (f" (gave up after {self.rollbacks} rollbacks)" if self.rollbacks else ""))
    self.lr_scale *= self.factor
    self.rollbacks += 1
    return where


def nonfinite(record: Dict[str, Any], model: Any = None) -> List[str]:
  """Names of non-finite logged metrics, and of parameter arrays of `model` if given."""
  bad = [k for k, v in record.items() if isinstance(v, float) and not np.isfinite(v)]
  if model is not None and not bool(all_finite(model)):
    leaves = jax.tree_util.tree_leaves_with_path(jax.device_get(model))
    names = [jax.tree_util.keystr(path) for path, v in leaves
             if np.issubdtype(np.asarray(v).dtype, np.floating) and not np.isfinite(v).all()]
    bad.append(f"parameters ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})")
  return bad


@jax.jit
def all_finite(tree) -> jnp.ndarray:
  """One device-side reduction: are all floating-point leaves finite?"""
  leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
  return jnp.all(jnp.stack([jnp.isfinite(x).all() for x in leaves])) if leaves else jnp.bool_(True)
