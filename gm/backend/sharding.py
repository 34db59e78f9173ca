"""Multi-device data parallelism: a 1-D device mesh with the batch sharded on it.

The default multi-device path is `jax.jit` over a `Mesh`: state and datasets
are replicated, each step's batch is constrained to be split along the 'data'
axis, and XLA inserts the gradient all-reduce. Family update functions are the
same as on one device. (For `jax.pmap` / `shard_map`, build a family with
`axis_name=...` instead; see `gm.families.gan`.)
"""

from typing import Any, Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gm.backend import distributed
from gm.errors import UserError

DATA_AXIS = "data"


def data_mesh(num_devices: int = 0) -> Optional[Mesh]:
  """A mesh of the first `num_devices` devices (0 = all); None for a single device."""
  devices = jax.devices()
  n = num_devices or len(devices)
  if n > len(devices):
    raise UserError(f"train.num_devices={n} but only {len(devices)} devices are visible")
  if n == 1:
    return None
  return Mesh(np.asarray(devices[:n]), (DATA_AXIS,))


def check_batch(mesh: Optional[Mesh], batch_size: int) -> None:
  if mesh is not None and batch_size % mesh.size:
    raise UserError(f"train.batch_size={batch_size} does not split over {mesh.size} devices; "
                    f"use a multiple of {mesh.size} or set --config.train.num_devices=1")


def replicate(tree: Any, mesh: Optional[Mesh]) -> Any:
  """Puts every leaf on every device of the mesh (no-op without a mesh)."""
  if mesh is None:
    return tree
  return jax.device_put(distributed.host_local(tree), NamedSharding(mesh, P()))


def shard_batch(batch: Any, mesh: Optional[Mesh]) -> Any:
  """Inside jit: constrains each leaf [B, ...] to be split over the mesh's data axis."""
  if mesh is None:
    return batch
  return jax.lax.with_sharding_constraint(batch, NamedSharding(mesh, P(DATA_AXIS)))


# --- inside a mapped step (jax.pmap / shard_map with `axis_name`; None: unmapped) ----------

def local_key(key: jax.Array, axis_name: Optional[str]) -> jax.Array:
  """A per-device key, for per-example draws that are not slices of a global draw (dropout
  masks, augmentation); the key itself when unmapped."""
  return key if axis_name is None else jax.random.fold_in(key, jax.lax.axis_index(axis_name))


def global_draw(sample, key: jax.Array, shape, axis_name: Optional[str]):
  """`sample(key, shape)` unmapped; mapped, this device's slice of the draw for the global batch
  (`shape[0]` rows per device), so every mapping gives the single-device numbers."""
  if axis_name is None:
    return sample(key, shape)
  devices = jax.lax.psum(1, axis_name)
  full = sample(key, (shape[0] * devices, *shape[1:]))
  return jax.lax.dynamic_slice_in_dim(full, jax.lax.axis_index(axis_name) * shape[0], shape[0])


def global_mean(tree: Any, axis_name: Optional[str]) -> Any:
  """The mean over devices of every leaf (gradients, metrics); the tree itself unmapped."""
  return tree if axis_name is None else jax.lax.pmean(tree, axis_name)
