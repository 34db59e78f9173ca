"""What a GAN draws: the fixed monitoring inputs and grid, its generator view, samples.

A mixin of `gm.families.gan.GAN` (which provides `images`, `images_jit`,
`sampling_state`, `one_hot`, `disc`, `output_range`, `noise_dim`, `num_classes`
and the noise draw `_noise`), kept apart so that the family file holds its state
and updates.
"""

from typing import Any, Dict

import jax
import jax.numpy as jnp
import numpy as np

from gm.families.base import Batch, GeneratorView


class GANSampling:
  """Monitoring, the generator view and sampling of a GAN."""

  def monitor_inputs(self, key: jax.Array, test: Batch) -> Dict[str, Any]:
    """64 fixed noise vectors; conditional: 8 per digit, one row per digit."""
    if not self.num_classes:
      return {"z": self._noise(key, (64, self.noise_dim))}
    cols = self.grid_columns
    z = self._noise(key, (cols, self.noise_dim))
    labels = np.repeat(np.arange(self.num_classes), cols)
    return {"z": jnp.tile(z, (self.num_classes, 1)), "label": labels}

  def monitor_images(self, state: Any, inputs: Dict[str, Any]) -> jnp.ndarray:
    cond = self.one_hot(inputs["label"]) if "label" in inputs else None
    return self.images(self.sampling_state(state).g, inputs["z"], cond)

  def generator(self, state: Any) -> GeneratorView:
    """G of the sampling state (its EMA when the run keeps one); `features`: D's penultimate
    features of images in [0, 1] (feature-matching inversion)."""
    g = self.sampling_state(state).g
    lo, hi = self.output_range

    def features(images):
      x = lo + (hi - lo) * images
      _, inter = self.disc.apply({"params": state.d.params, "batch_stats": state.d.batch_stats},
                                 x, None, train=False, mutable=["intermediates"],
                                 **self._grow_args(state.d.step // self.d_steps))
      return inter["intermediates"]["features"][0]

    return GeneratorView(apply=lambda z, cond=None: self.images(g, z, cond),
                         noise=lambda key, n: self._noise(key, (n, self.noise_dim)),
                         latent_size=self.noise_dim, output_range=self.output_range,
                         conditional=bool(self.num_classes), features=features)

  def sample(self, state: Any, key: jax.Array, num: int, labels=None) -> np.ndarray:
    """`num` images [num, H, W, C] in [0, 1] (host), in chunks of `eval.batch_size`.

    The chunk bounds memory: a 64x64 generator's widest activation is ~8 MB per image.
    """
    out, chunk = [], max(1, self.config.eval.batch_size)
    for i in range(0, num, chunk):
      k = jax.random.fold_in(key, i)
      m = min(chunk, num - i)
      cond = None if labels is None else self.one_hot(jnp.asarray(labels[i:i + m]))
      out.append(np.asarray(self.images_jit(self.sampling_state(state).g,
                                            self._noise(k, (m, self.noise_dim)), cond)))
    return np.concatenate(out)
