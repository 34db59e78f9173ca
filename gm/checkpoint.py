"""Orbax checkpoint history: save every N epochs, keep all, restore any step.

A checkpoint `checkpoints/<step>/` holds `state` (the training state pytree:
params, batch stats, optimizer states, step, RNG keys) and `meta` (JSON: epoch,
step, dataset info). Orbax writes into a temporary directory and renames it when
complete, so a partially written checkpoint is never listed; the temporary
directories a killed save leaves behind are removed when the run is opened again.
"""

import os
from typing import Any, Dict, List, Optional, Tuple

import jax
import orbax.checkpoint as ocp

from gm import faults
from gm.errors import UserError


class Checkpointer:
  """A thin wrapper over `ocp.CheckpointManager` for one run directory."""

  def __init__(self, workdir: str, max_to_keep: Optional[int] = None, create: bool = True):
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep or None, create=create,
                                             cleanup_tmp_directories=create))

  def steps(self) -> List[int]:
    return sorted(self.manager.all_steps())

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def save(self, step: int, state: Any, meta: Dict[str, Any]) -> None:
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
    faults.kill_point("checkpoint_writing")
    self.manager.wait_until_finished()

  def restore(self, step: int, target: Any) -> Tuple[Any, Dict[str, Any]]:
    """Restores `step` into the structure (and shardings) of `target`."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    try:
      out = self.manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
    except (ValueError, KeyError, TypeError) as e:
      reason = str(e).splitlines()[0].split(". ")[0][:200] if str(e) else type(e).__name__
      raise UserError(f"checkpoint {step} in {self.directory} was written by a different model "
                      f"({reason}); use the config the run was trained with (its config.json), "
                      "or a new --workdir for this one") from e
    return out["state"], out["meta"]

  def resolve(self, step: str) -> int:
    """'latest' or a number -> an existing step; a clear error otherwise."""
    steps = self.steps()
    if not steps:
      raise UserError(f"no checkpoints in {self.directory}; train first with train.py")
    if step in ("latest", None, ""):
      return steps[-1]
    try:
      value = int(step)
    except ValueError:
      raise UserError(f"--step must be a number or 'latest', got {step!r}") from None
    if value not in steps:
      raise UserError(f"no checkpoint at step {value}; available: {', '.join(map(str, steps))}")
    return value

  def close(self) -> None:
    self.manager.close()
