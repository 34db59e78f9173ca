"""The one training loop: data on device, compiled epochs, checkpoints, logs, grids.

Every family plugs in through `gm.families.Family`. Randomness is a pure
function of the seed, the epoch (data order) and the global step (the step's
key is `fold_in(rng, step)`), so a run resumed from any checkpoint continues
exactly as the uninterrupted run would.

How the steps of an epoch are driven is chosen per backend by `gm.runtime`
(config `train.epoch_driver`): 'scan' compiles the whole epoch as one
`lax.scan`, 'loop' dispatches one jitted step per batch from Python without any
host sync. Both gather batches on device from a permutation drawn on device.

Several processes (`train.py --distributed`, see `gm.distributed`) run the same
loop over one global mesh; process 0 alone writes the run directory.
"""

import contextlib
import functools
import json
import logging
import os
import signal
import time
from typing import Any, Callable, Dict, List

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gm import (checkpoint, config_utils, data as gm_data, distributed, families, faults, fileio,
                health, integrity, metrics, optim, plots, runtime, sharding)
from gm.errors import UserError

log = logging.getLogger("gm")


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
    self._raw_step = step = make_step(family, mesh)
    self._sums_shape = None
    self._indices = runtime.jit(functools.partial(epoch_indices, n=self.n, batch_size=batch_size))
    if self.driver == "loop":
      def train_step_i(run, sums, data, idx, i):
        return step(run, sums, data, idx[i])
      self._step = runtime.jit(train_step_i, donate_argnums=(0, 1))
    else:
      def train_epoch(run, sums, data, idx):
        return jax.lax.scan(lambda c, i: (step(*c, data, i), None), (run, sums), idx)[0]
      self._epoch = runtime.jit(train_epoch, donate_argnums=(0, 1))

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
    if self.driver == "loop":
      for i in range(self.steps):
        run, sums = self._step(run, sums, data, idx, i)
        if on_step:
          on_step(1)
    else:
      run, sums = self._epoch(run, sums, data, idx)
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
      return self._step.lower(run, sums, data, idx, 0).compile()
    return self._epoch.lower(run, sums, data, idx).compile()


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


def _check_not_foreign(workdir: str) -> None:
  """A file, or a non-empty directory that is not a gm run, is never written to."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise UserError(f"workdir {workdir} is a file; pass a directory path")
  if (os.path.isdir(workdir) and not os.path.exists(os.path.join(workdir, "config.json"))
      and set(os.listdir(workdir)) - {WorkdirLock.NAME}):
    raise UserError(f"workdir {workdir} is not empty and holds no gm run (no config.json); "
                    "choose a new or empty directory")


def prepare_workdir(config: ml_collections.ConfigDict, workdir: str,
                    allow_config_change: bool, dataset: gm_data.Dataset = None) -> None:
  """Creates the run directory, or checks that resuming it with this config is safe.

  Never deletes or overwrites anything: an existing directory must be a gm run
  of the same config (up to `config_utils.RESUMABLE_KEYS`).
  """
  _check_not_foreign(workdir)
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
    if diff and dataset is not None and not distributed.multi():  # (Orbax restores are collective.)
      _check_checkpoint_fits(config, workdir, dataset)  # Before config.json is touched.
    os.replace(cfg_path, cfg_path + f".{int(time.time())}.bak")  # Keep the old one.
  os.makedirs(workdir, exist_ok=True)
  fileio.write_atomic(cfg_path, lambda tmp: _dump_json(new, tmp))


def _check_checkpoint_fits(config, workdir: str, dataset) -> None:
  """A UserError if the run's latest checkpoint does not restore into `config`'s model."""
  ckpt = checkpoint.Checkpointer(workdir, create=False)
  try:
    if ckpt.latest_step() is not None:  # The one training would resume from (nothing is moved).
      ckpt.restore_newest_intact(build(config, dataset)[1], move_damaged=False)
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
  and drawn again: the draw is a function of the seed, so the new file holds the
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
        log.warning("%s is damaged (%s); moved it to %s and drew the same inputs again from the "
                    "seed", path, e, aside)
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


def build(config: ml_collections.ConfigDict, dataset: gm_data.Dataset):
  """Family and initial run state for a config (shared by training and eval)."""
  family = families.get(config)
  per_step = family.examples_per_step(config.train.batch_size)
  steps_per_epoch = len(dataset.train["image"]) // per_step
  family.total_steps = steps_per_epoch * config.train.num_epochs
  key = jax.random.PRNGKey(config.seed)
  init_key, rng, data_rng, monitor_key = jax.random.split(key, 4)
  example = {k: v[:per_step] for k, v in dataset.train.items()}
  model = family.init(init_key, example)
  run = RunState(model=model, step=jnp.zeros((), jnp.int32), rng=rng, data_rng=data_rng)
  return family, run, monitor_key


def _check_sizes(config, dataset, per_step: int):
  b = config.train.batch_size
  if b <= 0 or config.train.num_epochs < 0:
    raise UserError("train.batch_size must be > 0 and train.num_epochs >= 0")
  n = len(dataset.train["image"])
  if n < per_step:
    what = f"one step's {per_step}" if per_step != b else f"one batch of {b}"
    raise UserError(f"the training set has {n} examples, fewer than {what}; "
                    "lower --config.train.batch_size or add data")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       allow_config_change: bool = False) -> RunState:
  """Trains `config` in `workdir`, resuming from its latest checkpoint if any.

  Returns:
    The final RunState.
  """
  workdir = os.path.abspath(workdir)
  dataset = gm_data.load(config.data)  # Validate everything before touching the workdir.
  tc = config.train
  per_step = families.get(config).examples_per_step(tc.batch_size)  # Checks the config too.
  _check_sizes(config, dataset, per_step)
  if tc.get("on_nonfinite", "stop") not in ("stop", "rollback"):
    raise UserError(f"train.on_nonfinite={tc.on_nonfinite!r}; valid: stop, rollback")
  mesh = sharding.data_mesh(tc.get("num_devices", 0))
  sharding.check_batch(mesh, tc.batch_size)
  _check_not_foreign(workdir)  # Before the lock file is written into it.
  distributed.raise_if_any(None)  # Several processes: all have checked before process 0 writes.
  with contextlib.ExitStack() as stack:
    error = None
    if distributed.is_primary():  # The one writer of the run directory.
      try:
        os.makedirs(workdir, exist_ok=True)
        stack.enter_context(WorkdirLock(workdir))
        prepare_workdir(config, workdir, allow_config_change, dataset)
      except UserError as e:
        error = e
    distributed.raise_if_any(error)
    return _train(config, workdir, dataset, mesh, per_step)


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


def _train(config, workdir, dataset, mesh, per_step) -> RunState:
  """The body of `train_and_evaluate`, once the workdir is prepared and locked.

  Divergence: at each epoch's end the logged metrics and all parameters must be
  finite. If not, `train.on_nonfinite='stop'` ends the run with an error naming
  the epoch and the quantity (earlier checkpoints untouched); 'rollback'
  restores the last checkpoint, multiplies every learning rate by
  `train.rollback_lr_factor` and goes on (at most `train.max_rollbacks` times).
  The lowered rate is stored in the checkpoints, so a resume keeps it.
  """
  tc = config.train
  info = dataset.info
  log.info("data: %s from %s (%s): %d train / %d test", info["name"], info["source"],
           info.get("path", ""), info["num_train"], info["num_test"])
  ckpt = checkpoint.Checkpointer(workdir, tc.get("keep_checkpoints", 0))
  primary = distributed.is_primary()
  writer = MetricWriter(workdir, tc.get("tensorboard", True), enabled=primary)
  policy = tc.get("on_nonfinite", "stop")
  # What a (re)start and a rollback share: optimizers at the current learning-rate scale,
  # compiled functions, and the run state restored from the latest checkpoint (if any).
  progress = {"lr_scale": 1.0, "rollbacks": 0}

  def start(adopt_meta: bool = True):
    family, run, monitor_key = build(optim.scale_learning_rates(config, progress["lr_scale"])
                                     if progress["lr_scale"] != 1.0 else config, dataset)
    epoch = 0
    # The newest checkpoint that verifies; damaged newer ones are moved aside (process 0).
    found = ckpt.restore_newest_intact(run, move_damaged=primary)
    if found is not None:
      _, run, meta = found
      epoch = meta["epoch"]
      if adopt_meta and meta.get("lr_scale", 1.0) != progress["lr_scale"]:  # A rolled-back run.
        progress.update(lr_scale=meta["lr_scale"], rollbacks=meta.get("rollbacks", 0))
        return start()
      moved = writer.truncate_after(int(run.step))
      log.info("%s from step %d (epoch %d)%s", "resuming" if adopt_meta else "restarting",
               int(run.step), epoch,
               f"; {moved} later metrics lines moved to metrics.dropped.jsonl" if moved else "")
    elif writer.truncate_after(0):  # Every checkpoint was damaged: the run starts over.
      log.info("no intact checkpoint: starting from step 0; the earlier metrics lines moved to "
               "metrics.dropped.jsonl")
    return family, sharding.replicate(run, mesh), monitor_key, epoch

  family, run, monitor_key, start_epoch = start()
  if mesh is not None:
    log.info("data parallel over %d devices (batch split on mesh axis %r)", mesh.size,
             sharding.DATA_AXIS)
  monitor = load_monitor_inputs(family, workdir, monitor_key, dataset.test, write=primary)
  eval_key, judge_key = jax.random.split(jax.random.PRNGKey(config.seed + 1))
  judge_every = config.eval.get("judge_every", 0)
  judge = (metrics.load_judge(config.eval.judge)  # Fail before training.
           if judge_every and family.uses_judge else None)
  train_data = sharding.replicate({k: jnp.asarray(v) for k, v in dataset.train.items()}, mesh)

  def compile_all(family):
    return (EpochRunner(family, per_step, info["num_train"], tc.get("epoch_driver", "auto"), mesh),
            make_evaluator(family, dataset.test, config.eval.batch_size, mesh),
            runtime.jit(family.monitor_images))

  runner, evaluate, grid_fn = compile_all(family)

  def save(epoch: int):
    step = int(run.step)
    grid = np.asarray(grid_fn(run.model, monitor))
    # More TensorBoard images (VAE: reconstructions), computed on every process as the grid.
    extra = ({tag: np.asarray(v) for tag, v in
              family.tensorboard_images(run.model, dataset.test).items()}
             if tc.get("tensorboard", True) else {})
    if primary:
      plots.save_grid(grid, os.path.join(workdir, "samples", f"step_{step:08d}.png"),
                      cols=family.grid_columns, title=f"epoch {epoch}, step {step}")
      # The same grid in TensorBoard (samples; the AE's: test images and reconstructions),
      # small images upscaled to about 64 px.
      writer.image("samples", np.asarray(plots.grid_image(
          grid, family.grid_columns, scale=max(1, 64 // grid.shape[1]))), step)
      for tag, images in extra.items():
        writer.image(tag, np.asarray(plots.grid_image(
            images, 8, scale=max(1, 64 // images.shape[1]))), step)
    ckpt.save(step, run, {"epoch": epoch, "step": step, "data": info, **progress})

  if start_epoch == 0 and ckpt.latest_step() is None:
    save(0)  # The untrained model's grid: the first frame of the evolution.

  bar = plots.progress(total=tc.num_epochs * runner.steps, initial=start_epoch * runner.steps,
                       enabled=tc.get("progress", True) and primary)
  history = []  # This session's records, for the family's health warnings.
  stop = GracefulStop()
  t_session = time.perf_counter()  # time/session_s: this process's loop time, all of it.
  try:
    epoch = start_epoch
    while epoch < tc.num_epochs:
      epoch += 1
      t0 = time.perf_counter()
      run, train_metrics = runner(run, train_data, epoch, on_step=bar.update)
      record = {"epoch": epoch, **{f"train/{k}": float(v)
                                   for k, v in jax.device_get(train_metrics).items()}}
      record["time/epoch_s"] = time.perf_counter() - t0
      bad = _nonfinite(record, run.model)
      if not bad and (epoch % tc.get("eval_every", 1) == 0 or epoch == tc.num_epochs):
        record.update({f"test/{k}": v for k, v in
                       evaluate(run.model, jax.random.fold_in(eval_key, epoch)).items()})
      if not bad and judge_every and (epoch % judge_every == 0 or epoch == tc.num_epochs):
        key = jax.random.fold_in(judge_key, epoch)
        scores = family.judge_metrics(run.model, judge, key, dataset.test)
        record.update({f"{family.score_prefix}/{k}": v for k, v in scores.items()})
        raw = family.raw_state(run.model)  # With a parameter EMA: the trained weights too.
        if raw is not None:
          scores = family.judge_metrics(raw, judge, key, dataset.test)
          record.update({f"{family.score_prefix}_raw/{k}": v for k, v in scores.items()})
      bad = bad or _nonfinite(record)
      if bad:
        last = ckpt.latest_step()
        where = f"non-finite {', '.join(bad)} at epoch {epoch}"
        if policy != "rollback" or progress["rollbacks"] >= tc.get("max_rollbacks", 3):
          raise UserError(
              f"{where}; the last finite checkpoint is step {last}; lower the learning rate "
              "(--config.optim.lr, or optim_g/optim_d for GANs) and resume, or set "
              "--config.train.on_nonfinite=rollback" +
              (f" (gave up after {progress['rollbacks']} rollbacks)" if progress["rollbacks"] else ""))
        progress["lr_scale"] *= tc.get("rollback_lr_factor", 0.5)
        progress["rollbacks"] += 1
        family, run, _, epoch = start(adopt_meta=False)
        runner, evaluate, grid_fn = compile_all(family)
        log.warning("%s: rolled back to step %d (epoch %d); learning rates now x%g of the "
                    "config's (rollback %d of at most %d)", where, int(run.step), epoch,
                    progress["lr_scale"], progress["rollbacks"], tc.get("max_rollbacks", 3))
        bar.close()
        bar = plots.progress(total=tc.num_epochs * runner.steps, initial=epoch * runner.steps,
                             enabled=tc.get("progress", True) and primary)
        history.clear()
        continue
      if progress["lr_scale"] != 1.0:
        record["train/lr_scale"] = progress["lr_scale"]
      # Everything since the loop began: epochs, evaluations, judge scores, earlier checkpoints.
      record["time/session_s"] = time.perf_counter() - t_session
      record["time/process_s"] = process_seconds()  # From process start: imports, data, compiles.
      writer.write(int(run.step), record)
      history.append(record)
      for warning in health.warnings(config, history):
        log.warning("epoch %d: %s", epoch, warning)
      faults.kill_point("epoch_logged")
      bar.set_postfix({k.split("/")[-1]: f"{v:.4g}" for k, v in record.items()
                       if k.startswith(("train/loss", "test/")) and isinstance(v, float)})
      stopping = distributed.any_process(bool(stop.requested))  # A signal to any process.
      if epoch % tc.checkpoint_every == 0 or epoch == tc.num_epochs:
        save(epoch)
      elif stopping:
        save(epoch)  # Off-schedule: nothing done is lost.
      if stopping and epoch < tc.num_epochs:
        log.info("stopped by %s after epoch %d; checkpoint at step %d written; run the same "
                 "command to resume", stop.requested or "another process's signal", epoch,
                 int(run.step))
        raise KeyboardInterrupt
  finally:
    stop.restore()
    bar.close()
    writer.close()
    ckpt.close()
  return run


class GracefulStop:
  """SIGINT / SIGTERM: the first finishes the current epoch and checkpoints it; a second stops now.

  `requested` is the signal's name once one arrived. Only the main thread can
  install handlers; elsewhere this does nothing.
  """

  def __init__(self):
    self.requested = ""
    self._old = {}
    try:
      for sig in (signal.SIGINT, signal.SIGTERM):
        self._old[sig] = signal.signal(sig, self._handle)
    except ValueError:  # Not the main thread.
      self._old = {}

  def _handle(self, signum, frame):
    del frame
    if self.requested:
      raise KeyboardInterrupt
    self.requested = signal.Signals(signum).name
    log.warning("%s: finishing this epoch and writing a checkpoint (again to stop now, "
                "losing the epoch in progress)", self.requested)

  def restore(self):
    for sig, handler in self._old.items():
      signal.signal(sig, handler)


def process_seconds() -> float:
  """Wall-clock seconds since this process started (Linux: /proc; elsewhere since gm.loop's
  import)."""
  try:
    with open("/proc/self/stat") as f:
      start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
      uptime = float(f.read().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
  except (OSError, ValueError, IndexError):
    return time.perf_counter() - _IMPORTED


_IMPORTED = time.perf_counter()


def _nonfinite(record: Dict[str, Any], model: Any = None) -> List[str]:
  """Names of non-finite logged metrics, and of parameter arrays of `model` if given."""
  bad = [k for k, v in record.items() if isinstance(v, float) and not np.isfinite(v)]
  if model is not None and not bool(_all_finite(model)):
    leaves = jax.tree_util.tree_leaves_with_path(jax.device_get(model))
    names = [jax.tree_util.keystr(path) for path, v in leaves
             if np.issubdtype(np.asarray(v).dtype, np.floating) and not np.isfinite(v).all()]
    bad.append(f"parameters ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})")
  return bad


@jax.jit
def _all_finite(tree) -> jnp.ndarray:
  """One device-side reduction: are all floating-point leaves finite?"""
  leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
  return jnp.all(jnp.stack([jnp.isfinite(x).all() for x in leaves])) if leaves else jnp.bool_(True)
