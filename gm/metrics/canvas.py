"""Scores for generated 3x3 canvases: is the requested digit in the requested cell?"""

import jax
import jax.numpy as jnp
import numpy as np

from gm.data.canvas import CELL, GRID, condition


def crop_cells(images: np.ndarray, cells: np.ndarray) -> np.ndarray:
  """[N, 42, 42, 1] canvases -> the requested 14x14 cells upsampled to [N, 28, 28, 1]."""
  n = len(images)
  grid = images[..., 0].reshape(n, GRID, CELL, GRID, CELL).transpose(0, 1, 3, 2, 4)
  cell = grid[np.arange(n), cells // GRID, cells % GRID]          # [N, 14, 14]
  return cell.repeat(2, 1).repeat(2, 2)[..., None]


def ink_per_cell(images: np.ndarray) -> np.ndarray:
  """[N, 42, 42, 1] -> total intensity per cell [N, 9]."""
  n = len(images)
  return images[..., 0].reshape(n, GRID, CELL, GRID, CELL).sum((2, 4)).reshape(n, GRID * GRID)


def score_canvases(judge, images, labels, cells):
  """Label accuracy on the requested cell, position accuracy, ink outside it."""
  ink = ink_per_cell(images)
  pred = judge(crop_cells(images, cells))["labels"]
  inside = ink[np.arange(len(ink)), cells]
  return {"label_accuracy": float((pred == labels).mean()),
          "position_accuracy": float((ink.argmax(1) == cells).mean()),
          "ink_outside": float(np.mean(1 - inside / np.maximum(ink.sum(1), 1e-8))),
          "label_accuracy_per_digit": [float((pred == labels)[labels == d].mean()) for d in range(10)],
          "position_accuracy_per_cell": [float((ink.argmax(1) == cells)[cells == c].mean())
                                         for c in range(9)]}


def sample_requests(family, state, key, per_request: int, temperature: float = 1.0):
  """Decodes `per_request` z ~ N(0, temperature^2 I) for every (label, cell).

  Returns (labels [N], cells [N], images [N, 42, 42, 1]) with N = 90 * per_request.
  Temperature 1 is the prior; below 1 draws stay nearer its mode.
  """
  labels = np.repeat(np.arange(10), GRID * GRID * per_request)
  cells = np.tile(np.repeat(np.arange(GRID * GRID), per_request), 10)
  z = temperature * jax.random.normal(key, (len(labels), family.latent_dim))
  imgs = [np.asarray(family.images_jit(state.params, z[i:i + 1000],
                            jnp.asarray(condition(labels[i:i + 1000], cells[i:i + 1000]))))
          for i in range(0, len(labels), 1000)]
  return labels, cells, np.concatenate(imgs)
