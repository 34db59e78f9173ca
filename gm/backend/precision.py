"""Mixed precision: compute in bfloat16, keep parameters and optimizer state in float32.

`model.compute_dtype` ('float32' or 'bfloat16') selects the dtype the networks
run in. Parameters, batch-norm statistics, gradients and Optax states stay
float32: the families cast a copy of the parameters and the inputs at the
`apply` call (the cast's gradient is a cast back, so gradients arrive in
float32) and cast the outputs back to float32 before any loss. bfloat16 has
float32's exponent range, so no loss scaling is needed.
"""

from typing import Any

import jax
import jax.numpy as jnp

from gm.errors import ConfigError

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(model_cfg) -> Any:
  """The compute dtype of a `model` config group."""
  name = model_cfg.compute_dtype
  if name not in DTYPES:
    raise ConfigError(f"model.compute_dtype={name!r}; valid: {', '.join(DTYPES)}")
  return DTYPES[name]


def cast(tree: Any, dtype) -> Any:
  """Floating-point leaves of `tree` cast to `dtype` (others, and None, unchanged)."""
  if dtype == jnp.float32:
    return tree
  return jax.tree.map(
      lambda x: x.astype(dtype) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) else x,
      tree)


def to_float32(tree: Any) -> Any:
  """Floating-point leaves back to float32 (outputs before losses and metrics)."""
  return jax.tree.map(
      lambda x: x.astype(jnp.float32) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)
