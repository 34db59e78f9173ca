"""Generators and discriminators of the GAN seeds, each architecture once.

Every module takes an optional condition `cond` [B, K] (a one-hot label for
conditional GANs; None otherwise) and a `train` flag (batch norm statistics,
dropout). Discriminators return logits [B] (or critic scores for Wasserstein
losses); generators return images [B, H, W, C] in the range of their output
activation (tanh: [-1, 1]; sigmoid: [0, 1]).

MNIST models follow the CS231n GAN notebook (the seed): MLP and DCGAN after
InfoGAN. `axis_name` makes batch norm average its statistics over that mapped
axis (pmap / shard_map); under `jax.jit` with a sharded batch it is not needed.
"""

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gm.models.conv import KERAS_INIT
from gm.models.layers import ConvTranspose, max_pool_2x2
from gm.registry import Registry

GENERATORS = Registry("generator")
DISCRIMINATORS = Registry("discriminator")


def _with_cond(h: jnp.ndarray, cond: Optional[jnp.ndarray]) -> jnp.ndarray:
  """Concatenates the condition to flat features [B, F] -> [B, F + K]."""
  return h if cond is None else jnp.concatenate([h, cond.astype(h.dtype)], -1)


def _batch_norm(train: bool, axis_name: Optional[str]) -> nn.BatchNorm:
  # TensorFlow's defaults (momentum 0.99, epsilon 1e-3), as the seeds used them.
  return nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-3,
                      axis_name=axis_name if train else None)


@DISCRIMINATORS.register("mlp")
class MLPDiscriminator(nn.Module):
  """784 -> 256 -> 256 -> 1 with LeakyReLU(0.01) (CS231n; 267,009 parameters)."""
  hidden: Sequence[int] = (256, 256)
  leak: float = 0.01
  axis_name: Optional[str] = None  # Unused (no batch norm); uniform constructor.

  @nn.compact
  def __call__(self, x, cond=None, train: bool = True):
    h = _with_cond(x.reshape(x.shape[0], -1), cond)  # [B, H*W*C (+K)]
    for width in self.hidden:
      h = nn.leaky_relu(nn.Dense(width, kernel_init=KERAS_INIT)(h), self.leak)
    return nn.Dense(1, kernel_init=KERAS_INIT)(h)[:, 0]  # [B]


@GENERATORS.register("mlp")
class MLPGenerator(nn.Module):
  """noise -> 1024 -> 1024 -> 784, ReLU, tanh (CS231n; 1,858,320 parameters at noise 4)."""
  out_shape: Sequence[int] = (28, 28, 1)
  hidden: Sequence[int] = (1024, 1024)
  axis_name: Optional[str] = None
  conv_transpose_impl: str = "auto"

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
  axis_name: Optional[str] = None

  @nn.compact
  def __call__(self, x, cond=None, train: bool = True):
    for width in (32, 64):
      x = nn.Conv(width, (5, 5), padding="VALID", kernel_init=KERAS_INIT)(x)
      x = max_pool_2x2(nn.leaky_relu(x, self.leak))
    h = _with_cond(x.reshape(x.shape[0], -1), cond)  # [B, 4*4*64 (+K)]
    h = nn.leaky_relu(nn.Dense(4 * 4 * 64, kernel_init=KERAS_INIT)(h), self.leak)
    return nn.Dense(1, kernel_init=KERAS_INIT)(h)[:, 0]


@GENERATORS.register("dcgan_mnist")
class DCGANMnistGenerator(nn.Module):
  """InfoGAN generator: dense 1024, ReLU, BN; dense 7*7*128, ReLU, BN; two 4x4 stride-2
  transposed convs (64 + ReLU + BN, then 1 + tanh). 7 -> 14 -> 28.

  6,595,521 parameters plus batch-norm statistics at noise 4 (CS231n's count).
  """
  axis_name: Optional[str] = None
  conv_transpose_impl: str = "auto"

  @nn.compact
  def __call__(self, z, cond=None, train: bool = True):
    h = _with_cond(z, cond)
    h = _batch_norm(train, self.axis_name)(nn.relu(nn.Dense(1024, kernel_init=KERAS_INIT)(h)))
    h = nn.Dense(7 * 7 * 128, kernel_init=KERAS_INIT)(h)
    h = _batch_norm(train, self.axis_name)(nn.relu(h)).reshape(-1, 7, 7, 128)
    h = ConvTranspose(64, (4, 4), (2, 2), impl=self.conv_transpose_impl,
                      kernel_init=KERAS_INIT)(h)
    h = _batch_norm(train, self.axis_name)(nn.relu(h))  # [B, 14, 14, 64]
    h = ConvTranspose(1, (4, 4), (2, 2), impl=self.conv_transpose_impl,
                      kernel_init=KERAS_INIT)(h)
    return jnp.tanh(h)  # [B, 28, 28, 1]


def count_params(variables) -> int:
  """Number of scalars in a variables pytree (params, and batch stats if included)."""
  return sum(int(v.size) for v in jax.tree.leaves(variables))
