"""The 3x3 MNIST canvas: each digit, shrunk to 14x14, placed in one cell of a 42x42 canvas.

The condition is 12 numbers: the one-hot label (10) and the cell's row and column
scaled to [0, 1] (0, 0.5, 1). Each source image yields `data.placements`
canvases at cells drawn uniformly, reproducibly from `data.canvas_seed`.
"""

import ml_collections
import numpy as np

from gm.data.core import DATASETS, Dataset
from gm.data.mnist import load_mnist

CELL = 14
GRID = 3


def shrink(images: np.ndarray) -> np.ndarray:
  """[N, 28, 28, 1] uint8 -> [N, 14, 14] uint8 by 2x2 mean pooling."""
  x = images[..., 0].astype(np.float32).reshape(-1, CELL, 2, CELL, 2).mean((2, 4))
  return np.round(x).astype(np.uint8)


def condition(labels: np.ndarray, cells: np.ndarray) -> np.ndarray:
  """[N] labels, [N] cells in 0..8 -> [N, 12] float32: one-hot label, row/2, col/2."""
  onehot = np.eye(10, dtype=np.float32)[labels]
  rc = np.stack([cells // GRID, cells % GRID], -1).astype(np.float32) / (GRID - 1)
  return np.concatenate([onehot, rc], -1)


def place(digits: np.ndarray, cells: np.ndarray) -> np.ndarray:
  """[N, 14, 14] digits at cells [N] -> canvases [N, 42, 42, 1] uint8."""
  n = len(digits)
  canvas = np.zeros((n, GRID, GRID, CELL, CELL), np.uint8)
  canvas[np.arange(n), cells // GRID, cells % GRID] = digits
  return canvas.transpose(0, 1, 3, 2, 4).reshape(n, GRID * CELL, GRID * CELL, 1)


def make_canvases(split, placements: int, seed: int):
  """Canvases of one split: 'image' [N*P, 42, 42, 1], 'label', 'cell', 'cond' [N*P, 12]."""
  rng = np.random.default_rng(seed)
  digits = np.repeat(shrink(split["image"]), placements, axis=0)
  labels = np.repeat(split["label"], placements)
  cells = rng.integers(0, GRID * GRID, len(labels)).astype(np.int32)
  return {"image": place(digits, cells), "label": labels, "cell": cells,
          "cond": condition(labels, cells)}


@DATASETS.register("mnist_canvas")
def load_canvas(cfg: ml_collections.ConfigDict) -> Dataset:
  """MNIST from `cfg.source` (as the 'mnist' dataset), turned into 3x3 canvases."""
  base = load_mnist(cfg)
  p, seed = cfg.placements, cfg.canvas_seed
  info = {**base.info, "name": "mnist_canvas", "placements": p}
  return Dataset(make_canvases(base.train, p, seed), make_canvases(base.test, p, seed + 1), info)
