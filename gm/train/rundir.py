"""The run directory: its lock, config check, monitoring inputs and metrics log.

Layout: config.json (the config; replaced ones kept as config.json.<time>.bak),
train.lock (the pid of the one training process), monitor.npz (fixed inputs of
the sample grids), metrics.jsonl (one JSON object per logged epoch; `read_metrics`
is its one reader), tensorboard/, samples/ and the Orbax checkpoint history.
"""

import json
import logging
import os
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import jax
import ml_collections
import numpy as np

from gm import checkpoint, config_utils, fileio, integrity
from gm.backend import distributed
from gm.errors import UserError

log = logging.getLogger("gm")


def check_not_foreign(workdir: str) -> None:
  """A file, or a non-empty directory that is not a gm run, is never written to."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise UserError(f"workdir {workdir} is a file; pass a directory path")
  if (os.path.isdir(workdir) and not os.path.exists(os.path.join(workdir, "config.json"))
      and set(os.listdir(workdir)) - {WorkdirLock.NAME}):
    raise UserError(f"workdir {workdir} is not empty and holds no gm run (no config.json); "
                    "choose a new or empty directory")


def prepare_workdir(config: ml_collections.ConfigDict, workdir: str,
                    allow_config_change: bool, initial_state: Callable[[], Any] = None) -> None:
  """Creates the run directory, or checks that resuming it with this config is safe.

  Never deletes or overwrites anything: an existing directory must be a gm run
  of the same config (up to `config_utils.RESUMABLE_KEYS`). With a changed config
  (`allow_config_change`), `initial_state()` (the config's initial RunState) must
  restore the run's latest checkpoint before config.json is replaced.
  """
  check_not_foreign(workdir)
  cfg_path = os.path.join(workdir, "config.json")
  new = config_utils.to_dict(config)
  if os.path.exists(cfg_path):
    try:
      with open(cfg_path) as f:
        old = json.load(f)
    except ValueError:
      raise UserError(f"{cfg_path} is damaged (not JSON); restore it from a copy (replaced ones "
                      "are kept as config.json.<time>.bak) or use a new --workdir") from None
    diff = config_utils.differences(old, new)
    if diff and not allow_config_change:
      raise UserError(f"config differs from the run in {workdir} at: {', '.join(diff)}; "
                      "use a new --workdir, or pass --allow_config_change to resume anyway")
    if not diff and old == new:
      return
    if diff and initial_state is not None and not distributed.multi():  # (Orbax restores are
      _check_checkpoint_fits(workdir, initial_state)  # collective.) Before config.json is touched.
    os.replace(cfg_path, cfg_path + f".{int(time.time())}.bak")  # Keep the old one.
  os.makedirs(workdir, exist_ok=True)
  fileio.write_atomic(cfg_path, lambda tmp: _dump_json(new, tmp))


def _check_checkpoint_fits(workdir: str, initial_state: Callable[[], Any]) -> None:
  """A UserError if the run's latest checkpoint does not restore into `initial_state()`."""
  ckpt = checkpoint.Checkpointer(workdir, create=False)
  try:
    if ckpt.latest_step() is not None:  # The one training would resume from (nothing is moved).
      ckpt.restore_newest_intact(initial_state(), move_damaged=False)
  finally:
    ckpt.close()


def _dump_json(obj, path: str) -> None:
  with open(path, "w") as f:
    json.dump(obj, f, indent=2, sort_keys=True)


def _write_lines(path: str, lines: List[str]) -> None:
  with open(path, "w") as f:
    f.writelines(lines)


class MetricWriter:
  """metrics.jsonl (one object per logged epoch) plus TensorBoard scalars and images.

  Every numeric value of a record (train/, test/, judge/, quality/, time/) becomes
  a TensorBoard scalar; `image` adds the per-checkpoint grids. With
  `tensorboard=False` no event files are written. With `enabled=False`
  (processes other than 0 of a multi-host run) it writes nothing.
  """

  def __init__(self, workdir: str, tensorboard: bool = True, enabled: bool = True):
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.enabled = enabled
    self.tb = None
    if tensorboard and enabled:
      try:
        from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
        self.tb = SummaryWriter(os.path.join(workdir, "tensorboard"))
      except ImportError:
        log.warning("tensorboardX not installed: no TensorBoard event files")

  def write(self, step: int, record: Dict[str, Any]) -> None:
    if not self.enabled:
      return
    with open(self.path, "a") as f:
      f.write(json.dumps({"step": step, **record}) + "\n")
      f.flush()
      os.fsync(f.fileno())
    if self.tb:
      for k, v in record.items():
        if isinstance(v, (int, float)) and k not in ("epoch", "step"):
          self.tb.add_scalar(k, v, step)
      self.tb.flush()

  def image(self, tag: str, image: np.ndarray, step: int) -> None:
    """A uint8 image [H, W, 3] as a TensorBoard image at `step` (nothing without TensorBoard)."""
    if self.tb:
      self.tb.add_image(tag, np.asarray(image, np.uint8), step, dataformats="HWC")
      self.tb.flush()

  def close(self):
    if self.tb:
      self.tb.close()

  def truncate_after(self, step: int) -> int:
    """Moves records of steps after `step` (epochs no checkpoint holds) to metrics.dropped.jsonl.

    A run killed between its metrics write and its checkpoint, or rolled back
    after diverging, logs those epochs again when it redoes them; the old lines
    are kept aside, not deleted. A torn last line (killed mid-write) goes too.
    Returns the number of lines moved.
    """
    if not self.enabled or not os.path.exists(self.path):
      return 0
    with open(self.path) as f:
      lines = f.read().splitlines(keepends=True)
    keep, drop = [], []
    for i, line in enumerate(lines):
      try:
        later = json.loads(line)["step"] > step
      except (ValueError, KeyError, TypeError):
        later = i == len(lines) - 1  # A torn last line; a bad line elsewhere is the user's.
      (drop if later else keep).append(line if line.endswith("\n") else line + "\n")
    if drop:
      with open(os.path.join(os.path.dirname(self.path), "metrics.dropped.jsonl"), "a") as f:
        f.writelines(drop)
      fileio.write_atomic(self.path, lambda tmp: _write_lines(tmp, keep))
    return len(drop)


def load_monitor_inputs(family, workdir: str, key: jax.Array, test,
                        write: bool = True) -> Dict[str, np.ndarray]:
  """Fixed monitoring inputs, drawn once per run and saved as monitor.npz (if `write`).

  A damaged monitor.npz (zip CRC-32 or structure) is moved to monitor.npz.damaged
  and drawn again: the draw is a function of config.seed, so the new file holds the
  same arrays.
  """
  path = os.path.join(workdir, "monitor.npz")
  if os.path.exists(path):
    try:
      return integrity.read_npz(path)
    except ValueError as e:
      if write:
        aside = _free_name(path + ".damaged")
        os.rename(path, aside)
        log.warning("%s is damaged (%s); moved it to %s and drew the same inputs again from "
                    "config.seed", path, e, aside)
  inputs = jax.device_get(family.monitor_inputs(key, test))
  if write:
    fileio.write_atomic(path, lambda tmp: np.savez(tmp, **inputs), suffix=".npz")
  return dict(inputs)


def _free_name(path: str) -> str:
  """`path`, or `path.2`, `path.3`, ...: the first that does not exist (nothing is overwritten)."""
  name, n = path, 1
  while os.path.lexists(name):
    n += 1
    name = f"{path}.{n}"
  return name


class WorkdirLock:
  """`<workdir>/train.lock` holding our pid: a second train.py on the same run is refused.

  A lock left by a process that no longer exists (killed) is taken over.
  """

  NAME = "train.lock"

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, self.NAME)

  def __enter__(self):
    for _ in range(2):
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
      except FileExistsError:
        try:
          with open(self.path) as f:
            pid = int(f.read().strip() or 0)
        except (OSError, ValueError):
          pid = 0
        if pid and _alive(pid):
          raise UserError(f"another training process (pid {pid}) is using {os.path.dirname(self.path)}; "
                          "wait for it or stop it first") from None
        os.remove(self.path)  # Stale: its process is gone.
        continue
      with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
      return self
    raise UserError(f"could not take the lock {self.path}; remove it if no training is running")

  def __exit__(self, *exc):
    try:
      os.remove(self.path)
    except OSError:
      pass


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def read_metrics(workdir: str):
  """Records of metrics.jsonl.

  A line that is not JSON is an error naming it, except an unterminated last
  line: that is what a process killed while writing leaves, so it is skipped
  with a warning (the next training run of the same workdir sets it aside).
  """
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    raise UserError(f"{path} does not exist; train first")
  with open(path, encoding="utf-8", errors="replace") as f:
    lines = f.read().split("\n")  # The last item is '' when the file ends with a newline.
  records = []
  for i, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      record = json.loads(line)
      if not isinstance(record, dict):
        raise ValueError("not an object")
    except ValueError:
      if i == len(lines):  # No newline after it: a write cut short.
        log.warning("%s line %d is incomplete (a run killed while writing it?); ignoring it", path, i)
        continue
      raise UserError(f"{path} line {i} is not a JSON object; fix or delete that line") from None
    records.append(record)
  return records


def run_seconds(records: Sequence[dict]) -> List[Optional[float]]:
  """Per record, the run's wall-clock seconds up to it over every process that trained it.

  `time/run_s` where logged. Older logs have only `time/process_s` and `time/session_s`, which
  restart with each process (a resumed run): there a new process shows as a drop of either, or
  as a change of their difference (the process's start-up time, constant within a process),
  and the sum is the earlier processes' last kept values plus the current one. Either way the
  time an earlier process spent after its last kept record (writing its last checkpoint,
  epochs that a kill discarded) is not counted. None for a record with neither.
  """
  out, base, prev = [], 0.0, None  # prev: (process_s, session_s) of the last timed record.
  for r in records:
    p, t = r.get("time/process_s"), r.get("time/session_s")
    if "time/run_s" in r:
      out.append(float(r["time/run_s"]))
      base, prev = (out[-1] - p, (p, t)) if p is not None else (out[-1], None)
      continue
    if p is None:
      out.append(None)
      continue
    if prev is not None and _new_process(prev, (p, t)):
      base += prev[0]  # The earlier processes' time is behind this one.
    prev = (p, t)
    out.append(base + p)
  return out


def run_minutes(records: Sequence[dict]) -> Dict[int, float]:
  """Step -> the run's wall-clock minutes up to that record (`run_seconds`), for the timed
  records."""
  return {r["step"]: sec / 60 for r, sec in zip(records, run_seconds(records))
          if sec is not None and "step" in r}


def _new_process(before, now) -> bool:
  """Whether two (process_s, session_s) pairs of consecutive records come from two processes."""
  (p0, t0), (p1, t1) = before, now
  if p1 < p0:
    return True
  if t0 is None or t1 is None:
    return False
  return t1 < t0 or abs((p1 - t1) - (p0 - t0)) > 0.05  # Start-up times differ by much more.
