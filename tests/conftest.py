"""Shared fixtures: tiny offline configs and a CPU-only JAX."""

import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  # One persistent compilation cache for the whole session, in-process and in the train.py /
  # eval.py subprocesses (they inherit the environment): the many tiny runs of the same smoke
  # configs compile the same programs. Fresh per session, removed at exit.
  import atexit  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  _CACHE = tempfile.mkdtemp(prefix="gm_tests_jax_cache_")
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE
  os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
  atexit.register(shutil.rmtree, _CACHE, True)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import pytest  # noqa: E402


def load_config(name: str, arg: str = "smoke"):
  """configs/<name>.py:get_config(arg), as train.py would load it."""
  import importlib  # pylint: disable=g-import-not-at-top
  return importlib.import_module(f"configs.{name}").get_config(arg)


@pytest.fixture
def tiny_vae():
  c = load_config("vae_mnist")
  c.data.num_train, c.data.num_test = 128, 64
  c.train.progress = False
  c.train.tensorboard = False
  c.eval.batch_size = 32
  return c


@pytest.fixture(scope="session")
def judge_dir(tmp_path_factory):
  """A judge trained for 2 epochs on 2,048 embedded digits (a few seconds)."""
  from gm import loop  # pylint: disable=g-import-not-at-top
  c = load_config("classifier_mnist", "smoke")
  c.train.progress, c.train.tensorboard = False, False
  wd = str(tmp_path_factory.mktemp("judge") / "run")
  loop.train_and_evaluate(c, wd)
  return wd


def read_tensorboard(logdir: str):
  """{tag: [(step, kind)]} of every summary in the event files under `logdir`.

  Reads the TFRecord framing directly (length, its CRC, the Event proto, its
  CRC) with tensorboardX's protos, so the tests need no TensorBoard install.
  `kind` is the summary's value field: 'simple_value' for scalars, 'image'.
  """
  import glob  # pylint: disable=g-import-not-at-top
  import struct  # pylint: disable=g-import-not-at-top
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  out = {}
  for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
    with open(path, "rb") as f:
      data = f.read()
    pos = 0
    while pos + 12 <= len(data):
      (length,) = struct.unpack("<Q", data[pos:pos + 8])
      event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
      pos += 12 + length + 4
      for value in event.summary.value:
        out.setdefault(value.tag, []).append((event.step, value.WhichOneof("value")))
  return out
