"""The MNIST judge: a small CNN whose penultimate features feed Fréchet/KID distances."""

from typing import Tuple

import flax.linen as nn
import jax.numpy as jnp


class JudgeCNN(nn.Module):
  """[B, 28, 28, 1] in [0, 1] -> (logits [B, classes], features [B, features]).

  conv 32 3x3, ReLU, maxpool 2; conv 64 3x3, ReLU, maxpool 2; dense `features`,
  ReLU (the features); dropout; dense `classes`.
  """
  classes: int = 10
  features: int = 128
  dropout: float = 0.3

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False) -> Tuple[jnp.ndarray, jnp.ndarray]:
    for c in (32, 64):
      x = nn.max_pool(nn.relu(nn.Conv(c, (3, 3))(x)), (2, 2), (2, 2))
    feats = nn.relu(nn.Dense(self.features)(x.reshape(x.shape[0], -1)))
    h = nn.Dropout(self.dropout, deterministic=not train)(feats)
    return nn.Dense(self.classes)(h), feats
