"""The one training loop: data on device, compiled epochs, checkpoints, logs, grids.

Every family plugs in through `gm.families.Family`. `train_and_evaluate` reads
top to bottom: check the config and data, take the run directory, build or
restore the state, then per epoch train, evaluate, score, check for divergence,
log and checkpoint. A run resumed from any checkpoint continues exactly as the
uninterrupted run would (`gm.train.epochs`).

Several processes (`train.py --distributed`, see `gm.backend.distributed`) run the same
loop over one global mesh; process 0 alone writes the run directory.
"""

import contextlib
import logging
import os
import time
from typing import Any, Dict

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gm import checkpoint, data as gm_data, families, faults, optim, plots
from gm.backend import distributed, runtime, sharding
from gm import judge as judge_lib
from gm.errors import UserError
from gm.metrics import sample_scores
from gm.train import divergence, health, progress as progress_lib, rundir, stop as stop_lib
from gm.train.epochs import EpochRunner, RunState
from gm.train.evaluate import make_evaluator

log = logging.getLogger("gm")


def build(config: ml_collections.ConfigDict, dataset: gm_data.Dataset):
  """Family and initial run state for a config (shared by training and eval)."""
  family = families.get(config)
  per_step = family.examples_per_step(config.train.batch_size)
  steps_per_epoch = len(dataset.train["image"]) // per_step
  family.total_steps = steps_per_epoch * config.train.num_epochs
  family.steps_per_epoch = steps_per_epoch
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


def validate(config: ml_collections.ConfigDict):
  """What train.py checks before it writes anything: the data load, the family and its
  config, batch sizes against the data and the devices, the networks' geometry against the
  images. Returns (dataset, examples per step, device mesh); raises a one-line UserError."""
  dataset = gm_data.load(config.data)
  tc = config.train
  family = families.get(config)  # Checks the config too.
  per_step = family.examples_per_step(tc.batch_size)
  _check_sizes(config, dataset, per_step)
  family.check_data(dataset.train["image"].shape[1:])  # The networks' geometry vs the data.
  _check_step(config, family, dataset, per_step)
  divergence.Rollback(tc)  # Its options.
  mesh = sharding.data_mesh(tc.num_devices)
  sharding.check_batch(mesh, tc.batch_size)
  return dataset, per_step, mesh


def _check_step(config, family, dataset, per_step: int) -> None:
  """The family's init and one train step traced on a batch of the data (shapes only:
  `jax.eval_shape`, nothing computed), so a model the data cannot go through is a one-line
  ConfigError before the run directory exists, not a crash after it."""
  from gm.errors import ConfigError  # pylint: disable=g-import-not-at-top
  n = len(dataset.train["image"])
  family.steps_per_epoch = n // per_step
  family.total_steps = family.steps_per_epoch * max(config.train.num_epochs, 1)
  batch = {k: v[:per_step] for k, v in dataset.train.items()}
  key = jax.random.PRNGKey(0)
  try:
    state = jax.eval_shape(family.init, key, batch)
    jax.eval_shape(family.train_step, state, batch, key)
  except UserError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    shape = "x".join(map(str, dataset.train["image"].shape[1:]))
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:240]
    raise ConfigError(f"the {config.family} model cannot train on the data's {shape} images "
                      f"with this config ({type(e).__name__}: {first}); check model.* against "
                      f"data.image_size") from None


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       allow_config_change: bool = False) -> RunState:
  """Trains `config` in `workdir`, resuming from its latest checkpoint if any.

  Returns:
    The final RunState.
  """
  workdir = os.path.abspath(workdir)
  dataset, per_step, mesh = validate(config)  # Everything, before touching the workdir.
  tc = config.train
  rollback = divergence.Rollback(tc)
  rundir.check_not_foreign(workdir)  # Before the lock file is written into it.
  distributed.raise_if_any(None)  # Several processes: all have checked before process 0 writes.
  with contextlib.ExitStack() as stack:
    error = None
    if distributed.is_primary():  # The one writer of the run directory.
      try:
        os.makedirs(workdir, exist_ok=True)
        stack.enter_context(rundir.WorkdirLock(workdir))
        rundir.prepare_workdir(config, workdir, allow_config_change,
                               lambda: build(config, dataset)[1])
      except UserError as e:
        error = e
    distributed.raise_if_any(error)
    return _train(config, workdir, dataset, mesh, per_step, rollback)


class _Programs:
  """The compiled functions of one family: the epoch runner, the evaluator, the grid."""

  def __init__(self, config, family, dataset, per_step: int, mesh):
    self.runner = EpochRunner(family, per_step, dataset.info["num_train"],
                              config.train.epoch_driver, mesh)
    self.evaluate = make_evaluator(family, dataset.test, config.eval.batch_size, mesh)
    self.grid = runtime.jit(family.monitor_images)


def _train(config, workdir, dataset, mesh, per_step, rollback) -> RunState:
  """The body of `train_and_evaluate`, once the workdir is prepared and locked."""
  tc, info = config.train, dataset.info
  log.info("data: %s from %s (%s): %d train / %d test", info["name"], info["source"],
           info.get("path", ""), info["num_train"], info["num_test"])
  ckpt = checkpoint.Checkpointer(workdir, tc.keep_checkpoints)
  primary = distributed.is_primary()
  writer = rundir.MetricWriter(workdir, tc.tensorboard, enabled=primary)

  def start(adopt_meta: bool = True):
    """Family, run state (restored from the newest intact checkpoint if any) and epoch, with
    the optimizers at the current learning-rate scale."""
    scaled = (optim.scale_learning_rates(config, rollback.lr_scale)
              if rollback.lr_scale != 1.0 else config)
    family, run, monitor_key = build(scaled, dataset)
    epoch = 0
    found = ckpt.restore_newest_intact(run, move_damaged=primary)  # Damaged newer ones aside.
    if found is not None:
      _, run, meta = found
      epoch = meta["epoch"]
      if adopt_meta and rollback.adopt(meta):  # A rolled-back run: rebuild its optimizers.
        return start()
      moved = writer.truncate_after(int(run.step))
      log.info("%s from step %d (epoch %d)%s", "resuming" if adopt_meta else "restarting",
               int(run.step), epoch,
               f"; {moved} later metrics lines moved to metrics.dropped.jsonl" if moved else "")
    elif writer.truncate_after(0):  # Every checkpoint was damaged: the run starts over.
      log.info("no intact checkpoint: starting from step 0; the earlier metrics lines moved to "
               "metrics.dropped.jsonl")
    return family, sharding.replicate(run, mesh), monitor_key, epoch

  family, run, monitor_key, epoch = start()
  if mesh is not None:
    log.info("data parallel over %d devices (batch split on mesh axis %r)", mesh.size,
             sharding.DATA_AXIS)
  monitor = rundir.load_monitor_inputs(family, workdir, monitor_key, dataset.test, write=primary)
  eval_key, judge_key = jax.random.split(jax.random.PRNGKey(config.seed + 1))
  # judge_key is the same at every scored checkpoint (as `gan-score`'s): the same generator
  # inputs each time, so a change of score is the generator's, not the draw's.
  score_every = config.eval.score_every
  judge = (judge_lib.load_judge(config.eval.judge)  # Fail before training.
           if score_every and sample_scores.needs_judge(family) else None)
  inception = (sample_scores.inception_of(config)
               if score_every and family.scoring == "folder" else None)
  train_data = sharding.replicate({k: jnp.asarray(v) for k, v in dataset.train.items()}, mesh)
  programs = _Programs(config, family, dataset, per_step, mesh)

  def save(epoch: int):
    _save(config, workdir, family, run, programs, monitor, dataset, writer, primary, epoch)
    step = int(run.step)
    ckpt.save(step, run, {"epoch": epoch, "step": step, "data": info, **rollback.meta()})

  if epoch == 0 and ckpt.latest_step() is None:
    save(0)  # The untrained model's grid: the first frame of the evolution.

  def progress_bar(epoch):
    return progress_lib.progress(total=tc.num_epochs * programs.runner.steps,
                          initial=epoch * programs.runner.steps, enabled=tc.progress and primary)

  bar = progress_bar(epoch)
  # The run's records so far (earlier sessions' too), for the health warnings.
  history = (rundir.read_metrics(workdir) if epoch and primary
             and os.path.exists(os.path.join(workdir, "metrics.jsonl")) else [])
  stop = stop_lib.GracefulStop()
  t_session = time.perf_counter()  # time/session_s: this process's loop time, all of it.
  # time/run_s: the earlier processes' time (the last kept record's) + this process's.
  run_base = next((s for s in reversed(rundir.run_seconds(history)) if s is not None), 0.0)
  try:
    while epoch < tc.num_epochs:
      epoch += 1
      t0 = time.perf_counter()
      run, train_metrics = programs.runner(run, train_data, epoch, on_step=bar.update)
      record = {"epoch": epoch, **{f"train/{k}": float(v)
                                   for k, v in jax.device_get(train_metrics).items()}}
      record["time/epoch_s"] = time.perf_counter() - t0
      bad = divergence.nonfinite(record, run.model)
      if not bad and (epoch % tc.eval_every == 0 or epoch == tc.num_epochs):
        record.update({f"test/{k}": v for k, v in
                       programs.evaluate(run.model, jax.random.fold_in(eval_key, epoch)).items()})
      if not bad and score_every and (epoch % score_every == 0 or epoch == tc.num_epochs):
        record.update(_scores(family, run.model, judge, judge_key, dataset.test, inception))
      bad = bad or divergence.nonfinite(record)
      if bad:
        where = rollback.diverged(bad, epoch, ckpt.latest_step())  # Raises unless rolling back.
        family, run, _, epoch = start(adopt_meta=False)
        programs = _Programs(config, family, dataset, per_step, mesh)
        log.warning("%s: rolled back to step %d (epoch %d); learning rates now x%g of the "
                    "config's (rollback %d of at most %d)", where, int(run.step), epoch,
                    rollback.lr_scale, rollback.rollbacks, rollback.max_rollbacks)
        bar.close()
        bar = progress_bar(epoch)
        history[:] = (rundir.read_metrics(workdir) if primary and os.path.exists(
            os.path.join(workdir, "metrics.jsonl")) else [])  # As kept: up to the restored step.
        continue
      if rollback.lr_scale != 1.0:
        record["train/lr_scale"] = rollback.lr_scale
      # Everything since the loop began: epochs, evaluations, judge scores, earlier checkpoints.
      record["time/session_s"] = time.perf_counter() - t_session
      record["time/process_s"] = stop_lib.process_seconds()  # Imports, data, compiles too.
      record["time/run_s"] = run_base + record["time/process_s"]  # Over resumes too.
      writer.write(int(run.step), record)
      history.append(record)
      for warning in health.warnings(config, history, family.best_metric):
        log.warning("epoch %d: %s", epoch, warning)
      faults.kill_point("epoch_logged")
      bar.set_postfix({k.split("/")[-1]: f"{v:.4g}" for k, v in record.items()
                       if k.startswith(("train/loss", "test/")) and isinstance(v, float)})
      stopping = distributed.any_process(bool(stop.requested))  # A signal to any process.
      if epoch % tc.checkpoint_every == 0 or epoch == tc.num_epochs or stopping:
        save(epoch)  # Off-schedule when stopping: nothing done is lost.
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


def _scores(family, model, judge, key, test, inception) -> Dict[str, Any]:
  """Sample scores (`gm.metrics.sample_scores`), prefixed; with a parameter EMA the trained
  weights' too."""
  scores = sample_scores.sample_scores(family, model, judge, key, test, inception=inception)
  out = {f"{family.score_prefix}/{k}": v for k, v in scores.items()}
  raw = family.raw_state(model)
  if raw is not None:
    scores = sample_scores.sample_scores(family, raw, judge, key, test, inception=inception)
    out.update({f"{family.score_prefix}_raw/{k}": v for k, v in scores.items()})
  return out


def _save(config, workdir, family, run, programs, monitor, dataset, writer, primary, epoch):
  """The sample grid of a checkpoint: a PNG under samples/ and TensorBoard images."""
  step = int(run.step)
  grid = np.asarray(programs.grid(run.model, monitor))
  # More TensorBoard images (VAE: reconstructions), computed on every process as the grid.
  extra = ({tag: np.asarray(v) for tag, v in
            family.tensorboard_images(run.model, dataset.test).items()}
           if config.train.tensorboard else {})
  if not primary:
    return
  plots.save_grid(grid, os.path.join(workdir, "samples", f"step_{step:08d}.png"),
                  cols=family.grid_columns, title=f"epoch {epoch}, step {step}")
  # The same grid in TensorBoard (samples; the AE's: test images and reconstructions),
  # small images upscaled to about 64 px.
  writer.image("samples", np.asarray(plots.grid_image(
      grid, family.grid_columns, scale=max(1, 64 // grid.shape[1]))), step)
  for tag, images in extra.items():
    writer.image(tag, np.asarray(plots.grid_image(
        images, 8, scale=max(1, 64 // images.shape[1]))), step)
