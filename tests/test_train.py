"""End to end: training writes the run directory, eval writes plots, resume is exact."""

import glob
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from gm import checkpoint, data as gm_data, families
from gm.train import loop
from gm.errors import UserError
from tests.conftest import ROOT, load_config, read_tensorboard
from tests.test_cli import _run


def _leaves(run):
  return [np.asarray(x) for x in jax.tree.leaves(run)]


def test_cli_train_then_eval_all_writes_the_contracted_files(tmp_path):
  wd = str(tmp_path / "vae")
  r = _run("train.py", "--config", "configs/vae_mnist.py:smoke", "--workdir", wd,
           "--config.train.progress=false")
  assert r.returncode == 0, r.stderr[-2000:]
  assert "from embedded" in r.stderr  # The log says which data was used.
  config = json.load(open(os.path.join(wd, "config.json")))
  assert config["data"]["source"] == "embedded" and config["family"] == "vae"
  records = [json.loads(l) for l in open(os.path.join(wd, "metrics.jsonl"))]
  assert [r["epoch"] for r in records] == [1, 2]
  # The test ELBO rises between the epochs (measured -539.3 -> -533.4) and beats a model that
  # ignores the image (each pixel a fair coin: 784 log 1/2 = -543.4 nats).
  elbos = [r["test/elbo"] for r in records]
  assert -784 * np.log(2) < elbos[0] < elbos[1] < 0, elbos
  # The loop's running time holds each epoch's steps (and its evaluation, checkpoints).
  session = [r["time/session_s"] for r in records]
  assert 0 < records[0]["time/epoch_s"] <= session[0]
  assert session[1] - session[0] >= records[1]["time/epoch_s"]
  assert glob.glob(os.path.join(wd, "tensorboard", "events.out.tfevents.*"))
  # TensorBoard shows what the plots show: every logged number, and each checkpoint's grid.
  events = read_tensorboard(os.path.join(wd, "tensorboard"))
  assert events["samples"] == [(0, "image"), (16, "image"), (32, "image")]  # Prior samples.
  assert events["reconstructions"] == [(0, "image"), (16, "image"), (32, "image")]
  assert events["test/elbo"] == [(16, "simple_value"), (32, "simple_value")]
  steps = sorted(int(s) for s in os.listdir(os.path.join(wd, "checkpoints")))
  assert steps == [0, 16, 32]  # Step 0 = the untrained model; 512 // 32 = 16 steps/epoch.
  assert len(glob.glob(os.path.join(wd, "samples", "step_*.png"))) == 3

  r = _run("eval.py", "all", "--workdir", wd)
  assert r.returncode == 0, r.stderr[-2000:]
  printed = r.stdout.split()
  names = ["latent_space_step32.png", "latent_grid_step32.png", "interpolate_step32.png",
           "reconstructions_step32.png", "samples_step32.png", "loss_curves.png",
           "evolution.gif", "elbo_step32.json"]
  for name in names:
    path = os.path.join(wd, "eval", name)
    assert path in printed and os.path.getsize(path) > (100 if name.endswith("json") else 1000), name
  result = json.load(open(os.path.join(wd, "eval", "elbo_step32.json")))
  assert result["test/iwae_k100"] >= result["test/elbo_mc"] - 1.0  # IWAE bound is tighter.

  r = _run("eval.py", "samples", "--workdir", wd, "--step", "7")
  assert r.returncode == 2 and "available: 0, 16, 32" in r.stderr
  r = _run("eval.py", "latent-space", "--workdir", wd, "--step", "16", "--std")
  assert r.returncode == 0 and r.stdout.strip().endswith("latent_space_step16.png")


def test_resume_is_exact_and_checkpoints_round_trip(tmp_path, tiny_vae):
  full = loop.train_and_evaluate(tiny_vae, str(tmp_path / "full"))

  tiny_vae.train.num_epochs = 1
  loop.train_and_evaluate(tiny_vae, str(tmp_path / "split"))
  tiny_vae.train.num_epochs = 2  # Extending a run is allowed without a flag.
  resumed = loop.train_and_evaluate(tiny_vae, str(tmp_path / "split"))
  for a, b in zip(_leaves(full), _leaves(resumed)):
    np.testing.assert_array_equal(a, b)

  ckpt = checkpoint.Checkpointer(str(tmp_path / "full"), create=False)
  assert ckpt.steps() == [0, 4, 8]
  restored, meta = ckpt.restore(8, full)
  assert meta["epoch"] == 2 and meta["data"]["source"] == "embedded"
  for a, b in zip(_leaves(full), _leaves(restored)):
    np.testing.assert_array_equal(a, b)
  lines = open(tmp_path / "split" / "metrics.jsonl").read().splitlines()
  assert [json.loads(l)["epoch"] for l in lines] == [1, 2]
  # TensorBoard's 'reconstructions': rows of 8 test images, then their decoded posterior means.
  family, params = families.get(tiny_vae), full.model.params
  test = gm_data.load(tiny_vae.data).test
  (tag, grid), = family.tensorboard_images(full.model, test).items()
  x = family.inputs({"image": test["image"][:32]})
  recon = family.images(params, family.posterior(params, x)[0])
  assert tag == "reconstructions" and grid.shape == (64, 28, 28, 1)
  rows = np.asarray(grid).reshape(4, 2, 8, 28, 28, 1)  # [row pair, original | reconstruction]
  np.testing.assert_array_equal(rows[:, 0].reshape(x.shape), x)
  np.testing.assert_allclose(rows[:, 1].reshape(x.shape), recon, atol=1e-5)


@pytest.mark.parametrize("name", ["vae_mnist", "gan_mlp_mnist"])
def test_epoch_drivers_compile_one_step_program_and_agree(name, caplog):
  """Both drivers compile their step program once (not a first step plus the rest), and the
  per-step Python loop (CPU default) and the scanned epoch (GPU default) train alike."""
  c = load_config(name)
  c.data.num_train, c.data.num_test = 4 * c.train.batch_size, 64
  ds = gm_data.load(c.data)
  data = {k: jax.numpy.asarray(v) for k, v in ds.train.items()}
  results = {}
  for driver, program in (("loop", "train_step_i"), ("scan", "train_epoch")):
    family, run, _ = loop.build(c, ds)  # Fresh: the runner donates its input.
    per_step = family.examples_per_step(c.train.batch_size)
    runner = loop.EpochRunner(family, per_step, len(ds.train["image"]), driver)
    caplog.clear()
    with jax.log_compiles(True), caplog.at_level("WARNING"):
      for epoch in range(2):
        run, metrics = runner(run, data, epoch)
      runner.compiled(run, data)  # From jit's cache.
    compiles = [r.getMessage() for r in caplog.records
                if r.getMessage().startswith(f"Finished XLA compilation of jit({program})")]
    assert len(compiles) == 1, compiles
    results[driver] = (run, metrics)
  assert int(results["loop"][0].step) == int(results["scan"][0].step) == 2 * runner.steps
  for k, v in results["loop"][1].items():
    np.testing.assert_allclose(v, results["scan"][1][k], rtol=1e-4, err_msg=k)
  for a, b in zip(_leaves(results["loop"][0].model), _leaves(results["scan"][0].model)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_changed_config_on_resume_needs_the_flag(tmp_path, tiny_vae):
  tiny_vae.train.num_epochs = 1
  wd = str(tmp_path / "run")
  loop.train_and_evaluate(tiny_vae, wd)
  before = open(os.path.join(wd, "config.json")).read()
  tiny_vae.optim.lr = 0.5
  with pytest.raises(UserError, match="optim.lr"):
    loop.train_and_evaluate(tiny_vae, wd)
  assert open(os.path.join(wd, "config.json")).read() == before
  loop.train_and_evaluate(tiny_vae, wd, allow_config_change=True)
  assert glob.glob(os.path.join(wd, "config.json.*.bak"))  # The old config is kept.


def test_never_writes_into_a_foreign_directory_or_a_file(tmp_path, tiny_vae):
  (tmp_path / "mine").mkdir()
  (tmp_path / "mine" / "thesis.tex").write_text("precious")
  with pytest.raises(UserError, match="not empty"):
    loop.train_and_evaluate(tiny_vae, str(tmp_path / "mine"))
  assert os.listdir(tmp_path / "mine") == ["thesis.tex"]
  (tmp_path / "afile").write_text("x")
  with pytest.raises(UserError, match="is a file"):
    loop.train_and_evaluate(tiny_vae, str(tmp_path / "afile"))


def test_ae_trains_and_draws_its_plots(tmp_path):
  c = load_config("ae_mnist")
  c.data.num_train, c.data.num_test, c.train.num_epochs = 256, 64, 1
  c.train.progress = False
  c.eval.batch_size = 32
  loop.train_and_evaluate(c, str(tmp_path / "ae"))
  from eval import parser, run  # pylint: disable=g-import-not-at-top
  run(parser().parse_args(["all", "--workdir", str(tmp_path / "ae")]))
  produced = sorted(os.listdir(tmp_path / "ae" / "eval"))
  assert produced == sorted(["latent_space_step8.png", "latent_grid_step8.png",
                             "interpolate_step8.png", "reconstructions_step8.png",
                             "loss_curves.png", "evolution.gif", "elbo_step8.json"])
  with pytest.raises(UserError, match="needs a vae or gan run"):
    run(parser().parse_args(["samples", "--workdir", str(tmp_path / "ae")]))


def test_sigint_finishes_the_epoch_and_checkpoints_it(tmp_path):
  """Ctrl-C between scheduled checkpoints loses nothing: the epoch is finished and saved."""
  import signal  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  wd = tmp_path / "run"
  cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--config",
         os.path.join(ROOT, "configs/gan_mlp_mnist.py:smoke"), "--workdir", str(wd),
         "--config.train.num_epochs=500", "--config.train.checkpoint_every=100",
         "--config.train.progress=False", "--config.train.tensorboard=False"]
  proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  metrics = wd / "metrics.jsonl"
  deadline = time.time() + 300
  while (not metrics.exists() or not metrics.read_text().strip()) and time.time() < deadline:
    time.sleep(0.2)
  proc.send_signal(signal.SIGINT)
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == 130, err[-2000:]
  last = json.loads(metrics.read_text().splitlines()[-1])
  assert 1 <= last["epoch"] < 500 and "checkpoint at step" in err
  steps = sorted(int(d) for d in os.listdir(wd / "checkpoints") if d.isdigit())
  assert steps == [0, last["step"]]  # step 0, and the interrupted epoch (off the 100-epoch schedule)
  resumed = subprocess.run(cmd[:6] + [f"--config.train.num_epochs={last['epoch'] + 1}"] + cmd[7:],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert f"resuming from step {last['step']} (epoch {last['epoch']})" in resumed.stderr
  # The run's wall-clock goes on over the resume: the first process's, then the second's.
  new = json.loads(metrics.read_text().splitlines()[-1])
  assert new["epoch"] == last["epoch"] + 1 and last["time/run_s"] == last["time/process_s"]
  assert new["time/run_s"] == last["time/run_s"] + new["time/process_s"]


def test_run_seconds_sum_the_processes_of_a_resumed_run_in_old_logs_too():
  from gm.train.rundir import run_seconds  # pylint: disable=g-import-not-at-top
  times = lambda p, t: {"time/process_s": p, "time/session_s": t}
  old = [times(10.0, 8.0), times(20.0, 18.0),  # The first process: 2 s of start-up.
         times(5.0, 2.0), times(9.0, 6.0),  # Resumed: both clocks restart.
         times(12.0, 9.5), times(30.0, 27.5),  # Resumed, neither clock below the last one's.
         {"epoch": 0}]  # A record without times.
  assert run_seconds(old) == [10.0, 20.0, 25.0, 29.0, 41.0, 59.0, None]
  # A resume by this version after an old one: time/run_s goes on from the rebuilt sum.
  mixed = old[:4] + [{**times(4.0, 1.0), "time/run_s": 33.0}, times(6.0, 3.0),
                     {**times(1.0, 0.5), "time/run_s": 36.0}]
  assert run_seconds(mixed)[4:] == [33.0, 35.0, 36.0]


def test_a_second_training_process_on_the_same_run_is_refused(tmp_path, tiny_vae):
  wd = tmp_path / "run"
  wd.mkdir()
  (wd / "train.lock").write_text(str(os.getpid()))  # a live process holds the run
  with pytest.raises(UserError, match=f"another training process \\(pid {os.getpid()}\\)"):
    loop.train_and_evaluate(tiny_vae, str(wd))
  assert os.listdir(wd) == ["train.lock"]  # nothing else was written
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True).stdout.strip()
  (wd / "train.lock").write_text(dead)  # left behind by a killed run: taken over
  tiny_vae.train.num_epochs = 1
  loop.train_and_evaluate(tiny_vae, str(wd))
  assert "train.lock" not in os.listdir(wd) and (wd / "checkpoints").is_dir()
