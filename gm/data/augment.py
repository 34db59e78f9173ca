"""On-device augmentation, inside the compiled step.

`augment` (the assignment's safe set, applied to real images before the
discriminator): random horizontal flip, small zoom and small rotation, as one
bilinear affine warp per image with reflected borders.

`diff_augment` (DiffAugment, Zhao et al. 2020, for tiny datasets): color
(brightness, saturation, contrast), translation and cutout, differentiable,
applied to real and generated images alike before the discriminator.

All functions take images [B, H, W, C] in [0, 1] and a key.
"""

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import ml_collections

from gm.errors import ConfigError


def _affine_warp(image: jnp.ndarray, matrix: jnp.ndarray) -> jnp.ndarray:
  """Samples image [H, W, C] at matrix @ (output coords about the centre); reflect borders."""
  h, w, _ = image.shape
  ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                        indexing="ij")
  cy, cx = (h - 1) / 2, (w - 1) / 2
  coords = jnp.stack([ys - cy, xs - cx])  # [2, H, W]
  src = jnp.einsum("ij,jhw->ihw", matrix, coords) + jnp.array([cy, cx])[:, None, None]
  return jnp.stack([jax.scipy.ndimage.map_coordinates(image[..., c], list(src), order=1,
                                                      mode="mirror")
                    for c in range(image.shape[-1])], -1)


def augment(images: jnp.ndarray, key: jax.Array, flip: bool = True, zoom: float = 0.0,
            rotate: float = 0.0) -> jnp.ndarray:
  """Random horizontal flip, zoom factor in [1 - zoom, 1 + zoom], rotation in ±rotate degrees."""
  if not (flip or zoom or rotate):
    return images
  b = images.shape[0]
  kf, kz, kr = jax.random.split(key, 3)
  sign = jnp.where(jax.random.bernoulli(kf, 0.5, (b,)) & flip, -1.0, 1.0)
  scale = 1.0 + jax.random.uniform(kz, (b,), minval=-zoom, maxval=zoom)
  angle = jax.random.uniform(kr, (b,), minval=-rotate, maxval=rotate) * math.pi / 180
  cos, sin = jnp.cos(angle) / scale, jnp.sin(angle) / scale
  # Output (y, x) reads input rotation(angle) @ (y, x * sign) / scale.
  matrix = jnp.stack([jnp.stack([cos, -sin * sign], -1), jnp.stack([sin, cos * sign], -1)], -2)
  if not (zoom or rotate):  # A flip alone is exact: no resampling.
    return jnp.where((sign < 0)[:, None, None, None], images[:, :, ::-1], images)
  return jax.vmap(_affine_warp)(images, matrix)


DIFF_AUGMENTS = ("color", "translation", "cutout")


def diff_augment(images: jnp.ndarray, key: jax.Array, policy: Sequence[str]) -> jnp.ndarray:
  """DiffAugment with the reference implementation's ranges."""
  b, h, w, _ = images.shape
  keys = iter(jax.random.split(key, 8))
  x = images
  for name in policy:
    if name == "color":
      x = x + (jax.random.uniform(next(keys), (b, 1, 1, 1)) - 0.5)
      mean = x.mean(-1, keepdims=True)
      x = (x - mean) * (jax.random.uniform(next(keys), (b, 1, 1, 1)) * 2) + mean
      mean = x.mean((1, 2, 3), keepdims=True)
      x = (x - mean) * (jax.random.uniform(next(keys), (b, 1, 1, 1)) + 0.5) + mean
    elif name == "translation":  # Shift by up to 1/8 of the size, zero fill.
      sy, sx = int(h * 0.125 + 0.5), int(w * 0.125 + 0.5)
      ty = jax.random.randint(next(keys), (b,), -sy, sy + 1)
      tx = jax.random.randint(next(keys), (b,), -sx, sx + 1)
      yy = jnp.arange(h)[None, :] - ty[:, None]  # [B, H] source rows
      xx = jnp.arange(w)[None, :] - tx[:, None]
      valid = (((yy >= 0) & (yy < h))[:, :, None] & ((xx >= 0) & (xx < w))[:, None, :])
      gathered = x[jnp.arange(b)[:, None, None], jnp.clip(yy, 0, h - 1)[:, :, None],
                   jnp.clip(xx, 0, w - 1)[:, None, :]]
      x = jnp.where(valid[..., None], gathered, 0.0)
    elif name == "cutout":  # A zeroed square of half the size at a random place.
      ch, cw = int(h * 0.5 + 0.5), int(w * 0.5 + 0.5)
      oy = jax.random.randint(next(keys), (b,), 0, h + (1 - ch % 2))
      ox = jax.random.randint(next(keys), (b,), 0, w + (1 - cw % 2))
      yy = jnp.arange(h)[None, :] - oy[:, None] + ch // 2
      xx = jnp.arange(w)[None, :] - ox[:, None] + cw // 2
      inside = (((yy >= 0) & (yy < ch))[:, :, None] & ((xx >= 0) & (xx < cw))[:, None, :])
      x = x * (~inside)[..., None]
    else:
      raise ConfigError(f"unknown DiffAugment {name!r}; valid: {', '.join(DIFF_AUGMENTS)}")
  return x


def parse_policy(text: str) -> tuple:
  """'color,translation' -> ('color', 'translation'), checked against DIFF_AUGMENTS."""
  policy = tuple(p for p in text.replace(" ", "").split(",") if p)
  bad = [p for p in policy if p not in DIFF_AUGMENTS]
  if bad:
    raise ConfigError(f"unknown augment.diff entry {bad[0]!r}; valid: {', '.join(DIFF_AUGMENTS)}")
  return policy


def from_config(cfg: ml_collections.ConfigDict):
  """(augment_real(x, key), diff(x, key)) from the `augment` config group (identity when off)."""
  flip, zoom, rotate = cfg.flip, cfg.zoom, cfg.rotate
  if zoom < 0 or rotate < 0 or zoom >= 1:
    raise ConfigError("augment.zoom must be in [0, 1) and augment.rotate >= 0 (degrees)")
  policy = parse_policy(cfg.diff)
  real = lambda x, key: augment(x, key, flip, zoom, rotate)
  diff = (lambda x, key: diff_augment(x, key, policy)) if policy else (lambda x, key: x)
  return real, diff
