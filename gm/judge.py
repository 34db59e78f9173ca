"""Loads the MNIST judge (a trained classifier run) and scores images with it. It lives outside
gm.metrics, which never imports gm.families or gm.train; its scores are gm.metrics.scores'.

The judge is a classifier run directory, or a .npz file of its parameters written by
scripts/export_judge.py. `builtin` (configs' default `eval.judge`) is the one that ships with gm,
gm/metrics/judge_mnist.npz, so that scores mean the same on every machine: a judge retrained
elsewhere (another seed, JAX version or CPU) moves a GAN's Fréchet distance by as much as
another GAN seed does (docs/results.md, "The judge").
"""

import functools
import json
import os
from typing import Dict

import flax
import jax
import jax.numpy as jnp
import numpy as np

from gm import checkpoint, config_utils, families
from gm.backend import runtime
from gm.errors import UserError
from gm.metrics.scores import feature_scores


BUILTIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "metrics", "judge_mnist.npz")


def export(judge: "Judge", path: str, provenance: dict) -> None:
  """Writes a judge's parameters, its run's config and `provenance` to a .npz file."""
  flat = {"/".join(k): np.asarray(v)
          for k, v in flax.traverse_util.flatten_dict(flax.core.unfreeze(judge.params)).items()}
  np.savez(path, **{f"params/{k}": v for k, v in flat.items()},
           config=np.asarray(json.dumps(judge.family.config.to_dict())),
           provenance=np.asarray(json.dumps(provenance)))


class Judge:
  """Labels and penultimate features of 28x28 images in [0, 1] from a classifier."""

  def __init__(self, where: str):
    """`where`: a classifier run directory, a .npz from `export`, or 'builtin'."""
    path = BUILTIN if where == "builtin" else os.path.abspath(where)
    self.workdir = where if where == "builtin" else path
    if path.endswith(".npz"):
      if not os.path.exists(path):
        raise UserError(f"no judge file {path}; write one with scripts/export_judge.py, or pass "
                        "--judge <classifier run dir>")
      with np.load(path) as f:
        config = config_utils.from_dict(json.loads(str(f["config"])))
        self.provenance = json.loads(str(f["provenance"]))
        params = {tuple(k.split("/")[1:]): jnp.asarray(f[k]) for k in f.files
                  if k.startswith("params/")}
      self.family = families.get(config)
      self.params = flax.traverse_util.unflatten_dict(params)
      self.step = self.provenance.get("step")
    else:
      self._restore(path)
    self._apply = runtime.jit(self.family.logits_and_features)

  def _restore(self, workdir: str) -> None:
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
    from gm.train.epochs import RunState  # pylint: disable=g-import-not-at-top
    key = jax.random.PRNGKey(0)
    target = RunState(model=self.family.init(key, batch), step=jnp.zeros((), jnp.int32),
                      rng=key, data_rng=key)
    ckpt = checkpoint.Checkpointer(workdir, create=False)
    self.step = ckpt.resolve("latest")
    run, self.meta = ckpt.restore(self.step, target)
    ckpt.close()
    self.params = run.model.params
    self.provenance = {"workdir": workdir, "step": self.step}

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
