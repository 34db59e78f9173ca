"""The evaluator: mean per-example test metrics of a model state, in one compiled call."""

from typing import Dict

import jax
import jax.numpy as jnp
import numpy as np

from gm import families
from gm.backend import sharding


def make_evaluator(family: families.Family, test: Dict[str, np.ndarray], batch_size: int,
                   mesh=None):
  """Returns evaluate(model, key) -> mean per-example test metrics (host floats).

  The test set is padded to whole batches (with copies of example 0) and held on
  device; padded rows are masked out of the means, and each batch carries the
  mask as `batch['valid']` for batch-level statistics (see `Family.eval_step`).
  """
  n = len(test["image"])
  nb = -(-n // batch_size)
  pad = nb * batch_size - n
  arrays = {k: np.concatenate([v, np.repeat(v[:1], pad, 0)]) for k, v in test.items()}
  arrays = {k: jnp.asarray(v.reshape(nb, batch_size, *v.shape[1:])) for k, v in arrays.items()}
  arrays["valid"] = jnp.asarray((np.arange(nb * batch_size) < n).reshape(nb, batch_size),
                                jnp.float32)
  arrays = sharding.replicate(arrays, mesh)

  @jax.jit
  def run(model, key):
    def body(_, xs):
      batch, i = xs
      metrics = family.eval_step(model, batch, jax.random.fold_in(key, i))
      return None, jax.tree.map(lambda v: jnp.sum(v * batch["valid"]), metrics)
    _, sums = jax.lax.scan(body, None, (arrays, jnp.arange(nb)))
    return jax.tree.map(lambda s: s.sum() / n, sums)

  return lambda model, key: {k: float(v) for k, v in jax.device_get(run(model, key)).items()}
