"""Shared fixtures: tiny offline configs and a CPU-only JAX."""

import os
import sys
from typing import Any, NamedTuple, Optional

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


class Tiny(NamedTuple):
  config: Any
  dataset: Any
  family: Any
  state: Any   # The family's model state (RunState.model), as train.py initialises it.
  batch: dict  # The first training examples of one step.


def tiny_config(name: str, arg: str = "smoke", num_train: Optional[int] = None,
                num_test: Optional[int] = None, **overrides):
  """configs/<name>.py:<arg>, quiet (no progress bar, no TensorBoard), with `overrides`
  ('train__batch_size': 16 sets train.batch_size) and, if given, fewer examples."""
  c = load_config(name, arg)
  if num_train is not None:
    c.data.num_train = num_train
  if num_test is not None:
    c.data.num_test = num_test
  c.train.progress, c.train.tensorboard = False, False
  c.eval.batch_size = 32
  for path, value in overrides.items():
    group, key = path.split("__")
    c[group][key] = value
  return c


def tiny(config, **kwargs) -> Tiny:
  """A config (or a config name and `tiny_config`'s arguments) built as train.py builds it
  (`gm.train.build`): its dataset, family, initial model state and one step's batch."""
  from gm import data as gm_data  # pylint: disable=g-import-not-at-top
  from gm.train import loop  # pylint: disable=g-import-not-at-top
  c = tiny_config(config, **kwargs) if isinstance(config, str) else config
  ds = gm_data.load(c.data)
  family, run, _ = loop.build(c, ds)
  n = family.examples_per_step(c.train.batch_size)
  return Tiny(c, ds, family, run.model, {k: v[:n] for k, v in ds.train.items()})


def tree_diff(a, b) -> Optional[str]:
  """None if the pytrees hold the same number of leaves, equal bit for bit in order; else the
  first difference, named by its path in `a`."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  la, lb = jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)
  if len(la) != len(lb):
    return f"{len(la)} leaves against {len(lb)}"
  for (path, x), y in zip(la, lb):
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape or not np.array_equal(x, y):
      return f"{jax.tree_util.keystr(path)} differs ({x.shape} against {y.shape})"
  return None


def trees_equal(a, b) -> bool:
  return tree_diff(a, b) is None


def assert_trees_equal(a, b) -> None:
  """Same leaf count and every leaf bit-identical; the message names the first differing path."""
  diff = tree_diff(a, b)
  assert diff is None, diff


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
  from gm.train import loop  # pylint: disable=g-import-not-at-top
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
