"""Fréchet Inception distance (FID) from a local copy of the FID InceptionV3 weights.

The network is the InceptionV3 variant of the FID reference code (TTUR), as
ported by pytorch-fid (`pytorch_fid.inception.fid_inception_v3`): torchvision's
Inception3 with the `FIDInceptionA`, `FIDInceptionC`, `FIDInceptionE_1` and
`FIDInceptionE_2` blocks. Their average pools leave padding out of the mean
(TensorFlow's), and the last block pools by max instead of average. Features
are the 2,048-d output of the final average pool ("pool3"). Inputs are images
in [0, 1], resized bilinearly to 299x299 (PyTorch's `F.interpolate(...,
align_corners=False)`, no antialiasing) and scaled to [-1, 1], as pytorch-fid
does. Batch norm runs in inference mode (epsilon 0.001). Layout is NHWC.

Nothing here downloads anything: the weights come from a file that the user
gives (`eval.inception_weights`), in one of two forms:

* `.npz`: pytorch-fid's state dict (pt_inception-2015-12-05-6726825d.pth)
  saved with numpy, one array per state-dict key (`Conv2d_1a_3x3.conv.weight`,
  `Conv2d_1a_3x3.bn.running_mean`, `Mixed_5b.branch1x1.conv.weight`, ...).
  Convolution kernels stay in PyTorch's [out, in, kh, kw] layout; the loader
  transposes them. Keys the pool3 features do not use (`fc.*`,
  `*.num_batches_tracked`) are ignored. To make the file, on a machine with
  torch (and the .pth, from
  https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth):

      python scripts/convert_inception_weights.py pt_inception-2015-12-05-6726825d.pth pt_inception.npz

  which does no more than
  `np.savez(out, **{k: v.numpy() for k, v in torch.load(pth).items()})`.
* `.pth`: the same state dict read directly, only where `torch` can be imported
  (it is never a dependency of gm).

With pytorch-fid's weights the features match pytorch-fid's to float
precision. FID of fewer than 2,048 images per set has rank-deficient covariances.
It is biased upwards and comparable only between runs with the same counts.
"""

import functools
import importlib.util
import os
from typing import Any, Dict, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gm.errors import UserError
from gm.metrics.distances import frechet_distance

INPUT_SIZE = 299
FEATURE_DIM = 2048
EXTENSIONS = (".npz", ".pth", ".pt")
_HOWTO = ("convert pytorch-fid's pt_inception-2015-12-05 .pth with "
          "scripts/convert_inception_weights.py (see gm/metrics/inception.py)")

_NEEDS_TORCH = ("reading {path} needs torch, which is not installed; convert it to .npz with "
                "scripts/convert_inception_weights.py where torch is")

Pad = Tuple[int, int]


# --- the network -------------------------------------------------------------


class BasicConv2d(nn.Module):
  """Conv (no bias) -> batch norm (inference, eps 1e-3) -> ReLU; torchvision's BasicConv2d."""
  features: int
  kernel: Tuple[int, int] = (1, 1)
  stride: int = 1
  padding: Tuple[Pad, Pad] = ((0, 0), (0, 0))

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(self.features, self.kernel, strides=self.stride, padding=self.padding,
                use_bias=False, precision=jax.lax.Precision.HIGHEST, name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
    return nn.relu(x)


def _same(kh: int, kw: int) -> Tuple[Pad, Pad]:
  """PyTorch's symmetric padding that keeps the size of a stride-1 kh x kw conv."""
  return ((kh // 2, kh // 2), (kw // 2, kw // 2))


def _avg_pool_3x3(x):
  """3x3 stride-1 average over the in-bounds pixels (`count_include_pad=False`)."""
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3(x, stride: int, pad: int = 0):
  """3x3 max pool (padding is -inf, as PyTorch's)."""
  return nn.max_pool(x, (3, 3), strides=(stride, stride), padding=((pad, pad), (pad, pad)))


class FIDInceptionA(nn.Module):
  """35x35 block: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avg pool (no pad count)-1x1; 224 + pool ch."""
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv2d(64, name="branch1x1")(x)
    b5 = BasicConv2d(48, name="branch5x5_1")(x)
    b5 = BasicConv2d(64, (5, 5), padding=_same(5, 5), name="branch5x5_2")(b5)
    b3 = BasicConv2d(64, name="branch3x3dbl_1")(x)
    b3 = BasicConv2d(96, (3, 3), padding=_same(3, 3), name="branch3x3dbl_2")(b3)
    b3 = BasicConv2d(96, (3, 3), padding=_same(3, 3), name="branch3x3dbl_3")(b3)
    bp = BasicConv2d(self.pool_features, name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b5, b3, bp], -1)


class InceptionB(nn.Module):
  """35 -> 17 reduction (Mixed_6a): 3x3/2 | 1x1-3x3-3x3/2 | max pool/2; 480 + in ch."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv2d(384, (3, 3), stride=2, name="branch3x3")(x)
    bd = BasicConv2d(64, name="branch3x3dbl_1")(x)
    bd = BasicConv2d(96, (3, 3), padding=_same(3, 3), name="branch3x3dbl_2")(bd)
    bd = BasicConv2d(96, (3, 3), stride=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, _max_pool_3x3(x, 2)], -1)


class FIDInceptionC(nn.Module):
  """17x17 block with factorised 7x7 convs; 768 channels out."""
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    b1 = BasicConv2d(192, name="branch1x1")(x)
    b7 = BasicConv2d(c7, name="branch7x7_1")(x)
    b7 = BasicConv2d(c7, (1, 7), padding=_same(1, 7), name="branch7x7_2")(b7)
    b7 = BasicConv2d(192, (7, 1), padding=_same(7, 1), name="branch7x7_3")(b7)
    bd = BasicConv2d(c7, name="branch7x7dbl_1")(x)
    bd = BasicConv2d(c7, (7, 1), padding=_same(7, 1), name="branch7x7dbl_2")(bd)
    bd = BasicConv2d(c7, (1, 7), padding=_same(1, 7), name="branch7x7dbl_3")(bd)
    bd = BasicConv2d(c7, (7, 1), padding=_same(7, 1), name="branch7x7dbl_4")(bd)
    bd = BasicConv2d(192, (1, 7), padding=_same(1, 7), name="branch7x7dbl_5")(bd)
    bp = BasicConv2d(192, name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b7, bd, bp], -1)


class InceptionD(nn.Module):
  """17 -> 8 reduction (Mixed_7a): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | max pool/2; 512 + in ch."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv2d(192, name="branch3x3_1")(x)
    b3 = BasicConv2d(320, (3, 3), stride=2, name="branch3x3_2")(b3)
    b7 = BasicConv2d(192, name="branch7x7x3_1")(x)
    b7 = BasicConv2d(192, (1, 7), padding=_same(1, 7), name="branch7x7x3_2")(b7)
    b7 = BasicConv2d(192, (7, 1), padding=_same(7, 1), name="branch7x7x3_3")(b7)
    b7 = BasicConv2d(192, (3, 3), stride=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, _max_pool_3x3(x, 2)], -1)


class FIDInceptionE(nn.Module):
  """8x8 block with split 1x3 / 3x1 convs; 2048 channels out.

  `max_pool`: False for FIDInceptionE_1 (Mixed_7b: average pool without the
  padding), True for FIDInceptionE_2 (Mixed_7c: 3x3 max pool, the FID
  network's quirk).
  """
  max_pool: bool = False

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv2d(320, name="branch1x1")(x)
    b3 = BasicConv2d(384, name="branch3x3_1")(x)
    b3 = jnp.concatenate([
        BasicConv2d(384, (1, 3), padding=_same(1, 3), name="branch3x3_2a")(b3),
        BasicConv2d(384, (3, 1), padding=_same(3, 1), name="branch3x3_2b")(b3)], -1)
    bd = BasicConv2d(448, name="branch3x3dbl_1")(x)
    bd = BasicConv2d(384, (3, 3), padding=_same(3, 3), name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate([
        BasicConv2d(384, (1, 3), padding=_same(1, 3), name="branch3x3dbl_3a")(bd),
        BasicConv2d(384, (3, 1), padding=_same(3, 1), name="branch3x3dbl_3b")(bd)], -1)
    pooled = _max_pool_3x3(x, 1, pad=1) if self.max_pool else _avg_pool_3x3(x)
    bp = BasicConv2d(192, name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], -1)


class FIDInceptionV3(nn.Module):
  """Images [N, H, W, 3] in [-1, 1] (H, W >= 75; 299 for FID) -> pool3 features [N, 2048].

  Submodule names are the PyTorch attribute names, so that parameter paths map
  one to one onto pytorch-fid's state-dict keys (see `torch_key`).
  """

  @nn.compact
  def __call__(self, x):
    x = BasicConv2d(32, (3, 3), stride=2, name="Conv2d_1a_3x3")(x)            # [N, 149, 149, 32]
    x = BasicConv2d(32, (3, 3), name="Conv2d_2a_3x3")(x)                      # [N, 147, 147, 32]
    x = BasicConv2d(64, (3, 3), padding=_same(3, 3), name="Conv2d_2b_3x3")(x)  # [N, 147, 147, 64]
    x = _max_pool_3x3(x, 2)                                                   # [N, 73, 73, 64]
    x = BasicConv2d(80, name="Conv2d_3b_1x1")(x)                              # [N, 73, 73, 80]
    x = BasicConv2d(192, (3, 3), name="Conv2d_4a_3x3")(x)                     # [N, 71, 71, 192]
    x = _max_pool_3x3(x, 2)                                                   # [N, 35, 35, 192]
    x = FIDInceptionA(32, name="Mixed_5b")(x)                                 # [N, 35, 35, 256]
    x = FIDInceptionA(64, name="Mixed_5c")(x)                                 # [N, 35, 35, 288]
    x = FIDInceptionA(64, name="Mixed_5d")(x)                                 # [N, 35, 35, 288]
    x = InceptionB(name="Mixed_6a")(x)                                        # [N, 17, 17, 768]
    x = FIDInceptionC(128, name="Mixed_6b")(x)                                # [N, 17, 17, 768]
    x = FIDInceptionC(160, name="Mixed_6c")(x)
    x = FIDInceptionC(160, name="Mixed_6d")(x)
    x = FIDInceptionC(192, name="Mixed_6e")(x)                                # [N, 17, 17, 768]
    x = InceptionD(name="Mixed_7a")(x)                                        # [N, 8, 8, 1280]
    x = FIDInceptionE(max_pool=False, name="Mixed_7b")(x)                     # [N, 8, 8, 2048]
    x = FIDInceptionE(max_pool=True, name="Mixed_7c")(x)                      # [N, 8, 8, 2048]
    return x.mean(axis=(1, 2))                                                # [N, 2048]


# --- input pipeline ----------------------------------------------------------


def _bilinear_matrix(size_in: int, size_out: int) -> np.ndarray:
  """[size_out, size_in] weights of PyTorch's bilinear resize (align_corners=False, no antialias).

  Source coordinate (i + 0.5) * in / out - 0.5, clamped below at 0; the upper
  neighbour is clamped at the last pixel.
  """
  src = np.maximum((np.arange(size_out) + 0.5) * (size_in / size_out) - 0.5, 0.0)
  lo = np.minimum(np.floor(src).astype(np.int64), size_in - 1)
  hi = np.minimum(lo + 1, size_in - 1)
  frac = src - lo
  m = np.zeros((size_out, size_in), np.float64)
  np.add.at(m, (np.arange(size_out), lo), 1.0 - frac)
  np.add.at(m, (np.arange(size_out), hi), frac)
  return m.astype(np.float32)


def preprocess(images: jnp.ndarray, size: int = INPUT_SIZE) -> jnp.ndarray:
  """Images [N, H, W, 3] in [0, 1] -> [N, size, size, 3] in [-1, 1], as pytorch-fid."""
  _, h, w, _ = images.shape
  x = images.astype(jnp.float32)
  if (h, w) != (size, size):
    rh, rw = _bilinear_matrix(h, size), _bilinear_matrix(w, size)
    x = jnp.einsum("oh,nhwc->nowc", rh, x, precision=jax.lax.Precision.HIGHEST)
    x = jnp.einsum("pw,nowc->nopc", rw, x, precision=jax.lax.Precision.HIGHEST)
  return 2.0 * x - 1.0


# --- weights -----------------------------------------------------------------


def torch_key(collection: str, path: Tuple[str, ...]) -> str:
  """Flax variable path -> pytorch-fid state-dict key.

  ('params', (Conv2d_1a_3x3, conv, kernel)) -> 'Conv2d_1a_3x3.conv.weight';
  bn/scale -> bn.weight, bn/bias -> bn.bias; ('batch_stats', (..., bn, mean |
  var)) -> bn.running_mean | bn.running_var.
  """
  names = {("params", "kernel"): "weight", ("params", "scale"): "weight",
           ("params", "bias"): "bias", ("batch_stats", "mean"): "running_mean",
           ("batch_stats", "var"): "running_var"}
  return ".".join(path[:-1] + (names[(collection, path[-1])],))


def _to_torch_shape(shape: Tuple[int, ...]) -> Tuple[int, ...]:
  """HWIO conv kernel shape -> PyTorch's OIHW; other shapes unchanged."""
  return (shape[3], shape[2], shape[0], shape[1]) if len(shape) == 4 else tuple(shape)


@functools.lru_cache(maxsize=1)
def variable_shapes() -> Dict[str, Tuple[str, Tuple[str, ...], Tuple[int, ...]]]:
  """{pytorch-fid key: (flax collection, flax path, flax shape)} of every weight the model uses."""
  abstract = jax.eval_shape(FIDInceptionV3().init, jax.random.PRNGKey(0),
                            jax.ShapeDtypeStruct((1, 75, 75, 3), jnp.float32))
  table = {}
  for collection, tree in abstract.items():
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
      names = tuple(p.key for p in path)
      table[torch_key(collection, names)] = (collection, names, tuple(leaf.shape))
  return table


def torch_shapes() -> Dict[str, Tuple[int, ...]]:
  """{pytorch-fid key: shape in the state dict (convs OIHW)}: what a weights file must hold."""
  return {k: _to_torch_shape(shape) for k, (_, _, shape) in variable_shapes().items()}


def check_weights_path(path: str) -> str:
  """Absolute path of an existing .npz / .pth file, else a UserError that says what to give."""
  full = os.path.abspath(os.path.expanduser(path))
  ext = os.path.splitext(full)[1].lower()
  if ext not in EXTENSIONS:
    raise UserError(f"Inception weights {path!r}: expected a .npz (or .pth with torch installed) "
                    f"file; {_HOWTO}")
  if not os.path.isfile(full):
    raise UserError(f"Inception weights file {full} not found; give an existing file in "
                    f"eval.inception_weights (or '' for no FID); {_HOWTO}")
  if ext != ".npz" and importlib.util.find_spec("torch") is None:
    raise UserError(_NEEDS_TORCH.format(path=full))
  return full


def _read_state_dict(path: str) -> Dict[str, np.ndarray]:
  """{key: array} from a .npz, or from a .pth through a lazily imported torch."""
  if path.lower().endswith(".npz"):
    try:
      with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
    except Exception as e:  # pylint: disable=broad-except
      raise UserError(f"cannot read Inception weights {path} as .npz ({e}); {_HOWTO}") from e
  try:
    import torch  # pylint: disable=g-import-not-at-top  # Optional; never a gm dependency.
  except ImportError:
    raise UserError(_NEEDS_TORCH.format(path=path)) from None
  try:
    state = torch.load(path, map_location="cpu", weights_only=True)
  except Exception as e:  # pylint: disable=broad-except
    raise UserError(f"cannot read Inception weights {path} with torch.load ({e})") from e
  if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
    state = state["state_dict"]
  if not isinstance(state, dict):
    raise UserError(f"{path} holds a {type(state).__name__}, not a state dict; {_HOWTO}")
  return {k: v.detach().cpu().numpy() for k, v in state.items() if hasattr(v, "detach")}


def variables_from_state_dict(state: Dict[str, Any], source: str = "the state dict"
                              ) -> Dict[str, Any]:
  """pytorch-fid state dict {key: array} -> Flax variables {'params', 'batch_stats'}.

  Extra keys (fc.*, num_batches_tracked) are ignored.

  Raises:
    UserError: a key is missing (the first one is named) or has the wrong shape.
  """
  table = variable_shapes()
  missing = [k for k in table if k not in state]
  if missing:
    raise UserError(f"{source} lacks the key {missing[0]!r} ({len(missing)} of {len(table)} "
                    f"FID-Inception weights missing); {_HOWTO}")
  variables: Dict[str, Any] = {}
  for key, (collection, path, shape) in table.items():
    value = np.asarray(state[key])
    if value.shape != _to_torch_shape(shape):
      raise UserError(f"{source}: {key!r} has shape {value.shape}, expected "
                      f"{_to_torch_shape(shape)} (pytorch-fid layout); {_HOWTO}")
    if len(shape) == 4:
      value = value.transpose(2, 3, 1, 0)  # [O, I, kh, kw] -> [kh, kw, I, O]
    node = variables.setdefault(collection, {})
    for name in path[:-1]:
      node = node.setdefault(name, {})
    node[path[-1]] = jnp.asarray(value, jnp.float32)
  return variables


def load_inception(path: str) -> Dict[str, Any]:
  """Flax variables of `FIDInceptionV3` from a local .npz (or .pth, with torch) file.

  Raises:
    UserError: the file is missing, has another extension, cannot be read, or
      lacks a weight / has one of the wrong shape.
  """
  full = check_weights_path(path)
  return variables_from_state_dict(_read_state_dict(full), full)


def num_params(variables: Dict[str, Any]) -> int:
  """Number of trained parameters (conv kernels, BN scale and bias; not the running stats)."""
  return int(sum(np.size(v) for v in jax.tree_util.tree_leaves(variables["params"])))


# --- features and FID --------------------------------------------------------


@functools.partial(jax.jit, static_argnames="size")
def _features(variables: Dict[str, Any], images: jnp.ndarray, size: int) -> jnp.ndarray:
  """Images [B, H, W, 3] in [0, 1] -> pool3 features [B, 2048] (one compilation per shape)."""
  return FIDInceptionV3().apply(variables, preprocess(images, size))


class InceptionFeatures:
  """Pool3 features of images in [0, 1], computed in jitted batches.

  Args:
    weights: path of the weights file (see `load_inception`), or Flax variables.
    batch_size: images per compiled call; the last batch is padded, so one
      compilation serves any number of images of one size.
    image_size: the network's input size. 299 (pytorch-fid's) for FIDs that
      compare with published ones; smaller sizes (>= 75) only for tests.
  """

  def __init__(self, weights, batch_size: int = 50, image_size: int = INPUT_SIZE):
    if isinstance(weights, (str, os.PathLike)):
      weights = load_inception(os.fspath(weights))
    self.variables = weights
    self.batch_size = max(1, int(batch_size))
    if image_size < 75:
      raise UserError(f"Inception input size {image_size} < 75, the smallest the network takes")
    self.image_size = int(image_size)

  def __call__(self, images: np.ndarray) -> np.ndarray:
    """Images [N, H, W, 3] in [0, 1] -> features [N, 2048] (float32, host)."""
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] != 3:
      raise UserError(f"Inception features need RGB images [N, H, W, 3]; got {images.shape}")
    out, b = [], self.batch_size
    for i in range(0, len(images), b):
      chunk = images[i:i + b]
      pad = b - len(chunk)
      if pad:
        chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], chunk.dtype)])
      out.append(np.asarray(_features(self.variables, chunk, self.image_size))[:b - pad])
    return np.concatenate(out) if out else np.zeros((0, FEATURE_DIM), np.float32)

  def fid(self, generated: np.ndarray, real: np.ndarray) -> float:
    """Fréchet distance between the features of two image sets [N, H, W, 3] in [0, 1]."""
    return frechet_distance(self(generated), self(real))


def fid(generated: np.ndarray, real: np.ndarray, weights, batch_size: int = 50) -> float:
  """FID of two image sets in [0, 1] with weights from a file (or variables); see InceptionFeatures."""
  return InceptionFeatures(weights, batch_size).fid(generated, real)


__all__ = ["FIDInceptionV3", "InceptionFeatures", "check_weights_path", "fid", "load_inception",
           "num_params", "preprocess", "torch_shapes", "variables_from_state_dict"]
