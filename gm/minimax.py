"""The course notebook's minimax exercise: alternating gradient steps on a two-player game.

    min_x max_y f(x, y),   x_{t+1} = x_t - lr * df/dx(x_t, y_t),
                           y_{t+1} = y_t + lr * df/dy(x_{t+1}, y_t)

On f(x, y) = x * y from (1, 1) with lr 1 the iterates cycle with period 6
instead of converging to the equilibrium (0, 0): the simplest picture of why
GAN training oscillates.
"""

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np


def bilinear(x, y):
  return x * y


def alternating_gradient(f: Callable = bilinear, x0: float = 1.0, y0: float = 1.0,
                         lr: float = 1.0, steps: int = 6) -> np.ndarray:
  """Iterates [(x_0, y_0), ..., (x_steps, y_steps)] as an array [steps + 1, 2].

  x descends f first; y then ascends f at the new x (alternating updates, as
  GAN training alternates D and G).
  """
  dfdx, dfdy = jax.grad(f, 0), jax.grad(f, 1)
  x, y = jnp.float32(x0), jnp.float32(y0)
  path = [(x0, y0)]
  for _ in range(steps):
    x = x - lr * dfdx(x, y)
    y = y + lr * dfdy(x, y)
    path.append((float(x), float(y)))
  return np.asarray(path, np.float64)
