"""The evaluator: mean per-example test metrics of a model state, in one compiled call."""

from typing import Dict

import jax
import jax.numpy as jnp
import numpy as np

from gm import families, sharding


def make_evaluator(family: families.Family, test: Dict[str, np.ndarray], batch_size: int,
                   mesh=None):
  """Returns evaluate(model, key) -> mean per-example test metrics (host floats).

  The test set is padded to whole batches and held on device; padded rows are
  masked out of the means.
  """
  n = len(test["image"])
  nb = -(-n // batch_size)
  pad = nb * batch_size - n
  arrays = {k: np.concatenate([v, np.repeat(v[:1], pad, 0)]) for k, v in test.items()}
  arrays = {k: jnp.asarray(v.reshape(nb, batch_size, *v.shape[1:])) for k, v in arrays.items()}
  mask = jnp.asarray((np.arange(nb * batch_size) < n).reshape(nb, batch_size), jnp.float32)
  arrays, mask = sharding.replicate((arrays, mask), mesh)

  @jax.jit
  def run(model, key):
    def body(_, xs):
      batch, m, i = xs
      metrics = family.eval_step(model, batch, jax.random.fold_in(key, i))
      return None, jax.tree.map(lambda v: jnp.sum(v * m), metrics)
    _, sums = jax.lax.scan(body, None, (arrays, mask, jnp.arange(nb)))
    return jax.tree.map(lambda s: s.sum() / n, sums)

  return lambda model, key: {k: float(v) for k, v in jax.device_get(run(model, key)).items()}
