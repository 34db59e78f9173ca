"""Multi-host training: one JAX process per host, one writer, agreed decisions.

`train.py --distributed` calls `initialize` before anything else touches JAX.
`jax.devices()` then lists the devices of every process, the data mesh of
`gm.backend.sharding` spans them all, and XLA's collectives cross hosts. Every process
loads the same dataset and runs the same program; the run directory (a shared
filesystem) is written by process 0 only, except for Orbax checkpoints, whose
saves every process joins. Decisions taken on the host (stop after a signal,
an error in process 0's workdir checks) are agreed by all processes, so none of
them waits forever in a collective the others skipped.

With one process (the default) every function here is a no-op.
"""

import logging
from typing import Optional

import jax
import numpy as np

from gm.errors import UserError

log = logging.getLogger("gm")


def initialize(coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
               process_id: Optional[int] = None) -> None:
  """`jax.distributed.initialize`, with CPU collectives (gloo) enabled.

  On TPU pods and under SLURM every argument may be None (detected); otherwise
  all three are needed. Processes other than 0 log warnings and errors only.
  """
  try:  # CPU processes need a collectives implementation to talk to each other.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  except (AttributeError, KeyError, ValueError):  # An older or newer JAX without the option.
    pass
  try:
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)
  except (RuntimeError, ValueError) as e:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise UserError(f"jax.distributed.initialize failed ({first[:200]}); pass "
                    "--coordinator_address=host:port, --num_processes and --process_id "
                    "(or run under SLURM / on a TPU pod)") from e
  if not is_primary():
    logging.getLogger("gm").setLevel(logging.WARNING)
  log.info("process %d of %d; %d local / %d global devices", jax.process_index(),
           jax.process_count(), jax.local_device_count(), jax.device_count())


def is_primary() -> bool:
  """True in the process that writes the run directory (process 0; always with one process)."""
  return jax.process_index() == 0


def multi() -> bool:
  return jax.process_count() > 1


def any_process(flag: bool) -> bool:
  """True if `flag` is true in any process (a collective: every process must call it)."""
  if not multi():
    return bool(flag)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return bool(np.any(multihost_utils.process_allgather(np.int32(bool(flag)))))


def raise_if_any(error: Optional[BaseException]) -> None:
  """Raises `error` here, and a UserError in every other process, if any process had one.

  A collective: every process must call it, with None where all went well.
  """
  if any_process(error is not None):
    if error is not None:
      raise error
    raise UserError("process 0 stopped with an error (see its output); fix it and rerun every "
                    "process")


def host_local(tree):
  """Device arrays -> numpy when several processes run, so they can be put on a global mesh.

  `jax.device_put` onto a mesh spanning processes takes host data (equal in every
  process), not an array committed to one local device.
  """
  return jax.device_get(tree) if multi() else tree
