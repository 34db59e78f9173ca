"""The MNIST judge: a small CNN whose penultimate features feed Fréchet/KID distances."""

from typing import Callable, Tuple

import flax.linen as nn
import jax.numpy as jnp

from gm.models.conv import ModuleDef, max_pool_2x2


class JudgeCNN(nn.Module):
  """[B, 28, 28, 1] in [0, 1] -> (logits [B, classes], features [B, features]).

  conv 32 3x3, ReLU, maxpool 2; conv 64 3x3, ReLU, maxpool 2; dense `features`,
  ReLU (the features); dropout; dense `classes`.

  The classifier family builds it with Flax's layers on every backend, so the
  judge's weights and scores stay those of XLA's own convolutions.
  """
  classes: int = 10
  features: int = 128
  dropout: float = 0.3
  conv: ModuleDef = nn.Conv
  max_pool: Callable = max_pool_2x2

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False) -> Tuple[jnp.ndarray, jnp.ndarray]:
    for c in (32, 64):
      x = self.max_pool(nn.relu(self.conv(c, (3, 3))(x)))
    feats = nn.relu(nn.Dense(self.features)(x.reshape(x.shape[0], -1)))
    h = nn.Dropout(self.dropout, deterministic=not train)(feats)
    return nn.Dense(self.classes)(h), feats
