"""The dataset container, the registry, and on-device preprocessing."""

import dataclasses
import socket
from typing import Any, Dict

import jax.numpy as jnp
import ml_collections
import numpy as np

from gm.errors import UserError
from gm.registry import Registry

DATASETS = Registry("dataset")


@dataclasses.dataclass
class Dataset:
  """Arrays of a dataset, held on the host until the loop puts them on device.

  Attributes:
    train, test: dicts with 'image' uint8 [N, H, W, C] and 'label' int32 [N]
      (and any extra per-example arrays, e.g. 'cond').
    info: JSON-serialisable description: name, source, sizes, where from.
  """
  train: Dict[str, np.ndarray]
  test: Dict[str, np.ndarray]
  info: Dict[str, Any]


def load(cfg: ml_collections.ConfigDict) -> Dataset:
  """Loads `cfg.name` with its loader and applies `cfg.num_train` / `num_test`."""
  ds = DATASETS.get(cfg.name)(cfg)
  for split, limit in (("train", cfg.num_train), ("test", cfg.num_test)):
    arrays = getattr(ds, split)
    if limit:
      setattr(ds, split, {k: v[:limit] for k, v in arrays.items()})
  ds.info["num_train"] = int(len(ds.train["image"]))
  ds.info["num_test"] = int(len(ds.test["image"]))
  ds.info["image_shape"] = list(ds.train["image"].shape[1:])
  return ds


def to_float(images: jnp.ndarray, binarize: bool = False) -> jnp.ndarray:
  """uint8 images -> float32 in [0, 1]; optionally thresholded at 0.5 (as the TF VAE tutorial)."""
  x = images.astype(jnp.float32) / 255.0
  return (x > 0.5).astype(jnp.float32) if binarize else x


def _network_reachable(host: str = "storage.googleapis.com", timeout: float = 3.0) -> bool:
  try:
    socket.create_connection((host, 443), timeout=timeout).close()
    return True
  except OSError:
    return False


def tfds_data_source(name: str, split: str, data_dir: str, alternatives: str):
  """`tfds.data_source(name, split)` (random access, no TensorFlow needed once prepared).

  Prepares the dataset first if needed, failing fast (one line naming
  `alternatives`) when offline or when TensorFlow, which TFDS needs to prepare
  most datasets, is missing.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  data_dir = data_dir or None
  source = lambda download: tfds.data_source(name, split=split, data_dir=data_dir,
                                             download=download)
  try:
    return source(False)
  except Exception:  # Not prepared yet: fetch it, failing fast when offline.
    if not _network_reachable():
      raise UserError(f"{name} is not prepared in the TFDS data dir and the network is "
                      f"unreachable; {alternatives}") from None
    try:
      import tensorflow  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    except ImportError:
      raise UserError(f"preparing {name} with tensorflow-datasets needs TensorFlow once "
                      f"(pip install tensorflow-cpu); or {alternatives}") from None
    return source(True)
