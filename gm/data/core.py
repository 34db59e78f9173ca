"""The dataset container, the registry, and on-device preprocessing."""

import dataclasses
from typing import Any, Dict

import jax.numpy as jnp
import ml_collections
import numpy as np

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
  for split, limit in (("train", cfg.get("num_train", 0)), ("test", cfg.get("num_test", 0))):
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
