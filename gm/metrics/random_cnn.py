"""Features of a randomly initialised, fixed-seed conv net: the embedding for photo folders
without Inception weights (precision / recall / density / coverage need some embedding).

Why random weights: Naeem et al. 2020 ("Reliable fidelity and diversity
metrics for generative models", the part on embeddings) point out that
ImageNet-trained embeddings carry ImageNet's bias into the metrics, evaluate
with randomly initialised CNN embeddings instead, and find them the more
sensible choice especially where the data differ much from ImageNet. Here
they are also the only embedding that needs no download: gm never fetches
weights, and the photo folders come without a trained network. With
Inception weights (`eval.inception_weights`) the folder scores add the same
four numbers on Inception features.

What it sees: on the carrot-cake photos, two halves of the folder score as one
distribution (density about 1, coverage about 0.99), while noise images, a
collapse onto one photo, and a set holding only the brighter half of the
photos lose precision, coverage or recall as they should. Fine detail (a
slight blur, pixel noise) moves it little; the SWD's finer levels cover that.

The net: five 3x3 conv + ReLU stages (32, 64, 128, 256, 256 channels, no
bias), 2x2 average pooling between stages, then a global average over space
(a 256-d feature, the same form as Inception's pool3). Its receptive field
is 63 px, so at 64x64 a feature sees nearly the whole photo; the global
average keeps colour and texture statistics at every scale and drops exact
placement, which suits centre-cropped photos whose subject sits anywhere.
Inputs are images in [0, 1], scaled to [-1, 1].

The weights are He-normal draws from numpy's legacy `RandomState(seed)`, a
stream numpy keeps fixed across versions, so the features (and scores) of a
given image set do not change with the numpy or JAX version beyond float
rounding. Changing the architecture or its random seed changes every score: compare
only numbers from the same `VERSION`.
"""

import functools
from typing import List, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gm.errors import UserError

WIDTHS = (32, 64, 128, 256, 256)
SEED = 0
VERSION = "randcnn-v1"  # Names this embedding (architecture, init and seed) in score files.
MIN_SIZE = 2 ** (len(WIDTHS) - 1)


def random_weights(in_channels: int, widths: Sequence[int] = WIDTHS,
                   seed: int = SEED) -> List[np.ndarray]:
  """He-normal 3x3 kernels [3, 3, c_in, c_out] (float32) from RandomState(seed), stage by stage."""
  rs = np.random.RandomState(seed)
  out, c_in = [], in_channels
  for c_out in widths:
    std = np.sqrt(2.0 / (9 * c_in))
    out.append((rs.standard_normal((3, 3, c_in, c_out)) * std).astype(np.float32))
    c_in = c_out
  return out


@jax.jit
def _embed(weights: List[jnp.ndarray], images: jnp.ndarray) -> jnp.ndarray:
  """Images [B, H, W, C] in [0, 1] -> features [B, WIDTHS[-1]]."""
  x = 2.0 * images - 1.0
  for i, w in enumerate(weights):
    if i:  # 2x2 average pooling between stages (odd sizes drop the last row / column).
      b, h, wd, c = x.shape
      x = x[:, :h // 2 * 2, :wd // 2 * 2].reshape(b, h // 2, 2, wd // 2, 2, c).mean((2, 4))
    x = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     precision=jax.lax.Precision.HIGHEST)
    x = jax.nn.relu(x)
  return x.mean((1, 2))


class RandomCNNFeatures:
  """Callable: images [N, H, W, C] in [0, 1] -> features [N, 256] (float32, host).

  Args:
    in_channels: C of the images (3 for photos).
    batch_size: images per compiled call; the last batch is padded, so one
      compilation serves any N of one image size.
  """

  name = VERSION

  def __init__(self, in_channels: int = 3, batch_size: int = 250, seed: int = SEED):
    self.weights = [jnp.asarray(w) for w in random_weights(in_channels, seed=seed)]
    self.in_channels = in_channels
    self.batch_size = max(1, int(batch_size))

  def __call__(self, images: np.ndarray) -> np.ndarray:
    images = np.asarray(images, np.float32)
    if (images.ndim != 4 or images.shape[-1] != self.in_channels
        or min(images.shape[1:3]) < MIN_SIZE):
      raise UserError(f"random-CNN features need images [N, H, W, {self.in_channels}] of at least "
                      f"{MIN_SIZE}x{MIN_SIZE} px; got {images.shape}")
    out, b = [], self.batch_size
    for i in range(0, len(images), b):
      chunk = images[i:i + b]
      pad = b - len(chunk) if len(images) > b else 0  # One shape for every batch of a long set.
      if pad:
        chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], chunk.dtype)])
      out.append(np.asarray(_embed(self.weights, chunk))[:len(chunk) - pad])
    return np.concatenate(out) if out else np.zeros((0, WIDTHS[-1]), np.float32)


@functools.lru_cache(maxsize=4)
def features_for(in_channels: int) -> RandomCNNFeatures:
  """One shared instance per channel count (its weights are made once)."""
  return RandomCNNFeatures(in_channels)
