"""Generators and discriminators of the reference documents' GANs, each architecture once.

Every module takes an optional condition `cond` [B, K] (a one-hot label for
conditional GANs; None otherwise) and a `train` flag (batch norm statistics,
dropout). Discriminators return logits [B] (or critic scores for Wasserstein
losses); generators return images [B, H, W, C] in the range of their output
activation (tanh: [-1, 1]; sigmoid: [0, 1]).

MNIST models follow the CS231n GAN notebook (the course notebook): MLP and DCGAN after
InfoGAN.

Swappable layers are `ModuleDef` fields defaulting to Flax's (`conv`,
`conv_transpose`, `max_pool`, `batch_norm`), as in Flax's ResNet example; the
family passes the runtime's (`gm.backend.runtime.layers`) and, under `jax.pmap` /
`shard_map`, a `batch_norm` bound to the mapped axis (`nn.BatchNorm` with
`axis_name`), so batch statistics are averaged over it.
"""

import functools
from typing import Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gm.errors import ConfigError
from gm.models.conv import KERAS_INIT, ModuleDef, max_pool_2x2
from gm.registry import Registry

GENERATORS = Registry("generator")
DISCRIMINATORS = Registry("discriminator")


def _with_cond(h: jnp.ndarray, cond: Optional[jnp.ndarray]) -> jnp.ndarray:
  """Concatenates the condition to flat features [B, F] -> [B, F + K]."""
  return h if cond is None else jnp.concatenate([h, cond.astype(h.dtype)], -1)


def _batch_norm(norm: ModuleDef, train: bool) -> nn.Module:
  """`norm` (a batch norm) with TensorFlow's defaults (momentum 0.99, epsilon 1e-3), as the course
  notebook and the assignment used them.

  `train`: normalise with (and update) batch statistics; else the running ones.
  """
  return norm(use_running_average=not train, momentum=0.99, epsilon=1e-3)


D_NORMS = ("batch", "none")  # A discriminator's `norm` field.


def _spectral(layer: nn.Module, on: bool, train: bool) -> Callable:
  """`layer`, or with `on` the layer spectrally normalised (Miyato et al. 2018, SNGAN).

  Every weight of 2 or more dimensions (a conv kernel read as [-1, out]) is divided by its
  largest singular value, estimated by one power iteration per call (`flax.linen.SpectralNorm`).
  The iteration's vector `u` and `sigma` live in the 'batch_stats' collection and advance only
  when `train`, i.e. in the discriminator's own step, where the family keeps the new stats.
  """
  if not on:
    return layer
  return lambda x: nn.SpectralNorm(layer)(x, update_stats=train)


def _d_norm(module: nn.Module, norm: ModuleDef, train: bool, make=None) -> Callable:
  """A discriminator's normalisation: `make(norm, train)` (a batch norm) for norm 'batch',
  the identity for 'none' (SNGAN-style discriminators)."""
  if module.norm not in D_NORMS:
    raise ConfigError(f"model.d.norm={module.norm!r}; valid: {', '.join(D_NORMS)}")
  if module.norm == "none":
    return lambda x: x
  return (make or _batch_norm)(norm, train)


@DISCRIMINATORS.register("mlp")
class MLPDiscriminator(nn.Module):
  """784 -> 256 -> 256 -> 1 with LeakyReLU(0.01) (CS231n; 267,009 parameters)."""
  hidden: Sequence[int] = (256, 256)
  leak: float = 0.01
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x, cond=None, train: bool = True, bn_running: bool = False):
    del bn_running
    sn = functools.partial(_spectral, on=self.spectral_norm, train=train)
    h = _with_cond(x.reshape(x.shape[0], -1), cond)  # [B, H*W*C (+K)]
    for width in self.hidden:
      h = nn.leaky_relu(sn(nn.Dense(width, kernel_init=KERAS_INIT))(h), self.leak)
    self.sow("intermediates", "features", h)  # For feature-matching losses.
    return sn(nn.Dense(1, kernel_init=KERAS_INIT))(h)[:, 0]  # [B]


@GENERATORS.register("mlp")
class MLPGenerator(nn.Module):
  """noise -> 1024 -> 1024 -> 784, ReLU, tanh (CS231n; 1,858,320 parameters at noise 4)."""
  output_range = (-1.0, 1.0)
  out_shape: Sequence[int] = (28, 28, 1)
  hidden: Sequence[int] = (1024, 1024)

  @nn.compact
  def __call__(self, z, cond=None, train: bool = True):
    h = _with_cond(z, cond)
    for width in self.hidden:
      h = nn.relu(nn.Dense(width, kernel_init=KERAS_INIT)(h))
    n = self.out_shape[0] * self.out_shape[1] * self.out_shape[2]
    return jnp.tanh(nn.Dense(n, kernel_init=KERAS_INIT)(h)).reshape(-1, *self.out_shape)


@DISCRIMINATORS.register("dcgan_mnist")
class DCGANMnistDiscriminator(nn.Module):
  """conv 32 5x5 valid, LReLU, pool; conv 64 5x5, LReLU, pool; dense 1024, LReLU; dense 1.

  28 -> 24 -> 12 -> 8 -> 4; 1,102,721 parameters (CS231n). A condition is
  concatenated to the flattened conv features.
  """
  leak: float = 0.01
  spectral_norm: bool = False
  conv: ModuleDef = nn.Conv
  max_pool: Callable = max_pool_2x2

  @nn.compact
  def __call__(self, x, cond=None, train: bool = True, bn_running: bool = False):
    del bn_running
    sn = functools.partial(_spectral, on=self.spectral_norm, train=train)
    for width in (32, 64):
      x = sn(self.conv(width, (5, 5), padding="VALID", kernel_init=KERAS_INIT))(x)
      x = self.max_pool(nn.leaky_relu(x, self.leak))
    h = _with_cond(x.reshape(x.shape[0], -1), cond)  # [B, 4*4*64 (+K)]
    h = nn.leaky_relu(sn(nn.Dense(4 * 4 * 64, kernel_init=KERAS_INIT))(h), self.leak)
    self.sow("intermediates", "features", h)
    return sn(nn.Dense(1, kernel_init=KERAS_INIT))(h)[:, 0]


@GENERATORS.register("dcgan_mnist")
class DCGANMnistGenerator(nn.Module):
  """InfoGAN generator: dense 1024, ReLU, BN; dense 7*7*128, ReLU, BN; two 4x4 stride-2
  transposed convs (64 + ReLU + BN, then 1 + tanh). 7 -> 14 -> 28.

  6,595,521 parameters plus batch-norm statistics at noise 4 (CS231n's count).
  """
  output_range = (-1.0, 1.0)
  conv_transpose: ModuleDef = nn.ConvTranspose
  batch_norm: ModuleDef = nn.BatchNorm

  @nn.compact
  def __call__(self, z, cond=None, train: bool = True):
    norm = functools.partial(_batch_norm, self.batch_norm, train)
    h = _with_cond(z, cond)
    h = norm()(nn.relu(nn.Dense(1024, kernel_init=KERAS_INIT)(h)))
    h = nn.Dense(7 * 7 * 128, kernel_init=KERAS_INIT)(h)
    h = norm()(nn.relu(h)).reshape(-1, 7, 7, 128)
    h = self.conv_transpose(64, (4, 4), (2, 2), kernel_init=KERAS_INIT)(h)
    h = norm()(nn.relu(h))  # [B, 14, 14, 64]
    h = self.conv_transpose(1, (4, 4), (2, 2), kernel_init=KERAS_INIT)(h)
    return jnp.tanh(h)  # [B, 28, 28, 1]


@DISCRIMINATORS.register("dcgan_cake")
class DCGANCakeDiscriminator(nn.Module):
  """The assignment's cake discriminator: three conv 4x4 stride 2 'same', each with batch norm and
  LeakyReLU(0.2) (64, 128, 128 filters); flatten; dropout 0.2; dense 1 (a logit).

  64 -> 32 -> 16 -> 8. `width` scales the filters (smoke configs). `bn_running`:
  normalise with running statistics even in training (Keras' frozen-discriminator
  semantics in the generator step); dropout still follows `train`.
  """
  filters: Sequence[int] = (64, 128, 128)
  width: float = 1.0
  dropout: float = 0.2
  leak: float = 0.2
  norm: str = "batch"  # batch | none
  spectral_norm: bool = False
  conv: ModuleDef = nn.Conv
  batch_norm: ModuleDef = nn.BatchNorm

  @nn.compact
  def __call__(self, x, cond=None, train: bool = True, bn_running: bool = False):
    sn = functools.partial(_spectral, on=self.spectral_norm, train=train)
    for f in self.filters:
      x = sn(self.conv(max(1, int(f * self.width)), (4, 4), (2, 2), padding="SAME",
                       kernel_init=KERAS_INIT))(x)
      x = nn.leaky_relu(_d_norm(self, self.batch_norm, train and not bn_running)(x), self.leak)
    h = _with_cond(x.reshape(x.shape[0], -1), cond)
    self.sow("intermediates", "features", h)
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    return sn(nn.Dense(1, kernel_init=KERAS_INIT))(h)[:, 0]


def _upsample2(x: jnp.ndarray) -> jnp.ndarray:
  """Nearest-neighbour x2: [B, H, W, C] -> [B, 2H, 2W, C]."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


@GENERATORS.register("dcgan_cake")
class DCGANCakeGenerator(nn.Module):
  """The assignment's transposed generator: dense 8*8*128 (no activation); reshape; transposed convs
  4x4 stride 2 'same' with LeakyReLU(0.2) and 128, 256, 512 filters; conv 5x5 to 3, sigmoid.
  """
  output_range = (0.0, 1.0)
  filters: Sequence[int] = (128, 256, 512)
  start: int = 8
  start_channels: int = 128
  width: float = 1.0
  leak: float = 0.2
  channels: int = 3
  conv: ModuleDef = nn.Conv
  conv_transpose: ModuleDef = nn.ConvTranspose

  @nn.compact
  def __call__(self, z, cond=None, train: bool = True):
    c0 = max(1, int(self.start_channels * self.width))
    h = nn.Dense(self.start * self.start * c0, kernel_init=KERAS_INIT)(_with_cond(z, cond))
    h = h.reshape(-1, self.start, self.start, c0)
    for f in self.filters:
      h = self.conv_transpose(max(1, int(f * self.width)), (4, 4), (2, 2),
                              kernel_init=KERAS_INIT)(h)
      h = nn.leaky_relu(h, self.leak)
    h = self.conv(self.channels, (5, 5), padding="SAME", kernel_init=KERAS_INIT)(h)
    return jax.nn.sigmoid(h)  # [B, 64, 64, 3]


@GENERATORS.register("dcgan_cake_upsample")
class DCGANCakeUpsampleGenerator(nn.Module):
  """The assignment's upsampling generator: dense 8*8*128; reshape; three blocks of nearest x2
  upsampling then two (conv 3x3, batch norm, LeakyReLU(0.2)) with 64, 128, 256 filters;
  conv 5x5 to 3, sigmoid.
  """
  output_range = (0.0, 1.0)
  filters: Sequence[int] = (64, 128, 256)
  start: int = 8
  start_channels: int = 128
  width: float = 1.0
  leak: float = 0.2
  channels: int = 3
  conv: ModuleDef = nn.Conv
  batch_norm: ModuleDef = nn.BatchNorm

  @nn.compact
  def __call__(self, z, cond=None, train: bool = True):
    c0 = max(1, int(self.start_channels * self.width))
    h = nn.Dense(self.start * self.start * c0, kernel_init=KERAS_INIT)(_with_cond(z, cond))
    h = h.reshape(-1, self.start, self.start, c0)
    for f in self.filters:
      h = _upsample2(h)
      for _ in range(2):
        h = self.conv(max(1, int(f * self.width)), (3, 3), padding="SAME",
                      kernel_init=KERAS_INIT)(h)
        h = nn.leaky_relu(_batch_norm(self.batch_norm, train)(h), self.leak)
    h = self.conv(self.channels, (5, 5), padding="SAME", kernel_init=KERAS_INIT)(h)
    return jax.nn.sigmoid(h)


# PyTorch's default initialisation of Conv2d / ConvTranspose2d / Linear (kaiming_uniform with
# a = sqrt(5)): weights and biases uniform in +-1/sqrt(fan_in). PyTorch takes a transposed conv's
# fan_in from its weight's dim 1, the output channels, hence `in_axis=-1` for HWIO kernels there.
TORCH_INIT = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")
TORCH_INIT_TRANSPOSED = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform",
                                                         in_axis=-1, out_axis=-2)


def torch_bias_init(fan_in: int):
  """PyTorch's default bias initialiser: uniform in +-1/sqrt(fan_in)."""
  bound = 1.0 / fan_in ** 0.5
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def _torch_batch_norm(norm: ModuleDef, train: bool) -> nn.Module:
  """`norm` with PyTorch's BatchNorm2d defaults: momentum 0.1 (Flax's 0.9), epsilon 1e-5."""
  return norm(use_running_average=not train, momentum=0.9, epsilon=1e-5)


@DISCRIMINATORS.register("dcgan_cake32")
class DCGANCake32Discriminator(nn.Module):
  """The 32x32 report (a PyTorch DCGAN): three conv 4x4 stride 2 with padding 2 on each side
  (32, 64, 128 filters), each with batch norm and LeakyReLU(0.2); flatten; dropout 0.5; dense 1.

  32 -> 17 -> 9 -> 5; 3,200 features; 169,249 trainable parameters (PyTorch's count), and
  PyTorch's default initialisation and batch-norm settings. Returns a logit (the report's
  sigmoid is inside the loss, for stability). `width` scales the filters (smoke configs).
  """
  filters: Sequence[int] = (32, 64, 128)
  width: float = 1.0
  dropout: float = 0.5
  leak: float = 0.2
  norm: str = "batch"  # batch | none
  spectral_norm: bool = False
  conv: ModuleDef = nn.Conv
  batch_norm: ModuleDef = nn.BatchNorm

  @nn.compact
  def __call__(self, x, cond=None, train: bool = True, bn_running: bool = False):
    sn = functools.partial(_spectral, on=self.spectral_norm, train=train)
    for f in self.filters:
      cin = x.shape[-1]
      x = sn(self.conv(max(1, int(f * self.width)), (4, 4), (2, 2), padding=((2, 2), (2, 2)),
                       kernel_init=TORCH_INIT, bias_init=torch_bias_init(cin * 16)))(x)
      x = nn.leaky_relu(_d_norm(self, self.batch_norm, train and not bn_running,
                                _torch_batch_norm)(x), self.leak)
    h = _with_cond(x.reshape(x.shape[0], -1), cond)  # [B, 5*5*128 (+K)]
    self.sow("intermediates", "features", h)
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    return sn(nn.Dense(1, kernel_init=TORCH_INIT,
                       bias_init=torch_bias_init(h.shape[-1])))(h)[:, 0]


@GENERATORS.register("dcgan_cake32")
class DCGANCake32Generator(nn.Module):
  """The 32x32 report's generator: z (64) -> dense 4*4*64, no activation; reshape; transposed convs 4x4
  stride 2 padding 1 (64, 128, 256 filters), each with LeakyReLU(0.2); conv 5x5 padding 2 to
  3 channels; tanh. 4 -> 8 -> 16 -> 32; 807,107 parameters; PyTorch's default initialisation.

  (PyTorch's padding 1 for a 4x4 stride-2 transposed conv is 'SAME' here: both double the size
  with two rows of padding each side of the dilated input.)
  """
  output_range = (-1.0, 1.0)
  filters: Sequence[int] = (64, 128, 256)
  start: int = 4
  start_channels: int = 64
  width: float = 1.0
  leak: float = 0.2
  channels: int = 3
  conv: ModuleDef = nn.Conv
  conv_transpose: ModuleDef = nn.ConvTranspose

  @nn.compact
  def __call__(self, z, cond=None, train: bool = True):
    c0 = max(1, int(self.start_channels * self.width))
    h = _with_cond(z, cond)
    h = nn.Dense(self.start * self.start * c0, kernel_init=TORCH_INIT,
                 bias_init=torch_bias_init(h.shape[-1]))(h)
    h = h.reshape(-1, self.start, self.start, c0)  # [B, 4, 4, 64]
    for f in self.filters:
      cout = max(1, int(f * self.width))
      h = self.conv_transpose(cout, (4, 4), (2, 2), kernel_init=TORCH_INIT_TRANSPOSED,
                              bias_init=torch_bias_init(cout * 16))(h)
      h = nn.leaky_relu(h, self.leak)
    cin = h.shape[-1]
    h = self.conv(self.channels, (5, 5), padding=((2, 2), (2, 2)), kernel_init=TORCH_INIT,
                  bias_init=torch_bias_init(cin * 25))(h)
    return jnp.tanh(h)  # [B, 32, 32, 3]


def pixel_norm(x: jnp.ndarray, eps: float = 1e-8) -> jnp.ndarray:
  """Each pixel's feature vector scaled to unit root-mean-square (PGGAN's generator norm)."""
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


@GENERATORS.register("dcgan")
class DCGANGenerator(nn.Module):
  """Radford et al.'s DCGAN generator, any power-of-two size from 4x4: dense to 4x4 x
  (width * 2^(L-1)) channels, then transposed convs 4x4 stride 2 halving the channels, each
  normalised and LeakyReLU(0.2); the last to RGB, tanh.

  `norm`: 'pixel' (PGGAN's pixel norm: no batch statistics, so an EMA of the
  weights is a complete generator), 'batch' (DCGAN's), or 'none'.
  """
  output_range = (-1.0, 1.0)
  size: int = 64
  width: int = 32        # Channels before the last layer; doubled per stage towards 4x4.
  norm: str = "pixel"
  leak: float = 0.2
  channels: int = 3
  conv_transpose: ModuleDef = nn.ConvTranspose
  batch_norm: ModuleDef = nn.BatchNorm

  def _norm(self, x, train):
    if self.norm == "pixel":
      return pixel_norm(x)
    if self.norm == "batch":
      return _batch_norm(self.batch_norm, train)(x)
    return x

  @nn.compact
  def __call__(self, z, cond=None, train: bool = True):
    stages = int(np.log2(self.size)) - 2  # 4 -> size in this many doublings.
    c = self.width * 2 ** (stages - 1)
    h = nn.Dense(4 * 4 * c)(_with_cond(z, cond)).reshape(-1, 4, 4, c)  # [B, 4, 4, C]
    h = nn.leaky_relu(self._norm(h, train), self.leak)
    for i in range(stages - 1):
      h = self.conv_transpose(c // 2 ** (i + 1), (4, 4), (2, 2))(h)
      h = nn.leaky_relu(self._norm(h, train), self.leak)
    h = self.conv_transpose(self.channels, (4, 4), (2, 2))(h)
    return jnp.tanh(h)  # [B, size, size, 3]


@DISCRIMINATORS.register("dcgan")
class DCGANDiscriminator(nn.Module):
  """Radford et al.'s DCGAN discriminator, any power-of-two size: convs 4x4 stride 2 from
  `width` channels, doubling, down to 4x4; batch norm after all but the first (`norm='none'`:
  none, as SNGAN); LeakyReLU(0.2); dense 1 (a logit)."""
  size: int = 64
  width: int = 32
  leak: float = 0.2
  norm: str = "batch"  # batch | none
  spectral_norm: bool = False
  conv: ModuleDef = nn.Conv
  batch_norm: ModuleDef = nn.BatchNorm

  @nn.compact
  def __call__(self, x, cond=None, train: bool = True, bn_running: bool = False):
    sn = functools.partial(_spectral, on=self.spectral_norm, train=train)
    stages = int(np.log2(self.size)) - 2
    for i in range(stages):
      x = sn(self.conv(self.width * 2 ** i, (4, 4), (2, 2), padding=((1, 1), (1, 1))))(x)
      if i:
        x = _d_norm(self, self.batch_norm, train and not bn_running)(x)
      x = nn.leaky_relu(x, self.leak)
    h = _with_cond(x.reshape(x.shape[0], -1), cond)  # [B, 4*4*C (+K)]
    self.sow("intermediates", "features", h)
    return sn(nn.Dense(1))(h)[:, 0]


def count_params(variables) -> int:
  """Number of scalars in a variables pytree (params, and batch stats if included)."""
  return sum(int(v.size) for v in jax.tree.leaves(variables))


def _upsample(x: jnp.ndarray, factor: int) -> jnp.ndarray:
  """Nearest-neighbour xfactor: [B, H, W, C] -> [B, fH, fW, C]."""
  return x if factor == 1 else jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


def _downsample(x: jnp.ndarray, factor: int) -> jnp.ndarray:
  """factor x factor average pooling: [B, H, W, C] -> [B, H/f, W/f, C]."""
  if factor == 1:
    return x
  b, h, w, c = x.shape
  return x.reshape(b, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


def _check_growth(size: int, start: int, widths: Sequence[int], name: str):
  stages = int(np.log2(size)) - 1  # 4, 8, ..., size px.
  if 2 ** (stages + 1) != size or start < 4 or size % start or start & (start - 1):
    raise ConfigError(f"{name}: size={size} and start={start} must be powers of two, "
                     f"4 <= start <= size")
  if len(widths) != stages:
    raise ConfigError(f"{name}: widths has {len(widths)} entries; size={size} needs {stages} "
                     f"(one per resolution, 4 to {size} px)")


@GENERATORS.register("dcgan_grow")
class GrowingDCGANGenerator(nn.Module):
  """A DCGAN generator that grows from `start` px to `size` px (PGGAN, Karras et al. 2018).

  Dense to 4x4 x widths[0], then transposed convs 4x4 stride 2 (widths[i] channels at
  4 * 2^i px), each with pixel norm and LeakyReLU(0.2); a 1x1 conv to RGB at `start` px
  and one at `size` px. The output is tanh of

      (1 - alpha) * upsample(rgb_start) + alpha * rgb_size,

  always [B, size, size, 3]. `alpha` in [0, 1] fades the higher blocks in (a scalar, may be
  traced; default 1). `res` (static): with `res = start` the blocks above `start` are not
  computed and the output is the upsampled `start` px image, which equals the full
  computation at alpha = 0.
  """
  output_range = (-1.0, 1.0)
  grows = True
  size: int = 64
  start: int = 32
  widths: Sequence[int] = (128, 64, 32, 32, 16)  # channels at 4, 8, 16, 32, 64 px
  leak: float = 0.2
  channels: int = 3
  conv: ModuleDef = nn.Conv
  conv_transpose: ModuleDef = nn.ConvTranspose

  @nn.compact
  def __call__(self, z, cond=None, train: bool = True, alpha=1.0, res: Optional[int] = None):
    _check_growth(self.size, self.start, self.widths, "dcgan_grow generator")
    res = self.size if res is None else res
    h = nn.Dense(16 * self.widths[0])(_with_cond(z, cond)).reshape(-1, 4, 4, self.widths[0])
    h = nn.leaky_relu(pixel_norm(h), self.leak)  # [B, 4, 4, widths[0]]
    to_rgb = lambda r: self.conv(self.channels, (1, 1), name=f"to_rgb_{r}")
    r, rgb_start = 4, None
    for w in self.widths[1:]:
      if r == self.start:
        rgb_start = to_rgb(r)(h)  # [B, start, start, 3]
        if res == self.start:
          break
      r *= 2
      h = self.conv_transpose(w, (4, 4), (2, 2), name=f"up_{r}")(h)
      h = nn.leaky_relu(pixel_norm(h), self.leak)  # [B, r, r, w]
    if rgb_start is None:  # start == size.
      rgb_start = to_rgb(r)(h)
    low = _upsample(rgb_start, self.size // self.start)
    if res == self.start or self.start == self.size:
      return jnp.tanh(low)
    return jnp.tanh((1.0 - alpha) * low + alpha * to_rgb(self.size)(h))  # [B, size, size, 3]


@DISCRIMINATORS.register("dcgan_grow")
class GrowingDCGANDiscriminator(nn.Module):
  """The discriminator that grows with `GrowingDCGANGenerator`.

  A 1x1 conv from RGB (LeakyReLU(0.2)) at `size` px and one at `start` px; convs 4x4 stride 2
  halving the resolution (widths[i] channels at size / 2^i px), LeakyReLU(0.2), batch norm on
  those that output 8 px or less (as the 32 px DCGAN discriminator of configs/cake_fast.py);
  dense 1 (a logit). At `start` px the features are

      (1 - alpha) * from_rgb_start(avgpool(x)) + alpha * blocks(from_rgb_size(x)).

  Input [B, size, size, 3] always; `res = start` (static) skips the higher blocks and equals
  alpha = 0.
  """
  grows = True
  size: int = 64
  start: int = 32
  widths: Sequence[int] = (16, 32, 32, 64, 128)  # channels at 64, 32, 16, 8, 4 px
  leak: float = 0.2
  norm: str = "batch"  # batch | none
  spectral_norm: bool = False
  conv: ModuleDef = nn.Conv
  batch_norm: ModuleDef = nn.BatchNorm

  @nn.compact
  def __call__(self, x, cond=None, train: bool = True, bn_running: bool = False, alpha=1.0,
               res: Optional[int] = None):
    _check_growth(self.size, self.start, self.widths[::-1], "dcgan_grow discriminator")
    res = self.size if res is None else res
    sn = functools.partial(_spectral, on=self.spectral_norm, train=train)
    width = {self.size // 2 ** i: w for i, w in enumerate(self.widths)}
    act = lambda v: nn.leaky_relu(v, self.leak)
    from_rgb = lambda r, v: act(sn(self.conv(width[r], (1, 1), name=f"from_rgb_{r}"))(v))

    def down(h, r):  # [B, r, r, C] -> [B, r/2, r/2, width[r/2]]
      h = sn(self.conv(width[r // 2], (4, 4), (2, 2), padding=((1, 1), (1, 1)),
                       name=f"down_{r}"))(h)
      if r // 2 <= 8:
        h = _d_norm(self, self.batch_norm, train and not bn_running)(h)
      return act(h)

    h = from_rgb(self.start, _downsample(x, self.size // self.start))  # [B, start, start, C]
    if res != self.start and self.start != self.size:
      full, r = from_rgb(self.size, x), self.size
      while r > self.start:
        full, r = down(full, r), r // 2
      h = (1.0 - alpha) * h + alpha * full
    r = self.start
    while r > 4:
      h, r = down(h, r), r // 2
    h = _with_cond(h.reshape(h.shape[0], -1), cond)  # [B, 4*4*widths[-1] (+K)]
    self.sow("intermediates", "features", h)
    return sn(nn.Dense(1))(h)[:, 0]
