"""Loads the MNIST judge (a trained classifier run) and scores images with it."""

import functools
import json
import os
from typing import Dict

import jax
import jax.numpy as jnp
import numpy as np

from gm import checkpoint, config_utils, families, runtime
from gm.errors import UserError
from gm.metrics.scores import feature_scores


class Judge:
  """Labels and penultimate features of 28x28 images in [0, 1] from a classifier run."""

  def __init__(self, workdir: str):
    workdir = os.path.abspath(workdir)
    cfg_path = os.path.join(workdir, "config.json")
    if not os.path.exists(cfg_path):
      raise UserError(f"no MNIST judge at {workdir}; train it with: python train.py --config "
                      f"configs/classifier_mnist.py --workdir {workdir} (or pass --judge <dir>)")
    with open(cfg_path) as f:
      config = config_utils.from_dict(json.load(f))
    if config.family != "classifier":
      raise UserError(f"{workdir} is a {config.family} run, not a classifier (the judge)")
    self.family = families.get(config)
    batch = {"image": np.zeros((1, 28, 28, 1), np.uint8), "label": np.zeros(1, np.int32)}
    # (gm.train imports gm.metrics.)
    from gm.train.epochs import RunState  # pylint: disable=g-import-not-at-top
    key = jax.random.PRNGKey(0)
    target = RunState(model=self.family.init(key, batch), step=jnp.zeros((), jnp.int32),
                      rng=key, data_rng=key)
    ckpt = checkpoint.Checkpointer(workdir, create=False)
    self.step = ckpt.resolve("latest")
    run, self.meta = ckpt.restore(self.step, target)
    ckpt.close()
    self.params = run.model.params
    self.workdir = workdir
    self._apply = runtime.jit(self.family.logits_and_features)

  def __call__(self, images: np.ndarray, batch_size: int = 1000) -> Dict[str, np.ndarray]:
    """Images [N, 28, 28, 1] in [0, 1] -> {'labels' [N], 'features' [N, F], 'probs' [N, 10]}."""
    out = {"labels": [], "features": [], "probs": []}
    for i in range(0, len(images), batch_size):
      logits, feats = self._apply(self.params, jnp.asarray(images[i:i + batch_size], jnp.float32))
      out["labels"].append(np.asarray(logits.argmax(-1)))
      out["features"].append(np.asarray(feats))
      out["probs"].append(np.asarray(jax.nn.softmax(logits)))
    return {k: np.concatenate(v) for k, v in out.items()}

  def distances(self, generated: np.ndarray, reference: np.ndarray) -> Dict[str, float]:
    """Judge-feature scores of two image sets: Fréchet distance, KID x 10^3 ('kid_x1e3'),
    precision, recall, density and coverage (`gm.metrics.scores.feature_scores`)."""
    return feature_scores(self(generated)["features"], self(reference)["features"])


@functools.lru_cache(maxsize=4)
def load_judge(workdir: str) -> Judge:
  return Judge(workdir)
