"""Precision, recall, density and coverage of generated samples (k-nearest-neighbour manifolds).

Precision and recall as Kynkäänniemi et al. 2019 ("Improved precision and
recall metric for assessing generative models"); density and coverage as
Naeem et al. 2020 ("Reliable fidelity and diversity metrics for generative
models"), with their default k = 5. On features of N real and M generated
samples, with r_k(x) the distance from x to its k-th nearest neighbour in its
own set (itself not counted):

* precision: share of generated samples inside some real ball B(x_i, r_k(x_i));
* recall: share of real samples inside some generated ball B(y_j, r_k(y_j));
* density: (1 / (k M)) x the number of (real ball, generated sample) pairs with
  the sample inside the ball; about 1 when the two distributions are equal;
* coverage: share of real balls holding at least one generated sample; about
  1 - 2^-k (0.97 for k = 5) for equal distributions and N = M.

"Inside" is a strict inequality, as clovaai/generative-evaluation-prdc. Dropped
modes lower recall and coverage and leave precision and density; poor samples
lower precision and density. The numbers depend on N and M (Naeem et al. use
10,000 of each), so only scores with the same counts compare.
"""

from typing import Dict

import numpy as np

from gm.errors import UserError

NEAREST_K = 5


def _sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Squared Euclidean distances [len(a), len(b)] (float64, clipped at 0)."""
  d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
  return np.maximum(d, 0.0)


def _rows(n: int, cols: int, budget: int = 1 << 23):
  """Row blocks that keep one [rows, cols] float64 block within `budget` elements (64 MB)."""
  step = max(1, budget // max(cols, 1))
  return [(i, min(i + step, n)) for i in range(0, n, step)]


def kth_neighbour_sq_radii(x: np.ndarray, k: int = NEAREST_K) -> np.ndarray:
  """Squared distance from each row of x [N, D] to its k-th nearest other row: [N].

  The point itself sits at distance 0, so this is the (k+1)-th smallest
  distance of its row (duplicates of a point count as neighbours).
  """
  out = np.empty(len(x))
  for i, j in _rows(len(x), len(x)):
    out[i:j] = np.partition(_sq_distances(x[i:j], x), k, axis=1)[:, k]
  return out


def prdc(real: np.ndarray, fake: np.ndarray, k: int = NEAREST_K) -> Dict[str, float]:
  """{'precision', 'recall', 'density', 'coverage'} of fake features [M, D] against real [N, D].

  Memory stays at a few [block, M] matrices, so N = M = 10,000 needs no N x M array.
  """
  real = np.asarray(real, np.float64)
  fake = np.asarray(fake, np.float64)
  if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
    raise UserError(f"precision/recall/density/coverage need two feature sets [N, D] of one D; "
                    f"got {real.shape} and {fake.shape}")
  if min(len(real), len(fake)) <= k:
    raise UserError(f"precision/recall/density/coverage with k={k} need more than {k} real and "
                    f"{k} generated samples; got {len(real)} and {len(fake)}: raise --num")
  real_r = kth_neighbour_sq_radii(real, k)  # [N]
  fake_r = kth_neighbour_sq_radii(fake, k)  # [M]
  balls_holding = np.zeros(len(fake))       # per generated sample: real balls around it
  recalled = np.zeros(len(real), bool)
  covered = np.zeros(len(real), bool)
  for i, j in _rows(len(real), len(fake)):
    d = _sq_distances(real[i:j], fake)  # [b, M]
    inside = d < real_r[i:j, None]
    balls_holding += inside.sum(0)
    covered[i:j] = inside.any(1)
    recalled[i:j] = (d < fake_r[None, :]).any(1)
  return {"precision": float((balls_holding > 0).mean()),
          "recall": float(recalled.mean()),
          "density": float(balls_holding.mean() / k),
          "coverage": float(covered.mean())}
