"""Sliced Wasserstein distance on multi-scale image patches (Karras et al. 2018, PGGAN).

A quality number for GANs on small image sets that needs no downloaded
weights. It follows PGGAN's published implementation
(github.com/tkarras/progressive_growing_of_gans, `metrics/sliced_wasserstein.py`,
commit a92638a) in every choice that changes the values:

* Laplacian pyramid: the 5x5 binomial filter ([1, 4, 6, 4, 1] / 16 in each
  direction) with mirrored borders that do not repeat the edge pixel (scipy's
  mode='mirror', OpenCV's BORDER_REFLECT_101, as cv2.pyrDown / cv2.pyrUp);
  downsampling takes every second pixel, upsampling inserts zeros and filters
  with 4x the kernel.
* Levels: one per resolution res, res // 2, ... while >= 16 (64 px: 64, 32, 16;
  48 px: 48, 24; 28 px: 28 alone), band-pass except the last, low-pass one.
* 128 random 7x7 patches per image and level, anywhere inside the level.
* Descriptors normalised per colour channel over all patches of one set
  (zero mean, unit population std).
* 4 repeats x 128 random unit directions; the 1-D Wasserstein-1 distance
  between the sorted projections, averaged over directions and repeats.
* x 1e3 per level ('swd_64', 'swd_32', ...), and their mean ('swd').

The random draws come from numpy's seeded Generator rather than PGGAN's global
legacy stream, so the two agree in distribution, not draw for draw. Tests
compare against a port of the reference (tests/reference/pggan_swd.py): given
the port's draws gm returns its numbers to float32 rounding, and with its own
draws it stays within 3% per level. PGGAN rounds generated images to uint8
before scoring; gm scores the float samples (at most half a grey level apart).
Lower is better. The estimate is biased upwards at small sample counts:
PGGAN's published numbers use 16,384 images per set, and only numbers taken
with the same counts compare.
"""

from typing import Dict, List

import numpy as np
from scipy import ndimage

from gm.errors import UserError

_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0], np.float32) / 16.0
MIN_RESOLUTION = 16      # PGGAN's coarsest level.
PATCHES_PER_IMAGE = 128  # PGGAN's nhoods_per_image.
PATCH_SIZE = 7
DIRECTIONS = 128         # per repeat
REPEATS = 4


def resolutions(size: int) -> List[int]:
  """PGGAN's levels for images `size` px high: size, size // 2, ... while >= 16."""
  out = []
  while size >= MIN_RESOLUTION:
    out.append(size)
    size //= 2
  return out


def _blur(images: np.ndarray, gain: float = 1.0) -> np.ndarray:
  """The separable 5x5 binomial filter over H and W of [N, H, W, C], mirrored borders."""
  x = ndimage.convolve1d(images, _BINOMIAL * np.float32(gain), axis=1, mode="mirror")
  return ndimage.convolve1d(x, _BINOMIAL, axis=2, mode="mirror")


def _pyr_down(images: np.ndarray) -> np.ndarray:
  """[N, H, W, C] -> [N, ceil(H/2), ceil(W/2), C] (cv2.pyrDown)."""
  return _blur(images)[:, ::2, ::2]


def _pyr_up(images: np.ndarray, height: int, width: int) -> np.ndarray:
  """[N, h, w, C] -> [N, height, width, C]: zero insertion, 4x the filter (cv2.pyrUp).

  For an odd finer size (where the reference fails on a shape mismatch) the
  2h x 2w result is cropped to it.
  """
  n, h, w, c = images.shape
  up = np.zeros((n, 2 * h, 2 * w, c), images.dtype)
  up[:, ::2, ::2] = images
  return _blur(up, 4.0)[:, :height, :width]


def laplacian_pyramid(images: np.ndarray, num_levels: int = 0) -> List[np.ndarray]:
  """Levels [N, H_i, W_i, C] (float32), finest first: band-pass levels, then the low-pass one.

  Args:
    images: [N, H, W, C].
    num_levels: how many levels; 0 for PGGAN's (`resolutions(H)`).
  """
  g = np.asarray(images, np.float32)
  num_levels = num_levels or max(1, len(resolutions(g.shape[1])))
  levels = []
  for _ in range(num_levels - 1):
    down = _pyr_down(g)
    levels.append(g - _pyr_up(down, g.shape[1], g.shape[2]))
    g = down
  levels.append(g)
  return levels


def patches(level: np.ndarray, per_image: int, size: int, rng: np.random.Generator) -> np.ndarray:
  """`per_image` random size x size patches per image, flattened: [N * per_image, size*size*C].

  Top-left corners are uniform over all (H - size + 1) x (W - size + 1)
  positions, as PGGAN's centres in [size // 2, H - size // 2).
  """
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


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, directions: int = DIRECTIONS,
                       repeats: int = REPEATS, rng: np.random.Generator = None) -> float:
  """Mean over random unit directions of W1 between the projected sets a [N, D] and b [M, D].

  The larger set is subsampled to the smaller's size (PGGAN requires equal sizes).
  """
  rng = rng or np.random.default_rng(0)
  n = min(len(a), len(b))
  a = a[rng.choice(len(a), n, replace=False)] if len(a) > n else a
  b = b[rng.choice(len(b), n, replace=False)] if len(b) > n else b
  results = []
  for _ in range(repeats):
    d = rng.normal(size=(a.shape[1], directions))
    d = (d / np.linalg.norm(d, axis=0, keepdims=True)).astype(a.dtype)
    # [directions, N] rows, each sorted in place: contiguous, several times faster than
    # sorting the [N, directions] projections down their columns.
    pa, pb = d.T @ a.T, d.T @ b.T
    pa.sort(axis=1)
    pb.sort(axis=1)
    results.append(np.abs(pa - pb).mean(dtype=np.float64))
  return float(np.mean(results))


def swd(generated: np.ndarray, real: np.ndarray, patches_per_image: int = PATCHES_PER_IMAGE,
        patch_size: int = PATCH_SIZE, seed: int = 0) -> Dict[str, float]:
  """SWD x 1e3 per pyramid level ('swd_64', 'swd_32', ...) and their mean ('swd').

  Args:
    generated, real: images [N, H, W, C] in [0, 1] (any N each; same H, W, C).
    patches_per_image: descriptors per image and level (PGGAN: 128).
    patch_size: descriptor side (PGGAN: 7).
    seed: of the patch positions, the subsampling and the directions.

  Returns:
    {'swd_<size>': ..., 'swd': mean over levels}; keys name each level's height.
  """
  generated, real = np.asarray(generated), np.asarray(real)
  if generated.ndim != 4 or generated.shape[1:] != real.shape[1:]:
    raise UserError(f"the sliced Wasserstein distance compares image sets of one shape "
                    f"[N, H, W, C]; got {generated.shape} and {real.shape}")
  num_levels = len(resolutions(real.shape[1]))
  if not num_levels or min(real.shape[1:3]) < MIN_RESOLUTION:
    raise UserError(f"the sliced Wasserstein distance needs images of at least {MIN_RESOLUTION}x"
                    f"{MIN_RESOLUTION} px (PGGAN's coarsest level); these are "
                    f"{real.shape[1]}x{real.shape[2]}: raise data.image_size")
  rng = np.random.default_rng(seed)
  out = {}
  for la, lb in zip(laplacian_pyramid(generated, num_levels), laplacian_pyramid(real, num_levels)):
    c = la.shape[-1]
    da = _normalise(patches(la, patches_per_image, patch_size, rng), c)
    db = _normalise(patches(lb, patches_per_image, patch_size, rng), c)
    out[f"swd_{la.shape[1]}"] = 1e3 * sliced_wasserstein(da, db, rng=rng)
  out["swd"] = float(np.mean(list(out.values())))
  return out
