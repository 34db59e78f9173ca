"""Shared fixtures: tiny offline configs and a CPU-only JAX."""

import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
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
