"""Sliced Wasserstein distance on multi-scale image patches (Karras et al. 2018, PGGAN).

A quality number for GANs on small image sets that needs no downloaded
weights. Each image set is decomposed into a Laplacian pyramid (5-tap binomial
filter; 64 -> 32 -> 16 px for 64x64 images); from every level, random 7x7
patches are taken, normalised per colour channel, and the two patch sets are
compared by the sliced Wasserstein distance: the mean over random unit
directions of the 1-D Wasserstein-1 distance between the sorted projections.
Reported per level (x 1e3, as PGGAN) and averaged; lower is better.
"""

from typing import Dict, List

import numpy as np
from scipy import ndimage

_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(images: np.ndarray) -> np.ndarray:
  """Separable 5-tap binomial blur of [N, H, W, C] (reflecting borders)."""
  x = ndimage.convolve1d(images, _BINOMIAL, axis=1, mode="reflect")
  return ndimage.convolve1d(x, _BINOMIAL, axis=2, mode="reflect")


def laplacian_pyramid(images: np.ndarray, min_size: int = 16) -> List[np.ndarray]:
  """Levels [N, H/2^i, W/2^i, C]: band-pass levels, then the coarsest Gaussian level."""
  levels, g = [], images.astype(np.float64)
  while g.shape[1] > min_size and g.shape[1] % 2 == 0:
    down = _blur(g)[:, ::2, ::2]
    up = np.zeros_like(g)
    up[:, ::2, ::2] = down
    up = _blur(up) * 4.0  # Zero-insertion upsampling, renormalised.
    levels.append(g - up)
    g = down
  levels.append(g)
  return levels


def patches(level: np.ndarray, per_image: int, size: int, rng: np.random.Generator) -> np.ndarray:
  """`per_image` random size x size patches per image, flattened: [N * per_image, size*size*C]."""
  n, h, w, c = level.shape
  ys = rng.integers(0, h - size + 1, (n, per_image))
  xs = rng.integers(0, w - size + 1, (n, per_image))
  off = np.arange(size)
  rows = (ys[..., None] + off)[..., :, None]  # [N, P, size, 1]
  cols = (xs[..., None] + off)[..., None, :]  # [N, P, 1, size]
  out = level[np.arange(n)[:, None, None, None], rows, cols]  # [N, P, size, size, C]
  return out.reshape(n * per_image, size * size * c)


def _normalise(desc: np.ndarray, channels: int) -> np.ndarray:
  """Zero mean, unit std per colour channel over all patches (PGGAN's finalize_descriptors)."""
  d = desc.reshape(len(desc), -1, channels)
  d = (d - d.mean(axis=(0, 1))) / (d.std(axis=(0, 1)) + 1e-8)
  return d.reshape(len(desc), -1)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, directions: int = 128, repeats: int = 4,
                       rng: np.random.Generator = None) -> float:
  """Mean over random unit directions of W1 between the projected sets a [N, D] and b [N, D]."""
  rng = rng or np.random.default_rng(0)
  n = min(len(a), len(b))
  a = a[rng.choice(len(a), n, replace=False)] if len(a) > n else a
  b = b[rng.choice(len(b), n, replace=False)] if len(b) > n else b
  results = []
  for _ in range(repeats):
    d = rng.normal(size=(a.shape[1], directions))
    d /= np.linalg.norm(d, axis=0, keepdims=True)
    pa, pb = np.sort(a @ d, axis=0), np.sort(b @ d, axis=0)
    results.append(np.abs(pa - pb).mean())
  return float(np.mean(results))


def swd(generated: np.ndarray, real: np.ndarray, patches_per_image: int = 64,
        patch_size: int = 7, seed: int = 0) -> Dict[str, float]:
  """SWD x 1e3 per pyramid level ('swd_64', 'swd_32', ...) and their mean ('swd').

  Args:
    generated, real: images [N, H, W, C] in [0, 1] (any N each).
  """
  rng = np.random.default_rng(seed)
  out = {}
  for la, lb in zip(laplacian_pyramid(generated), laplacian_pyramid(real)):
    c = la.shape[-1]
    da = _normalise(patches(la, patches_per_image, patch_size, rng), c)
    db = _normalise(patches(lb, patches_per_image, patch_size, rng), c)
    out[f"swd_{la.shape[1]}"] = 1e3 * sliced_wasserstein(da, db, rng=rng)
  out["swd"] = float(np.mean(list(out.values())))
  return out
