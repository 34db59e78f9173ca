"""Scores against split halves of the training photos: a reference larger than the held-out set.

The held-out measure of photo runs (N samples against the N held-out photos; its floor, N
training photos against the same held-out photos) is limited by N. At N = 112 the sample
counts' own bias dominates the sliced Wasserstein distance, so every generator within reach
reads 1.0x to 1.15x of a floor whose chunks spread over +-12%: the measure cannot tell
recipes apart that the eye can.

This measure uses every training photo. Split K times at random into halves A_k and B_k
(n = N_train // 2 photos each, 318 of the cake's 636):
  * floor_k = score(A_k, B_k): real photos against real photos, n against n;
  * gen_k = score(n samples (draw k), B_k), with the same patch positions and directions.
Equal counts on both sides give both the same small-sample bias, and gen_k and floor_k use
the same B_k, patch positions and directions. The summary reports mean(gen) / mean(floor),
the per-split ratios' range and standard error, and the floor's spread over splits: which half
a photo lands in moves the floor by about +-10% at n = 318, the patch and direction draws by
about 1%, so K splits are averaged.

Two scores: SWD x 10^3 (gm.metrics.swd) and KID x 10^3 on the random-CNN features
(gm.metrics.random_cnn) standardised per dimension by the training photos' mean and std (a
std below a tenth of the median std counts as that tenth) ('kid_z_x1e3'). Raw random-CNN
features vary little around a large common mean (std 0.05 per dimension against a norm of
4), so the cubic kernel sees almost no difference between sets: their KID reads 0 +- 0.05
for cake samples that SWD and the eye tell from photos (the fast recipe at epoch 300),
while the standardised features give 110 to 170 for the same samples against a floor of
-40 to 12. KID is unbiased, so its floor is near 0 and is read as a spread, not a ratio.

What it measures is how close samples are to the training photos' distribution; a
generator that memorised its training photos would score at the floor. Read it beside the
held-out measure, which a memorising generator fails, and beside `copying` (each sample's pixel
distance to its nearest training photo against the held-out photos').
"""

from typing import Callable, Dict, List, Tuple

import numpy as np

from gm.errors import UserError
from gm.metrics import distances
from gm.metrics import random_cnn
from gm.metrics import swd as swd_lib

SPLITS = 5  # Random halvings of the training photos (the floor's spread is over these).
STD_FLOOR = 0.1  # A feature's std is at least this x the median feature std.


def halves(count: int, splits: int = SPLITS, seed: int = 0) -> List[Tuple[np.ndarray, np.ndarray]]:
  """`splits` random (A, B) index pairs: disjoint halves of range(count), count // 2 each."""
  if count < 4:
    raise UserError(f"split-half scores need at least 4 real images (2 per half); got {count}")
  if splits < 1:
    raise UserError(f"split-half scores need at least 1 split; got {splits}")
  rng = np.random.default_rng(seed)
  n = count // 2
  out = []
  for _ in range(splits):
    perm = rng.permutation(count)
    out.append((np.sort(perm[:n]), np.sort(perm[n:2 * n])))
  return out


class Reference:
  """Training photos [N, H, W, C] in [0, 1], their random-CNN features' standardisation, and
  `splits` random halvings (seeded): what `floor` and `generator` score against."""

  def __init__(self, real: np.ndarray, splits: int = SPLITS, seed: int = 0):
    self.real = np.asarray(real, np.float32)
    self.seed = seed
    self.halves = halves(len(self.real), splits, seed)
    self._embed = random_cnn.features_for(self.real.shape[-1])
    features = self._embed(self.real)
    std = features.std(0)  # Dead or near-constant units: their std is floored, not divided by.
    self._mean, self._std = features.mean(0), np.maximum(std, STD_FLOOR * np.median(std))
    self.features = self.standardise(features)  # [N, 256]

  def standardise(self, features: np.ndarray) -> np.ndarray:
    return (features - self._mean) / self._std

  def z_features(self, images: np.ndarray) -> np.ndarray:
    """Images [n, H, W, C] in [0, 1] -> their standardised random-CNN features [n, 256]."""
    return self.standardise(self._embed(np.asarray(images, np.float32)))

  def scores(self, images: np.ndarray, k: int) -> Dict[str, float]:
    """SWD x 1e3 and standardised-feature KID x 1e3 of images [n, H, W, C] against half B_k."""
    b = self.halves[k][1]
    kid, _ = distances.kernel_distance(self.z_features(images), self.features[b],
                                       seed=self.seed + k)
    return {"swd": float(swd_lib.swd(images, self.real[b], seed=self.seed + k)["swd"]),
            "kid_z_x1e3": float(distances.KID_SCALE * kid)}


def floor(ref: Reference) -> Dict[str, List[float]]:
  """Per split k: scores of half A_k of the photos against half B_k."""
  out = {"swd": [], "kid_z_x1e3": []}
  for k, (a, _) in enumerate(ref.halves):
    for key, v in ref.scores(ref.real[a], k).items():
      out[key].append(v)
  return out


def generator(sample: Callable[[int, int], np.ndarray], ref: Reference) -> Dict[str, List[float]]:
  """Per split k: scores of `sample(k, n)` (n images [n, H, W, C] in [0, 1], draw k) against B_k.

  The same halves, patch positions and directions as `floor(ref)`, so generator and floor
  values pair up split by split.
  """
  out = {"swd": [], "kid_z_x1e3": []}
  for k, (_, b) in enumerate(ref.halves):
    images = np.asarray(sample(k, len(b)), np.float32)
    if images.shape != ref.real[b].shape:
      raise UserError(f"split-half scores: the sampler returned {images.shape}; "
                      f"expected {ref.real[b].shape}")
    for key, v in ref.scores(images, k).items():
      out[key].append(v)
  return out


def summary(gen: Dict[str, List[float]], flo: Dict[str, List[float]]) -> Dict[str, float]:
  """SWD: the mean generator and floor values, the floor's range over splits, their ratio
  mean(gen) / mean(floor) and the per-split ratios' range and standard error; KID: the
  generator's and the floor's mean and range."""
  g, f = np.asarray(gen["swd"]), np.asarray(flo["swd"])
  per_split = g / f
  se = per_split.std(ddof=1) / np.sqrt(len(g)) if len(g) > 1 else float("nan")
  kg, kf = np.asarray(gen["kid_z_x1e3"]), np.asarray(flo["kid_z_x1e3"])
  return {"swd": float(g.mean()), "floor_swd": float(f.mean()),
          "floor_swd_min": float(f.min()), "floor_swd_max": float(f.max()),
          "ratio": float(g.mean() / f.mean()), "ratio_min": float(per_split.min()),
          "ratio_max": float(per_split.max()), "ratio_se": float(se),
          "kid_z_x1e3": float(kg.mean()), "kid_min": float(kg.min()),
          "kid_max": float(kg.max()), "floor_kid_z_x1e3": float(kf.mean()),
          "floor_kid_min": float(kf.min()), "floor_kid_max": float(kf.max())}


def nearest_distances(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
  """x [n, ...], ref [m, ...] -> [n]: each row's Euclidean distance to its nearest row of ref."""
  x = np.asarray(x, np.float64).reshape(len(x), -1)
  ref = np.asarray(ref, np.float64).reshape(len(ref), -1)
  sq = (x * x).sum(1)[:, None] - 2.0 * x @ ref.T + (ref * ref).sum(1)[None, :]
  return np.sqrt(np.maximum(sq.min(1), 0.0))


def copying(samples: np.ndarray, train: np.ndarray, held: np.ndarray) -> Dict[str, float]:
  """Does a generator reproduce its training photos? The pixel distance of each sample to its
  nearest training photo, against the same distance for held-out photos (unseen, so their
  distances are what a non-copying generator's look like).

  'ratio': median over samples / median over held-out photos (a copying generator: well below
  1); 'share_nearer': the share of samples nearer to a training photo than the nearest held-out
  photo is to any (the held-out minimum; near 0 unless samples copy).
  """
  d_samples, d_held = nearest_distances(samples, train), nearest_distances(held, train)
  return {"ratio": float(np.median(d_samples) / np.median(d_held)),
          "share_nearer": float((d_samples < d_held.min()).mean()),
          "median_samples": float(np.median(d_samples)), "median_held": float(np.median(d_held)),
          "min_held": float(d_held.min())}


def heldout_kid(ref: Reference, sample: Callable[[int, int], np.ndarray],
                held: np.ndarray) -> Dict[str, List[float]]:
  """The standardised-feature KID x 1e3 against held-out photos [m, H, W, C]: per split k, half A_k
  of the training photos ('floor') and `sample(k, n)` ('generator') against all of them. Unlike
  the split-half scores it rewards no fit to the training photos themselves."""
  held_z = ref.z_features(held)
  out = {"floor": [], "generator": []}
  for k, (a, _) in enumerate(ref.halves):
    feats = {"floor": ref.features[a], "generator": ref.z_features(sample(k, len(a)))}
    for key, f in feats.items():
      kid, _ = distances.kernel_distance(f, held_z, seed=ref.seed + k)
      out[key].append(float(distances.KID_SCALE * kid))
  return out
