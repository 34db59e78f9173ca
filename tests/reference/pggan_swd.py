"""PGGAN's sliced Wasserstein distance, re-implemented as a test oracle for gm.metrics.swd.

Origin: github.com/tkarras/progressive_growing_of_gans, file
`metrics/sliced_wasserstein.py` at commit a92638a4bff6972686302476dd0b22b486568682
("New TensorFlow-based implementation", 2018-02-23), the code behind the
paper's SWD tables. That file is licensed CC BY-NC 4.0, so it is not copied
here: this module is written from its definitions and keeps its structure on
purpose, so that it shares nothing with gm's implementation:

* NCHW layout, float32, uint8-range inputs (the reference is fed [0, 255] images);
* the Gaussian pyramid as one 2-D `scipy.ndimage.convolve` with the 5x5 binomial
  (outer product of [1, 4, 6, 4, 1] / 16) and mode='mirror' (cv2.pyrDown /
  cv2.pyrUp's BORDER_REFLECT_101), upsampling by zero insertion and the kernel x 4;
* levels for resolutions res, res // 2, ... while >= 16, the last one low-pass;
* 128 patches of 7x7 per image, centres drawn with `np.random.randint(3, S - 3)`,
  gathered through flat indices (each descriptor holds its patch transposed);
* descriptors normalised per channel over all patches of a set (population std);
* 4 repeats of 128 random unit directions (float32), mean |sorted projection
  differences|; x 1e3 per level and the mean.

Random draws use numpy's legacy global-stream calls in the reference's order,
from a `np.random.RandomState` passed in. A scratch run of the original file
(not part of gm) with `np.random.seed(s)` gave the same numbers as
`swd(..., rng=np.random.RandomState(s))`, to float32 rounding (1e-7 relative),
for one minibatch of reals then one of fakes at 64, 48 and 32 px.
"""

import numpy as np
from scipy import ndimage

NHOOD_SIZE = 7
NHOODS_PER_IMAGE = 128
DIR_REPEATS = 4
DIRS_PER_REPEAT = 128

_TAPS = np.float32([1, 4, 6, 4, 1])
KERNEL = np.outer(_TAPS, _TAPS) / np.float32(256.0)  # [5, 5]


def resolutions(size: int):
  """[size, size // 2, ...] down to the last one >= 16."""
  out = []
  while size >= 16:
    out.append(size)
    size //= 2
  return out


def pyr_down(batch: np.ndarray) -> np.ndarray:
  """[N, C, H, W] -> blurred, every second row and column."""
  blurred = ndimage.convolve(batch, KERNEL[None, None], mode="mirror")
  return blurred[:, :, ::2, ::2]


def pyr_up(batch: np.ndarray) -> np.ndarray:
  """[N, C, H, W] -> [N, C, 2H, 2W]: zeros between the samples, then the kernel x 4."""
  n, c, h, w = batch.shape
  spread = np.zeros((n, c, 2 * h, 2 * w), batch.dtype)
  spread[:, :, ::2, ::2] = batch
  return ndimage.convolve(spread, KERNEL[None, None] * 4.0, mode="mirror")


def laplacian_pyramid(batch: np.ndarray, num_levels: int):
  """Band-pass levels, finest first, then the low-pass level; [N, C, H, W] float32 each."""
  levels = [np.float32(batch)]
  for _ in range(num_levels - 1):
    levels.append(pyr_down(levels[-1]))
    levels[-2] = levels[-2] - pyr_up(levels[-1])
  return levels


def descriptors(level: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
  """NHOODS_PER_IMAGE random 7x7 neighbourhoods per image: [N * 128, C, 7, 7]."""
  n, c, h, w = level.shape
  half = NHOOD_SIZE // 2
  count = NHOODS_PER_IMAGE * n
  # As in the reference, the column offsets run along descriptor axis 2 and the row offsets
  # along axis 3: each descriptor is its patch transposed (a fixed permutation of components).
  idx_n, idx_c, dx, dy = np.ogrid[0:count, 0:c, -half:half + 1, -half:half + 1]
  image = idx_n // NHOODS_PER_IMAGE
  cx = rng.randint(half, w - half, size=(count, 1, 1, 1))  # x first, as the reference
  cy = rng.randint(half, h - half, size=(count, 1, 1, 1))
  flat = ((image * c + idx_c) * h + (cy + dy)) * w + (cx + dx)
  return level.flat[flat]


def normalise(desc: np.ndarray) -> np.ndarray:
  """Zero mean, unit (population) std per channel over neighbourhoods and pixels; flattened."""
  desc = desc - desc.mean(axis=(0, 2, 3), keepdims=True)
  desc = desc / desc.std(axis=(0, 2, 3), keepdims=True)
  return desc.reshape(len(desc), -1)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, rng: np.random.RandomState) -> float:
  """Mean over DIR_REPEATS x DIRS_PER_REPEAT random unit directions of W1 of the projections."""
  assert a.shape == b.shape
  per_repeat = []
  for _ in range(DIR_REPEATS):
    dirs = rng.randn(a.shape[1], DIRS_PER_REPEAT)
    dirs = (dirs / np.sqrt((dirs ** 2).sum(axis=0, keepdims=True))).astype(np.float32)
    pa = np.sort(a @ dirs, axis=0)
    pb = np.sort(b @ dirs, axis=0)
    per_repeat.append(np.abs(pa - pb).mean())
  return float(np.mean(per_repeat))


def swd(real_nhwc: np.ndarray, fake_nhwc: np.ndarray, rng: np.random.RandomState,
        reals_pass: bool = True):
  """{resolution: SWD x 1e3} and 'avg', for two equal-sized sets of images [N, H, W, 3] in [0, 1].

  The reference's call order: descriptors of the reals (all levels), their
  SWD against themselves (which draws directions: the 'reals' pass), then the
  fakes' descriptors and the SWD of reals vs fakes. `reals_pass=False` skips
  the self-comparison, whose value is discarded: the draws that follow differ
  but have the same distribution (for tests short of time).
  """
  res = resolutions(real_nhwc.shape[1])
  sets = []
  for images in (real_nhwc, fake_nhwc):
    batch = np.transpose(np.asarray(images, np.float64) * 255.0, (0, 3, 1, 2))
    desc = [normalise(descriptors(level, rng)) for level in laplacian_pyramid(batch, len(res))]
    sets.append(desc)
    if len(sets) == 1 and reals_pass:  # The 'reals' pass scores the reals against themselves.
      for d in desc:
        sliced_wasserstein(d, d, rng)
  dist = {r: 1e3 * sliced_wasserstein(dr, df, rng) for r, dr, df in zip(res, *sets)}
  dist["avg"] = float(np.mean(list(dist.values())))
  return dist
