"""The epoch runner: one epoch of compiled training steps on device data.

How the steps of an epoch are driven is chosen per backend by `gm.backend.runtime`
(config `train.epoch_driver`): 'scan' compiles the whole epoch as one
`lax.scan`, 'loop' dispatches one jitted step per batch from Python without any
host sync. Both gather batches on device from a permutation drawn on device.
Randomness is a pure function of config.seed, the epoch (data order) and the global
step (the step's key is `fold_in(rng, step)`), so a resumed run continues exactly.
"""

import functools
from typing import Any, Callable, Dict

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from gm import families
from gm.backend import runtime, sharding


class RunState(flax.struct.PyTreeNode):
  """Everything that changes during training: the family's state plus counters and keys."""
  model: Any
  step: jnp.ndarray      # global optimizer step, int32 scalar
  rng: jnp.ndarray       # base key of the per-step keys
  data_rng: jnp.ndarray  # base key of the per-epoch permutations


def epoch_indices(data_rng: jax.Array, epoch, n: int, batch_size: int) -> jnp.ndarray:
  """Example indices [steps, B] of one epoch: a permutation drawn from (data_rng, epoch)."""
  steps = n // batch_size
  perm = jax.random.permutation(jax.random.fold_in(data_rng, epoch), n)
  return perm[:steps * batch_size].reshape(steps, batch_size)


def take(arrays: Dict[str, jnp.ndarray], idx: jnp.ndarray) -> Dict[str, jnp.ndarray]:
  return {k: v[idx] for k, v in arrays.items()}


def make_step(family: families.Family, mesh=None) -> Callable:
  """(run, metric sums, data, idx [B]) -> (run, metric sums + this step's metrics).

  With a device mesh the gathered batch is split over its data axis.
  """

  def step(run: RunState, sums, data, idx):
    batch = sharding.shard_batch(take(data, idx), mesh)
    model, metrics = family.train_step(run.model, batch, jax.random.fold_in(run.rng, run.step))
    sums = jax.tree.map(jnp.add, sums, metrics) if sums is not None else metrics
    return run.replace(model=model, step=run.step + 1), sums

  return step


class EpochRunner:
  """Runs one epoch of training steps on device data; returns mean metrics.

  The metric sums start at zeros, so one compiled program covers every step: the
  'loop' driver compiles one step, and the 'scan' driver's epoch holds one copy
  of the step, not a first step plus a scanned body.
  """

  def __init__(self, family: families.Family, batch_size: int, num_examples: int,
               driver: str = "auto", mesh=None):
    """`batch_size`: examples per step (`family.examples_per_step` of the config's batch)."""
    self.batch_size, self.n = batch_size, num_examples
    self.steps = num_examples // batch_size
    self.driver = runtime.epoch_driver(driver)
    self._mesh = mesh
    self._family = family
    self._raw_step = make_step(family, mesh)
    self._sums_shape = None
    self._indices = runtime.jit(functools.partial(epoch_indices, n=self.n, batch_size=batch_size))
    self._programs = {}  # Per stage (`family.epoch_stage`): one compiled step or epoch each.

  def _program(self, epoch: int):
    """The jitted step (loop) or epoch (scan) for `epoch`'s stage, traced in that stage."""
    stage = self._family.epoch_stage(epoch)
    if stage not in self._programs:
      family, raw = self._family, self._raw_step

      def step(*args):
        with family.at_stage(stage):
          return raw(*args)

      if self.driver == "loop":
        def train_step_i(run, sums, data, idx, i):
          return step(run, sums, data, idx[i])
        self._programs[stage] = runtime.jit(train_step_i, donate_argnums=(0, 1))
      else:
        def train_epoch(run, sums, data, idx):
          return jax.lax.scan(lambda c, i: (step(*c, data, i), None), (run, sums), idx)[0]
        self._programs[stage] = runtime.jit(train_epoch, donate_argnums=(0, 1))
    return self._programs[stage]

  def _zero_sums(self, run: RunState, data, idx):
    """Zeros shaped like one step's metrics, placed like the step's outputs."""
    if self._sums_shape is None:
      self._sums_shape = jax.eval_shape(lambda r, d, i: self._raw_step(r, None, d, i)[1],
                                        run, data, idx[0])
    zeros = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), self._sums_shape)
    return jax.device_put(zeros) if self._mesh is None else sharding.replicate(zeros, self._mesh)

  def __call__(self, run: RunState, data, epoch: int, on_step: Callable[[int], None] = None):
    idx = self._indices(run.data_rng, epoch)
    sums = self._zero_sums(run, data, idx)
    program = self._program(epoch)
    if self.driver == "loop":
      for i in range(self.steps):
        run, sums = program(run, sums, data, idx, i)
        if on_step:
          on_step(1)
    else:
      run, sums = program(run, sums, data, idx)
      if on_step:
        on_step(self.steps)
    return run, jax.tree.map(lambda s: s / self.steps, sums)

  def compiled(self, run: RunState, data, epoch: int = 0):
    """The compiled program that runs the steps (loop: one step; scan: a whole epoch).

    After the first call this comes from jit's cache, without compiling again. For
    XLA's memory and cost analyses.
    """
    idx = self._indices(run.data_rng, epoch)
    sums = self._zero_sums(run, data, idx)
    if self.driver == "loop":
      return self._program(epoch).lower(run, sums, data, idx, 0).compile()
    return self._program(epoch).lower(run, sums, data, idx).compile()
