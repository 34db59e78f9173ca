"""Multi-host training, run for real: two train.py processes joined by jax.distributed on CPU.

Each process sees one CPU device; together they form a 2-device data mesh, the
same as one process with two simulated devices. Process 0 alone writes the run
directory; checkpoints are saved by both (Orbax).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np

from tests.conftest import ROOT

CONFIG = "configs/vae_mnist.py:smoke"


def _env(devices: int = 1):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  return env


def _cmd(wd, epochs: int, *extra):
  return [sys.executable, os.path.join(ROOT, "train.py"), "--config", os.path.join(ROOT, CONFIG),
          "--workdir", str(wd), f"--config.train.num_epochs={epochs}",
          "--config.train.progress=false", "--config.train.tensorboard=false", *extra]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _launch(wd, epochs: int, *extra):
  port = _free_port()
  return [subprocess.Popen(_cmd(wd, epochs, *extra, "--distributed",
                                f"--coordinator_address=localhost:{port}", "--num_processes=2",
                                f"--process_id={i}"),
                           cwd=ROOT, env=_env(1), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True) for i in range(2)]


def _finish(procs):
  errs = []
  for p in procs:
    _, err = p.communicate(timeout=300)
    errs.append(err)
  return [p.returncode for p in procs], errs


def _records(wd):
  return [json.loads(l) for l in open(os.path.join(wd, "metrics.jsonl"))]


def test_two_processes_train_like_one_process_with_two_devices_stop_resume_and_fail_together(tmp_path):
  ref = subprocess.run(_cmd(tmp_path / "ref", 4), cwd=ROOT, env=_env(2), capture_output=True,
                       text=True, timeout=300)
  assert ref.returncode == 0, ref.stderr[-2000:]
  assert "data parallel over 2 devices" in ref.stderr

  # SIGINT to process 1 only: both finish the epoch, process 0 checkpoints it, both exit 130.
  wd = tmp_path / "multi"
  procs = _launch(wd, 500, "--config.train.checkpoint_every=100")
  metrics = wd / "metrics.jsonl"
  deadline = time.time() + 300
  while (not metrics.exists() or not metrics.read_text().strip()) and time.time() < deadline:
    time.sleep(0.2)
  procs[1].send_signal(signal.SIGINT)
  codes, errs = _finish(procs)
  assert codes == [130, 130], errs[0][-1500:] + errs[1][-1500:]
  assert "process 0 of 2; 1 local / 2 global devices" in errs[0]
  assert "data parallel over 2 devices" in errs[0]
  assert "stopped by another process's signal" in errs[0]
  info = [l for l in errs[1].splitlines() if l[:1] == "I" and l[1:5].isdigit()]
  assert not info, info  # Process 1 logs warnings and errors only.
  stopped = _records(wd)[-1]
  assert sorted(int(d) for d in os.listdir(wd / "checkpoints")) == [0, stopped["step"]]

  # Resume to at least 4 epochs.
  epochs = max(4, stopped["epoch"] + 1)
  codes, errs = _finish(_launch(wd, epochs, "--config.train.checkpoint_every=100"))
  assert codes == [0, 0], errs[0][-1500:] + errs[1][-1500:]
  assert f"resuming from step {stopped['step']} (epoch {stopped['epoch']})" in errs[0]

  # One writer: each epoch logged once, one grid per checkpoint, nothing else left behind.
  records = _records(wd)
  assert [r["epoch"] for r in records] == list(range(1, epochs + 1))
  files = sorted(os.listdir(wd))
  backups = [f for f in files if f.startswith("config.json.") and f.endswith(".bak")]
  assert len(backups) == 1  # The 500-epoch config, kept when the resume changed num_epochs.
  assert sorted(set(files) - set(backups)) == ["checkpoints", "config.json", "metrics.jsonl",
                                               "monitor.npz", "samples"]
  steps = sorted(int(d) for d in os.listdir(wd / "checkpoints"))
  assert steps == [0, stopped["step"], 16 * epochs]
  assert len(os.listdir(wd / "samples")) == 3
  # The same data-parallel computation as one process with two devices.
  for got, want in zip(records, _records(tmp_path / "ref")):
    for key in ("train/loss", "test/elbo"):
      np.testing.assert_allclose(got[key], want[key], rtol=1e-5, err_msg=key)
  np.testing.assert_array_equal(np.load(wd / "monitor.npz")["z"],
                                np.load(tmp_path / "ref" / "monitor.npz")["z"])

  # An error in process 0's workdir checks stops every process with a one-line message.
  codes, errs = _finish(_launch(wd, epochs, "--config.train.checkpoint_every=100",
                                "--config.optim.lr=0.5"))
  assert codes == [2, 2]
  assert "config differs from the run" in errs[0] and "at: optim.lr" in errs[0]
  assert "error: process 0 stopped with an error" in errs[1]
  assert len(_records(wd)) == epochs


def test_process_flags_need_distributed(tmp_path):
  r = subprocess.run(_cmd(tmp_path / "x", 1, "--num_processes=2"), cwd=ROOT, env=_env(1),
                     capture_output=True, text=True, timeout=120)
  assert r.returncode == 2 and "--num_processes is for multi-host runs; add --distributed" in r.stderr
  assert not (tmp_path / "x").exists()
