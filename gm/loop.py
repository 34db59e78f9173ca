"""The one training loop: data on device, compiled epochs, checkpoints, logs, grids.

Every family plugs in through `gm.families.Family`. Randomness is a pure
function of the seed, the epoch (data order) and the global step (the step's
key is `fold_in(rng, step)`), so a run resumed from any checkpoint continues
exactly as the uninterrupted run would.

How the steps of an epoch are driven is chosen per backend (config
`train.epoch_driver`): 'scan' compiles the whole epoch as one `lax.scan` (fastest on
GPU/TPU), 'loop' dispatches one jitted step per batch from Python without any
host sync (fastest on XLA:CPU, where a scanned body runs ~3x slower); 'auto'
picks 'loop' on CPU and 'scan' elsewhere. Both gather batches on device from a
permutation drawn on device.
"""

import functools
import json
import logging
import os
import signal
import time
from typing import Any, Callable, Dict

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gm import checkpoint, config_utils, data as gm_data, families, metrics, plots, sharding
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


def resolve_driver(driver: str) -> str:
  if driver == "auto":
    return "loop" if jax.default_backend() == "cpu" else "scan"
  if driver not in ("loop", "scan"):
    raise UserError(f"train.epoch_driver={driver!r}; valid: auto, loop, scan")
  return driver


class EpochRunner:
  """Runs one epoch of training steps on device data; returns mean metrics."""

  def __init__(self, family: families.Family, batch_size: int, num_examples: int,
               driver: str = "auto", mesh=None):
    """`batch_size`: examples per step (`family.examples_per_step` of the config's batch)."""
    self.batch_size, self.n = batch_size, num_examples
    self.steps = num_examples // batch_size
    self.driver = resolve_driver(driver)
    step = make_step(family, mesh)
    self._indices = jax.jit(functools.partial(epoch_indices, n=self.n, batch_size=batch_size))
    if self.driver == "loop":
      self._first = jax.jit(lambda run, data, idx, i: step(run, None, data, idx[i]),
                            donate_argnums=0)
      self._step = jax.jit(lambda run, sums, data, idx, i: step(run, sums, data, idx[i]),
                           donate_argnums=(0, 1))
    else:
      def epoch(run, data, idx):
        run, sums = step(run, None, data, idx[0])
        return jax.lax.scan(lambda c, i: (step(*c, data, i), None), (run, sums), idx[1:])[0]
      self._epoch = jax.jit(epoch, donate_argnums=0)

  def __call__(self, run: RunState, data, epoch: int, on_step: Callable[[int], None] = None):
    idx = self._indices(run.data_rng, epoch)
    if self.driver == "loop":
      run, sums = self._first(run, data, idx, 0)
      for i in range(1, self.steps):
        run, sums = self._step(run, sums, data, idx, i)
        if on_step:
          on_step(1)
      if on_step:
        on_step(1)
    else:
      run, sums = self._epoch(run, data, idx)
      if on_step:
        on_step(self.steps)
    return run, jax.tree.map(lambda s: s / self.steps, sums)


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
                    allow_config_change: bool) -> None:
  """Creates the run directory, or checks that resuming it with this config is safe.

  Never deletes or overwrites anything: an existing directory must be a gm run
  of the same config (up to `config_utils.RESUMABLE_KEYS`).
  """
  _check_not_foreign(workdir)
  cfg_path = os.path.join(workdir, "config.json")
  new = config_utils.to_dict(config)
  if os.path.exists(cfg_path):
    with open(cfg_path) as f:
      old = json.load(f)
    diff = config_utils.differences(old, new)
    if diff and not allow_config_change:
      raise UserError(f"config differs from the run in {workdir} at: {', '.join(diff)}; "
                      "use a new --workdir, or pass --allow_config_change to resume anyway")
    if not diff and old == new:
      return
    os.replace(cfg_path, cfg_path + f".{int(time.time())}.bak")  # Keep the old one.
  os.makedirs(workdir, exist_ok=True)
  with open(cfg_path, "w") as f:
    json.dump(new, f, indent=2, sort_keys=True)


class MetricWriter:
  """metrics.jsonl (one object per logged epoch) plus TensorBoard scalars."""

  def __init__(self, workdir: str, tensorboard: bool = True):
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.tb = None
    if tensorboard:
      try:
        from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
        self.tb = SummaryWriter(os.path.join(workdir, "tensorboard"))
      except ImportError:
        log.warning("tensorboardX not installed: no TensorBoard event files")

  def write(self, step: int, record: Dict[str, Any]) -> None:
    with open(self.path, "a") as f:
      f.write(json.dumps({"step": step, **record}) + "\n")
    if self.tb:
      for k, v in record.items():
        if isinstance(v, (int, float)) and k not in ("epoch", "step"):
          self.tb.add_scalar(k, v, step)
      self.tb.flush()

  def close(self):
    if self.tb:
      self.tb.close()


def load_monitor_inputs(family, workdir: str, key: jax.Array, test) -> Dict[str, np.ndarray]:
  """Fixed monitoring inputs, drawn once per run and saved as monitor.npz."""
  path = os.path.join(workdir, "monitor.npz")
  if os.path.exists(path):
    with np.load(path) as f:
      return dict(f)
  inputs = jax.device_get(family.monitor_inputs(key, test))
  np.savez(path, **inputs)
  return dict(inputs)


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
  mesh = sharding.data_mesh(tc.get("num_devices", 0))
  sharding.check_batch(mesh, tc.batch_size)
  _check_not_foreign(workdir)  # Before the lock file is written into it.
  os.makedirs(workdir, exist_ok=True)
  with WorkdirLock(workdir):
    prepare_workdir(config, workdir, allow_config_change)
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
  """The body of `train_and_evaluate`, once the workdir is prepared and locked."""
  tc = config.train
  info = dataset.info
  log.info("data: %s from %s (%s): %d train / %d test", info["name"], info["source"],
           info.get("path", ""), info["num_train"], info["num_test"])
  family, run, monitor_key = build(config, dataset)
  ckpt = checkpoint.Checkpointer(workdir, tc.get("keep_checkpoints", 0))

  start_epoch = 0
  if ckpt.latest_step() is not None:
    run, meta = ckpt.restore(ckpt.latest_step(), run)
    start_epoch = meta["epoch"]
    log.info("resuming from step %d (epoch %d)", int(run.step), start_epoch)
  if mesh is not None:
    log.info("data parallel over %d devices (batch split on mesh axis %r)", mesh.size,
             sharding.DATA_AXIS)
  run = sharding.replicate(run, mesh)

  monitor = load_monitor_inputs(family, workdir, monitor_key, dataset.test)
  grid_fn = jax.jit(family.monitor_images)
  evaluate = make_evaluator(family, dataset.test, config.eval.batch_size, mesh)
  eval_key, judge_key = jax.random.split(jax.random.PRNGKey(config.seed + 1))
  writer = MetricWriter(workdir, tc.get("tensorboard", True))
  judge_every = config.eval.get("judge_every", 0)
  judge = (metrics.load_judge(config.eval.judge)  # Fail before training.
           if judge_every and family.uses_judge else None)

  def save(epoch: int):
    step = int(run.step)
    plots.save_grid(np.asarray(grid_fn(run.model, monitor)),
                    os.path.join(workdir, "samples", f"step_{step:08d}.png"),
                    cols=family.grid_columns, title=f"epoch {epoch}, step {step}")
    ckpt.save(step, run, {"epoch": epoch, "step": step, "data": info})

  if start_epoch == 0 and ckpt.latest_step() is None:
    save(0)  # The untrained model's grid: the first frame of the evolution.

  train_data = sharding.replicate({k: jnp.asarray(v) for k, v in dataset.train.items()}, mesh)
  runner = EpochRunner(family, per_step, info["num_train"], tc.get("epoch_driver", "auto"), mesh)
  bar = plots.progress(total=tc.num_epochs * runner.steps, initial=start_epoch * runner.steps,
                       enabled=tc.get("progress", True))
  stop = GracefulStop()
  try:
    for epoch in range(start_epoch + 1, tc.num_epochs + 1):
      t0 = time.perf_counter()
      run, train_metrics = runner(run, train_data, epoch, on_step=bar.update)
      record = {"epoch": epoch, **{f"train/{k}": float(v)
                                   for k, v in jax.device_get(train_metrics).items()}}
      record["time/epoch_s"] = time.perf_counter() - t0
      if epoch % tc.get("eval_every", 1) == 0 or epoch == tc.num_epochs:
        record.update({f"test/{k}": v for k, v in
                       evaluate(run.model, jax.random.fold_in(eval_key, epoch)).items()})
      if judge_every and (epoch % judge_every == 0 or epoch == tc.num_epochs):
        scores = family.judge_metrics(run.model, judge, jax.random.fold_in(judge_key, epoch),
                                      dataset.test)
        record.update({f"{family.score_prefix}/{k}": v for k, v in scores.items()})
      _check_finite(record, epoch)
      writer.write(int(run.step), record)
      bar.set_postfix({k.split("/")[-1]: f"{v:.4g}" for k, v in record.items()
                       if k.startswith(("train/loss", "test/")) and isinstance(v, float)})
      if epoch % tc.checkpoint_every == 0 or epoch == tc.num_epochs:
        save(epoch)
      elif stop.requested:
        save(epoch)  # Off-schedule: nothing done is lost.
      if stop.requested and epoch < tc.num_epochs:
        log.info("stopped by %s after epoch %d; checkpoint at step %d written; run the same "
                 "command to resume", stop.requested, epoch, int(run.step))
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


def _check_finite(record: Dict[str, Any], epoch: int) -> None:
  bad = [k for k, v in record.items() if isinstance(v, float) and not np.isfinite(v)]
  if bad:
    raise UserError(f"non-finite {', '.join(bad)} at epoch {epoch}; lower the learning rate "
                    "(--config.optim.lr) and resume or restart")
