"""Convolutional encoder and decoder of the TensorFlow "Convolutional VAE" tutorial.

Encoder: conv 32 3x3 stride 2 (valid), ReLU; conv 64 3x3 stride 2 (valid), ReLU;
flatten; dense to `features` (2*latent for a VAE: mean and log-variance, no
activation; latent for an AE). Decoder: dense 7*7*32, ReLU; reshape; transposed
convs 64 and 32 3x3 stride 2 'same' with ReLU; transposed conv 3x3 stride 1 to
the image channels, returning logits.

Layers a platform may lower differently come in as `ModuleDef` fields
defaulting to Flax's (`conv`, `conv_transpose`); `gm.backend.runtime` picks them.
"""

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

ModuleDef = Any

# Keras' default initializer, so the models match the TensorFlow tutorial.
KERAS_INIT = nn.initializers.xavier_uniform()


def max_pool_2x2(x: jnp.ndarray) -> jnp.ndarray:
  """Flax's 2x2 max pooling, stride 2, VALID: [B, H, W, C] -> [B, H//2, W//2, C]."""
  return nn.max_pool(x, (2, 2), strides=(2, 2))


class ConvEncoder(nn.Module):
  """Image [B, H, W, C] (+ optional condition [B, K]) -> features [B, features].

  Attributes:
    features: output size.
    channels: filters of the convs.
    strides, padding: of the convs ((2, 2), VALID: 28 -> 13 -> 6 as the tutorial;
      (3, 2), SAME: 42 -> 14 -> 7 for the 3x3 canvas).
    conv: the conv module.
  """
  features: int
  channels: Sequence[int] = (32, 64)
  strides: Sequence[int] = (2, 2)
  padding: str = "VALID"
  conv: ModuleDef = nn.Conv

  @nn.compact
  def __call__(self, x: jnp.ndarray, cond: jnp.ndarray = None) -> jnp.ndarray:
    for c, s in zip(self.channels, self.strides):
      x = nn.relu(self.conv(c, (3, 3), strides=(s, s), padding=self.padding,
                            kernel_init=KERAS_INIT)(x))
    x = x.reshape(x.shape[0], -1)  # [B, h*w*c]
    if cond is not None:
      x = jnp.concatenate([x, cond], axis=-1)
    return nn.Dense(self.features, kernel_init=KERAS_INIT)(x)


class ConvDecoder(nn.Module):
  """Latent [B, D] (+ optional condition [B, K]) -> logits [B, H, W, C].

  Attributes:
    start: spatial size after the dense layer (7 for 28x28 outputs).
    strides: strides of the transposed convs (output size = start * prod(strides)).
    start_channels: channels after the dense layer.
    channels: filters of the stride-2 transposed convs.
    out_channels: image channels.
    conv_transpose: the transposed-conv module (padding 'SAME').
  """
  start: int = 7
  start_channels: int = 32
  channels: Sequence[int] = (64, 32)
  strides: Sequence[int] = (2, 2)
  out_channels: int = 1
  conv_transpose: ModuleDef = nn.ConvTranspose

  @nn.compact
  def __call__(self, z: jnp.ndarray, cond: jnp.ndarray = None) -> jnp.ndarray:
    if cond is not None:
      z = jnp.concatenate([z, cond], axis=-1)
    x = nn.relu(nn.Dense(self.start * self.start * self.start_channels, kernel_init=KERAS_INIT)(z))
    x = x.reshape(-1, self.start, self.start, self.start_channels)
    for c, s in zip(self.channels, self.strides):
      x = nn.relu(self.conv_transpose(c, (3, 3), (s, s), kernel_init=KERAS_INIT)(x))
    return self.conv_transpose(self.out_channels, (3, 3), (1, 1), kernel_init=KERAS_INIT)(x)
