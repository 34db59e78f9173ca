"""Orbax checkpoint history: save every N epochs, keep all, restore any step, verified.

A checkpoint `checkpoints/<step>/` holds `state` (the training state pytree:
params, batch stats, optimizer states, step, RNG keys) and `meta` (JSON: epoch,
step, dataset info, and the digests of `gm.integrity`). Orbax writes into a
temporary directory and renames it when complete, so a partially written
checkpoint is never listed; the temporary directories a killed save leaves
behind are removed when the run is opened again.

Every restore checks the digests (`gm.integrity`): a checkpoint whose files
were damaged after they were written raises `integrity.Damaged`, naming what is
wrong. Training resumes from the newest checkpoint that verifies and moves
damaged newer ones to `<workdir>/checkpoints.damaged/<step>` (outside the
directory Orbax lists; never deleted).
"""

import logging
import os
from typing import Any, Dict, List, Optional, Tuple

import jax
import numpy as np
import orbax.checkpoint as ocp

from gm import faults, integrity
from gm.errors import UserError

log = logging.getLogger("gm")

DAMAGED_DIR = "checkpoints.damaged"


def _with_empty_slots(raw: Any, template: Any) -> Any:
  """`raw` (a checkpoint's state dict) with the slots of `template` (the target's state dict)
  that hold no arrays added where `raw` lacks them: the migration of runs written before such
  a slot existed (GAN runs before the generator EMA saved no `ema` entry; with EMA off it is
  None)."""
  if not isinstance(raw, dict) or not isinstance(template, dict):
    return raw
  out = dict(raw)
  for key, value in template.items():
    if key in out:
      out[key] = _with_empty_slots(out[key], value)
    elif not jax.tree.leaves(value):
      out[key] = value
  return out


def _lists_as_dicts(tree: Any) -> Any:
  """Orbax's untyped restore gives sequences as lists; flax state dicts key them '0', '1'."""
  if isinstance(tree, dict):
    return {k: _lists_as_dicts(v) for k, v in tree.items()}
  if isinstance(tree, (list, tuple)):
    return {str(i): _lists_as_dicts(v) for i, v in enumerate(tree)}
  return tree


class Checkpointer:
  """A thin wrapper over `ocp.CheckpointManager` for one run directory."""

  def __init__(self, workdir: str, max_to_keep: Optional[int] = None, create: bool = True):
    self.workdir = os.path.abspath(workdir)
    self.directory = os.path.join(self.workdir, "checkpoints")
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep or None, create=create,
                                             cleanup_tmp_directories=create))

  def _restore_by_name(self, step: int, target: Any) -> Optional[Dict[str, Any]]:
    """Restores a checkpoint whose tree holds entries `target` lacks, by name.

    Runs written by earlier versions can lack slots the current state carries empty
    (GANState's `ema`, None with EMA off, did not exist before the generator EMA) or
    store empty ones it leaves out (a generator's empty `batch_stats`). Their
    checkpoints restore: the on-disk tree is read as saved, missing empty slots are
    added (`_with_empty_slots`), and `target`'s leaves are filled from it by name,
    each with its shape, dtype and placement. Returns None (the caller raises) unless
    every leaf of `target` is found with the same shape and dtype and the checkpoint
    holds no array beyond them (only empty slots may differ).
    """
    import flax.serialization  # pylint: disable=g-import-not-at-top
    try:
      out = self.manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()))
      raw = _lists_as_dicts(out["state"])
      raw = _with_empty_slots(raw, flax.serialization.to_state_dict(target))
      state = flax.serialization.from_state_dict(target, raw)
    except (ValueError, KeyError, TypeError):
      return None
    want = jax.tree_util.tree_leaves_with_path(target)
    got = jax.tree_util.tree_leaves_with_path(state)
    kind = lambda v: np.dtype(getattr(v, "dtype", None) or np.asarray(v).dtype).kind
    if (len(jax.tree.leaves(raw)) != len(want)  # Nothing but empty slots left out.
        or [p for p, _ in want] != [p for p, _ in got]
        or any(np.shape(a) != np.shape(b) or kind(a) != kind(b)
               or (hasattr(a, "dtype") and np.dtype(a.dtype) != np.dtype(b.dtype))
               for (_, a), (_, b) in zip(want, got))):
      return None
    state = jax.tree.map(  # Each leaf placed (and typed) as the target's.
        lambda t, x: jax.device_put(x, t.sharding) if isinstance(t, jax.Array)
        else type(t)(np.asarray(x).item()) if isinstance(t, (int, float, bool)) else x,
        target, state)
    log.debug("checkpoint %d restored by name (its tree has slots this version leaves out)",
             step)
    return {"state": state, "meta": out["meta"]}

  def steps(self) -> List[int]:
    return sorted(self.manager.all_steps())

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def save(self, step: int, state: Any, meta: Dict[str, Any]) -> None:
    """Saves `state` and `meta`, with their digests sealed into meta (one atomic Orbax save)."""
    meta = integrity.seal(meta, state, integrity.run_files(self.workdir))
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
    faults.kill_point("checkpoint_writing")
    self.manager.wait_until_finished()

  def restore(self, step: int, target: Any, note: bool = True) -> Tuple[Any, Dict[str, Any]]:
    """Restores `step` into the structure (and shardings) of `target`, and verifies it.

    `note`: log a warning if the checkpoint has no digests (written before them).

    Raises:
      integrity.Damaged: files missing, truncated or changed since they were written.
      UserError: the checkpoint holds another model's arrays.
    """
    integrity.probe(step, os.path.join(self.directory, str(step)))
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    try:
      out = self.manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
    except Exception as e:  # pylint: disable=broad-except
      damage = integrity.read_failure(e)
      if damage:
        raise integrity.Damaged(step, self.directory, damage) from e
      if not isinstance(e, (ValueError, KeyError, TypeError)):
        raise
      out = self._restore_by_name(step, target)
      if out is None:
        reason = str(e).splitlines()[0].split(". ")[0][:200] if str(e) else type(e).__name__
        raise UserError(f"checkpoint {step} in {self.directory} was written by a different "
                        f"model ({reason}); use the config the run was trained with (its "
                        "config.json), or a new --workdir for this one") from e
    if not integrity.check(step, self.directory, out["meta"], out["state"]) and note:
      log.warning("checkpoint %d was written before checkpoints carried digests: restored, but "
                  "it cannot be verified", step)
    return out["state"], out["meta"]

  def restore_newest_intact(self, target: Any, move_damaged: bool = True
                            ) -> Optional[Tuple[int, Any, Dict[str, Any]]]:
    """(step, state, meta) of the newest checkpoint that verifies, or None if none does.

    Damaged newer ones are moved to `<workdir>/checkpoints.damaged/` (if
    `move_damaged`; else only skipped), each with a warning that names it.
    """
    for step in reversed(self.steps()):
      try:
        state, meta = self.restore(step, target)
      except integrity.Damaged as e:
        if move_damaged:
          log.warning("%s; moved it to %s", e, self.move_aside(step))
        else:
          log.warning("%s; skipped", e)
        continue
      return step, state, meta
    return None

  def move_aside(self, step: int) -> str:
    """Renames checkpoint `step` into `<workdir>/checkpoints.damaged/` (never over anything)."""
    dest_dir = os.path.join(self.workdir, DAMAGED_DIR)
    os.makedirs(dest_dir, exist_ok=True)
    dest, n = os.path.join(dest_dir, str(step)), 1
    while os.path.lexists(dest):  # Damaged twice at the same step: keep both.
      n += 1
      dest = os.path.join(dest_dir, f"{step}.{n}")
    os.rename(os.path.join(self.directory, str(step)), dest)
    self.manager.reload()
    return dest

  def intact_steps(self, target: Any, limit: int = 0, skip=()) -> Tuple[List[int], bool]:
    """Steps that verify, newest first: (steps, whether every step was tried).

    With `limit`, stops once that many are found (each check is a full restore).
    """
    found, steps = [], [s for s in reversed(self.steps()) if s not in skip]
    for i, step in enumerate(steps):
      try:
        self.restore(step, target, note=False)
      except UserError:
        continue
      found.append(step)
      if limit and len(found) >= limit:
        return found, i == len(steps) - 1
    return found, True

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
