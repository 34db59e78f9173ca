"""Reliability: SIGKILL at any moment loses nothing; divergence stops or rolls back.

The kill test runs `train.py` as a user would, kills it (at named points via
`GM_KILL_AT`, and at random moments from outside), reruns the same command each
time, and compares the result bit for bit with an uninterrupted run.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from gm import checkpoint, data as gm_data
from gm.train import loop
from gm.errors import UserError
from tests.conftest import ROOT, load_config

EPOCHS = 4
OVERRIDES = {"train.num_epochs": EPOCHS, "train.checkpoint_every": 1, "train.progress": False,
             "train.tensorboard": False, "data.num_train": 256, "data.num_test": 128}


def _config():
  c = load_config("gan_mlp_mnist", "smoke")
  for key, value in OVERRIDES.items():
    group, name = key.split(".")
    c[group][name] = value
  return c


def _command(workdir):
  return [sys.executable, os.path.join(ROOT, "train.py"), "--config",
          os.path.join(ROOT, "configs/gan_mlp_mnist.py:smoke"), "--workdir", str(workdir),
          *[f"--config.{k}={v}" for k, v in OVERRIDES.items()]]


def _start(workdir, kill_at=None):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  env.pop("GM_KILL_AT", None)
  if kill_at:
    env["GM_KILL_AT"] = kill_at
  return subprocess.Popen(_command(workdir), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def _final_state(workdir, config):
  family, run, _ = loop.build(config, gm_data.load(config.data))
  ckpt = checkpoint.Checkpointer(str(workdir), create=False)
  state, meta = ckpt.restore(ckpt.latest_step(), run)
  return ckpt.steps(), meta, [np.asarray(x) for x in jax.tree.leaves(state)]


def _records(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [{k: v for k, v in json.loads(l).items() if not k.startswith("time/")} for l in f]


def _tmp_dirs(workdir):
  return [d for d in os.listdir(os.path.join(workdir, "checkpoints")) if "tmp" in d]


def test_sigkill_at_any_moment_then_rerun_equals_an_uninterrupted_run(tmp_path):
  reference = tmp_path / "reference"
  loop.train_and_evaluate(_config(), str(reference))
  wd = tmp_path / "killed"

  # 1. Killed after epoch 2's metrics line is written, before its checkpoint.
  p = _start(wd, "epoch_logged:2")
  _, err = p.communicate(timeout=300)
  assert p.returncode == -signal.SIGKILL, err[-2000:]
  assert len(_records(wd)) == 2 and checkpoint.Checkpointer(str(wd), create=False).steps() == [0, 4]

  # 2. Rerun; killed while the second checkpoint it writes (epoch 3) is being written.
  p = _start(wd, "checkpoint_writing:2")
  _, err = p.communicate(timeout=300)
  assert p.returncode == -signal.SIGKILL, err[-2000:]
  assert "resuming from step 4 (epoch 1); 1 later metrics lines moved" in err
  assert checkpoint.Checkpointer(str(wd), create=False).steps() == [0, 4, 8]  # not the partial 12
  partial = _tmp_dirs(wd)
  assert partial, "the kill should have left a partially written checkpoint"

  # 3. Reruns killed at random moments (imports, first compile, steps, saves).
  seed = random.randrange(1 << 30)
  rng = random.Random(seed)
  for _ in range(2):
    p = _start(wd)
    time.sleep(rng.uniform(0.5, 8.0))
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=300)

  # 4. The same command once more, to the end.
  p = _start(wd)
  _, err = p.communicate(timeout=300)
  assert p.returncode == 0, f"random kill seed {seed}: {err[-3000:]}"
  assert not _tmp_dirs(wd), f"partial checkpoints {partial} were not cleaned up"

  steps_ref, meta_ref, leaves_ref = _final_state(reference, _config())
  steps, meta, leaves = _final_state(wd, _config())
  assert steps == steps_ref == [0, 4, 8, 12, 16], f"random kill seed {seed}"
  assert meta["epoch"] == meta_ref["epoch"] == EPOCHS
  for a, b in zip(leaves, leaves_ref):
    np.testing.assert_array_equal(a, b, err_msg=f"random kill seed {seed}")
  # One metrics line per epoch, equal to the uninterrupted run's; the redone lines kept aside.
  assert _records(wd) == _records(reference), f"random kill seed {seed}"
  with open(wd / "metrics.dropped.jsonl") as f:
    assert json.loads(f.readline())["epoch"] == 2


def test_nonfinite_parameters_stop_the_run_naming_epoch_and_quantity(tmp_path):
  c = _config()
  c.optim_g.lr = 1e30  # Adam steps of 1e30: parameters overflow in the first epoch.
  with pytest.raises(UserError, match=r"non-finite .*parameters \(\.g.* at epoch 1; the last "
                                      r"finite checkpoint is step 0"):
    loop.train_and_evaluate(c, str(tmp_path / "run"))
  assert checkpoint.Checkpointer(str(tmp_path / "run"), create=False).steps() == [0]
  assert not os.path.exists(tmp_path / "run" / "metrics.jsonl")  # the bad epoch is not logged


def test_rollback_restores_the_last_checkpoint_and_lowers_the_learning_rate(tmp_path, caplog):
  c = _config()
  c.train.on_nonfinite, c.train.rollback_lr_factor, c.train.max_rollbacks = "rollback", 1e-30, 2
  c.train.num_epochs = 2
  c.optim_g.lr = 1e28  # Diverges; x1e-30 gives 1e-2, which trains.
  wd = str(tmp_path / "run")
  with caplog.at_level("WARNING", logger="gm"):
    loop.train_and_evaluate(c, wd)
  assert "rolled back to step 0 (epoch 0); learning rates now x1e-30" in caplog.text
  steps, meta, leaves = _final_state(wd, c)
  assert steps == [0, 4, 8] and meta["lr_scale"] == 1e-30 and meta["rollbacks"] == 1
  assert all(np.isfinite(x).all() for x in leaves if np.issubdtype(x.dtype, np.floating))
  assert [r["train/lr_scale"] for r in _records(wd)] == [1e-30] * 2
  # It is the run with both learning rates x1e-30 from step 0, bit for bit.
  same = _config()
  same.train.num_epochs = 2
  same.optim_g.lr, same.optim_d.lr = 1e28 * 1e-30, same.optim_d.lr * 1e-30
  loop.train_and_evaluate(same, str(tmp_path / "direct"))
  for a, b in zip(leaves, _final_state(str(tmp_path / "direct"), same)[2]):
    np.testing.assert_array_equal(a, b)

  c.optim_g.lr, c.train.rollback_lr_factor, c.train.max_rollbacks = 1e30, 0.5, 1
  with pytest.raises(UserError, match="gave up after 1 rollbacks"):  # still diverging
    loop.train_and_evaluate(c, str(tmp_path / "hopeless"))


def test_gan_health_warnings_name_the_numbers():
  from gm.train import health  # pylint: disable=g-import-not-at-top
  c = _config()
  c.health.d_win_epochs = 3
  winning = {"train/d_loss": 0.2, "train/d_real": 0.995, "train/d_fake": 0.004}
  assert health.warnings(c, [winning] * 2) == []  # not yet 3 epochs in a row
  (w,) = health.warnings(c, [winning] * 3)
  assert "won for 3 epochs" in w and "D(x) 0.995" in w and "D(G(z)) 0.004" in w
  assert health.warnings(c, [winning, {"train/d_loss": 0.7}, winning, winning]) == []
  collapsed = {"test/fake_std": 0.01, "test/real_std": 0.3}
  (w,) = health.warnings(c, [collapsed])
  assert "collapsed" in w and "0.01" in w and "0.3" in w
  assert health.warnings(c, [{"test/fake_std": 0.25, "test/real_std": 0.3}]) == []


def test_gan_eval_measures_the_spread_of_samples():
  """fake_std / real_std: per-pixel std over the batch, averaged (numpy), ~0 for a constant G."""
  from gm import families  # pylint: disable=g-import-not-at-top
  c = _config()
  family = families.get(c)
  batch = {k: v[:64] for k, v in gm_data.load(c.data).test.items()}
  state = family.init(jax.random.PRNGKey(0), batch)
  m = family.eval_step(state, batch, jax.random.PRNGKey(1))
  x = np.asarray(family.inputs(batch))
  np.testing.assert_allclose(m["real_std"], np.full(64, x.std(axis=0).mean()), rtol=1e-5)
  assert float(m["fake_std"][0]) > 0.05
  flat = state.replace(g=state.g.replace(params=jax.tree.map(np.zeros_like, state.g.params)))
  assert float(family.eval_step(flat, batch, jax.random.PRNGKey(1))["fake_std"][0]) < 1e-6


def test_gan_health_warns_when_the_quality_score_drifts_worse():
  """The running median of 3 scored checkpoints >10% worse than its best: a lasting rise is
  caught through a dip; one bad score, a plateau, or a growing run's new stage is not."""
  from gm.train import health  # pylint: disable=g-import-not-at-top
  c = _config()
  c.health.degrade_evals, c.health.degrade_margin = 3, 0.1
  train_only = {"epoch": 0, "train/d_loss": 0.7}

  def run(swds, key="quality/swd", res=None, alpha=None):
    history = []
    for i, v in enumerate(swds, 1):
      stage = {} if res is None else {"train/grow_res": res[i - 1],
                                      "train/grow_alpha": 1.0 if alpha is None else alpha[i - 1]}
      history += [dict(train_only, epoch=10 * i - 5, **stage),
                  {"epoch": 10 * i, key: v, **stage}]
    return history

  # Medians 35, 34, 35, 39, 39, 41: 41 is 21% worse than 34, though 43 -> 38 was a dip.
  history = run([50, 34, 35, 34, 39, 43, 38, 41])
  (w,) = health.warnings(c, history)
  assert "degrading" in w and "(43 -> 38 -> 41) is 41, 21% worse than its best median 34" in w
  assert "(the best score: epoch 20's 34; `eval.py --step best`" in w
  assert health.warnings(c, history[:-2]) != []  # 39, 43, 38: median 39, 15% worse
  assert health.warnings(c, history[:-6]) == []  # 35, 34, 39: median 35
  assert health.warnings(c, history + [train_only]) == []  # only at a scored checkpoint
  assert health.warnings(c, run([50, 34, 35, 34, 60])) == []  # one bad score: median 35
  assert health.warnings(c, run([50, 34, 35, 34, 37, 36, 37])) == []  # median 37: within 10%
  # Larger-is-better scores worsen downwards: medians .95 ... .85, .8.
  (w,) = health.warnings(c, run([0.9, 0.95, 0.96, 0.95, 0.8, 0.85, 0.8], "judge/acc"),
                         ("judge/acc", "max"))
  assert "(0.8 -> 0.85 -> 0.8) is 0.8, 16% worse than its best median 0.95" in w
  # A growing run's 64 px stage starts worse than the 32 px stage ended: compared within it.
  swds, res = [50, 34, 35, 34, 60, 66, 70, 58, 50, 45], [32] * 4 + [64] * 6
  assert health.warnings(c, run(swds[:7])) != []  # across the stages: 66 vs 34
  assert all(health.warnings(c, run(swds[:k], res=res)) == [] for k in range(5, 11))
  (w,) = health.warnings(c, run(swds + [55, 60, 62], res=res + [64] * 3))  # 60 vs 50 in-stage
  assert "is 60, 20% worse than its best median 50" in w and "epoch 100's 45" in w
  # Not while a stage fades in (alpha < 1), and the fade is not part of the stage after it.
  fading = [1.0] * 4 + [0.3, 0.6, 0.9] + [1.0] * 6
  assert health.warnings(c, run(swds[:7], res=res[:7], alpha=fading)) == []
  assert health.warnings(c, run(swds + [55, 60, 62], res=res + [64] * 3, alpha=fading)) != []
  (w,) = health.warnings(c, run([9, 0, 0, 0, 5, 6], "judge/x"), ("judge/x", "min"))
  assert "(0 -> 5 -> 6) is 5, worse than its best median 0;" in w  # No percentage of 0.
  c.health.degrade_evals = 0
  assert health.warnings(c, history) == []
